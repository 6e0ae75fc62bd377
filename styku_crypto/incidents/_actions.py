"""The library actions a playbook step can run, as one registry.

Each action takes an :class:`ActionContext` and its argument and returns an
:class:`ActionResult`: an outcome, a one-line summary, counts, and the
security events it produced (the same names and fields the library emits).
:meth:`IncidentLog.run_step` records that result in the incident's hash chain.

=====================  ========  ==================================================
action                 argument  does
=====================  ========  ==================================================
``rotate-and-rewrap``  tenant    ``KeyStore.rotate(tenant)`` (every purpose), then
                                 ``Envelope.rewrap`` of every token in
                                 ``context.tokens`` (written back in place)
``shred``              tenant    ``KeyStore.shred(tenant)``: irreversible
``revoke-pepper``      -         rotates the key-store pepper tenant: new hashes use
                                 a new pepper; old hashes are re-peppered at the next
                                 login (force resets to revoke them outright)
``audit``              target    ``tls.audit.audit([target])`` against the policy
=====================  ========  ==================================================
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from styku_crypto.envelope import Envelope
from styku_crypto.exceptions import InvalidInputError, StykuCryptoError
from styku_crypto.incidents._playbooks import ACTION_NAMES
from styku_crypto.passwords import PepperSet
from styku_crypto.passwords._pepper import PEPPER_TENANT

if TYPE_CHECKING:
    from styku_crypto.keys import KeyStore

__all__ = ["ActionContext", "ActionResult", "failure_result", "run_action"]

_MAX_EVENTS = 50


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What a step's action may touch.

    Attributes:
        store: the key store the actions work on.
        tokens: for ``rotate-and-rewrap``: the tenant's stored tokens, keyed by
            your record ids (any mutable mapping: a dict, or an adapter over a
            table). Each token is rewrapped and written back under the same
            key; the payload is never decrypted. ``None``: rotate only.
        audit_policy: the TLS policy ``audit`` judges against.
        audit_ca_file: trust anchors for ``audit`` (default: certifi).
        audit_timeout: seconds per connection for ``audit``.
    """

    store: KeyStore
    tokens: MutableMapping[Any, Any] | None = field(default=None, repr=False)
    audit_policy: str = "intermediate"
    audit_ca_file: str | Path | None = None
    audit_timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an action did.

    Attributes:
        outcome: ``success``, ``partial`` (it ran but left work: e.g. keys
            rotated without a token source) or ``failure``.
        summary: one line.
        counts: what it counted.
        events: the security events it produced (``event`` plus fields), at
            most 50.
    """

    outcome: str
    summary: str
    counts: Mapping[str, int] = field(default_factory=dict)
    events: tuple[Mapping[str, Any], ...] = ()


def run_action(name: str, argument: str | None, context: ActionContext) -> ActionResult:
    """Run the action *name* with *argument*.

    Raises:
        InvalidInputError: unknown action, or a missing or unexpected argument.
        StykuCryptoError: whatever the action's library call raises (a
            shredded tenant, a token that does not authenticate...); tokens
            already rewrapped stay written back (old key versions are kept,
            so every token stays decryptable).
    """
    runner = _ACTIONS.get(name)
    if runner is None:
        raise InvalidInputError(f"unknown action {name!r}; valid: {', '.join(_ACTIONS)}")
    wants = ACTION_NAMES[name]
    if wants is None and argument is not None:
        raise InvalidInputError(f"action {name} takes no argument")
    if wants is not None and not argument:
        raise InvalidInputError(f"action {name} needs a {wants}")
    return runner(context, argument)


def _rotate_and_rewrap(context: ActionContext, tenant: str | None) -> ActionResult:
    assert tenant is not None  # checked by run_action
    store = context.store
    rotated = store.rotate(tenant)
    events: list[dict[str, Any]] = [
        {
            "event": "key.rotated",
            "tenant": tenant,
            "key_id": k.key_id,
            "key_version": k.version,
            "purpose": k.purpose,
        }
        for k in rotated
    ]
    versions = ", ".join(f"{k.purpose} v{k.version}" for k in rotated)
    tokens = context.tokens
    if tokens is None:
        return ActionResult(
            "partial",
            f"rotated {tenant} to {versions}; no token source given, stored tokens not rewrapped",
            {"rotated": len(rotated), "rewrapped": 0, "unchanged": 0},
            tuple(events),
        )
    envelope = Envelope(store)
    rewrapped = unchanged = 0
    for key in list(tokens):
        token = tokens[key]
        new = envelope.rewrap(token, tenant=tenant)
        if new == token:
            unchanged += 1
            continue
        tokens[key] = new
        rewrapped += 1
    events.append({"event": "envelope.rewrap", "tenant": tenant, "count": rewrapped})
    return ActionResult(
        "success",
        f"rotated {tenant} to {versions}; rewrapped {rewrapped} tokens"
        f" ({unchanged} already current)",
        {"rotated": len(rotated), "rewrapped": rewrapped, "unchanged": unchanged},
        tuple(events),
    )


def _shred(context: ActionContext, tenant: str | None) -> ActionResult:
    assert tenant is not None  # checked by run_action
    context.store.shred(tenant)
    return ActionResult(
        "success",
        f"shredded every key version of {tenant}: its tokens can never be decrypted again",
        {"shredded": 1},
        ({"event": "key.shredded", "tenant": tenant},),
    )


def _revoke_pepper(context: ActionContext, _: str | None) -> ActionResult:
    store = context.store
    before = PepperSet.from_key_store(store).current.id  # creates the tenant on first use
    rotated = store.rotate(PEPPER_TENANT, purpose="customer")
    after = PepperSet.from_key_store(store).current.id
    return ActionResult(
        "success",
        f"pepper {before} replaced by {after}: new hashes use {after}; old hashes are "
        "re-peppered at their next successful login (force password resets to revoke them)",
        {"rotated": len(rotated)},
        tuple(
            {"event": "key.rotated", "key_id": k.key_id, "key_version": k.version} for k in rotated
        ),
    )


def _audit(context: ActionContext, target: str | None) -> ActionResult:
    assert target is not None  # checked by run_action
    # The scanner (asyncio, x509, hand-built handshakes) is only loaded when an
    # audit step actually runs, so importing the incident log stays cheap.
    scanner = importlib.import_module("styku_crypto.tls.audit")
    report = scanner.audit(
        [target],
        policy=context.audit_policy,
        ca_file=context.audit_ca_file,
        timeout=context.audit_timeout,
    )
    counts = {"errors": 0, "warnings": 0, "unreachable": 0}
    grades = []
    for result in report.targets:
        if result.error is not None:
            counts["unreachable"] += 1
        for finding in result.findings:
            if finding.waived:
                continue
            if finding.severity == "error":
                counts["errors"] += 1
            elif finding.severity == "warning":
                counts["warnings"] += 1
        grades.append(result.grade or "-")
    code = report.exit_code
    verdict = {0: "compliant", 1: "not compliant"}.get(code, "scan incomplete")
    return ActionResult(
        "success" if code == 0 else "failure",
        f"{target} against {report.policy}: {verdict}, grade {'/'.join(grades)}, "
        f"{counts['errors']} errors, {counts['warnings']} warnings",
        counts,
        ({"event": "tls.audit", "target": target, "exit_code": code},),
    )


_ACTIONS: Mapping[str, Callable[[ActionContext, str | None], ActionResult]] = {
    "rotate-and-rewrap": _rotate_and_rewrap,
    "shred": _shred,
    "revoke-pepper": _revoke_pepper,
    "audit": _audit,
}
assert set(_ACTIONS) == set(ACTION_NAMES)


def failure_result(exc: StykuCryptoError) -> ActionResult:
    """The result recorded when an action raised: the error type only, never its text."""
    return ActionResult("failure", f"raised {type(exc).__name__}")

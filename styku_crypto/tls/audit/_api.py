"""The public entry points: :func:`audit` and :func:`audit_async`."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.tls.audit._fleet import Progress, run_audit
from styku_crypto.tls.audit._model import AuditReport, Target
from styku_crypto.tls.audit._starttls import PROTOCOLS, Protocol, protocol_for
from styku_crypto.tls.audit._view import PolicyView, view_of

if TYPE_CHECKING:
    from styku_crypto.tls._policy import Policy

__all__ = ["PolicyLike", "audit", "audit_async", "parse_target", "resolve_policy"]

#: What ``policy=`` accepts: a Policy, a profile name or a policy file path.
PolicyLike: TypeAlias = "Policy | str | Path"

_MAX_TARGETS = 10_000


def _protocol(name: str, text: str) -> Protocol:
    try:
        return protocol_for(name)
    except KeyError:
        known = ", ".join(sorted(PROTOCOLS))
        raise InvalidInputError(
            f"target {text!r}: unknown protocol {name!r} (known: {known})"
        ) from None


def parse_target(text: str, *, sni: str | None = None, starttls: str | None = None) -> Target:
    """Parse ``host``, ``host:port``, ``[v6]:port`` or ``scheme://host[:port]/``.

    The URL scheme (``https``, ``postgres``, ``smtp``, ``imap``...) or
    *starttls* picks how TLS is entered and the default port; without either
    the target is HTTPS on port 443. SMTP on port 465 is implicit TLS.

    Raises:
        InvalidInputError: empty, malformed, a port outside 1..65535, an
            unknown protocol, or a URL scheme that contradicts *starttls*.
    """
    raw = text.strip()
    protocol = _protocol(starttls, text) if starttls is not None else None
    if "://" in raw:
        scheme, _, raw = raw.partition("://")
        from_url = _protocol(scheme, text)
        if protocol is not None and protocol.name != from_url.name:
            raise InvalidInputError(
                f"target {text!r}: the URL scheme says {from_url.name}, --starttls says "
                f"{protocol.name}"
            )
        protocol = from_url
        raw = raw.split("/", 1)[0].rsplit("@", 1)[-1]
    if protocol is None:
        protocol = PROTOCOLS["https"]
    if not raw or any(c.isspace() for c in raw):
        raise InvalidInputError(f"target {text!r}: expected host[:port]")
    port_text = str(protocol.port)
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise InvalidInputError(f"target {text!r}: malformed [IPv6]:port")
        port_text = rest[1:] or str(protocol.port)
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
    elif raw.count(":") > 1:
        try:
            ipaddress.IPv6Address(raw)
        except ValueError:
            raise InvalidInputError(f"target {text!r}: malformed address") from None
        host = raw
    else:
        host = raw
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidInputError(f"target {text!r}: port must be 1..65535")
    if not host:
        raise InvalidInputError(f"target {text!r}: empty host")
    port = int(port_text)
    return Target(host=host, port=port, sni=sni, protocol=protocol_for(protocol.name, port).name)


def resolve_policy(policy: PolicyLike | PolicyView) -> PolicyView:
    """Turn a profile name, a policy file path or a :class:`~styku_crypto.tls.Policy` into a view.

    Raises:
        InvalidPolicyError: unknown profile, unreadable or invalid policy file.
    """
    if isinstance(policy, PolicyView):
        return policy
    if isinstance(policy, str | Path):
        from styku_crypto.tls import load_policy

        policy = load_policy(policy)
    return view_of(policy)


def _targets(
    targets: Iterable[str | Target], sni: str | None, starttls: str | None = None
) -> list[Target]:
    out: list[Target] = []
    for item in targets:
        if isinstance(item, Target):
            _protocol(item.protocol, item.label)
            out.append(item if sni is None or item.sni else dataclasses.replace(item, sni=sni))
        else:
            out.append(parse_target(item, sni=sni, starttls=starttls))
        if len(out) > _MAX_TARGETS:
            raise InvalidInputError(f"more than {_MAX_TARGETS} targets in one run")
    if not out:
        raise InvalidInputError("no target to audit")
    return out


async def audit_async(
    targets: Iterable[str | Target],
    *,
    policy: PolicyLike = "intermediate",
    concurrency: int = 16,
    per_host: int = 4,
    timeout: float = 5.0,
    sni: str | None = None,
    ca_file: str | Path | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
    starttls: str | None = None,
) -> AuditReport:
    """Audit TLS endpoints against a policy (coroutine version of :func:`audit`)."""
    view = resolve_policy(policy)
    items = _targets(targets, sni, starttls)
    if concurrency < 1 or per_host < 1:
        raise InvalidInputError("concurrency and per_host must be at least 1")
    if not 0 < timeout <= 300:
        raise InvalidInputError("timeout must be in (0, 300] seconds")
    if ca_file is not None:
        path = Path(ca_file)
        if not path.is_file():
            raise InvalidInputError(f"CA file {str(path)!r} does not exist")
        view = dataclasses.replace(view, trust=path)
    return await run_audit(
        items,
        view,
        concurrency=concurrency,
        per_host=per_host,
        timeout=timeout,
        progress=progress,
        now=now,
    )


def audit(
    targets: Iterable[str | Target],
    *,
    policy: PolicyLike = "intermediate",
    concurrency: int = 16,
    per_host: int = 4,
    timeout: float = 5.0,
    sni: str | None = None,
    ca_file: str | Path | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
    starttls: str | None = None,
) -> AuditReport:
    """Audit TLS endpoints against a policy and return a typed report.

    Each target is probed with hand-built ClientHellos (protocols SSLv2 to TLS
    1.3, every IANA cipher suite, EC/FFDHE/post-quantum groups, server
    preference, fallback SCSV, EMS, secure renegotiation, compression), then
    with full handshakes (certificate chain, OCSP stapling, ALPN, resumption,
    client-initiated renegotiation, HSTS), and judged against *policy*.

    Args:
        targets: ``host[:port]`` strings (port 443 by default) or :class:`Target`.
        policy: ``"intermediate"`` / ``"modern"`` (Mozilla 6.0), another profile
            name, a policy file path or a :class:`~styku_crypto.tls.Policy`.
        concurrency: most connections open at once, over all targets.
        per_host: most connections open at once to one host.
        timeout: seconds allowed per connection.
        sni: server name to send (and check the certificate against) for
            every target; by default the target's host.
        ca_file: PEM bundle of trust anchors for chain validation (default: certifi).
        progress: called with ``(done, total)`` as targets finish.
        now: the time certificates are judged at (default: now).
        starttls: how to enter TLS on string targets without a URL scheme:
            ``postgres``, ``mysql``, ``smtp``, ``imap``, ``pop3``, ``ldap``,
            ``ftp``, ``xmpp`` (a preamble before every probe) or ``tls``,
            ``smtps``, ``imaps``... (TLS at once, no HTTP checks).

    Returns:
        The report; :attr:`AuditReport.exit_code` is 0 compliant, 1
        non-compliant, 3 a target unreachable or its scan incomplete.

    Raises:
        InvalidInputError: no target, a malformed target or bad limits.
        InvalidPolicyError: unknown profile or invalid policy file.

    .. warning::
       The scanner connects to every target many times and sends ``GET /``.
       Audit only endpoints you are allowed to test.
    """
    return asyncio.run(
        audit_async(
            targets,
            policy=policy,
            concurrency=concurrency,
            per_host=per_host,
            timeout=timeout,
            sni=sni,
            ca_file=ca_file,
            progress=progress,
            now=now,
            starttls=starttls,
        )
    )

"""What the stdlib and pyOpenSSL context builders share.

The facts recorded for every context (:class:`ContextFacts`,
:func:`context_facts`), the security level, file checks, the wording of load
errors and the policy's groups in OpenSSL spelling. The builders themselves
live in :mod:`._stdlib_contexts` (``ssl.SSLContext``) and
:mod:`._pyopenssl_contexts` (``OpenSSL.SSL.Context``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import weakref
from dataclasses import dataclass
from typing import Any

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.tls._policy import Policy
from styku_crypto.tls._registry import group_by_name

__all__ = ["SECURITY_LEVEL", "ContextFacts", "context_facts", "record_facts"]


def emit(event: str, **fields: Any) -> None:
    """Forward to :func:`styku_crypto.events.emit`, imported on first use (cheap import)."""
    from styku_crypto.events._emit import emit as forward

    forward(event, **fields)


#: OpenSSL security level appended to every cipher string: RSA/DH >= 2048 bits,
#: ECC >= 224 bits, no SHA-1 or MD5 in handshake signatures or certificates.
SECURITY_LEVEL = 2


@dataclass(frozen=True)
class ContextFacts:
    """What a context built by this module enforces (see :func:`context_facts`).

    Attributes:
        api: ``"stdlib"`` or ``"pyopenssl"``.
        side: ``"server"`` or ``"client"``.
        policy: the policy name.
        openssl: the OpenSSL version the context runs on.
        groups: groups set on the context, OpenSSL names, in preference order.
        groups_unavailable: policy groups this OpenSSL does not support.
        groups_method: how the groups were set.
        tls13_suites_method: how the TLS 1.3 suites were set.
        mutual_tls: a client certificate is required and verified.
    """

    api: str
    side: str
    policy: str
    openssl: str
    groups: tuple[str, ...]
    groups_unavailable: tuple[str, ...]
    groups_method: str
    tls13_suites_method: str
    mutual_tls: bool


_FACTS: weakref.WeakKeyDictionary[Any, ContextFacts] = weakref.WeakKeyDictionary()


def context_facts(ctx: object) -> ContextFacts | None:
    """What this module recorded when it built *ctx*, or ``None`` for foreign contexts."""
    try:
        return _FACTS.get(ctx)
    except TypeError:
        return None


def _check_file(path: str | os.PathLike[str] | None, what: str) -> None:
    if path is not None and not os.path.isfile(path):
        raise InvalidInputError(f"{what}: no such file: {os.fspath(path)!r}")


class _EncryptedKeyError(Exception):
    """Raised from the password callback: the library never prompts on a terminal."""


def _refuse_password(*_args: object) -> bytes:
    raise _EncryptedKeyError


def _ssl_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None)
    return str(reason) if reason else type(exc).__name__


def _openssl_groups(policy: Policy) -> list[str]:
    return [group_by_name(g).openssl for g in policy.groups]


def record_facts(ctx: object, facts: ContextFacts) -> None:
    with contextlib.suppress(TypeError):  # every supported context type is weak-referenceable
        _FACTS[ctx] = facts
    emit(
        "tls.context_created",
        capability="tls",
        outcome="success",
        level=logging.INFO,
        attributes={
            "api": facts.api,
            "side": facts.side,
            "policy": facts.policy,
            "groups": ":".join(facts.groups),
            "groups_unavailable": ":".join(facts.groups_unavailable),
            "groups_method": facts.groups_method,
            "mutual_tls": facts.mutual_tls,
        },
    )

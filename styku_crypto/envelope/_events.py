"""Security events of the envelope (``envelope.encrypt``, ``envelope.decrypt.failed``...)."""

from __future__ import annotations

import logging

from styku_crypto.envelope._format import DataClass
from styku_crypto.exceptions import KeyDestroyedError, KeyNotFoundError, UnsupportedFormatError

__all__ = ["emit", "encrypted", "failed", "reason"]


def emit(event: str, **fields: object) -> None:
    """Emit through :mod:`styku_crypto.events`, imported on first use (keeps import cheap)."""
    from styku_crypto.events import emit as _emit

    _emit(event, capability="envelope", **fields)  # type: ignore[arg-type]


def reason(exc: BaseException) -> str:
    """The event's ``reason`` for a refused token (never more than the caller saw)."""
    if isinstance(exc, KeyDestroyedError):
        return "key_destroyed"
    if isinstance(exc, KeyNotFoundError):
        return "unknown_key"
    if isinstance(exc, UnsupportedFormatError):
        return "unsupported_format"
    return "tamper"


def failed(exc: BaseException, tenant: object) -> None:
    """``envelope.decrypt.failed`` (WARNING) for a refused token."""
    emit(
        "envelope.decrypt.failed",
        outcome="failure",
        level=logging.WARNING,
        tenant=tenant if isinstance(tenant, str) else None,
        reason=reason(exc),
    )


def encrypted(tenant: str, data_class: DataClass, suite: int, version: int) -> None:
    """``envelope.encrypt`` (DEBUG); callers check ``isEnabledFor(DEBUG)`` first."""
    emit(
        "envelope.encrypt",
        outcome="success",
        level=logging.DEBUG,
        tenant=tenant,
        key_version=version,
        attributes={"data_class": data_class.name.lower(), "suite": suite},
    )

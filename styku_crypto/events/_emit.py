"""Emission of structured security events through :mod:`logging`.

Every capability reports what happened through :func:`emit`. An event is a log
record on the logger ``styku_crypto.<capability>`` whose message is the event
name and whose ``styku_event`` attribute holds the structured fields. Events
never carry payloads, keys, passwords or tokens: only names, ids, versions and
outcomes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime

from styku_crypto.events._redact import Redactor
from styku_crypto.events._vocabulary import is_known_event

__all__ = ["EVENT_ATTRIBUTE", "FieldValue", "emit", "unknown_events_seen"]

#: Name of the :class:`logging.LogRecord` attribute that carries the event dict.
EVENT_ATTRIBUTE = "styku_event"

FieldValue = str | int | float | bool | None

_unknown_lock = threading.Lock()
_unknown_seen: set[str] = set()
_redactor = Redactor()


def unknown_events_seen() -> frozenset[str]:
    """Event names passed to :func:`emit` that are not in the vocabulary (process-wide).

    Unknown names are still logged (an event is never dropped), with the
    attribute ``vocabulary="unknown"``; tests assert this set stays empty.
    """
    with _unknown_lock:
        return frozenset(_unknown_seen)


def _scrub(fields: dict[str, FieldValue]) -> None:
    """Redact secret-looking text in caller-supplied fields (defence in depth)."""
    redacted = 0
    for name, field in fields.items():
        value: object = field  # callers may pass anything at runtime, whatever the types say
        if name in ("event", "outcome", "timestamp") or isinstance(value, bool | int | float):
            continue
        if value is None:
            continue
        if isinstance(value, str):
            new, count = _redactor.redact(value)
        else:  # not a FieldValue at all (bytes, objects): never log it as is
            new, count = "[REDACTED]", 1
        if count:
            fields[name] = new
            redacted += count
    if redacted:
        fields["redacted"] = redacted


def emit(
    event: str,
    *,
    capability: str,
    outcome: str,
    level: int = logging.INFO,
    tenant: str | None = None,
    key_id: str | None = None,
    key_version: int | None = None,
    actor: str | None = None,
    source: str | None = None,
    reason: str | None = None,
    attributes: Mapping[str, FieldValue] | None = None,
) -> None:
    """Emit one security event.

    The event name is checked against the vocabulary
    (:data:`styku_crypto.events.VOCABULARY`); an unknown name is still logged,
    marked ``vocabulary="unknown"``, and remembered for
    :func:`unknown_events_seen`. Caller-supplied text fields are scanned by the
    :class:`~styku_crypto.events.Redactor` and secret-looking values replaced
    with ``[REDACTED]`` before the record is created. Never raises for
    well-typed arguments.

    Args:
        event: the event name from the vocabulary, e.g. ``"envelope.decrypt.failed"``.
        capability: the logger suffix, e.g. ``"envelope"`` logs to
            ``styku_crypto.envelope``.
        outcome: ``"success"``, ``"failure"`` or ``"unknown"``.
        level: the logging level.
        tenant, key_id, key_version, actor, source, reason: optional context.
        attributes: further non-secret scalar fields.
    """
    logger = logging.getLogger(f"styku_crypto.{capability}")
    if not logger.isEnabledFor(level):
        return
    fields: dict[str, FieldValue] = {
        "event": event,
        "outcome": outcome,
        "timestamp": datetime.now(UTC).isoformat(timespec="microseconds"),
    }
    context: tuple[tuple[str, FieldValue], ...] = (
        ("tenant", tenant),
        ("key_id", key_id),
        ("key_version", key_version),
        ("actor", actor),
        ("source", source),
        ("reason", reason),
    )
    for name, value in context:
        if value is not None:
            fields[name] = value
    if attributes:
        for name, value in attributes.items():
            fields.setdefault(name, value)
    if not is_known_event(event):
        fields["vocabulary"] = "unknown"
        with _unknown_lock:
            _unknown_seen.add(event)
    _scrub(fields)
    logger.log(level, event, extra={EVENT_ATTRIBUTE: fields})

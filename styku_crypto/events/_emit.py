"""Emission of structured security events through :mod:`logging`.

Every capability reports what happened through :func:`emit`. An event is a log
record on the logger ``styku_crypto.<capability>`` whose message is the event
name and whose ``styku_event`` attribute holds the structured fields. Events
never carry payloads, keys, passwords or tokens: only names, ids, versions and
outcomes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

__all__ = ["EVENT_ATTRIBUTE", "FieldValue", "emit"]

#: Name of the :class:`logging.LogRecord` attribute that carries the event dict.
EVENT_ATTRIBUTE = "styku_event"

FieldValue = str | int | float | bool | None


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

    Args:
        event: the event name from the vocabulary, e.g. ``"decrypt.failed"``.
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
    for name, value in (
        ("tenant", tenant),
        ("key_id", key_id),
        ("key_version", key_version),
        ("actor", actor),
        ("source", source),
        ("reason", reason),
    ):
        if value is not None:
            fields[name] = value
    if attributes:
        for name, value in attributes.items():
            fields.setdefault(name, value)
    logger.log(level, event, extra={EVENT_ATTRIBUTE: fields})

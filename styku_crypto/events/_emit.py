"""Emission of structured security events through :mod:`logging`.

Every capability reports what happened through :func:`emit`. An event is a log
record on the logger ``styku_crypto.<capability>`` whose message is the event
name and whose ``styku_event`` attribute holds the structured fields. Events
never carry payloads, keys, passwords or tokens: only names, ids, versions and
outcomes.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache

from styku_crypto.events._names import is_secret_name, valid_field_name
from styku_crypto.events._redact import REDACTED, JudgedEvent, Redactor, bytes_marker
from styku_crypto.events._vocabulary import FieldSpec, is_known_event, lookup_field
from styku_crypto.exceptions import InvalidInputError

__all__ = [
    "EVENT_ATTRIBUTE",
    "FieldValue",
    "emit",
    "undeclared_fields_seen",
    "unknown_events_seen",
]

#: Name of the :class:`logging.LogRecord` attribute that carries the event dict.
EVENT_ATTRIBUTE = "styku_event"

FieldValue = str | int | float | bool | None

_OUTCOMES = frozenset({"success", "failure", "unknown"})
_EVENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}(?:\.[a-z][a-z0-9_]{0,39}){1,4}")
_CAPABILITY = re.compile(r"[a-z][a-z0-9_]{0,31}")
_SET_BY_EMIT = frozenset({"event", "outcome", "timestamp"})

_lock = threading.Lock()
_unknown_seen: set[str] = set()
_undeclared_seen: set[str] = set()
_redactor = Redactor()


def unknown_events_seen() -> frozenset[str]:
    """Event names passed to :func:`emit` that are not in the vocabulary (process-wide).

    Unknown names are still logged (an event is never dropped), with the
    attribute ``vocabulary="unknown"``; tests assert this set stays empty.
    """
    with _lock:
        return frozenset(_unknown_seen)


def undeclared_fields_seen() -> frozenset[str]:
    """Field names passed to :func:`emit` that the vocabulary does not declare (process-wide).

    An undeclared field is still logged, judged by its name (a secret-looking
    name is redacted whatever its value) and scanned by value.
    """
    with _lock:
        return frozenset(_undeclared_seen)


@lru_cache(maxsize=1024)
def _name_ok(name: str, pattern: re.Pattern[str]) -> bool:
    # A name must be an identifier and must not itself carry a secret (a hex
    # key pasted into an event or attribute name).
    return pattern.fullmatch(name) is not None and _redactor.redact(name)[1] == 0


_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _check_names(event: str, capability: str, outcome: str) -> None:
    if not isinstance(event, str) or not _name_ok(event, _EVENT_NAME):
        raise InvalidInputError(
            "event name must be dotted lower-case identifiers (e.g. 'key.rotated')"
        )
    if not isinstance(capability, str) or not _name_ok(capability, _CAPABILITY):
        raise InvalidInputError("capability must be a lower-case identifier")
    if outcome not in _OUTCOMES:
        raise InvalidInputError("outcome must be 'success', 'failure' or 'unknown'")


def _type_ok(spec: FieldSpec, value: object) -> bool:
    kind = spec.type
    if kind == "text":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return kind == "scalar"
    if kind == "int":
        return isinstance(value, int)
    if kind == "number":
        return isinstance(value, int | float)
    return isinstance(value, str | int | float)


def _judge(name: str, value: object) -> tuple[object, int]:
    """One field through the rules: declared sensitivity and type, else its name; then shape."""
    spec = lookup_field(name)
    if spec is None:
        with _lock:
            _undeclared_seen.add(name)
        if is_secret_name(name):
            return REDACTED, 1
        if not isinstance(value, str | int | float | bool):
            if isinstance(value, bytes | bytearray | memoryview):
                return bytes_marker(value), 1
            return REDACTED, 1
    elif spec.sensitivity == "secret":
        return REDACTED, 1
    elif not _type_ok(spec, value):
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes_marker(value), 1
        return REDACTED, 1
    if isinstance(value, str):
        return _redactor.redact(value)
    return value, 0


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

    Every field is judged before the record is created:

    * a field the vocabulary declares (:data:`styku_crypto.events.FIELDS`)
      keeps its value only if the value has the declared type; a ``secret``
      field is always written as ``[REDACTED]``;
    * an undeclared field (in *attributes*) is judged by its name: a
      secret-looking name (``password``, ``db_password``, ``token``,
      ``api-key``, ``set-cookie``, ``session``, ``dek`` ...) is written as
      ``[REDACTED]`` whatever its value, and a value that is not a scalar is
      replaced; it is remembered for :func:`undeclared_fields_seen`;
    * every remaining text value is scanned by the
      :class:`~styku_crypto.events.Redactor` for secret-looking text.

    The event then carries ``redacted: <count>``. ``bytes`` are never written:
    they become ``[N bytes fp:xxxxxxxx]``. An event name that is not in the
    vocabulary is still logged, marked ``vocabulary="unknown"``, and remembered
    for :func:`unknown_events_seen`.

    Args:
        event: the event name from the vocabulary, e.g. ``"envelope.decrypt.failed"``.
        capability: the logger suffix, e.g. ``"envelope"`` logs to
            ``styku_crypto.envelope``.
        outcome: ``"success"``, ``"failure"`` or ``"unknown"``.
        level: the logging level.
        tenant, key_id, key_version, actor, source, reason: optional context.
        attributes: further scalar fields, declared in the vocabulary.

    Raises:
        InvalidInputError: *event* is not dotted lower-case identifiers,
            *capability* not a lower-case identifier, *outcome* not one of the
            three values, an attribute name not an ASCII identifier of at most
            64 characters, or any of these names carries a secret-looking
            value (a hex key pasted into a name). Checked whether or not the
            event is logged.
    """
    _check_names(event, capability, outcome)
    if attributes:
        for name in attributes:
            if not valid_field_name(name) or not _name_ok(name, _FIELD_NAME):
                raise InvalidInputError(
                    "event attribute names must be ASCII identifiers of at most 64 characters"
                )
    logger = logging.getLogger(f"styku_crypto.{capability}")
    if not logger.isEnabledFor(level):
        return
    fields = JudgedEvent(
        event=event,
        outcome=outcome,
        timestamp=datetime.now(UTC).isoformat(timespec="microseconds"),
    )
    redacted = 0
    context: tuple[tuple[str, object], ...] = (
        ("tenant", tenant),
        ("key_id", key_id),
        ("key_version", key_version),
        ("actor", actor),
        ("source", source),
        ("reason", reason),
    )
    for name, value in context:
        if value is not None:
            fields[name], n = _judge(name, value)
            redacted += n
    if attributes:
        for name, value in attributes.items():
            if name in fields or name in _SET_BY_EMIT:
                continue
            if value is None:
                fields[name] = None
                continue
            fields[name], n = _judge(name, value)
            redacted += n
    if not is_known_event(event):
        fields["vocabulary"] = "unknown"
        with _lock:
            _unknown_seen.add(event)
    if redacted:
        fields["redacted"] = redacted
    logger.log(level, event, extra={EVENT_ATTRIBUTE: fields})

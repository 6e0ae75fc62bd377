"""A :class:`logging.Formatter` that renders records as Elastic Common Schema JSON.

One JSON object per line, using ECS 8.11 field names so the events can be
shipped by Filebeat / Elastic Agent / Fluent Bit / Vector into Elasticsearch,
OpenSearch, Splunk or Loki without a custom parser.

Mapping (``docs/events.md`` has the full table):

=========================  ==============================================
ECS field                  source
=========================  ==============================================
``@timestamp``             the event's UTC timestamp (else record time)
``message``                the log message (the event name for events)
``log.logger``             the logger name, e.g. ``styku_crypto.envelope``
``log.level``              the level name, lower case
``ecs.version``            ``8.11.0``
``event.kind``             ``alert`` for ``alert.*``, ``event`` otherwise
``event.action``           the event name
``event.outcome``          ``success`` / ``failure`` / ``unknown``
``event.category``         from the vocabulary
``event.type``             from the vocabulary
``event.dataset``          ``styku_crypto.<capability>``
``event.reason``           the event's ``reason``
``user.name``              ``actor`` (only when the caller supplied one)
``source.address``         ``source`` (plus ``source.ip`` when it is an IP)
``styku.tenant``           the tenant
``styku.key.id``           the key id
``styku.key.version``      the key version
``styku.<name>``           every other event attribute
``styku.redacted``         replacements made by :class:`RedactionFilter`
``error.*``                exception type, message and stack trace
``process.pid``,
``process.thread.id``      the emitting process and thread
=========================  ==============================================
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
from datetime import UTC, datetime
from typing import Any

from styku_crypto.events._emit import EVENT_ATTRIBUTE
from styku_crypto.events._redact import (
    ERROR_ATTRIBUTE,
    REDACTED_ATTRIBUTE,
    Redactor,
    describe_exception,
)
from styku_crypto.events._vocabulary import lookup_event

__all__ = ["ECS_VERSION", "EcsFormatter"]

#: The ECS version the output follows.
ECS_VERSION = "8.11.0"

_RESERVED = frozenset({"key", "attributes"})
_MAPPED = frozenset(
    {
        "event",
        "outcome",
        "timestamp",
        "tenant",
        "key_id",
        "key_version",
        "actor",
        "source",
        "reason",
    }
)


class EcsFormatter(logging.Formatter):
    """Format each record as one line of Elastic Common Schema JSON.

    Works for any record; records carrying a ``styku_event`` get the full
    ``event.*`` / ``styku.*`` mapping. Each line starts with ``@timestamp``,
    ``log.level`` and ``message`` in that order (the ECS logging
    specification's rule; ``log.level`` is written as a dotted top-level key
    there), then the other fields with sorted keys. Always valid JSON,
    whatever the record holds (non-JSON values are rendered with ``str``).

    The exception (``error.message``, ``error.stack_trace``, including chained
    and noted exceptions) always goes through the redaction rules, filter or
    not.

    .. warning::
       The formatter redacts only the exception. Put a
       :class:`RedactionFilter` on the same handler so the message, arguments
       and attributes of application records that carry secrets by mistake are
       scrubbed before they are formatted.

    Args:
        static_fields: ECS fields added to every line, as dotted names, e.g.
            ``{"service.name": "styku-api", "host.name": "web-1"}``.
    """

    def __init__(self, *, static_fields: dict[str, str] | None = None) -> None:
        super().__init__()
        self._static = dict(static_fields or {})

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one ECS JSON line (no trailing newline).

        ``@timestamp``, ``log.level`` and ``message`` come first, in that order.
        """
        doc = self.to_ecs(record)
        log = dict(doc.pop("log"))
        head = {
            "@timestamp": doc.pop("@timestamp"),
            "log.level": log.pop("level"),
            "message": doc.pop("message"),
        }
        if log:
            doc["log"] = log
        encode = _ENCODER.encode
        first = (
            f'{{"@timestamp": {encode(head["@timestamp"])}, '
            f'"log.level": {encode(head["log.level"])}, "message": {encode(head["message"])}'
        )
        rest = encode(doc)
        return first + "}" if rest == "{}" else f"{first}, {rest[1:]}"

    def to_ecs(self, record: logging.LogRecord) -> dict[str, Any]:
        """Return the nested ECS dictionary for *record*."""
        doc: dict[str, Any] = {}
        for dotted, value in self._static.items():
            _put(doc, dotted, value)
        event = getattr(record, EVENT_ATTRIBUTE, None)
        timestamp = None
        if isinstance(event, dict):
            timestamp = event.get("timestamp")
        if not isinstance(timestamp, str):
            timestamp = datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="microseconds"
            )
        doc["@timestamp"] = timestamp.replace("+00:00", "Z")
        try:
            doc["message"] = record.getMessage()
        except Exception:
            doc["message"] = str(record.msg)
        doc["log"] = {"logger": record.name, "level": record.levelname.lower()}
        doc["ecs"] = {"version": ECS_VERSION}
        doc["process"] = {"pid": record.process, "thread": {"id": record.thread}}
        if isinstance(event, dict):
            self._map_event(doc, event, record)
        redacted = getattr(record, REDACTED_ATTRIBUTE, 0)
        if redacted:
            _put(doc, "styku.redacted", redacted)
        error = getattr(record, ERROR_ATTRIBUTE, None)
        if record.exc_info and record.exc_info[0] is not None and record.exc_info[1] is not None:
            exc_type, exc, tb = record.exc_info
            name, message, stack, count = describe_exception((exc_type, exc, tb))
            _put(doc, "error.type", name)
            _put(doc, "error.message", message)
            _put(doc, "error.stack_trace", stack)
            if count:
                _put(doc, "styku.redacted", redacted + count)
        else:
            if isinstance(error, dict):
                _put(doc, "error.type", str(error.get("type")))
                _put(doc, "error.message", str(error.get("message")))
            if record.exc_text:
                _put(doc, "error.stack_trace", _redact_text(record.exc_text))
        return doc

    @staticmethod
    def _map_event(doc: dict[str, Any], event: dict[str, Any], record: logging.LogRecord) -> None:
        name = str(event.get("event", record.msg))
        spec = lookup_event(name)
        ecs_event: dict[str, Any] = {
            "kind": "alert" if name.startswith("alert.") else "event",
            "action": name,
            "outcome": event.get("outcome", "unknown"),
            "dataset": record.name,
        }
        if spec is not None:
            ecs_event["category"] = list(spec.category)
            ecs_event["type"] = list(spec.types)
        if event.get("reason") is not None:
            ecs_event["reason"] = event["reason"]
        doc["event"] = ecs_event
        if event.get("actor") is not None:
            _put(doc, "user.name", event["actor"])
        source = event.get("source")
        if source is not None:
            _put(doc, "source.address", source)
            with contextlib.suppress(ValueError):
                _put(doc, "source.ip", str(ipaddress.ip_address(str(source))))
        if event.get("tenant") is not None:
            _put(doc, "styku.tenant", event["tenant"])
        if event.get("key_id") is not None:
            _put(doc, "styku.key.id", event["key_id"])
        if event.get("key_version") is not None:
            _put(doc, "styku.key.version", event["key_version"])
        for key, value in event.items():
            if key in _MAPPED:
                continue
            if key in _RESERVED or "." in key:
                # never let an attribute overwrite a mapped field or invent nesting
                _put(doc, f"styku.attributes.{key.replace('.', '_')}", value)
            else:
                _put(doc, f"styku.{key}", value)


_REDACTOR = Redactor()
_ENCODER = json.JSONEncoder(sort_keys=True, default=str, ensure_ascii=False)


def _redact_text(text: str) -> str:
    """Exception text that did not come through the filter, with the rules applied."""
    return _REDACTOR.redact(text)[0]


def _put(doc: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = doc
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value

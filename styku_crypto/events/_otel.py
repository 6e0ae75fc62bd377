"""OpenTelemetry log export (the ``otel`` extra).

:class:`OtelEventHandler` is a :class:`logging.Handler` that turns each
styku_crypto event into an OpenTelemetry log record: the body is the event
name, ``event_name`` is set, severity follows the logging level, and the event
fields become attributes named after the ECS mapping (``event.action``,
``event.outcome``, ``styku.tenant``, ``styku.key.id``, ``styku.key.version``,
``user.name``, ``source.address``, ``styku.<attribute>``). Records without an
event are exported with their message as body and ``log.logger`` only.

``opentelemetry-sdk`` is imported lazily; without it, constructing the handler
raises :class:`~styku_crypto.exceptions.MissingExtraError` naming the extra.
"""

from __future__ import annotations

import logging
from typing import Any

from styku_crypto._extras import require
from styku_crypto.events._emit import EVENT_ATTRIBUTE
from styku_crypto.events._redact import ERROR_ATTRIBUTE, REDACTED_ATTRIBUTE

__all__ = ["OtelEventHandler"]

_MAPPED = {
    "event": "event.action",
    "outcome": "event.outcome",
    "tenant": "styku.tenant",
    "key_id": "styku.key.id",
    "key_version": "styku.key.version",
    "actor": "user.name",
    "source": "source.address",
    "reason": "event.reason",
}


class OtelEventHandler(logging.Handler):
    """Export log records through an OpenTelemetry ``LoggerProvider``.

    Args:
        logger_provider: an ``opentelemetry.sdk._logs.LoggerProvider`` (or any
            API provider); the global provider when omitted.
        level: the handler's logging level.

    Raises:
        MissingExtraError: ``opentelemetry-sdk`` is not installed
            (``pip install 'styku-crypto[otel]'``).

    .. warning::
       Attach a :class:`RedactionFilter` to this handler too: exporting sends
       records off the host, so anything that slipped into a message is gone
       for good.
    """

    def __init__(self, logger_provider: Any | None = None, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        logs_api = require("opentelemetry._logs", extra="otel")
        require("opentelemetry.sdk._logs", extra="otel")
        self._api = logs_api
        self._provider = logger_provider or logs_api.get_logger_provider()

    def emit(self, record: logging.LogRecord) -> None:
        """Translate and export *record*; errors go to :meth:`handleError`."""
        try:
            self._export(record)
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Flush the provider when it supports it."""
        force_flush = getattr(self._provider, "force_flush", None)
        if callable(force_flush):
            force_flush()

    def _export(self, record: logging.LogRecord) -> None:
        logger = self._provider.get_logger(record.name)
        attributes: dict[str, Any] = {"log.logger": record.name}
        event = getattr(record, EVENT_ATTRIBUTE, None)
        event_name: str | None = None
        if isinstance(event, dict):
            event_name = str(event.get("event", record.msg))
            for key, value in event.items():
                if value is None or key == "timestamp":
                    continue
                if not isinstance(value, str | bool | int | float):
                    value = str(value)
                attributes[_MAPPED.get(key, f"styku.{key}")] = value
        redacted = getattr(record, REDACTED_ATTRIBUTE, 0)
        if redacted:
            attributes["styku.redacted"] = int(redacted)
        error = getattr(record, ERROR_ATTRIBUTE, None)
        if record.exc_info and record.exc_info[0] is not None:
            attributes["exception.type"] = record.exc_info[0].__name__
        elif isinstance(error, dict):  # RedactionFilter kept only the redacted exception
            attributes["exception.type"] = str(error.get("type"))
        severity = _severity(self._api.SeverityNumber, record.levelno)
        try:
            body = record.getMessage()
        except Exception:
            body = str(record.msg)
        logger.emit(
            timestamp=int(record.created * 1e9),
            severity_number=severity,
            severity_text=record.levelname,
            body=body,
            attributes=attributes,
            event_name=event_name,
        )


def _severity(numbers: Any, levelno: int) -> Any:
    if levelno >= logging.CRITICAL:
        return numbers.FATAL
    if levelno >= logging.ERROR:
        return numbers.ERROR
    if levelno >= logging.WARNING:
        return numbers.WARN
    if levelno >= logging.INFO:
        return numbers.INFO
    return numbers.DEBUG

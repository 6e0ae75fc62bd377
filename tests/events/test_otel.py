"""OpenTelemetry export through the SDK's in-memory exporter."""

from __future__ import annotations

import logging

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from styku_crypto.events import OtelEventHandler, RedactionFilter, emit
from tests._support import leaks


def test_events_exported_with_ecs_attribute_names() -> None:
    """Each event becomes an OTel log record: body and event_name, severity, mapped attributes."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = OtelEventHandler(provider)
    handler.addFilter(RedactionFilter())
    logger = logging.getLogger("styku_crypto")
    logger.addHandler(handler)
    # the application logger is outside styku_crypto: it logs a secret on purpose
    app = logging.getLogger("h_app_exported")
    app.addHandler(handler)
    app.propagate = False
    app.setLevel(logging.INFO)
    secret = "password=" + "Zq9" * 5
    leaks.register_secret("Zq9" * 5)
    try:
        emit(
            "password.failed",
            capability="passwords",
            outcome="failure",
            level=logging.WARNING,
            actor="alice",
            source="203.0.113.9",
        )
        app.info("oops %s", secret)
    finally:
        logger.removeHandler(handler)
        app.removeHandler(handler)
        provider.shutdown()
    first, second = (r.log_record for r in exporter.get_finished_logs())
    assert first.body == "password.failed"
    assert first.event_name == "password.failed"
    assert first.severity_text == "WARNING"
    attrs = dict(first.attributes or {})
    assert attrs["event.action"] == "password.failed"
    assert attrs["event.outcome"] == "failure"
    assert attrs["user.name"] == "alice"
    assert attrs["source.address"] == "203.0.113.9"
    assert attrs["log.logger"] == "styku_crypto.passwords"
    assert dict(second.attributes or {})["log.logger"] == "h_app_exported"
    assert "Zq9Zq9" not in str(second.body)
    assert dict(second.attributes or {})["styku.redacted"] == 1


def test_missing_sdk_names_the_extra() -> None:
    """Without opentelemetry installed the handler raises MissingExtraError naming [otel]."""
    import sys

    import pytest

    from styku_crypto.exceptions import MissingExtraError

    mp = pytest.MonkeyPatch()
    try:
        mp.setitem(sys.modules, "opentelemetry._logs", None)
        with pytest.raises(MissingExtraError, match=r"styku-crypto\[otel\]"):
            OtelEventHandler()
    finally:
        mp.undo()

"""The ECS JSON formatter: field mapping, validity, non-event records."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from styku_crypto.events import ECS_VERSION, EcsFormatter, RedactionFilter, emit


def _render(record: logging.LogRecord) -> dict[str, Any]:
    return json.loads(EcsFormatter().format(record))  # type: ignore[no-any-return]


def _capture(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    return [r for r in caplog.records if hasattr(r, "styku_event")][-1]


def test_event_maps_to_ecs_fields(caplog: pytest.LogCaptureFixture) -> None:
    """An envelope failure maps to event.*, styku.*, user.name, source.address/ip, log.*."""
    caplog.set_level(logging.DEBUG, logger="styku_crypto")
    emit(
        "envelope.decrypt.failed",
        capability="envelope",
        outcome="failure",
        level=logging.WARNING,
        tenant="acme",
        key_id="tk_00112233aabbccdd",
        key_version=2,
        actor="svc-billing",
        source="192.0.2.7",
        reason="tamper",
        attributes={"purpose": "customer"},
    )
    doc = _render(_capture(caplog))
    assert doc["ecs"] == {"version": ECS_VERSION}
    assert doc["@timestamp"].endswith("Z")
    assert doc["message"] == "envelope.decrypt.failed"
    assert doc["log"] == {"logger": "styku_crypto.envelope"}
    assert doc["log.level"] == "warning"
    assert doc["event"] == {
        "kind": "event",
        "action": "envelope.decrypt.failed",
        "outcome": "failure",
        "category": ["library"],
        "type": ["access", "denied"],
        "dataset": "styku_crypto.envelope",
        "reason": "tamper",
    }
    assert doc["user"] == {"name": "svc-billing"}
    assert doc["source"] == {"address": "192.0.2.7", "ip": "192.0.2.7"}
    assert doc["styku"] == {
        "tenant": "acme",
        "key": {"id": "tk_00112233aabbccdd", "version": 2},
        "purpose": "customer",
    }
    assert isinstance(doc["process"]["pid"], int)


def test_alerts_are_ecs_alerts(caplog: pytest.LogCaptureFixture) -> None:
    """alert.* events get event.kind=alert; a non-IP source has no source.ip."""
    caplog.set_level(logging.DEBUG, logger="styku_crypto")
    emit("alert.raised", capability="alerts", outcome="unknown", source="edge-proxy-3")
    doc = _render(_capture(caplog))
    assert doc["event"]["kind"] == "alert"
    assert doc["source"] == {"address": "edge-proxy-3"}


def test_plain_records_and_exceptions() -> None:
    """A record without an event still yields valid ECS with error.* for exceptions."""
    try:
        raise KeyError("missing")
    except KeyError:
        import sys

        record = logging.LogRecord(
            "styku_crypto.misc", logging.ERROR, __file__, 1, "n=%d", (3,), sys.exc_info()
        )
    doc = _render(record)
    assert doc["message"] == "n=3"
    assert "event" not in doc
    assert doc["error"]["type"] == "KeyError"
    assert "Traceback" in doc["error"]["stack_trace"]


def test_handler_output_is_one_json_object_per_line() -> None:
    """Through a real handler every record is one parseable line; static fields included."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(EcsFormatter(static_fields={"service.name": "styku-api"}))
    handler.addFilter(RedactionFilter())
    logger = logging.getLogger("styku_crypto")
    logger.addHandler(handler)
    try:
        emit("key.created", capability="keys", outcome="success", tenant="t1")
        logging.getLogger("styku_crypto.other").warning("weird %s", object())
        emit("tls.audit", capability="tls", outcome="failure", source="::1", reason="weak")
    finally:
        logger.removeHandler(handler)
    docs = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [d.get("event", {}).get("action") for d in docs] == ["key.created", None, "tls.audit"]
    assert all(d["service"] == {"name": "styku-api"} for d in docs)
    assert docs[2]["source"] == {"address": "::1", "ip": "::1"}


def test_redacted_records_are_flagged() -> None:
    """A record the filter changed carries styku.redacted in its ECS form."""
    record = logging.LogRecord(
        "styku_crypto.x", logging.INFO, __file__, 1, "token=%s", ("abcdefabcdef",), None
    )
    RedactionFilter().filter(record)
    doc = _render(record)
    assert doc["styku"]["redacted"] == 1
    assert "abcdefabcdef" not in json.dumps(doc)


def test_non_json_values_do_not_break_output() -> None:
    """Odd attribute values are rendered as strings, the line stays valid JSON."""
    record = logging.LogRecord("styku_crypto.x", logging.INFO, __file__, 1, "m", None, None)
    record.styku_event = {"event": "key.drill", "outcome": "success", "when": object()}
    doc = _render(record)
    assert doc["event"]["action"] == "key.drill"
    assert isinstance(doc["styku"]["when"], str)


def test_attributes_cannot_overwrite_mapped_fields() -> None:
    """An attribute named like a mapped field or with dots lands under styku.attributes."""
    record = logging.LogRecord("styku_crypto.x", logging.INFO, __file__, 1, "m", None, None)
    record.styku_event = {
        "event": "key.rotated",
        "outcome": "success",
        "key_id": "tk_1",
        "key": "oops",
        "a.b": 1,
    }
    doc = _render(record)
    assert doc["styku"]["key"] == {"id": "tk_1"}
    assert doc["styku"]["attributes"] == {"key": "oops", "a_b": 1}


def test_line_starts_with_timestamp_level_message(caplog: pytest.LogCaptureFixture) -> None:
    """ECS logging order rule: @timestamp, log.level, message are the first three keys.

    The ECS logging specification gives these three fields indexes 0, 1 and 2
    and writes ``log.level`` as a dotted top-level key; the rest follows with
    sorted keys, and the line still expands to the nested ECS document.
    """
    caplog.set_level(logging.INFO, logger="styku_crypto")
    emit("key.rotated", capability="keys", outcome="success", tenant="acme", key_version=2)
    plain = logging.LogRecord("app", logging.ERROR, "f", 1, "plain %s", ("x",), None)
    for record in (_capture(caplog), plain):
        line = EcsFormatter(static_fields={"service.name": "api"}).format(record)
        pairs = json.loads(line, object_pairs_hook=list)
        keys = [key for key, _ in pairs]
        assert keys[:3] == ["@timestamp", "log.level", "message"]
        assert keys[3:] == sorted(keys[3:])
        assert len(keys) == len(set(keys))
        doc = json.loads(line)
        assert doc["log.level"] == logging.getLevelName(record.levelno).lower()
        assert "level" not in doc["log"]
        assert doc["service"] == {"name": "api"}

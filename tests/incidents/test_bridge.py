"""IncidentBridge: detector alerts become suspected incidents, deduplicated (issue 17)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from styku_crypto.events import AnomalyDetector, DetectorRule, emit
from styku_crypto.exceptions import InvalidInputError
from styku_crypto.incidents import DEFAULT_BRIDGE_RULES, IncidentBridge, IncidentLog, Status
from tests.incidents.conftest import FixedClock

_RULES = (
    DetectorRule("decrypt_failures", ("envelope.decrypt.failed",), threshold=3, window=60.0,
                 cooldown=0.0),
    DetectorRule("password_failures", ("password.failed",), threshold=3, window=60.0,
                 per=("tenant", "source", "actor"), cooldown=0.0),
)  # fmt: skip


class Mono:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _burst(detector: AnomalyDetector, event: str, **fields: str) -> None:
    for _ in range(3):
        detector.observe({"event": event, **fields})


def test_alerts_open_suspected_incidents_of_the_matching_type(log: IncidentLog) -> None:
    """A decrypt-failure burst opens data-exposure; a login-failure burst credential-stuffing."""
    bridge = IncidentBridge(log)
    detector = AnomalyDetector(_RULES, on_alert=bridge, clock=Mono())
    _burst(detector, "envelope.decrypt.failed", tenant="acme")
    _burst(detector, "password.failed", source="203.0.113.9")
    first, second = log.incidents()
    assert (first.type, first.status, first.tenants) == (
        "data-exposure",
        Status.SUSPECTED,
        ("acme",),
    )
    assert first.steps
    assert first.origin is not None
    assert first.origin["rule"] == "decrypt_failures"
    assert (second.type, second.tenants) == ("credential-stuffing", ())
    assert second.origin is not None
    assert second.origin["source"] == "203.0.113.9"
    assert first.reported_at == first.history[0].at


def test_alerts_within_the_window_update_the_same_incident(
    log: IncidentLog, clock: FixedClock
) -> None:
    """Per tenant/source/type: a repeat within the window is an update; after it, a new incident;
    another tenant is another incident."""
    bridge = IncidentBridge(log, window=timedelta(minutes=10))
    detector = AnomalyDetector(_RULES, on_alert=bridge, clock=Mono())
    _burst(detector, "envelope.decrypt.failed", tenant="acme")
    _burst(detector, "envelope.decrypt.failed", tenant="acme")
    (only,) = log.incidents()
    assert only.actions
    assert {a.text.split(":")[0] for a in only.actions} == {"alert again"}
    _burst(detector, "envelope.decrypt.failed", tenant="globex")
    assert len(log.incidents()) == 2
    clock.now += timedelta(minutes=11)
    _burst(detector, "envelope.decrypt.failed", tenant="acme")
    assert [i.tenants for i in log.incidents()] == [("acme",), ("globex",), ("acme",)]


def test_a_closed_or_false_positive_incident_is_not_reused(log: IncidentLog) -> None:
    """Once the incident is dismissed, the next alert opens a new one."""
    bridge = IncidentBridge(log)
    first = bridge.record(rule="decrypt_failures", tenant="acme")
    assert first is not None
    log.update(first.id, status="false_positive")
    second = bridge.record(rule="decrypt_failures", tenant="acme")
    assert second is not None
    assert second.id != first.id


def test_handler_consumes_alert_raised_events(log: IncidentLog) -> None:
    """bridge.handler() on styku_crypto.alerts turns logged alert.raised events into incidents."""
    bridge = IncidentBridge(log)
    logger = logging.getLogger("styku_crypto.alerts")
    handler = bridge.handler()
    logger.addHandler(handler)
    try:
        detector = AnomalyDetector(_RULES, clock=Mono())  # no callback: the event alone
        _burst(detector, "password.failed", actor="mallory")
        emit("alert.raised", capability="alerts", outcome="unknown", level=logging.WARNING,
             tenant="acme", reason="unmapped_rule")  # fmt: skip
    finally:
        logger.removeHandler(handler)
    (incident,) = log.incidents()
    assert incident.type == "credential-stuffing"
    assert "'mallory'" in incident.description


def test_concurrent_alerts_open_one_incident(log: IncidentLog) -> None:
    """8 threads recording the same alert at once: one incident, seven updates."""
    bridge = IncidentBridge(log)
    threads = [
        threading.Thread(target=bridge.record, kwargs={"rule": "shredded_access", "tenant": "acme"})
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (incident,) = log.incidents()
    assert incident.type == "key-compromise"
    assert len(incident.actions) == 7


def test_the_bridge_never_raises_into_the_caller(
    log: IncidentLog, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A tampered log: the alert is not recorded, the error type is logged, nothing raises."""
    bridge = IncidentBridge(log)
    assert bridge.record(rule="decrypt_failures", tenant="acme") is not None
    path = tmp_path / "incidents.jsonl"
    path.write_text(path.read_text().replace('"acme"', '"acmf"'))
    with caplog.at_level(logging.ERROR, logger="styku_crypto.alerts"):
        assert bridge.record(rule="decrypt_failures", tenant="acme") is None
    assert "could not record an alert: ChainTamperedError" not in caplog.text
    assert "could not record an alert: TamperedLogError" in caplog.text


def test_rules_must_name_known_types(log: IncidentLog) -> None:
    """A rule mapped to an unknown type, or a non-positive window, is refused up front."""
    with pytest.raises(InvalidInputError, match="unknown incident types"):
        IncidentBridge(log, {"decrypt_failures": "alien-invasion"})
    with pytest.raises(InvalidInputError, match="window"):
        IncidentBridge(log, window=timedelta(0))
    assert set(DEFAULT_BRIDGE_RULES) == {"decrypt_failures", "password_failures", "shredded_access"}

"""Sliding-window anomaly detectors: bursts alert, quiet periods do not, memory stays bounded."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from styku_crypto.events import DEFAULT_RULES, Alert, AnomalyDetector, DetectorRule, emit
from styku_crypto.exceptions import InvalidInputError


class FakeClock:
    """A manually advanced monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _failed(tenant: str | None = "acme", source: str | None = "10.0.0.1") -> dict[str, Any]:
    event: dict[str, Any] = {"event": "envelope.decrypt.failed", "outcome": "failure"}
    if tenant:
        event["tenant"] = tenant
    if source:
        event["source"] = source
    return event


RULE = DetectorRule("decrypt_failures", ("envelope.decrypt.failed",), threshold=5, window=10.0)


def test_burst_raises_one_alert_per_dimension() -> None:
    """Five failures within ten seconds alert once for the tenant and once for the source."""
    clock, alerts = FakeClock(), []
    detector = AnomalyDetector([RULE], on_alert=alerts.append, clock=clock, alert_level=None)
    for _ in range(4):
        assert detector.observe(_failed()) == []
        clock.now += 1
    raised = detector.observe(_failed())
    assert {(a.dimension, a.value) for a in raised} == {("tenant", "acme"), ("source", "10.0.0.1")}
    assert alerts == raised
    alert = raised[0]
    assert alert.rule == "decrypt_failures"
    assert alert.count == 5
    assert alert.last_seen - alert.first_seen == 4.0


def test_slow_trickle_never_alerts() -> None:
    """The same number of failures spread wider than the window never alerts."""
    clock, alerts = FakeClock(), []
    detector = AnomalyDetector([RULE], on_alert=alerts.append, clock=clock, alert_level=None)
    for _ in range(100):
        detector.observe(_failed())
        clock.now += 2.6  # 5 events span 10.4 s > window
    assert alerts == []


def test_cooldown_then_realert_after_quiet_period() -> None:
    """A continuing burst alerts once per cooldown; after a quiet period, again."""
    clock, alerts = FakeClock(), []
    rule = DetectorRule("r", ("password.failed",), threshold=3, window=5.0, per=("source",))
    detector = AnomalyDetector([rule], on_alert=alerts.append, clock=clock, alert_level=None)
    event = {"event": "password.failed", "source": "198.51.100.4"}
    for _ in range(30):  # 30 events over 3 s: one alert (cooldown = window)
        detector.observe(event)
        clock.now += 0.1
    assert len(alerts) == 1
    clock.now += 60  # quiet
    for _ in range(3):
        detector.observe(event)
    assert len(alerts) == 2


def test_other_events_and_missing_dimensions_are_ignored() -> None:
    """Events outside the rule, and events without the counted dimension, count for nothing."""
    clock, alerts = FakeClock(), []
    detector = AnomalyDetector([RULE], on_alert=alerts.append, clock=clock, alert_level=None)
    for _ in range(20):
        detector.observe({"event": "key.created", "tenant": "acme"})
        detector.observe(_failed(tenant=None, source=None))
    assert alerts == []
    assert detector.tracked_keys() == 0


def test_separate_keys_are_counted_separately() -> None:
    """Failures spread over many tenants and sources do not add up to one alert."""
    clock, alerts = FakeClock(), []
    detector = AnomalyDetector([RULE], on_alert=alerts.append, clock=clock, alert_level=None)
    for i in range(40):
        detector.observe(_failed(tenant=f"t{i % 10}", source=f"10.0.0.{i % 10}"))
    assert alerts == []


def test_memory_is_bounded() -> None:
    """Idle windows are evicted and at most max_keys are tracked per rule."""
    clock = FakeClock()
    detector = AnomalyDetector([RULE], clock=clock, alert_level=None, max_keys=100)
    for i in range(1000):
        detector.observe(_failed(tenant=f"t{i}", source=None))
    assert detector.tracked_keys() == 100
    clock.now += 11
    detector.observe({"event": "key.created"})
    assert detector.tracked_keys() == 0


def test_alerts_logged_on_styku_crypto_alerts(caplog: pytest.LogCaptureFixture) -> None:
    """Via the logging handler, a burst of shredded-key accesses logs alert.raised at WARNING."""
    caplog.set_level(logging.DEBUG, logger="styku_crypto")
    clock = FakeClock()
    rule = DetectorRule("shredded_access", ("key.shredded_access",), threshold=3, window=60.0)
    detector = AnomalyDetector([rule], clock=clock)
    handler = detector.handler()
    logger = logging.getLogger("styku_crypto")
    logger.addHandler(handler)
    try:
        for _ in range(3):
            emit(
                "key.shredded_access",
                capability="keys",
                outcome="failure",
                level=logging.WARNING,
                tenant="gone-corp",
            )
    finally:
        logger.removeHandler(handler)
    alerts = [r for r in caplog.records if r.name == "styku_crypto.alerts"]
    assert len(alerts) == 1
    assert alerts[0].levelno == logging.WARNING
    fields = alerts[0].styku_event  # type: ignore[attr-defined]
    assert fields["event"] == "alert.raised"
    assert fields["tenant"] == "gone-corp"
    assert fields["reason"] == "shredded_access"
    assert fields["count"] == 3


def test_broken_callback_does_not_stop_detection(caplog: pytest.LogCaptureFixture) -> None:
    """An exception in the alert callback is logged and detection carries on."""
    clock = FakeClock()

    def boom(_alert: Alert) -> None:
        raise RuntimeError("callback bug")

    detector = AnomalyDetector([RULE], on_alert=boom, clock=clock, alert_level=None)
    for _ in range(5):
        detector.observe(_failed())
    assert any("alert callback failed" in r.getMessage() for r in caplog.records)


def test_toml_configuration(tmp_path: Path) -> None:
    """Rules load from TOML; a disabled rule is skipped; values are validated."""
    path = tmp_path / "detectors.toml"
    path.write_text(
        """
[detectors.decrypt_failures]
events = ["envelope.decrypt.failed"]
threshold = 50
window_seconds = 30
per = ["tenant"]

[detectors.logins]
events = ["password.failed", "web.login_throttled"]
threshold = 5
window_seconds = 60
per = ["source", "actor"]
cooldown_seconds = 300

[detectors.off]
events = ["key.shredded_access"]
threshold = 1
window_seconds = 1
enabled = false
"""
    )
    detector = AnomalyDetector.from_toml(path)
    by_name = {r.name: r for r in detector.rules}
    assert set(by_name) == {"decrypt_failures", "logins"}
    assert by_name["decrypt_failures"].per == ("tenant",)
    assert by_name["logins"].effective_cooldown == 300.0


@pytest.mark.parametrize(
    "table",
    [
        {"events": ["nope.event"], "threshold": 1, "window_seconds": 1},
        {"events": ["password.failed"], "threshold": 0, "window_seconds": 1},
        {"events": ["password.failed"], "threshold": 1, "window_seconds": 0},
        {"events": ["password.failed"], "threshold": 1, "window_seconds": 1, "per": ["ip"]},
        {"events": ["password.failed"], "threshold": 1, "window_seconds": 1, "typo": 1},
        {"events": "password.failed", "threshold": 1, "window_seconds": 1},
        {"events": ["password.failed"], "threshold": True, "window_seconds": 1},
        {"threshold": 1, "window_seconds": 1},
    ],
)
def test_bad_configuration_rejected(table: dict[str, Any]) -> None:
    """Unknown events, keys and dimensions, and out-of-range values are refused."""
    with pytest.raises(InvalidInputError):
        AnomalyDetector.from_config({"detectors": {"r": table}})


def test_bad_toml_rejected(tmp_path: Path) -> None:
    """A malformed TOML file is an input error, not a crash."""
    path = tmp_path / "bad.toml"
    path.write_text("[detectors\n")
    with pytest.raises(InvalidInputError, match="TOML"):
        AnomalyDetector.from_toml(path)


def test_default_rules_cover_the_three_bursts() -> None:
    """Defaults watch decrypt failures, password failures and shredded-key accesses."""
    watched = {e for rule in DEFAULT_RULES for e in rule.events}
    assert watched == {"envelope.decrypt.failed", "password.failed", "key.shredded_access"}

"""Typed usage of styku_crypto.events and styku_crypto.incidents (``mypy --strict``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from styku_crypto.events import (
    Alert,
    AnomalyDetector,
    DetectorRule,
    EcsFormatter,
    EventSpec,
    RedactionFilter,
    Redactor,
    emit,
    lookup_event,
)
from styku_crypto.exceptions import TamperedLogError
from styku_crypto.incidents import (
    Incident,
    IncidentLog,
    MacKey,
    Severity,
    VerificationReport,
)
from styku_crypto.keys import KeyStore


def install_logging(stream_path: Path) -> logging.Handler:
    """Ship styku_crypto events as redacted ECS JSON lines."""
    handler = logging.FileHandler(stream_path)
    handler.addFilter(RedactionFilter(Redactor(token_prefixes=("stk1.",))))
    handler.setFormatter(EcsFormatter(static_fields={"service.name": "api"}))
    logging.getLogger("styku_crypto").addHandler(handler)
    return handler


def page_on_call(alert: Alert) -> None:
    """An alert callback."""
    print(f"{alert.rule}: {alert.dimension}={alert.value} x{alert.count} in {alert.window}s")


def detectors(config: Path) -> AnomalyDetector:
    """Rules from TOML plus one in code."""
    detector = AnomalyDetector.from_toml(config, on_alert=page_on_call)
    extra = DetectorRule("logins", ("password.failed",), threshold=5, window=60.0, per=("source",))
    combined = AnomalyDetector([*detector.rules, extra], on_alert=page_on_call)
    logging.getLogger("styku_crypto").addHandler(combined.handler())
    alerts: list[Alert] = combined.observe({"event": "password.failed", "source": "192.0.2.1"})
    del alerts
    return combined


def describe(name: str) -> str:
    """Vocabulary lookups are optional."""
    spec: EventSpec | None = lookup_event(name)
    return "unknown" if spec is None else f"{spec.capability}/{spec.level_name}"


def custom_event() -> None:
    """Emit an event with the full keyword set."""
    emit(
        "key.drill",
        capability="keys",
        outcome="success",
        level=logging.INFO,
        tenant=None,
        actor="dr-bot",
        reason="quarterly",
        attributes={"duration_ms": 1234, "passed": True},
    )


def record_incident(store: KeyStore) -> Incident:
    """The incident workflow."""
    log = IncidentLog.open(store=store)
    incident = log.open_incident(
        "Credential stuffing",
        severity=Severity.HIGH,
        description="Burst of password failures from one ASN.",
        tenants=["acme"],
        detected_at=datetime.now(UTC),
        actor="soc",
    )
    log.update(incident.id, action="Blocked ASN at the edge", severity="medium")
    return log.close(incident.id, disposition="No accounts compromised")


def check(log: IncidentLog) -> int:
    """verify raises on tampering and returns a report otherwise."""
    try:
        report: VerificationReport = log.verify()
    except TamperedLogError:
        return 1
    return 0 if report.head_checked else 3


def custom_key(key: MacKey, path: Path) -> str:
    """A log with a caller-provided MAC key, exported as Markdown."""
    return IncidentLog(path, mac_key=key).export("markdown")

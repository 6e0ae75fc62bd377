"""Typed usage of the incident runbook: lifecycle, playbooks, notices, bridge (mypy --strict)."""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import UTC, datetime, timedelta

from styku_crypto.events import AnomalyDetector
from styku_crypto.incidents import (
    TRANSITIONS,
    ActionContext,
    ActionResult,
    Incident,
    IncidentBridge,
    IncidentLog,
    NotificationPolicy,
    Playbook,
    Status,
    TenantNotice,
    load_playbooks,
)
from styku_crypto.keys import KeyStore


def runbook(store: KeyStore, tokens: MutableMapping[str, str]) -> tuple[Incident, ActionResult]:
    """Open from a playbook, confirm after the fact, run a step, notify."""
    policy = NotificationPolicy(default_hours=72, tenants={"acme": 24})
    log = IncidentLog.open(store=store, policy=policy)
    inc = log.open_incident(type="key-compromise", tenants=["acme"], actor="alice")
    confirmed = datetime.now(UTC) - timedelta(hours=1)
    inc = log.update(inc.id, status=Status.CONFIRMED, at=confirmed, actor="alice")
    allowed: tuple[Status, ...] = TRANSITIONS[inc.status]
    assert Status.CONTAINED in allowed
    inc, result = log.run_step(
        inc.id, 2, context=ActionContext(store=store, tokens=tokens), argument="acme"
    )
    log.notify(inc.id, tenant="acme", channel="email", reference="ticket 123")
    return log.step(inc.id, 1, note="scoped"), result


def overdue_tenants(log: IncidentLog) -> list[str]:
    """Tenants still owed a notice."""
    late: list[tuple[Incident, tuple[TenantNotice, ...]]] = log.overdue()
    return [n.tenant for _, notices in late for n in notices]


def wire_bridge(log: IncidentLog) -> AnomalyDetector:
    """Alerts open suspected incidents."""
    books: dict[str, Playbook] = load_playbooks(["/etc/styku/playbooks"])
    bridge = IncidentBridge(log, {"decrypt_failures": "data-exposure"}, playbooks=books)
    return AnomalyDetector(on_alert=bridge)

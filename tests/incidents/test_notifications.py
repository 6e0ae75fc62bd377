"""Customer notifications: recording, refusals, overdue, policy configuration (issue 17)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.incidents import CHANNELS, IncidentLog, NotificationPolicy
from styku_crypto.keys import KeyStore
from tests.incidents.conftest import FixedClock


def _confirmed(log: IncidentLog, clock: FixedClock, hours_ago: float = 0) -> str:
    detected = clock.now - timedelta(hours=hours_ago)
    return log.open_incident("leak", severity="high", description="d", tenants=["acme", "globex"],
                             status="confirmed", detected_at=detected).id  # fmt: skip


def test_notify_records_channel_reference_and_time(log: IncidentLog, clock: FixedClock) -> None:
    """A notification is recorded per tenant with channel, reference, time and actor."""
    inc = _confirmed(log, clock, hours_ago=2)
    sent = clock.now - timedelta(hours=1)
    state = log.notify(inc, tenant="acme", channel="email", reference="ticket 123", at=sent,
                       actor="carol")  # fmt: skip
    acme = {n.tenant: n for n in state.notices}["acme"]
    assert (acme.notified_at, acme.channel, acme.reference, acme.actor) == (
        sent, "email", "ticket 123", "carol",
    )  # fmt: skip
    assert acme.state(clock.now) == "notified"
    assert {n.tenant: n for n in state.notices}["globex"].state(clock.now) == "pending"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tenant": "initech"}, "tenants: acme, globex"),
        ({"channel": "pigeon"}, "channel must be one of: " + ", ".join(CHANNELS)),
        ({"at": "before"}, "before the incident was detected"),
        ({"at": "future"}, "in the future"),
    ],
)
def test_bad_notifications_are_refused(
    log: IncidentLog, clock: FixedClock, kwargs: dict[str, str], message: str
) -> None:
    """Another tenant, an unknown channel, a time before detection or in the future: refused."""
    inc = _confirmed(log, clock)
    args: dict[str, object] = {"tenant": "acme", "channel": "email", **kwargs}
    if kwargs.get("at") == "before":
        args["at"] = log.get(inc).detected_at - timedelta(seconds=1)
    elif kwargs.get("at") == "future":
        args["at"] = clock.now + timedelta(hours=1)
    with pytest.raises(InvalidInputError, match=message):
        log.notify(inc, **args)  # type: ignore[arg-type]
    assert log.verify().entries == 1


def test_overdue_lists_unnotified_tenants_past_their_deadline(
    log: IncidentLog, clock: FixedClock
) -> None:
    """overdue(): confirmed incidents with a tenant not notified by its deadline, and only those."""
    late = _confirmed(log, clock, hours_ago=100)
    fresh = _confirmed(log, clock, hours_ago=1)
    suspected = log.open_incident("s", severity="low", description="d", tenants=["acme"]).id
    log.notify(late, tenant="acme", channel="phone")
    rows = {(inc.id, n.tenant) for inc, ns in log.overdue() for n in ns}
    assert rows == {(late, "globex")}
    assert fresh not in {i for i, _ in rows}
    assert suspected not in {i for i, _ in rows}
    acme = {n.tenant: n for n in log.get(late).notices}["acme"]
    assert acme.state(clock.now) == "late"  # notified, but after the 72 h


def test_closing_does_not_excuse_a_missing_notice(log: IncidentLog, clock: FixedClock) -> None:
    """A closed incident still owes its notices; they can be recorded after closing."""
    inc = _confirmed(log, clock, hours_ago=100)
    log.close(inc, disposition="fixed")
    assert {n.tenant for _, ns in log.overdue() for n in ns} == {"acme", "globex"}
    log.notify(inc, tenant="acme", channel="letter")
    log.notify(inc, tenant="globex", channel="letter")
    assert log.overdue() == []


def test_false_positive_owes_no_notice(log: IncidentLog, clock: FixedClock) -> None:
    """A confirmed incident that turns out a false positive is no longer overdue."""
    inc = _confirmed(log, clock, hours_ago=100)
    assert len(log.overdue()) == 1
    log.update(inc, status="false_positive")
    assert log.overdue() == []


def test_policy_from_toml(tmp_path: Path) -> None:
    """The [notification] table sets the default and per-tenant windows."""
    path = tmp_path / "incidents.toml"
    path.write_text("[notification]\ndefault_hours = 48\n[notification.tenants]\nacme = 24\n")
    policy = NotificationPolicy.from_toml(path)
    assert policy.hours_for("acme") == 24
    assert policy.hours_for("globex") == 48
    assert NotificationPolicy().hours_for("anyone") == 72


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[notification]\ndefault_hours = 0\n", "whole number of hours"),
        ("[notification]\ndefault_hours = 1.5\n", "whole number of hours"),
        ("[notification]\ndefault = 72\n", "unknown keys"),
        ("[notification.tenants]\nacme = true\n", "tenant 'acme'"),
        ("[notification\n", "not valid TOML"),
    ],
)
def test_bad_policy_is_refused(tmp_path: Path, text: str, message: str) -> None:
    """Bad windows, unknown keys and broken TOML are refused, naming the problem."""
    path = tmp_path / "incidents.toml"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=message):
        NotificationPolicy.from_toml(path)


def test_sqlite_mode_records_the_runbook_too(store: KeyStore, clock: FixedClock) -> None:
    """The table mode carries statuses, steps and notices in its chain like the file mode."""
    log = IncidentLog.open(store=store, sqlite=True, clock=clock)
    inc = log.open_incident(type="data-exposure", tenants=["acme"], status="confirmed",
                            detected_at=clock.now - timedelta(hours=100)).id  # fmt: skip
    log.step(inc, 1)
    assert [n.tenant for _, ns in log.overdue() for n in ns] == ["acme"]
    log.notify(inc, tenant="acme", channel="portal")
    assert log.overdue() == []
    assert log.verify().entries == 3

"""Incident log behaviour: open, update, close, fold, validation, events, key store wiring."""

from __future__ import annotations

import json
import logging
import pickle
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from styku_crypto.exceptions import InvalidInputError, KeyNotFoundError
from styku_crypto.incidents import (
    INCIDENT_TENANT,
    Incident,
    IncidentLog,
    KeyStoreMacKey,
    Severity,
)
from styku_crypto.keys import KeyStore
from tests._support import leaks


def _events(caplog: pytest.LogCaptureFixture, prefix: str) -> list[dict[str, object]]:
    return [
        r.styku_event  # type: ignore[attr-defined]
        for r in caplog.records
        if hasattr(r, "styku_event") and r.styku_event["event"].startswith(prefix)
    ]


def test_open_update_close_round_trip(log: IncidentLog) -> None:
    """An incident's state is the fold of its open, update and close entries."""
    detected = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    inc = log.open_incident(
        "Leaked API key",
        severity="high",
        description="A deploy key was pushed to a public repo.",
        tenants=["acme", "globex", "acme"],
        detected_at=detected,
        actor="alice",
    )
    assert inc.id == "INC-000001"
    assert inc.severity is Severity.HIGH
    assert inc.tenants == ("acme", "globex")
    assert inc.detected_at == detected.astimezone(UTC)
    assert inc.detected_at.tzinfo == UTC
    assert inc.is_open
    assert inc.status == "suspected"
    inc = log.update(inc.id, action="Key revoked", severity="critical", tenants=["initech"])
    assert inc.severity is Severity.CRITICAL
    assert inc.tenants == ("acme", "globex", "initech")
    assert [a.text for a in inc.actions] == ["Key revoked"]
    inc = log.close(inc.id, disposition="Contained; customers notified", actor="bob")
    assert not inc.is_open
    assert inc.status == "closed"
    assert inc.disposition == "Contained; customers notified"
    assert inc.resolved_at is not None
    assert inc.resolved_at > inc.reported_at
    assert log.get(inc.id) == inc
    assert log.incidents() == [inc]
    report = log.verify()
    assert report.entries == 3
    assert report.incidents == 1
    assert report.head_checked
    assert report.head_entries == 3
    assert report.incomplete_tail_bytes == 0


def test_ids_follow_sequence(log: IncidentLog) -> None:
    """Incident ids are INC- plus the sequence number of their opening entry."""
    a = log.open_incident("a", severity="low", description="a")
    log.update(a.id, action="x")
    b = log.open_incident("b", severity="medium", description="b")
    assert (a.id, b.id) == ("INC-000001", "INC-000003")
    assert [i.id for i in log.incidents()] == [a.id, b.id]


def test_entries_are_canonical_json_lines(log: IncidentLog, tmp_path: Path) -> None:
    """Each entry is one canonical JSON line with seq, prev, kid, log and an HMAC."""
    log.open_incident("t", severity="low", description="d")
    log.open_incident("u", severity="low", description="e")
    lines = (tmp_path / "incidents.jsonl").read_text().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert set(first) == {"at", "by", "data", "id", "kid", "log", "mac", "op", "prev", "seq", "v"}
    assert first["v"] == 1
    assert first["seq"] == 1
    assert first["prev"] == "0" * 64
    assert second["prev"] == first["mac"]
    assert second["log"] == first["log"]
    assert first["kid"] == "store:incidents:v1"
    assert first["at"].endswith("Z")
    for line in lines:
        assert line == json.dumps(json.loads(line), sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"severity": "urgent", "description": "d"}, "severity"),
        ({"severity": "low", "description": "  "}, "description"),
        ({"severity": "low", "description": "d", "tenants": "acme"}, "tenants"),
        ({"severity": "low", "description": "x" * 20_001}, "longer"),
        (
            {"severity": "low", "description": "d", "detected_at": datetime(2026, 1, 1)},
            "timezone",
        ),
    ],
)
def test_open_rejects_bad_input(log: IncidentLog, kwargs: dict[str, object], message: str) -> None:
    """Bad severity, empty or oversized text, a bare string of tenants, naive times are refused."""
    with pytest.raises(InvalidInputError, match=message):
        log.open_incident("t", **kwargs)  # type: ignore[arg-type]
    assert log.verify().entries == 0


def test_update_and_close_refuse_unknown_or_closed(log: IncidentLog) -> None:
    """Unknown ids, empty updates and changes to a closed incident are refused, nothing written."""
    inc = log.open_incident("t", severity="low", description="d")
    with pytest.raises(InvalidInputError, match="no incident"):
        log.update("INC-999999", action="x")
    with pytest.raises(InvalidInputError, match="nothing to update"):
        log.update(inc.id)
    log.close(inc.id, disposition="false alarm")
    with pytest.raises(InvalidInputError, match="already closed"):
        log.update(inc.id, action="late")
    with pytest.raises(InvalidInputError, match="already closed"):
        log.close(inc.id, disposition="again")
    with pytest.raises(InvalidInputError, match="no incident"):
        log.get("INC-000042")
    assert log.verify().entries == 2


def test_events_emitted_without_text(log: IncidentLog, caplog: pytest.LogCaptureFixture) -> None:
    """open/update/close emit incident.* events carrying ids and severity, never the text."""
    caplog.set_level(logging.DEBUG, logger="styku_crypto")
    inc = log.open_incident(
        "Secret title", severity="high", description="secret description", tenants=["acme"]
    )
    log.update(inc.id, action="secret action")
    log.close(inc.id, disposition="secret disposition")
    events = _events(caplog, "incident.")
    assert [e["event"] for e in events] == [
        "incident.opened",
        "incident.updated",
        "incident.closed",
    ]
    assert all(e["incident"] == inc.id and e["tenant"] == "acme" for e in events)
    assert events[0]["severity"] == "high"
    text = " ".join(r.getMessage() + repr(getattr(r, "styku_event", "")) for r in caplog.records)
    assert "secret" not in text.lower()


def test_key_store_mac_key_uses_reserved_tenant(store: KeyStore, log: IncidentLog) -> None:
    """The MAC key is derived from a reserved internal tenant created on first use."""
    log.open_incident("t", severity="low", description="d")
    assert INCIDENT_TENANT in [t.name for t in store.tenants()]
    key = KeyStoreMacKey(store)
    assert key.current_key_id() == "store:incidents:v1"
    for material in key._keys.values():
        leaks.register_secret(material)
        leaks.assert_no_secret_in("KeyStoreMacKey repr", repr(key))
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(KeyNotFoundError):
        key.mac(b"x", key_id="store:incidents:v0")
    with pytest.raises(KeyNotFoundError):
        key.mac(b"x", key_id="other")


def test_rotation_keeps_old_entries_verifiable(store: KeyStore, clock: object) -> None:
    """After rotating the incident tenant, old entries verify and new ones use the new key."""
    log = IncidentLog.open(store=store)
    log.open_incident("before", severity="low", description="d")
    store.rotate(INCIDENT_TENANT)
    log2 = IncidentLog.open(store=store)
    log2.open_incident("after", severity="low", description="d")
    kids = [e["kid"] for e in log2.entries()]
    assert kids == ["store:incidents:v1", "store:incidents:v2"]
    assert log2.verify().entries == 2


def test_sqlite_table_mode(store: KeyStore) -> None:
    """The log can live in a table of the key store's own SQLite database."""
    log = IncidentLog.open(store=store, sqlite=True)
    inc = log.open_incident("t", severity="medium", description="d", tenants=["acme"])
    log.close(inc.id, disposition="done")
    assert log.location.startswith("sqlite:///")
    assert log.location.endswith("styku_incident_log")
    assert log.verify().entries == 2
    assert log.get(inc.id).disposition == "done"
    assert isinstance(log.incidents()[0], Incident)


def test_repr_names_location_only(log: IncidentLog) -> None:
    """repr shows where the log is, nothing else."""
    assert repr(log).startswith("IncidentLog(")
    assert "incidents.jsonl" in repr(log)


def test_log_keeps_its_file_after_the_process_changes_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log opened from a relative store path keeps writing that file after a chdir.

    Found by a test-order failure: a long-lived alert bridge wrote into whatever
    ``incidents.jsonl`` sat in the new working directory (another store's log,
    which then failed verification as tampered).
    """
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    with KeyStore.open("keys.db") as store:
        log = IncidentLog.open(store=store)
        monkeypatch.chdir(second)
        log.open_incident("after chdir", severity="low", description="d")
        assert [i.title for i in log.incidents()] == ["after chdir"]
        assert log.verify().entries == 1
    assert (first / "incidents.jsonl").is_file()
    assert not (second / "incidents.jsonl").exists()

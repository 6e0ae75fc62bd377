"""Issue 17 evidence: a key-compromise incident end to end on a real store, and tampering."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from styku_crypto._cli import main
from styku_crypto.envelope import Envelope
from styku_crypto.events import AnomalyDetector, DetectorRule
from styku_crypto.incidents import IncidentBridge, IncidentLog, Status
from styku_crypto.incidents._chain import canonical, entry_mac
from styku_crypto.incidents._keys import KeyStoreMacKey
from styku_crypto.keys import KeyStore, LocalRootKey
from tests._support import leaks

CTX = {"table": "scans", "field": "body"}


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["incidents", *argv])
    out, err = capsys.readouterr()
    leaks.assert_no_secret_in(f"incidents {argv[0]}", out + err)
    return code, out, err


@pytest.fixture
def env_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """A working directory with an initialised default store and a clean environment."""
    monkeypatch.chdir(tmp_path)
    for name in ("STYKU_CRYPTO_STORE", "STYKU_CRYPTO_INCIDENTS", "STYKU_CRYPTO_ROOT_KEY_FILE",
                 "STYKU_CRYPTO_INCIDENTS_CONFIG"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    assert main(["keys", "init"]) == 0  # only keys init creates a key store
    capsys.readouterr()
    return tmp_path


def _open_store(path: Path) -> KeyStore:
    return KeyStore.open(path / "styku-keys.db", root=LocalRootKey(path / "styku-keys.db.rootkey"))


def test_key_compromise_end_to_end(
    env_dir: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Alert opens a suspected key-compromise; confirm; rotate-and-rewrap real tokens; notify;
    overdue exits 1 naming the other tenant; notify it; close; verify intact; export timeline."""
    four_days_ago = datetime.now(UTC) - timedelta(days=4)
    with _open_store(env_dir) as store:
        store.create_tenant("acme")
        store.create_tenant("globex")
        envelope = Envelope(store)
        plain = {f"row{i}": f"secret scan {i}".encode() for i in range(12)}
        tokens = {k: envelope.encrypt_text(v, tenant="acme", context=CTX) for k, v in plain.items()}
        (env_dir / "acme-tokens.txt").write_text("\n".join(tokens.values()) + "\n")
        # 1. a real detector alert opens the incident (the log's clock set four days back)
        log = IncidentLog.open(store=store, clock=lambda: four_days_ago)
        bridge = IncidentBridge(log, {"decrypt_failures": "key-compromise"})
        detector = AnomalyDetector(
            [
                DetectorRule(
                    "decrypt_failures", ("envelope.decrypt.failed",), threshold=5, window=60
                )
            ],
            on_alert=bridge,
            clock=lambda: 0.0,
        )
        wrong = envelope.encrypt(b"x", tenant="acme", context={"table": "other"})
        logging.getLogger("styku_crypto").addHandler(handler := detector.handler())
        try:
            for _ in range(5):
                with pytest.raises(Exception):
                    envelope.decrypt(wrong, tenant="acme", context=CTX)
        finally:
            logging.getLogger("styku_crypto").removeHandler(handler)
        (incident,) = log.incidents()
    assert incident.status is Status.SUSPECTED
    assert incident.type == "key-compromise"
    assert incident.origin is not None
    assert incident.origin["rule"] == "decrypt_failures"
    inc = incident.id

    # 2. globex is affected too; confirm 73 hours ago (an activity recorded after the fact)
    assert _cli(capsys, "update", inc, "--tenant", "globex", "--actor", "alice")[0] == 0
    confirmed = (datetime.now(UTC) - timedelta(days=3, hours=1)).isoformat(timespec="seconds")
    code, out, _ = _cli(capsys, "update", inc, "--status", "confirmed", "--at", confirmed)
    assert code == 0
    assert "confirmed" in out

    # 3. run rotate-and-rewrap on acme with its real tokens (confirmation on stdin)
    code, out, _ = _cli(capsys, "show", inc)
    step = next(line for line in out.splitlines() if "[rotate-and-rewrap]" in line)
    number = step.split(".")[0].strip()
    code, out, err = _cli(capsys, "step", inc, number, "--run", "--tenant", "acme",
                          "--tokens", "acme-tokens.txt", "--yes", "--actor", "bob")  # fmt: skip
    assert code == 0, err
    assert "rewrapped 12 tokens" in out
    rewrapped = (env_dir / "acme-tokens.txt").read_text().split()
    assert len(rewrapped) == 12
    assert set(rewrapped).isdisjoint(tokens.values())
    with _open_store(env_dir) as store:
        envelope = Envelope(store)
        for token, (key, data) in zip(rewrapped, plain.items(), strict=True):
            assert envelope.decrypt_text(token, tenant="acme", context=CTX) == data, key
            assert not envelope.needs_rewrap(token, tenant="acme")

    # 4. notify acme only: overdue exits 1 naming globex
    assert _cli(capsys, "notify", inc, "--tenant", "acme", "--channel", "email",
                "--reference", "ticket 123")[0] == 0  # fmt: skip
    code, out, _ = _cli(capsys, "overdue")
    assert code == 1
    assert "globex" in out
    assert "acme" not in out
    code, out, _ = _cli(capsys, "overdue", "--format", "json")
    doc = json.loads(out)
    assert code == 1
    assert doc["schema"] == "styku-crypto/incidents-overdue/v1"
    assert [(r["incident"], r["tenant"]) for r in doc["overdue"]] == [(inc, "globex")]

    # 5. notify globex, close, verify, export
    assert _cli(capsys, "notify", inc, "--tenant", "globex", "--channel", "phone")[0] == 0
    assert _cli(capsys, "overdue")[0] == 0
    assert _cli(capsys, "close", inc, "--disposition", "keys rotated, customers told")[0] == 0
    code, out, _ = _cli(capsys, "verify", "--format", "json")
    report = json.loads(out)
    assert code == 0
    assert report["intact"]
    assert report["head_checked"]
    assert report["schema"] == "styku-crypto/incidents-verify/v1"

    code, out, _ = _cli(capsys, "export", "--format", "json")
    (exported,) = json.loads(out)["incidents"]
    kinds = [t["kind"] for t in exported["timeline"]]
    assert kinds == ["detected", "reported", "status", "tenants", "action_run", "step",
                     "notified", "notified", "closed"], kinds  # fmt: skip
    states = {n["tenant"]: n["state"] for n in exported["notifications"]}
    assert states == {"acme": "late", "globex": "late"}  # notified after the 72 h deadline
    run = exported["steps"][int(number) - 1]["runs"][0]
    assert run["counts"] == {"rotated": 2, "rewrapped": 12, "unchanged": 0}
    assert {e["event"] for e in run["events"]} == {"key.rotated", "envelope.rewrap"}
    code, out, _ = _cli(capsys, "export", "--format", "markdown")
    assert "### Timeline" in out
    assert "notified globex by phone" in out


def _tamper(path: Path, index: int, change: dict[str, object], *, remac: object = None) -> None:
    lines = path.read_text().splitlines()
    entry = json.loads(lines[index])
    entry["data"]["notification"].update(change)
    if remac is not None:
        body = {k: v for k, v in entry.items() if k != "mac"}
        entry["mac"] = entry_mac(remac, body)  # type: ignore[arg-type]
    lines[index] = canonical(entry)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "change",
    [{"at": "2026-01-01T00:00:00.000000Z"}, {"channel": "letter"}, {"tenant": "globex"}],
    ids=["backdated", "channel", "tenant"],
)
def test_tampered_notification_fails_verify(
    env_dir: Path, capsys: pytest.CaptureFixture[str], change: dict[str, object]
) -> None:
    """Editing a recorded notification (backdating it, its channel or tenant) fails verify, exit 1,
    naming the entry; the message names no private class."""
    _cli(capsys, "open", "--type", "data-exposure", "--tenant", "acme", "--tenant", "globex",
         "--status", "confirmed")  # fmt: skip
    _cli(capsys, "notify", "INC-000001", "--tenant", "acme", "--channel", "email")
    _cli(capsys, "update", "INC-000001", "--action", "after the notice")
    _tamper(env_dir / "incidents.jsonl", 1, change)
    code, _, err = _cli(capsys, "verify")
    assert code == 1
    assert "entry 2" in err
    assert "MAC mismatch" in err
    for argv in (("overdue",), ("show", "INC-000001"), ("export", "--format", "html")):
        code, _out, err = _cli(capsys, *argv)
        assert code == 1, argv
        assert "TamperedLogError" in err
        assert "ChainTamperedError" not in err


def test_forged_notification_without_the_key_fails_verify(
    env_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A notification entry re-MAC'd under a key of another store fails verify (wrong key)."""
    _cli(capsys, "open", "--type", "data-exposure", "--tenant", "acme", "--status", "confirmed")
    _cli(capsys, "notify", "INC-000001", "--tenant", "acme", "--channel", "email")
    other = env_dir / "other"
    other.mkdir()
    with _open_store(other) as foreign:
        key = KeyStoreMacKey(foreign)
        key.current_key_id()  # the same key id, under another store's key
        _tamper(env_dir / "incidents.jsonl", 1, {"channel": "portal"}, remac=key)
    code, _, err = _cli(capsys, "verify", "--format", "json")
    assert code == 1
    assert "entry 2" in err


def _edit_data(path: Path, index: int, edit: Callable[[dict[str, Any]], None]) -> None:
    lines = path.read_text().splitlines()
    entry = json.loads(lines[index])
    edit(entry["data"])
    lines[index] = canonical(entry)
    path.write_text("\n".join(lines) + "\n")


_EDITS: dict[str, tuple[int, Callable[[dict[str, Any]], None]]] = {
    "deadline extended": (1, lambda d: d["deadlines"]["acme"].update(due="2099-01-01T00:00:00Z")),
    "confirmation backdated": (1, lambda d: d.update(status_at="2026-11-27T02:10:00.000000Z")),
    "status changed": (1, lambda d: d.update(status="false_positive")),
    "step untaken": (2, lambda d: d.update(step=3)),
    "checklist edited": (0, lambda d: d["steps"][1].update(action="shred")),
    "type changed": (0, lambda d: d.update(type="lost-device")),
}


@pytest.mark.parametrize("what", list(_EDITS))
def test_every_new_kind_of_entry_is_covered_by_verify(
    env_dir: Path, capsys: pytest.CaptureFixture[str], what: str
) -> None:
    """Statuses, deadlines, steps, checklists and types are in the chain: any edit fails verify."""
    _cli(capsys, "open", "--type", "key-compromise", "--tenant", "acme",
         "--detected-at", "2026-11-27T02:10:00Z")  # fmt: skip
    _cli(capsys, "update", "INC-000001", "--status", "confirmed", "--at", "2026-11-27T03:00:00Z")
    _cli(capsys, "step", "INC-000001", "1", "--done")
    index, edit = _EDITS[what]
    _edit_data(env_dir / "incidents.jsonl", index, edit)
    code, _, err = _cli(capsys, "verify")
    assert code == 1
    assert f"entry {index + 1}" in err

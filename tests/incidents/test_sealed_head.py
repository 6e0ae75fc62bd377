"""The incident log's head lives in the key store's sealed metadata (issue 12 item 7).

Attacks with plain file and SQL writes, no key: erasing the log and its head,
or rolling both back to an older consistent copy, must not verify clean.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from styku_crypto._cli import main
from styku_crypto.exceptions import TamperedLogError
from styku_crypto.incidents import IncidentLog
from styku_crypto.keys import KeyStore

_HEAD = "SELECT name, value FROM meta WHERE name LIKE '%incidents.head%'"


def _open(tmp_path: Path) -> tuple[KeyStore, IncidentLog]:
    store = KeyStore.open(tmp_path / "keys.db")
    return store, IncidentLog.open(store=store)


def _sql(db: Path, statement: str, params: tuple[object, ...] = ()) -> list[tuple[str, bytes]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(statement, params).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def test_erasing_log_and_head_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Attack (found 7): delete the log file and its head row; verify fails, CLI exits 1."""
    store, log = _open(tmp_path)
    log.open_incident("breach", severity="high", description="d")
    assert log.verify().entries == 1
    store.close()
    (tmp_path / "incidents.jsonl").unlink()
    _sql(tmp_path / "keys.db", "DELETE FROM meta WHERE name LIKE '%incidents.head%'")
    store, log = _open(tmp_path)
    with store, pytest.raises(TamperedLogError, match="was deleted"):
        log.verify()
    assert main(["incidents", "verify", "--store", str(tmp_path / "keys.db")]) == 1
    assert "TAMPERED" in capsys.readouterr().err


def test_rolling_back_log_and_head_is_reported(tmp_path: Path) -> None:
    """Attack: put back an older log file together with its then-valid head record."""
    store, log = _open(tmp_path)
    log.open_incident("first", severity="low", description="d")
    shutil.copy(tmp_path / "incidents.jsonl", tmp_path / "old.jsonl")
    old_head = _sql(tmp_path / "keys.db", _HEAD)
    log.open_incident("second", severity="high", description="d")
    store.close()
    shutil.copy(tmp_path / "old.jsonl", tmp_path / "incidents.jsonl")
    for name, value in old_head:
        _sql(tmp_path / "keys.db", "UPDATE meta SET value = ? WHERE name = ?", (value, name))
    store, log = _open(tmp_path)
    with store, pytest.raises(TamperedLogError, match="older copy"):
        log.verify()


def test_deleting_only_the_log_is_reported(tmp_path: Path) -> None:
    """Deleting the log file alone leaves a head that names entries that are gone."""
    store, log = _open(tmp_path)
    log.open_incident("breach", severity="high", description="d")
    (tmp_path / "incidents.jsonl").unlink()
    with store, pytest.raises(TamperedLogError):
        log.verify()


def test_a_new_log_verifies_and_appends(tmp_path: Path) -> None:
    """No regression: an empty store has no head; appending creates and seals it."""
    store, log = _open(tmp_path)
    with store:
        assert log.verify().entries == 0
        log.open_incident("x", severity="low", description="d")
        assert log.verify().head_checked
        assert store.check() == []

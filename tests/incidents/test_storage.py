"""Storage failures reach the caller as typed errors, and symlinked log paths are refused."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from styku_crypto.exceptions import KeyStoreError
from styku_crypto.incidents import IncidentLog

from .conftest import DictHead, FixedClock, RawMacKey

_DESCRIPTION = "customer ledger copied to an unmanaged laptop"


def _calls(log: IncidentLog) -> list[Callable[[], object]]:
    return [
        log.verify,
        log.incidents,
        log.entries,
        lambda: log.export("json"),
        lambda: log.get("INC-000001"),
        lambda: log.open_incident("t", severity="low", description="d"),
        lambda: log.update("INC-000001", action="a"),
        lambda: log.close("INC-000001", disposition="x"),
    ]


def _assert_refused(log: IncidentLog, match: str) -> None:
    for call in _calls(log):
        with pytest.raises(KeyStoreError, match=match) as exc:
            call()
        assert _DESCRIPTION not in str(exc.value)
        assert log.location in str(exc.value)


def _filled(path: Path, key: RawMacKey, clock: FixedClock) -> IncidentLog:
    log = IncidentLog(path, mac_key=key, head_store=DictHead(), clock=clock)
    log.open_incident("laptop", severity="high", description=_DESCRIPTION)
    return log


def test_symlinked_log_refused_on_reads_and_writes(tmp_path: Path, clock: FixedClock) -> None:
    """A log path that is a symlink to a real log is refused by every read and every append."""
    key = RawMacKey()
    real = tmp_path / "real.jsonl"
    _filled(real, key, clock)
    before = real.read_bytes()
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    _assert_refused(IncidentLog(link, mac_key=key, clock=clock), "symbolic link")
    assert real.read_bytes() == before


def test_dangling_symlink_is_not_created_through(tmp_path: Path, clock: FixedClock) -> None:
    """A dangling symlink at the log path is refused, and its target is never created."""
    target = tmp_path / "elsewhere.jsonl"
    link = tmp_path / "incidents.jsonl"
    link.symlink_to(target)
    log = IncidentLog(link, mac_key=RawMacKey(), clock=clock)
    with pytest.raises(KeyStoreError, match="symbolic link"):
        log.verify()
    with pytest.raises(KeyStoreError, match="symbolic link"):
        log.open_incident("t", severity="low", description="d")
    assert not target.exists()


def test_symlinked_sqlite_database_refused(tmp_path: Path, clock: FixedClock) -> None:
    """In table mode a symlinked database path is refused for reads and appends alike."""
    key = RawMacKey()
    real = tmp_path / "real.db"
    log = IncidentLog(real, mac_key=key, sqlite=True, clock=clock)
    log.open_incident("laptop", severity="high", description=_DESCRIPTION)
    link = tmp_path / "link.db"
    link.symlink_to(real)
    _assert_refused(IncidentLog(link, mac_key=key, sqlite=True, clock=clock), "symbolic link")
    assert log.verify().entries == 1


def test_log_path_that_is_a_directory(tmp_path: Path, clock: FixedClock) -> None:
    """A directory at the log path gives KeyStoreError naming it, not IsADirectoryError."""
    path = tmp_path / "incidents.jsonl"
    path.mkdir()
    _assert_refused(IncidentLog(path, mac_key=RawMacKey(), clock=clock), "not a regular file|I/O")


def test_fifo_at_log_path_refused_without_hanging(tmp_path: Path, clock: FixedClock) -> None:
    """A FIFO at the log path is refused promptly (non-blocking open), for reads and writes."""
    path = tmp_path / "incidents.jsonl"
    os.mkfifo(path)
    _assert_refused(IncidentLog(path, mac_key=RawMacKey(), clock=clock), "not a regular file")


def test_missing_directory_is_an_io_error(tmp_path: Path, clock: FixedClock) -> None:
    """Appending under a directory that does not exist is a KeyStoreError naming the path."""
    path = tmp_path / "no-such-dir" / "incidents.jsonl"
    log = IncidentLog(path, mac_key=RawMacKey(), clock=clock)
    with pytest.raises(KeyStoreError, match="I/O error") as exc:
        log.open_incident("t", severity="low", description="d")
    assert str(path) in str(exc.value)


def test_corrupt_sqlite_database_is_a_database_error(tmp_path: Path, clock: FixedClock) -> None:
    """A table-mode log on a file that is not a database raises KeyStoreError, not sqlite3.Error."""
    path = tmp_path / "keys.db"
    path.write_bytes(b"not a database, " * 256)
    _assert_refused(IncidentLog(path, mac_key=RawMacKey(), sqlite=True, clock=clock), "database")


def test_sqlite_error_message_has_no_entry_content(tmp_path: Path, clock: FixedClock) -> None:
    """A database error on a log with entries names the location and error code only."""
    import sqlite3

    key = RawMacKey()
    path = tmp_path / "keys.db"
    log = IncidentLog(path, mac_key=key, sqlite=True, clock=clock)
    log.open_incident("laptop", severity="high", description=_DESCRIPTION)
    with sqlite3.connect(path) as conn:
        # reads still see the verified entries; the append hits a read-only view
        conn.execute("ALTER TABLE styku_incident_log RENAME TO moved")
        conn.execute("CREATE VIEW styku_incident_log AS SELECT seq, entry FROM moved")
    with pytest.raises(KeyStoreError, match="database error") as exc:
        log.open_incident("t", severity="low", description="d")
    assert _DESCRIPTION not in str(exc.value)
    assert log.verify().entries == 1

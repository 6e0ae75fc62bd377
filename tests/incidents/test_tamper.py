"""Tamper evidence: every edit, deletion, insertion, reordering, splice and truncation is caught."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.exceptions import TamperedLogError
from styku_crypto.incidents import IncidentLog
from styku_crypto.keys import KeyStore

from .conftest import DictHead, FixedClock, RawMacKey


def _fill(log: IncidentLog, n: int = 3) -> None:
    for i in range(n):
        inc = log.open_incident(f"incident {i}", severity="low", description=f"d{i}")
        log.update(inc.id, action=f"action {i}")


def _first_bad(exc: pytest.ExceptionInfo[TamperedLogError]) -> int:
    match = re.search(r"entry (\d+)", str(exc.value))
    assert match, str(exc.value)
    return int(match.group(1))


@pytest.fixture
def filled(log: IncidentLog, tmp_path: Path) -> tuple[IncidentLog, Path]:
    """A key-store-backed log with six entries."""
    _fill(log)
    return log, tmp_path / "incidents.jsonl"


def test_edit_detected(filled: tuple[IncidentLog, Path]) -> None:
    """Changing a field of entry 3 and keeping valid JSON is caught at entry 3."""
    log, path = filled
    lines = path.read_text().splitlines()
    entry = json.loads(lines[2])
    entry["data"]["title"] = "nothing to see"
    lines[2] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TamperedLogError, match="MAC mismatch") as exc:
        log.verify()
    assert _first_bad(exc) == 3


def test_every_byte_flip_detected(log: IncidentLog, tmp_path: Path) -> None:
    """Flipping any single bit of any byte of the log is detected (exhaustive over one log)."""
    _fill(log, 1)
    path = tmp_path / "incidents.jsonl"
    original = path.read_bytes()
    for position in range(len(original)):
        for bit in (0x01, 0x20):
            data = bytearray(original)
            data[position] ^= bit
            path.write_bytes(bytes(data))
            with pytest.raises(TamperedLogError):
                log.verify()
    path.write_bytes(original)
    assert log.verify().entries == 2


@given(st.data())
def test_byte_flip_property(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    """Any byte changed to any other value anywhere in a multi-entry log is detected."""
    tmp = tmp_path_factory.mktemp("flip")
    log = IncidentLog(
        tmp / "l.jsonl", mac_key=RawMacKey(), head_store=DictHead(), clock=FixedClock()
    )
    _fill(log, 2)
    path = tmp / "l.jsonl"
    raw = bytearray(path.read_bytes())
    position = data.draw(st.integers(0, len(raw) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda v: v != raw[position]))
    raw[position] = value
    path.write_bytes(bytes(raw))
    with pytest.raises(TamperedLogError):
        log.verify()


def test_deleted_line_detected(filled: tuple[IncidentLog, Path]) -> None:
    """Deleting entry 2 is caught at the entry that now sits in its place."""
    log, path = filled
    lines = path.read_text().splitlines()
    del lines[1]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TamperedLogError, match="deleted, inserted or reordered") as exc:
        log.verify()
    assert _first_bad(exc) == 2


def test_swapped_lines_detected(filled: tuple[IncidentLog, Path]) -> None:
    """Swapping entries 3 and 4 is caught at entry 3."""
    log, path = filled
    lines = path.read_text().splitlines()
    lines[2], lines[3] = lines[3], lines[2]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TamperedLogError) as exc:
        log.verify()
    assert _first_bad(exc) == 3


def test_inserted_line_detected(filled: tuple[IncidentLog, Path]) -> None:
    """Duplicating an authentic entry (replay) is caught where it was inserted."""
    log, path = filled
    lines = path.read_text().splitlines()
    lines.insert(4, lines[1])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TamperedLogError) as exc:
        log.verify()
    assert _first_bad(exc) == 5


@pytest.mark.parametrize("keep", [0, 1, 5])
def test_truncation_detected_by_head(filled: tuple[IncidentLog, Path], keep: int) -> None:
    """Dropping whole entries from the end is caught by the head record in the key store."""
    log, path = filled
    lines = path.read_text().splitlines()[:keep]
    path.write_text("".join(line + "\n" for line in lines))
    with pytest.raises(TamperedLogError, match="truncated"):
        log.verify()


def test_deleted_file_detected(filled: tuple[IncidentLog, Path]) -> None:
    """Removing the whole log file is caught: the head still records its entries."""
    log, path = filled
    path.unlink()
    with pytest.raises(TamperedLogError, match="truncated"):
        log.verify()


def test_truncation_without_head_is_the_documented_limit(make_log: object) -> None:
    """Without a head store a shortened log still verifies: the documented limit."""
    key = RawMacKey()
    log = make_log(key=key)  # type: ignore[operator]
    _fill(log)
    path = Path(log.location)
    lines = path.read_text().splitlines()[:4]
    path.write_text("".join(line + "\n" for line in lines))
    report = log.verify()
    assert report.entries == 4
    assert not report.head_checked


def test_splice_from_other_log_detected(make_log: object) -> None:
    """Entries from another log under the same key are refused (different log id)."""
    key, head = RawMacKey(), DictHead()
    a = make_log("a.jsonl", key=key, head=head)  # type: ignore[operator]
    b = make_log("b.jsonl", key=key)  # type: ignore[operator]
    _fill(a, 1)
    _fill(b, 2)
    pa, pb = Path(a.location), Path(b.location)
    lines = pa.read_text().splitlines() + pb.read_text().splitlines()[2:]
    pa.write_text("".join(line + "\n" for line in lines))
    with pytest.raises(TamperedLogError) as exc:
        a.verify()
    assert _first_bad(exc) == 3
    # replacing a whole log by another one is caught by the head
    pa.write_text(pb.read_text())
    with pytest.raises(TamperedLogError):
        a.verify()


def test_wrong_key_detected(make_log: object) -> None:
    """A log verified under a different key fails at entry 1."""
    log = make_log(key=RawMacKey())  # type: ignore[operator]
    _fill(log, 1)
    other = IncidentLog(log.location, mac_key=RawMacKey())
    with pytest.raises(TamperedLogError, match="entry 1"):
        other.verify()


def test_forged_or_missing_head_detected(filled: tuple[IncidentLog, Path], store: KeyStore) -> None:
    """A deleted or altered head record in the key store is detected."""
    log, _path = filled
    name = "styku.incidents.head.default"
    raw = store.backend.get_meta(name)
    assert raw is not None
    head = json.loads(raw)
    head["seq"] = 2
    store.backend.set_meta(name, json.dumps(head).encode())
    with pytest.raises(TamperedLogError, match="head"):
        log.verify()
    store.backend.set_meta(name, None)
    with pytest.raises(TamperedLogError, match="head record is missing"):
        log.verify()
    store.backend.set_meta(name, raw)
    assert log.verify().entries == 6


def test_reads_and_appends_refuse_a_tampered_log(
    filled: tuple[IncidentLog, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Listing, exporting and appending all fail closed, and verify_failed is logged at ERROR."""
    log, path = filled
    lines = path.read_text().splitlines()
    lines[0], lines[1] = lines[1], lines[0]
    path.write_text("\n".join(lines) + "\n")
    caplog.set_level(logging.DEBUG, logger="styku_crypto")
    for call in (
        log.incidents,
        lambda: log.export("markdown"),
        lambda: log.open_incident("x", severity="low", description="y"),
        lambda: log.get("INC-000001"),
    ):
        with pytest.raises(TamperedLogError):
            call()
    failures = [r for r in caplog.records if r.getMessage() == "incident.verify_failed"]
    assert failures
    assert all(r.levelno == logging.ERROR for r in failures)
    assert path.read_text().splitlines() == lines


def test_sqlite_row_edit_delete_and_reorder_detected(store: KeyStore, tmp_path: Path) -> None:
    """In SQLite mode an UPDATE, a DELETE and a seq swap of rows are all detected."""
    import sqlite3

    log = IncidentLog.open(store=store, sqlite=True)
    _fill(log)
    db = tmp_path / "keys.db"

    def run(sql: str) -> None:
        with sqlite3.connect(db) as conn:
            conn.execute(sql)

    run("UPDATE styku_incident_log SET entry = replace(entry, 'incident 1', 'incident X')")
    with pytest.raises(TamperedLogError, match="entry 3"):
        log.verify()
    run("UPDATE styku_incident_log SET entry = replace(entry, 'incident X', 'incident 1')")
    assert log.verify().entries == 6
    run("UPDATE styku_incident_log SET seq = 100 WHERE seq = 2")
    run("UPDATE styku_incident_log SET seq = 2 WHERE seq = 3")
    run("UPDATE styku_incident_log SET seq = 3 WHERE seq = 100")
    with pytest.raises(TamperedLogError, match="entry 2"):
        log.verify()
    run("DELETE FROM styku_incident_log WHERE seq >= 2")
    with pytest.raises(TamperedLogError, match="truncated"):
        log.verify()

"""``incident.verify_failed`` carries a stable failure code and the entry number, no free text."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from styku_crypto.events import EVENT_ATTRIBUTE
from styku_crypto.exceptions import TamperedLogError
from styku_crypto.incidents import IncidentLog
from styku_crypto.incidents._chain import FAILURE_CODES, ChainTamperedError
from styku_crypto.keys import KeyStore

from .conftest import RawMacKey

_SECRET_TITLE = "payroll export leaked to vendor-42"


def _fill(log: IncidentLog, n: int = 3) -> None:
    for i in range(n):
        inc = log.open_incident(f"{_SECRET_TITLE} {i}", severity="low", description=f"d{i}")
        log.update(inc.id, action=f"action {i}")


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def _edit(path: Path) -> None:
    lines = _lines(path)
    entry = json.loads(lines[2])
    entry["data"]["title"] = "nothing to see"
    lines[2] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    _write(path, lines)


def _delete(path: Path) -> None:
    lines = _lines(path)
    del lines[1]
    _write(path, lines)


def _swap(path: Path) -> None:
    lines = _lines(path)
    lines[3], lines[4] = lines[4], lines[3]
    _write(path, lines)


def _garble(path: Path) -> None:
    lines = _lines(path)
    lines[4] = lines[4][:-3]
    _write(path, lines)


def _truncate(path: Path) -> None:
    _write(path, _lines(path)[:4])


def _rechain(path: Path) -> None:
    # a well-formed entry whose prev hash is wrong: the MAC is checked after prev
    lines = _lines(path)
    entry = json.loads(lines[1])
    entry["prev"] = "f" * 64
    lines[1] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    _write(path, lines)


def _unknown_key(path: Path) -> None:
    lines = _lines(path)
    entry = json.loads(lines[5])
    entry["kid"] = "store:incidents:v99"
    lines[5] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    _write(path, lines)


@pytest.mark.parametrize(
    ("tamper", "code", "entry"),
    [
        (_edit, "mac_mismatch", 3),
        (_delete, "sequence_gap", 2),
        (_swap, "sequence_gap", 4),
        (_garble, "malformed", 5),
        (_truncate, "truncated", 5),
        (_rechain, "chain_broken", 2),
        (_unknown_key, "unknown_key", 6),
    ],
)
def test_verify_failed_reason_is_a_code_with_entry_number(
    log: IncidentLog,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    tamper: Callable[[Path], None],
    code: str,
    entry: int,
) -> None:
    """Each kind of tampering yields its stable code as reason= and the entry in attributes."""
    _fill(log)
    tamper(tmp_path / "incidents.jsonl")
    caplog.set_level(logging.DEBUG, logger="styku_crypto")
    with pytest.raises(ChainTamperedError) as exc:
        log.verify()
    assert (exc.value.code, exc.value.entry) == (code, entry)
    event = _one_failure(caplog)
    assert event["reason"] == code
    assert event["entry"] == entry


def test_head_failures_have_codes(
    log: IncidentLog, store: KeyStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A forged head is head_mismatch, a deleted head is head_missing (no entry number)."""
    _fill(log)
    name = "styku.incidents.head.default"
    raw = store.backend.get_meta(name)
    assert raw is not None
    caplog.set_level(logging.DEBUG, logger="styku_crypto")
    store.backend.set_meta(name, raw.replace(b'"seq":6', b'"seq":2'))
    with pytest.raises(TamperedLogError):
        log.verify()
    assert _one_failure(caplog)["reason"] == "head_mismatch"
    caplog.clear()
    store.backend.set_meta(name, None)
    with pytest.raises(TamperedLogError):
        log.verify()
    event = _one_failure(caplog)
    assert event["reason"] == "head_missing"
    assert "entry" not in event


def test_wrong_key_is_mac_mismatch(make_log: Callable[..., IncidentLog]) -> None:
    """Verifying under another key reports mac_mismatch at entry 1 (the key id matches)."""
    log = make_log(key=RawMacKey())
    _fill(log, 1)
    with pytest.raises(ChainTamperedError) as exc:
        IncidentLog(log.location, mac_key=RawMacKey()).verify()
    assert (exc.value.code, exc.value.entry) == ("mac_mismatch", 1)


def test_event_carries_no_entry_text(
    log: IncidentLog, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The verify_failed event holds no title, description or message text from the log."""
    _fill(log)
    _edit(tmp_path / "incidents.jsonl")
    caplog.set_level(logging.DEBUG, logger="styku_crypto")
    with pytest.raises(TamperedLogError):
        log.incidents()
    event = _one_failure(caplog)
    assert set(event) <= {"event", "outcome", "timestamp", "reason", "entry"}
    assert event["reason"] in FAILURE_CODES
    assert _SECRET_TITLE not in json.dumps(event)


def test_codes_are_a_fixed_set() -> None:
    """ChainTamperedError refuses a code outside FAILURE_CODES, and codes are short identifiers."""
    with pytest.raises(ValueError, match="unknown failure code"):
        ChainTamperedError("x", "entry was edited")
    assert all(c.isidentifier() and c.islower() for c in FAILURE_CODES)


def _one_failure(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    found = [r for r in caplog.records if r.getMessage() == "incident.verify_failed"]
    assert len(found) == 1, [r.getMessage() for r in caplog.records]
    assert found[0].levelno == logging.ERROR
    fields: dict[str, Any] = getattr(found[0], EVENT_ATTRIBUTE)
    return fields

"""Backup serialisation properties and fail-closed parsing of hostile backup files."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from styku_crypto.exceptions import BackupError, KeyStoreError
from styku_crypto.keys import KeyRecord, KeyStore, LocalRootKey, StoreSnapshot, TenantRecord
from styku_crypto.keys import backup as run_backup
from styku_crypto.keys._backup_destinations import DirectoryDestination
from styku_crypto.keys._backup_format import (
    _canonical,
    _parse_manifest,
    _snapshot_from_json,
    _snapshot_to_json,
)
from styku_crypto.keys._restore import apply_shred_list, load_backup, restore
from tests._support import leaks


def _outcome(parse: Callable[[], object]) -> str:
    """'refused' on BackupError, 'accepted' on success; any other exception propagates."""
    try:
        parse()
    except BackupError:
        return "refused"
    return "accepted"


_names = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=1, max_size=12
)
_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def snapshots(draw: st.DrawFn) -> StoreSnapshot:
    """Arbitrary well-formed snapshots (names, versions, wraps, meta)."""
    names = draw(st.lists(_names, min_size=0, max_size=4, unique=True))
    tenants = []
    keys = []
    shredded = []
    for name in names:
        created = draw(_times)
        gone = draw(st.booleans())
        when = created + timedelta(seconds=draw(st.integers(0, 10**6))) if gone else None
        tenants.append(TenantRecord(name, created, when))
        if gone:
            shredded.append((name, when))
            continue
        for purpose in ("customer", "sensitive"):
            for version in range(1, draw(st.integers(1, 3)) + 1):
                wraps = tuple(
                    (f"p{i}", draw(st.binary(min_size=1, max_size=64)))
                    for i in range(draw(st.integers(1, 3)))
                )
                keys.append(
                    KeyRecord(
                        name, purpose, version, f"tk_{name}_{purpose}_{version}", wraps, created
                    )
                )
    meta = tuple(
        (k, v) for k, v in draw(st.dictionaries(_names, st.binary(max_size=16), max_size=3)).items()
    )
    return StoreSnapshot(
        tenants=tuple(tenants),
        keys=tuple(keys),
        shredded=tuple(shredded),  # type: ignore[arg-type]
        meta=meta,
    )


@given(snapshots())
def test_snapshot_json_roundtrip(snap: StoreSnapshot) -> None:
    """Serialising then parsing a snapshot gives back exactly the same snapshot."""
    doc = json.loads(_canonical(_snapshot_to_json(snap)))
    assert _snapshot_from_json(doc) == snap


@given(snapshots(), st.data())
def test_shred_list_always_wins(snap: StoreSnapshot, data: st.DataObject) -> None:
    """After apply_shred_list no key of a listed tenant remains and the tenant is marked."""
    names = [t.name for t in snap.tenants]
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True) if names else st.just([]))
    when = datetime(2030, 1, 1, tzinfo=UTC)
    out = apply_shred_list(snap, dict.fromkeys(chosen, when))
    listed = {n for n, _ in out.shredded}
    assert set(chosen) <= listed
    assert not any(k.tenant in listed for k in out.keys)
    assert all(t.shredded_at is not None for t in out.tenants if t.name in listed)
    kept = [k for k in snap.keys if k.tenant not in listed]
    assert list(out.keys) == kept


@settings(max_examples=60)
@given(st.binary(max_size=300))
def test_hostile_manifest_bytes_fail_closed(raw: bytes) -> None:
    """Arbitrary manifest bytes raise BackupError (never another exception, never accepted)."""
    assert _outcome(lambda: _parse_manifest(raw)) == "refused"


@settings(max_examples=40)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=10,
    )
)
def test_hostile_snapshot_json_fails_closed(doc: object) -> None:
    """Any malformed snapshot document raises BackupError, never a crash."""
    assert _outcome(lambda: _snapshot_from_json(doc)) == "refused"


def test_restore_events_and_refusal_event(tmp_path: Path) -> None:
    """A restore emits key.restored (success), a refused one emits it with outcome failure."""
    with KeyStore.open(tmp_path / "a.db", root=LocalRootKey(tmp_path / "root.key")) as ks:
        ks.create_tenant("acme")
        run_backup(ks, [tmp_path / "b"])
        before = len([r for r in leaks.captured_records() if r.getMessage() == "key.restored"])
        with pytest.raises(KeyStoreError):
            restore(tmp_path / "b", ks)
    with KeyStore.open(tmp_path / "c.db", root=LocalRootKey(tmp_path / "root.key")) as target:
        restore(tmp_path / "b", target)
    events = [r for r in leaks.captured_records() if r.getMessage() == "key.restored"][before:]
    assert [e.styku_event["outcome"] for e in events] == ["failure", "success"]  # type: ignore[attr-defined]
    assert events[-1].levelno == logging.WARNING
    backups = DirectoryDestination(tmp_path / "b").list_backups()
    vb = load_backup(tmp_path / "b", [LocalRootKey(tmp_path / "root.key")])
    assert vb.backup_id == backups[-1]

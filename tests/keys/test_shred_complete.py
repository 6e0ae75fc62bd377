"""Shreds finish or fail loudly within a bound (issue 21 item 3).

A reader pinned in another process (SQLite) or an idle PostgreSQL session
holding a snapshot used to make shred return success while wrapped-key bytes
stayed in the files. Now it raises ShredIncompleteError within the bound,
naming what remains and who blocks, records ``key.shred_incomplete``, and
``keys shred --finish`` completes it once the reader is gone.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from styku_crypto._cli import main
from styku_crypto.exceptions import KeyDestroyedError, ShredIncompleteError
from styku_crypto.keys import KeyStore, LocalRootKey, SQLiteBackend
from styku_crypto.keys._postgres import PostgresBackend
from styku_crypto.keys._shred import find_markers, markers_of
from tests._support.postgres import PostgresServer

BOUND = 1.5

_READER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("SELECT count(*) FROM key_wraps").fetchone()
    print("pinned", flush=True)
    sys.stdin.readline()
    conn.execute("COMMIT")
    """
)


def _events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, object]]:
    return [
        r.styku_event  # type: ignore[attr-defined]
        for r in caplog.records
        if getattr(r, "styku_event", {}).get("event") == name
    ]


def test_sqlite_pinned_reader_raises_within_bound_then_finish(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found 21.3 (SQLite): a reader in another process; raise in < 2x bound, then finish."""
    db = tmp_path / "keys.db"
    root = tmp_path / "root.key"
    backend = SQLiteBackend(db)
    backend.initialize()
    backend.shred_timeout = BOUND
    store = KeyStore(backend, root=LocalRootKey(root))
    store.create_tenant("acme")
    store.create_tenant("keep")
    wraps = [w for r in backend.list_keys("acme") for _, w in r.wraps]
    markers = markers_of(wraps)
    files = [db, Path(f"{db}-wal")]
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == b"pinned"
        caplog.set_level(logging.INFO, logger="styku_crypto")
        t0 = time.monotonic()
        with pytest.raises(ShredIncompleteError) as exc:
            store.shred("acme")
        elapsed = time.monotonic() - t0
        assert elapsed < 2 * BOUND, elapsed
        message = str(exc.value)
        assert "copies of the wrapped keys remain" in message
        assert f"pid {reader.pid}" in message  # the blocking reader, named
        assert "keys shred --finish acme" in message
        assert _events(caplog, "key.shred_incomplete")
        with pytest.raises(KeyDestroyedError):  # the keys are destroyed regardless
            store._tenant_key("acme", "customer")
        assert find_markers(files, markers)  # and the bytes really are still there
    finally:
        assert reader.stdin is not None
        reader.stdin.write(b"\n")
        reader.stdin.close()
        reader.wait(timeout=10)
    store.close()
    code = main(
        ["keys", "shred", "acme", "--finish", "--store", str(db), "--root", f"local:{root}"]
    )
    assert code == 0
    assert "complete" in capsys.readouterr().out
    assert find_markers(files, markers) == {}
    with KeyStore.open(db, root=LocalRootKey(root, create=False)) as ks:
        assert ks.check() == []
        assert ks._tenant_key("keep", "customer").version == 1


def test_sqlite_shred_without_readers_leaves_no_bytes(tmp_path: Path) -> None:
    """No reader: shred returns and no marker of the wraps is in the file or the WAL."""
    db = tmp_path / "keys.db"
    with KeyStore.open(db) as store:
        store.create_tenant("acme")
        wraps = [w for r in store.backend.list_keys("acme") for _, w in r.wraps]
        store.shred("acme")
        store.finish_shred("acme")  # idempotent: nothing pending
    assert find_markers([db, Path(f"{db}-wal")], markers_of(wraps)) == {}


def test_postgres_idle_session_with_snapshot_raises_within_bound_then_finish(
    postgres_server: PostgresServer,
    postgres_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found 21.3 (PostgreSQL): an idle session holding a snapshot; raise in < 2x bound, finish."""
    backend = PostgresBackend(postgres_url)
    backend.initialize()
    backend.shred_timeout = BOUND
    store = KeyStore(backend, root=LocalRootKey(tmp_path / "root.key"))
    store.create_tenant("acme")
    store.create_tenant("keep")
    wraps = [w for r in backend.list_keys("acme") for _, w in r.wraps]
    idle = psycopg.connect(postgres_url, application_name="pinned-reader")
    idle.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    idle.execute("SELECT count(*) FROM styku_key_wraps").fetchone()
    pid = idle.info.backend_pid
    try:
        caplog.set_level(logging.INFO, logger="styku_crypto")
        t0 = time.monotonic()
        with pytest.raises(ShredIncompleteError) as exc:
            store.shred("acme")
        assert time.monotonic() - t0 < 2 * BOUND
        assert f"pid {pid} (pinned-reader" in str(exc.value)
        assert _events(caplog, "key.shred_incomplete")
        with pytest.raises(KeyDestroyedError):
            store._tenant_key("acme", "customer")
        # other tenants' cache-miss reads are not blocked meanwhile
        assert store._tenant_key("keep", "customer").version == 1
    finally:
        idle.close()
    store.finish_shred("acme")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        row = conn.execute("SELECT pg_relation_filepath('styku_key_wraps')").fetchone()
    assert row is not None
    assert not any(w in (postgres_server.datadir / row[0]).read_bytes() for w in wraps)
    assert store.check() == []
    store.close()

"""SQLite-specific guarantees: file modes, physical shredding, crash safety."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from styku_crypto.exceptions import KeyDestroyedError, KeyStoreError
from styku_crypto.keys import KeyStore, LocalRootKey, SQLiteBackend

ROOT = Path(__file__).resolve().parents[2]


def _store_bytes(db: Path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(db) + suffix)
        if p.exists():
            data += p.read_bytes()
    return data


def test_store_file_is_private(tmp_path: Path) -> None:
    """A new SQLite store file is created with mode 0600."""
    with KeyStore.open(tmp_path / "k.db") as ks:
        ks.create_tenant("acme")
    assert stat.S_IMODE((tmp_path / "k.db").stat().st_mode) == 0o600


def test_shred_removes_bytes_from_file_and_wal(tmp_path: Path) -> None:
    """After shred no wrapped key or key id of the tenant remains in the db, WAL or shm bytes."""
    db = tmp_path / "k.db"
    with KeyStore.open(db) as ks:
        ks.create_tenant("victim")
        ks.create_tenant("keeper")
        ks.rotate("victim")
        records = ks.backend.list_keys("victim")
        wraps = [w for r in records for _, w in r.wraps]
        ids = [r.key_id.encode() for r in records]
        before = _store_bytes(db)
        assert all(w in before for w in wraps)
        ks.shred("victim")
        after = _store_bytes(db)
        for needle in wraps + ids:
            assert needle not in after
        keeper = ks.backend.list_keys("keeper")
        assert all(w in after for r in keeper for _, w in r.wraps)
        assert ks._tenant_key("keeper", "customer").version == 1
        with pytest.raises(KeyDestroyedError):
            ks._tenant_key("victim", "customer")


def test_shred_failure_rolls_back(tmp_path: Path) -> None:
    """A shred that fails inside its transaction leaves every key of the tenant intact."""
    backend = SQLiteBackend(tmp_path / "k.db")
    backend.initialize()
    with KeyStore(
        backend,
        root=LocalRootKey(tmp_path / "r"),
    ) as ks:
        ks.create_tenant("acme")

        def deny(action: int, table: str | None, *_: object) -> int:
            if action == sqlite3.SQLITE_UPDATE and table == "tenants":
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK

        backend._conn.set_authorizer(deny)
        with pytest.raises(KeyStoreError):
            ks.shred("acme")
        backend._conn.set_authorizer(None)
        assert [r.version for r in backend.list_keys("acme")] == [1, 1]
        assert backend.get_tenant("acme").shredded_at is None
        assert backend.shred_list() == []
        assert backend.check() == []


_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from styku_crypto.keys import KeyStore
    db, flag, op = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    ks = KeyStore.open(db)
    backend = ks.backend
    if op == "rotate":
        real = ks._new_record
        def slow(tenant, purpose, version):
            rec = real(tenant, purpose, version)
            flag.write_text("in-transaction")
            time.sleep(60)
            return rec
        ks._new_record = slow
        ks.rotate("acme")
    elif op == "rewrap":
        real_replace = backend.replace_wraps
        def slow_replace(records):
            def run(conn):
                for r in records:
                    conn.execute("DELETE FROM key_wraps WHERE tenant = ? AND purpose = ?"
                                 " AND version = ?", (r.tenant, r.purpose, r.version))
                flag.write_text("in-transaction")
                time.sleep(60)
            backend._run_write(run)
        backend.replace_wraps = slow_replace
        ks.rewrap_root()
    elif op == "shred":
        def run(conn):
            conn.execute("DELETE FROM key_wraps WHERE tenant = ?", ("acme",))
            conn.execute("DELETE FROM tenant_keys WHERE tenant = ?", ("acme",))
            flag.write_text("in-transaction")
            time.sleep(60)
        backend._run_write(run)
    """
)


@pytest.mark.parametrize("op", ["rotate", "rewrap", "shred"])
def test_kill_mid_operation_leaves_store_consistent(tmp_path: Path, op: str) -> None:
    """A process SIGKILLed inside a rotate/rewrap/shred transaction leaves the store as before."""
    db = tmp_path / "k.db"
    with KeyStore.open(db) as ks:
        ks.create_tenant("acme")
        fpr = ks._tenant_key("acme", "customer").fingerprint
    flag = tmp_path / "flag"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(db), str(flag), op], env=env)
    try:
        deadline = time.monotonic() + 30
        while not flag.exists():
            assert child.poll() is None, "child exited early"
            assert time.monotonic() < deadline, "child never reached the transaction"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    with KeyStore.open(db, cache_ttl=0) as ks:
        assert ks.check(deep=True) == []
        assert [(k.purpose, k.version) for k in ks.describe("acme").keys] == [
            ("customer", 1),
            ("sensitive", 1),
        ]
        assert ks._tenant_key("acme", "customer").fingerprint == fpr
        assert ks.rotate("acme")[0].version == 2


def test_concurrent_rotation_across_processes(tmp_path: Path) -> None:
    """Several processes rotating one SQLite store get distinct, gap-free versions."""
    db = tmp_path / "k.db"
    with KeyStore.open(db) as ks:
        ks.create_tenant("acme")
    code = (
        "import sys\n"
        "from styku_crypto.keys import KeyStore\n"
        "with KeyStore.open(sys.argv[1]) as ks:\n"
        "    for _ in range(5):\n"
        "        ks.rotate('acme', purpose='customer')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [subprocess.Popen([sys.executable, "-c", code, str(db)], env=env) for _ in range(3)]
    assert [c.wait(60) for c in children] == [0, 0, 0]
    with KeyStore.open(db) as ks:
        versions = [k.version for k in ks.describe("acme").keys if k.purpose == "customer"]
        assert versions == list(range(1, 17))
        assert ks.check(deep=True) == []

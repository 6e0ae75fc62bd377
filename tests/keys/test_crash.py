"""Crash safety: SIGKILL a worker at random points during rotate, rewrap batches and backups.

The worker loops over: encrypt a record (its token appended to a log and
fsynced), rotate the tenant, re-wrap a batch of earlier tokens (envelope
``rewrap_many``), re-wrap the tenant keys at the root level (``rewrap_root``)
and write a backup. The test kills it with SIGKILL after a random delay, then
checks: every token in the log (complete lines only) decrypts to its payload,
``keys check`` passes, and every visible backup verifies (no half-written
backup is ever presented).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from styku_crypto._cli import main
from styku_crypto.envelope import Envelope
from styku_crypto.keys import DirectoryDestination, KeyStore, LocalRootKey
from styku_crypto.keys._restore import load_backup
from tests._support.postgres import PostgresServer

PROJECT = Path(__file__).resolve().parents[2]

_WORKER = textwrap.dedent(
    """
    import hashlib, os, sys
    sys.path.insert(0, {project!r})
    from styku_crypto.envelope import Envelope
    from styku_crypto.keys import KeyStore, LocalRootKey, backup

    store = KeyStore.open({store!r}, root=LocalRootKey({root!r}, create=False), cache_ttl=0)
    env = Envelope(store)
    log = open({log!r}, "a", encoding="ascii")
    ctx = {{"table": "crash"}}

    def record(tenant, i, token):
        line = f"{{tenant}} {{i}} {{token}}"
        check = hashlib.sha256(line.encode()).hexdigest()[:16]
        log.write(f"{{line}} {{check}}\\n")
        log.flush()
        os.fsync(log.fileno())

    tokens = []
    i = 0
    print("ready", flush=True)
    while True:
        i += 1
        tenant = "t%d" % (i % 2)
        payload = hashlib.sha256(b"payload-%d" % i).digest()
        token = env.encrypt_text(payload, tenant=tenant, context=ctx)
        record(tenant, i, token)
        tokens.append((tenant, i, token))
        store.rotate(tenant)
        batch = [t for t in tokens[-6:] if t[0] == tenant]
        for (tn, j, _), new in zip(batch, env.rewrap_many([t[2] for t in batch], tenant=tenant)):
            record(tn, j, new)
        if i % 3 == 0:
            store.rewrap_root(tenant=tenant)
        if i % 2 == 0:
            backup(store, [{backups!r}])
    """
)


def _verify(store_url: str, root: Path, log: Path, backups: Path) -> int:
    """Check everything a crash must not break; return how many tokens were verified."""
    with KeyStore.open(store_url, root=LocalRootKey(root, create=False), cache_ttl=0) as ks:
        assert ks.check(deep=True) == []
        env = Envelope(ks)
        verified = 0
        for line in log.read_text(encoding="ascii").splitlines(keepends=True):
            if not line.endswith("\n"):
                continue  # the line being written at the kill: never presented as good
            body, _, check = line.rstrip("\n").rpartition(" ")
            if hashlib.sha256(body.encode()).hexdigest()[:16] != check:
                continue
            tenant, index, token = body.split(" ")
            expect = hashlib.sha256(b"payload-%d" % int(index)).digest()
            assert env.decrypt_text(token, tenant=tenant, context={"table": "crash"}) == expect
            verified += 1
        for backup_id in DirectoryDestination(backups).list_backups():
            load_backup(backups, ks.providers, backup_id=backup_id)
    return verified


def _kill_rounds(store_url: str, tmp_path: Path, rounds: int, seed: int) -> int:
    rng = random.Random(seed)
    root = tmp_path / "root.key"
    with KeyStore.open(store_url, root=LocalRootKey(root)) as ks:
        ks.create_tenant("t0")
        ks.create_tenant("t1")
    log = tmp_path / "tokens.log"
    backups = tmp_path / "backups"
    script = _WORKER.format(
        project=str(PROJECT), store=store_url, root=str(root), log=str(log), backups=str(backups)
    )
    total = 0
    for _ in range(rounds):
        proc = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.8))
        if proc.poll() is not None:
            pytest.fail(f"worker died on its own: {proc.stderr.read() if proc.stderr else ''!r}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        total = _verify(store_url, root, log, backups)
    assert total > 0
    return total


def test_sigkill_during_work_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """SQLite: after each of 5 random SIGKILLs, all logged tokens decrypt and check passes."""
    store = tmp_path / "keys.db"
    _kill_rounds(str(store), tmp_path, rounds=5, seed=1234)
    code = main(
        ["keys", "check", "--store", str(store), "--root", f"local:{tmp_path / 'root.key'}"]
    )
    capsys.readouterr()
    assert code == 0
    visible = [p for p in (tmp_path / "backups").iterdir() if not p.name.startswith(".")]
    # A kill inside a backup may leave a hidden temp dir; a visible one is always complete.
    assert visible
    assert all((p / "manifest.json").is_file() for p in visible)


def test_sigkill_during_work_postgres(
    postgres_server: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PostgreSQL: after each of 3 random SIGKILLs, all logged tokens decrypt; check passes."""
    url = postgres_server.create_database()
    try:
        _kill_rounds(url, tmp_path, rounds=3, seed=99)
        code = main(["keys", "check", "--store", url, "--root", f"local:{tmp_path / 'root.key'}"])
        capsys.readouterr()
        assert code == 0
    finally:
        postgres_server.drop_database(url)

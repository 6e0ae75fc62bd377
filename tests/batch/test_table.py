"""rewrap_table on a real LocalCluster (2 worker processes) against the suite's PostgreSQL."""

from __future__ import annotations

import os
import pickle
import signal
import sqlite3
import threading
import time
from typing import Any

import psycopg
import pytest

from styku_crypto.batch import BatchReport, rewrap_table
from styku_crypto.batch._sql import TableJob, checkpoint_rows, run_partition
from styku_crypto.envelope import Envelope, EnvelopeSpec
from styku_crypto.exceptions import InvalidInputError
from tests.batch._tables import TENANTS, ctx, fill_pg, fill_sqlite, plaintext, read_pg

ROWS = 200_000  # the scale; benchmarks/compare_batch.py times the same path


def _versions(env: Envelope, token: Any) -> tuple[tuple[str, int], ...]:
    return env.inspect(token).key_versions


def _all_current_and_decrypt(env: Envelope, rows: list[tuple[int, str, Any]], size: int) -> None:
    for i, tenant, token in rows:
        assert not env.needs_rewrap(token, tenant=tenant), i
        assert env.decrypt(token, tenant=tenant, context=ctx(i)) == plaintext(i, size)


def test_rewrap_after_rotation_every_row_new_version_then_rerun_changes_nothing(
    postgres_url: str, keys: Any, client: Any
) -> None:
    """200k rows after a rotation: rewrapped on 2 workers, all decrypt; a rerun writes nothing."""
    fill_pg(postgres_url, keys.env, ROWS, size=32)
    for t in TENANTS:
        keys.store.rotate(t)
    report = rewrap_table(
        postgres_url,
        "scans",
        "token",
        spec=keys.spec,
        tenant_column="tenant",
        chunk_rows=10_000,
        client=client,
    )
    assert report.complete
    assert report.failed == 0
    assert report.seen == report.changed == ROWS
    assert len(report.per_worker) == 2  # both worker processes did work
    rows = read_pg(postgres_url)
    assert {_versions(keys.env, tok) for _, _, tok in rows} == {(("customer", 2),)}
    _all_current_and_decrypt(keys.env, rows, 32)
    with psycopg.connect(postgres_url) as conn:
        before = conn.execute("SELECT id, xmin::text FROM scans ORDER BY id").fetchall()
    again = rewrap_table(
        postgres_url,
        "scans",
        "token",
        spec=keys.spec,
        tenant_column="tenant",
        chunk_rows=10_000,
        client=client,
    )
    assert again.complete
    assert again.changed == 0
    assert again.current == ROWS
    with psycopg.connect(postgres_url) as conn:
        after = conn.execute("SELECT id, xmin::text FROM scans ORDER BY id").fetchall()
    assert before == after  # not one row version was written


def test_worker_sigkilled_mid_run_job_completes_exactly_once(
    postgres_url: str, keys: Any, client: Any
) -> None:
    """SIGKILL a worker mid-run: the job completes, each partition committed once, no row lost."""
    n = 40_000
    fill_pg(postgres_url, keys.env, n, size=32)
    for t in TENANTS:
        keys.store.rotate(t)
    pids = client.run(os.getpid)
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                rows = checkpoint_rows(postgres_url, "scans.token")
            except Exception:
                rows = []
            if sum(1 for r in rows if r[2] == "done") >= 3:
                victim = sorted(pids.values())[0]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=killer)
    thread.start()
    report = rewrap_table(
        postgres_url,
        "scans",
        "token",
        spec=keys.spec,
        tenant_column="tenant",
        chunk_rows=1_000,
        client=client,
    )
    thread.join()
    assert killed, "the worker was never killed"
    assert report.complete
    assert report.failed == 0
    cp = checkpoint_rows(postgres_url, "scans.token")
    assert len(cp) == n // 1_000
    assert all(r[2] == "done" for r in cp)
    assert sum(r[4] for r in cp) == n  # changed: every row exactly once, in exactly one partition
    assert sum(r[3] for r in cp) == n
    assert report.changed == n
    _all_current_and_decrypt(keys.env, read_pg(postgres_url), 32)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next tests


def test_concurrent_application_write_survives(postgres_url: str, keys: Any) -> None:
    """A row the application rewrites while its partition is in flight keeps the app's value."""
    fill_pg(postgres_url, keys.env, 50, size=32)
    keys.store.rotate("acme")
    keys.store.rotate("globex")
    app_token = keys.env.encrypt(b"written by the app", tenant="acme", context=ctx(10))
    psycopg.connect(postgres_url).execute("SELECT 1")
    job = TableJob(
        dsn=postgres_url,
        job="cas",
        table="scans",
        column="token",
        key="id",
        tenant=None,
        tenant_column="tenant",
        context_columns=(("id", "id"),),
        mode="rewrap",
        spec=keys.spec,
    )
    from styku_crypto.batch._sql import connect, plan_job

    conn = connect(postgres_url)
    plan, _ = plan_job(conn, postgres_url, job, chunk_rows=100, resume=False)
    conn.close()

    def app_writes() -> None:
        with psycopg.connect(postgres_url) as c:
            c.execute("UPDATE scans SET token = %s WHERE id = 10", (app_token,))

    result = run_partition(job, plan[0][0], plan[0][1], pause=app_writes)
    assert result.committed
    assert result.conflicts == 1
    assert result.changed == 49
    rows = {i: tok for i, _, tok in read_pg(postgres_url)}
    assert rows[10] == app_token
    assert keys.env.decrypt(rows[10], tenant="acme", context=ctx(10)) == b"written by the app"


def test_reencrypt_after_rotate_old_data_keys_appear_nowhere(
    postgres_url: str, keys: Any, client: Any
) -> None:
    """reencrypt: fresh data keys; no old wrapped key, commitment or payload byte run remains."""
    n = 2_000
    fill_pg(postgres_url, keys.env, n, size=64)
    old = read_pg(postgres_url)
    for t in TENANTS:
        keys.store.rotate(t)
    report = rewrap_table(
        postgres_url,
        "scans",
        "token",
        spec=keys.spec,
        tenant_column="tenant",
        mode="reencrypt",
        context_columns=["id"],
        chunk_rows=500,
        client=client,
    )
    assert report.complete
    assert report.changed == n
    assert report.failed == 0
    new = read_pg(postgres_url)
    _all_current_and_decrypt(keys.env, new, 64)
    blob = b"\x00".join(tok for _, _, tok in new)
    for _, _, tok in old:
        wrapped_and_commitment = tok[4 + 5 : 4 + 85]  # the layer after purpose + version
        assert wrapped_and_commitment not in blob
        assert tok[-32:] not in blob  # and no run of the old payload


def test_tampered_and_wrong_tenant_tokens_reported_with_keys(
    postgres_url: str, keys: Any, client: Any
) -> None:
    """A tampered token and one under the wrong tenant are reported by key; the rest are done."""
    n = 1_000
    fill_pg(postgres_url, keys.env, n, size=32)
    for t in TENANTS:
        keys.store.rotate(t)
    with psycopg.connect(postgres_url) as conn:
        tok = bytearray(conn.execute("SELECT token FROM scans WHERE id = 17").fetchone()[0])
        tok[30] ^= 1  # inside the wrapped data key
        conn.execute("UPDATE scans SET token = %s WHERE id = 17", (bytes(tok),))
        conn.execute("UPDATE scans SET tenant = 'acme' WHERE id = 501")  # globex's token
    report = rewrap_table(
        postgres_url,
        "scans",
        "token",
        spec=keys.spec,
        tenant_column="tenant",
        chunk_rows=200,
        client=client,
    )
    assert sorted((f.key, f.reason) for f in report.failures) == [
        ("17", "tamper"),
        ("501", "tamper"),
    ]
    assert report.changed == n - 2
    assert report.partitions_done == report.partitions


def test_sqlite_table_and_resume(tmp_path: Any, keys: Any, client: Any) -> None:
    """SQLite works the same; resume=True after completion finds nothing left to do."""
    db = str(tmp_path / "app.db")
    fill_sqlite(db, keys.env, 3_000)
    for t in TENANTS:
        keys.store.rotate(t)
    dsn = f"sqlite:///{db}"
    report = rewrap_table(
        dsn, "scans", "token", spec=keys.spec, tenant_column="tenant", chunk_rows=700, client=client
    )
    assert report.complete
    assert report.changed == 3_000
    again = rewrap_table(
        dsn,
        "scans",
        "token",
        spec=keys.spec,
        tenant_column="tenant",
        chunk_rows=700,
        client=client,
        resume=True,
    )
    assert again.partitions_skipped == again.partitions == 5
    assert again.seen == 0
    conn = sqlite3.connect(db)
    rows = [(i, t, tok) for i, t, tok in conn.execute("SELECT id, tenant, token FROM scans")]
    _all_current_and_decrypt(keys.env, rows, 64)


def test_batch_import_does_not_import_dask() -> None:
    """Core stays Dask-free: importing styku_crypto.batch loads no dask module."""
    import subprocess
    import sys

    code = (
        "import sys, styku_crypto, styku_crypto.batch;"
        "print(any(m.startswith(('dask', 'distributed')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_spec_is_picklable_and_secret_free(tmp_path: Any, keys: Any) -> None:
    """A spec pickles (the envelope does not), holds no key bytes, and refuses passwords."""
    blob = pickle.dumps(keys.spec)
    root_bytes = (tmp_path / "root.key").read_bytes()
    assert root_bytes not in blob
    assert root_bytes[-16:] not in blob
    assert pickle.loads(blob) == keys.spec
    with pytest.raises(Exception):
        pickle.dumps(keys.env)
    with pytest.raises(InvalidInputError):
        EnvelopeSpec("postgresql://app:hunter2@db/keys")
    with pytest.raises(InvalidInputError):
        rewrap_table("postgresql://app:hunter2@db/app", "t", "c", spec=keys.spec, tenant="a")
    with pytest.raises(InvalidInputError):
        rewrap_table("sqlite:///x.db", "t; DROP TABLE t", "c", spec=keys.spec, tenant="a")
    assert isinstance(BatchReport("j", "rewrap").to_dict(), dict)


def test_partition_and_finished_events(tmp_path: Any, keys: Any, client: Any) -> None:
    """One envelope.batch.partition event per partition and one envelope.batch.finished."""
    import logging

    db = str(tmp_path / "app.db")
    fill_sqlite(db, keys.env, 900)
    keys.store.rotate("acme")
    seen: list[logging.LogRecord] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger = logging.getLogger("styku_crypto.envelope")
    handler = Grab(level=logging.INFO)
    logger.addHandler(handler)
    try:
        report = rewrap_table(
            f"sqlite:///{db}",
            "scans",
            "token",
            spec=keys.spec,
            tenant_column="tenant",
            chunk_rows=300,
            client=client,
        )
    finally:
        logger.removeHandler(handler)
    names = [r.getMessage() for r in seen]
    assert names.count("envelope.batch.partition") == report.partitions == 3
    assert names.count("envelope.batch.finished") == 1
    assert report.changed == 450  # only acme rotated: globex rows are current

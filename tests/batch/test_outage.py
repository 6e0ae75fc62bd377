"""A root outage during a batch job: bounded retries, a clean stop, then a resume that completes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from styku_crypto.batch import rewrap_table
from styku_crypto.batch._sql import checkpoint_rows
from styku_crypto.envelope import Envelope, EnvelopeSpec
from styku_crypto.keys import KeyStore
from tests._support.moto_server import kms_client
from tests.batch._tables import TENANTS, ctx, fill_sqlite, plaintext


def _kms_keys(
    tmp_path: Path, moto_server: Any, fault_proxy: Any
) -> tuple[EnvelopeSpec, KeyStore, Envelope]:
    """A spec, store and envelope under a fresh moto KMS key reached through the fault proxy."""
    arn = kms_client(moto_server.endpoint).create_key()["KeyMetadata"]["Arn"]
    spec = EnvelopeSpec(
        f"sqlite:///{tmp_path}/keys.db",
        roots=(f"aws-kms:{arn}?region=us-east-1&endpoint={fault_proxy.endpoint}",),
    )
    store = KeyStore.open(spec.store, roots=list(spec.roots))
    return spec, store, Envelope(store)


def test_root_outage_bounded_retries_clean_stop_then_resume(
    tmp_path: Path, client: Any, moto_server: Any, fault_proxy: Any
) -> None:
    """KMS down: each partition retries a bounded number of times, the job stops, nothing is
    half-written, the checkpoint keeps the plan; with KMS back, --resume completes it."""
    spec, store, env = _kms_keys(tmp_path, moto_server, fault_proxy)
    for t in TENANTS:
        store.create_tenant(t)
    db = tmp_path / "app.db"
    fill_sqlite(str(db), env, 2_000)
    for t in TENANTS:
        store.rotate(t)
    original = db.read_bytes()
    fault_proxy.set_mode("down")
    fault_proxy.reset_counts()
    dsn = f"sqlite:///{db}"
    report = rewrap_table(
        dsn,
        "scans",
        "token",
        spec=spec,
        tenant_column="tenant",
        chunk_rows=500,
        client=client,
        retries=2,
    )
    assert not report.complete
    assert report.stopped == "root_unavailable"
    assert report.changed == 0
    assert all(r[2] == "pending" for r in checkpoint_rows(dsn, "scans.token"))
    # Bounded: at most (retries + 1) attempts per in-flight partition, each one
    # bounded by the provider's own retry policy; never an endless loop.
    assert sum(fault_proxy.calls.values()) < 200
    fault_proxy.set_mode("ok")
    resumed = rewrap_table(
        dsn,
        "scans",
        "token",
        spec=spec,
        tenant_column="tenant",
        chunk_rows=500,
        client=client,
        resume=True,
    )
    assert resumed.complete
    assert resumed.changed == 2_000
    import sqlite3

    conn = sqlite3.connect(db)
    for i, t, tok in conn.execute("SELECT id, tenant, token FROM scans"):
        assert not env.needs_rewrap(tok, tenant=t)
        assert env.decrypt(tok, tenant=t, context=ctx(i)) == plaintext(i, 64)
    assert original  # the first run wrote no token (checked through the pending checkpoint)
    store.close()


def test_root_outage_mid_run_keeps_what_committed_and_resume_does_the_rest(
    tmp_path: Path, client: Any, moto_server: Any, fault_proxy: Any
) -> None:
    """KMS dies after three partitions committed: those stay done (rows on the new version),
    the job stops cleanly, untouched rows keep their exact bytes; resume finishes the rest,
    and across both runs every row is changed exactly once."""
    import sqlite3

    spec, store, env = _kms_keys(tmp_path, moto_server, fault_proxy)
    tenants = [f"t{i:02d}" for i in range(16)]  # one tenant per partition: each needs KMS
    for t in tenants:
        store.create_tenant(t)
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE scans (id INTEGER PRIMARY KEY, tenant TEXT, token BLOB)")
    conn.executemany(
        "INSERT INTO scans VALUES (?, ?, ?)",
        [
            (
                i,
                tenants[i // 50],
                env.encrypt(plaintext(i, 64), tenant=tenants[i // 50], context=ctx(i)),
            )
            for i in range(800)
        ],
    )
    conn.commit()
    for t in tenants:
        store.rotate(t)
    before = dict(conn.execute("SELECT id, token FROM scans"))
    dsn = f"sqlite:///{db}"

    def outage_after_three(done: int, total: int) -> None:
        # Runs in the driver before the next partition is submitted.
        if done >= 3:
            fault_proxy.set_mode("down")

    first = rewrap_table(
        dsn,
        "scans",
        "token",
        spec=spec,
        tenant_column="tenant",
        chunk_rows=50,
        client=client,
        retries=1,
        progress=outage_after_three,
    )
    assert not first.complete
    assert first.stopped == "root_unavailable"
    cp = checkpoint_rows(dsn, "scans.token")
    done = [r for r in cp if r[2] == "done"]
    assert 3 <= len(done) < len(cp)
    assert first.changed == sum(r[4] for r in done) == 50 * len(done)
    rows = {i: (t, tok) for i, t, tok in conn.execute("SELECT id, tenant, token FROM scans")}
    done_ranges = [(r[0], r[1]) for r in done]
    committed = {i for i in rows if any(lo <= i < (hi or 1 << 62) for lo, hi in done_ranges)}
    for i, (_, tok) in rows.items():
        if i not in committed:
            assert tok == before[i]  # pending: exactly the old bytes, nothing half-written
    fault_proxy.set_mode("ok")  # the driver's own checks below need KMS too
    for i in committed:
        assert not env.needs_rewrap(rows[i][1], tenant=rows[i][0])  # on the new version
    resumed = rewrap_table(
        dsn,
        "scans",
        "token",
        spec=spec,
        tenant_column="tenant",
        chunk_rows=50,
        client=client,
        resume=True,
    )
    assert resumed.complete
    assert resumed.partitions_skipped == len(done)
    assert first.changed + resumed.changed == 800  # every row exactly once
    assert sum(r[4] for r in checkpoint_rows(dsn, "scans.token")) == 800
    for i, t, tok in conn.execute("SELECT id, tenant, token FROM scans"):
        assert not env.needs_rewrap(tok, tenant=t)
        assert env.decrypt(tok, tenant=t, context=ctx(i)) == plaintext(i, 64)
    conn.close()
    store.close()

"""The tuned PostgreSQL write path gives the general path's bytes, and its kept connections heal.

``rewrap_table`` reads in the binary protocol, fills its temporary table with a
binary ``COPY`` (uncompressed, ``PLAIN`` or ``EXTERNAL`` by token width) and
keeps one connection per worker thread (see ``styku_crypto.batch._sql``). The
general path is ``Envelope.rewrap`` itself: its wraps are deterministic
(AES-SIV), so every stored token must equal ``env.rewrap(old token)`` byte for
byte, whatever the column type, token width or data class.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from styku_crypto.batch._sql import (
    TableJob,
    _temp_storage,
    connect,
    partition_connection,
    plan_job,
    run_partition,
)
from styku_crypto.envelope import DataClass
from styku_crypto.envelope._format import from_text, to_text
from tests.batch._tables import TENANTS, ctx


def _job(url: str, keys: Any, name: str) -> TableJob:
    return TableJob(
        dsn=url,
        job=name,
        table="scans",
        column="token",
        key="id",
        tenant=None,
        tenant_column="tenant",
        context_columns=(),
        mode="rewrap",
        spec=keys.spec,
    )


def _run_all_partitions(url: str, job: TableJob, chunk: int) -> int:
    conn = connect(url)
    try:
        plan, _ = plan_job(conn, url, job, chunk_rows=chunk, resume=False)
    finally:
        conn.close()
    changed = 0
    for lo, hi in plan:
        result = run_partition(job, lo, hi)
        assert result.committed
        changed += result.changed
    return changed


def _fill(url: str, keys: Any, rows: list[tuple[int, int, bool]], *, text: bool, key: str) -> None:
    kind = "text" if text else "bytea"
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS scans")
        cur.execute(f"CREATE TABLE scans (id {key} PRIMARY KEY, tenant text, token {kind})")
        for i, size, sensitive in rows:
            tenant = TENANTS[i % 2]
            dc = DataClass.SENSITIVE if sensitive else DataClass.CUSTOMER
            data = bytes([i % 251]) * size
            tok: Any = keys.env.encrypt(data, tenant=tenant, context=ctx(i), data_class=dc)
            if text:
                tok = to_text(tok)
            cur.execute("INSERT INTO scans VALUES (%s, %s, %s)", (i, tenant, tok))


@pytest.mark.parametrize(
    ("text", "key", "sizes"),
    [
        (False, "bigint", [16, 1024]),
        (False, "integer", [1024, 3000, 6000]),  # 6000 B tokens: two pass a page, EXTERNAL
        (True, "bigint", [16, 1024, 4000]),
    ],
)
def test_tuned_write_path_stores_exactly_what_rewrap_returns(
    postgres_url: str, keys: Any, text: bool, key: str, sizes: list[int]
) -> None:
    """Every stored token is ``Envelope.rewrap``'s output for the old one, byte for byte."""
    rows = [(i, sizes[i % len(sizes)], i % 3 == 0) for i in range(60)]
    _fill(postgres_url, keys, rows, text=text, key=key)
    for t in TENANTS:
        keys.store.rotate(t)
    with psycopg.connect(postgres_url) as conn:
        before = conn.execute("SELECT id, tenant, token FROM scans ORDER BY id").fetchall()
    expected = {i: keys.env.rewrap(tok, tenant=t) for i, t, tok in before}
    changed = _run_all_partitions(postgres_url, _job(postgres_url, keys, f"wp{key}{text}"), 25)
    assert changed == len(rows)
    with psycopg.connect(postgres_url) as conn:
        after = dict(conn.execute("SELECT id, token FROM scans").fetchall())
    assert after == expected
    for i, size, _ in rows:
        tok = from_text(after[i]) if text else after[i]
        got = keys.env.decrypt(tok, tenant=TENANTS[i % 2], context=ctx(i))
        assert got == bytes([i % 251]) * size


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(sizes=st.lists(st.integers(min_value=0, max_value=7000), min_size=1, max_size=8))
def test_tuned_write_path_any_token_widths(postgres_url: str, keys: Any, sizes: list[int]) -> None:
    """Property: for any mix of plaintext sizes in one partition, the bytes are rewrap's."""
    rows = [(i, s, False) for i, s in enumerate(sizes)]
    _fill(postgres_url, keys, rows, text=False, key="bigint")
    keys.store.rotate("acme")
    keys.store.rotate("globex")
    with psycopg.connect(postgres_url) as conn:
        before = conn.execute("SELECT id, tenant, token FROM scans").fetchall()
    expected = {i: keys.env.rewrap(bytes(tok), tenant=t) for i, t, tok in before}
    _run_all_partitions(postgres_url, _job(postgres_url, keys, "wphyp"), 1_000)
    with psycopg.connect(postgres_url) as conn:
        assert dict(conn.execute("SELECT id, token FROM scans").fetchall()) == expected


def test_temp_storage_inline_only_when_a_row_fits_a_page() -> None:
    """PLAIN (inline) while two tokens fit a page; EXTERNAL (out of line, uncompressed) past it."""
    assert _temp_storage([]) == "PLAIN"
    assert _temp_storage([(1, b"x" * 1100, b"y" * 1100)]) == "PLAIN"
    assert _temp_storage([(1, b"x" * 1100, b"y" * 1100), (2, b"x" * 4000, b"y" * 4000)]) == (
        "EXTERNAL"
    )


def test_kept_connection_killed_by_the_server_is_replaced(postgres_url: str, keys: Any) -> None:
    """An operator terminates the kept session between partitions: the next partition reconnects."""
    rows = [(i, 64, False) for i in range(40)]
    _fill(postgres_url, keys, rows, text=False, key="bigint")
    for t in TENANTS:
        keys.store.rotate(t)
    job = _job(postgres_url, keys, "kept")
    conn = connect(postgres_url)
    plan, _ = plan_job(conn, postgres_url, job, chunk_rows=10, resume=False)
    conn.close()
    assert run_partition(job, *plan[0]).changed == 10
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'styku-batch' AND pid <> pg_backend_pid()) s"
        ).fetchone()
    assert killed is not None
    assert killed[0] >= 1  # a session was kept, and is now dead
    for lo, hi in plan[1:]:
        assert run_partition(job, lo, hi).changed == 10


def test_partition_that_raises_does_not_keep_its_connection(postgres_url: str, keys: Any) -> None:
    """A partition that raises closes its session instead of keeping it; the rows are untouched."""
    rows = [(i, 64, False) for i in range(20)]
    _fill(postgres_url, keys, rows, text=False, key="bigint")
    keys.store.rotate("acme")
    job = _job(postgres_url, keys, "raise")
    conn = connect(postgres_url)
    plan, _ = plan_job(conn, postgres_url, job, chunk_rows=20, resume=False)
    conn.close()
    with psycopg.connect(postgres_url) as c:
        before = c.execute("SELECT id, token FROM scans ORDER BY id").fetchall()

    class BoomError(Exception):
        pass

    def boom() -> None:
        raise BoomError

    with pytest.raises(BoomError):
        run_partition(job, *plan[0], pause=boom)
    with partition_connection(postgres_url) as kept:
        # The thread's kept connection (if any) is a fresh, idle one.
        assert kept.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with psycopg.connect(postgres_url) as c:
        assert c.execute("SELECT id, token FROM scans ORDER BY id").fetchall() == before
    assert run_partition(job, *plan[0]).changed == 10  # the acme rows

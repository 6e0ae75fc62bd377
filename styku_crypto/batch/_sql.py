"""Tables: key-range partitions, the checkpoint table, and compare-and-set write-back.

Guarantees, per partition (one worker, one transaction):

* rows are read, processed in memory, and written back with one
  ``UPDATE ... FROM`` a temporary table (filled with ``COPY`` on PostgreSQL,
  one ``executemany`` on SQLite), never a row at a time;
* the ``UPDATE`` matches on the key **and the old token bytes**
  (compare-and-set): a row an application changed meanwhile is left as the
  application wrote it and counted as a conflict;
* the same transaction marks the partition done in the checkpoint table, but
  only if it was still pending: a partition re-run by a second worker (Dask
  rescheduled it after losing the first one) rolls back instead of counting
  twice. A worker killed before the commit leaves nothing behind.

Identifiers (table, columns) are checked against ``[A-Za-z_][A-Za-z0-9_]*``
and quoted; values always travel as bound parameters.
"""

# Every identifier passes ident() (letters, digits, "_", quoted); values are bound parameters.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from styku_crypto._extras import require
from styku_crypto.batch._report import BatchFailure, PartitionResult
from styku_crypto.batch._work import TokenError, failure_reason, open_for_run, process_token
from styku_crypto.envelope._envelope import Envelope
from styku_crypto.envelope._spec import EnvelopeSpec
from styku_crypto.exceptions import InvalidInputError, RootKeyUnavailableError

__all__ = [
    "CHECKPOINT_TABLE",
    "TableJob",
    "connect",
    "plan_job",
    "run_partition",
]

#: The checkpoint table, created in the database being processed.
CHECKPOINT_TABLE = "styku_batch_checkpoints"

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")


def ident(name: str) -> str:
    """*name* double-quoted, after checking it is a plain SQL identifier.

    Raises:
        InvalidInputError: anything but letters, digits and underscores.
    """
    if not isinstance(name, str) or not _IDENT.match(name):
        raise InvalidInputError("table and column names are letters, digits and '_' only")
    return f'"{name}"'


def check_dsn(dsn: str) -> str:
    """*dsn* if it is a ``postgresql://`` or ``sqlite:///`` URL without a password.

    Raises:
        InvalidInputError: another scheme, or a password in the URL (it would be
            pickled to every worker: use ``PGPASSWORD`` or ``.pgpass`` there).
    """
    if not isinstance(dsn, str):
        raise InvalidInputError("dsn is a postgresql:// or sqlite:/// URL")
    if dsn.startswith("sqlite:///"):
        return dsn
    if not dsn.startswith(("postgresql://", "postgres://")):
        raise InvalidInputError("dsn is a postgresql:// or sqlite:/// URL")
    if urlsplit(dsn).password is not None:
        raise InvalidInputError(
            "the dsn must not carry a password: set PGPASSWORD or a .pgpass file on every worker"
        )
    return dsn


def is_sqlite(dsn: str) -> bool:
    return dsn.startswith("sqlite:///")


def connect(dsn: str) -> Any:
    """A new connection (autocommit off) to the database *dsn* names."""
    if is_sqlite(dsn):
        conn = sqlite3.connect(dsn[len("sqlite:///") :], timeout=60, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 60000")
        return conn
    psycopg = require("psycopg", extra="postgres")
    return psycopg.connect(dsn, application_name="styku-batch")


_KEPT = threading.local()


@contextlib.contextmanager
def partition_connection(dsn: str) -> Iterator[Any]:
    """A connection for one partition, kept for this thread's next one (PostgreSQL).

    Why: each new PostgreSQL connection is a new server process that reloads
    its catalog caches and creates its temporary schema at the first temporary
    table, about 4 us of server CPU per row at 10,000-row partitions
    (``benchmarks/compare_batch.py``). A kept connection is probed with
    ``SELECT 1`` before reuse and replaced when dead (a restarted server, a
    terminated session). A partition that raises closes its connection (its
    state is unknown); a worker that dies takes its connection along, and the
    server rolls back what that session held. SQLite connections are not kept:
    opening one costs microseconds.
    """
    if is_sqlite(dsn):
        with closing(connect(dsn)) as conn:
            yield conn
        return
    kept: dict[str, Any] = _KEPT.__dict__.setdefault("connections", {})
    conn = kept.pop(dsn, None)
    if conn is not None:
        try:
            conn.execute("SELECT 1")
            conn.rollback()
        except Exception:
            with contextlib.suppress(Exception):
                conn.close()
            conn = None
    if conn is None:
        conn = connect(dsn)
    try:
        yield conn
    except BaseException:
        with contextlib.suppress(Exception):
            conn.close()
        raise
    psycopg = require("psycopg", extra="postgres")
    if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        kept[dsn] = conn
    else:
        with contextlib.suppress(Exception):
            conn.close()


def _ph(dsn: str) -> str:
    return "?" if is_sqlite(dsn) else "%s"


@dataclass(frozen=True, slots=True)
class TableJob:
    """Everything a worker needs for one table job (picklable, secret-free)."""

    dsn: str
    job: str
    table: str
    column: str
    key: str
    tenant: str | None
    tenant_column: str | None
    context_columns: tuple[tuple[str, str], ...]
    mode: str
    spec: EnvelopeSpec
    retries: int = 3
    backoff: float = 0.5
    #: This run's identity (fresh per job object): see :func:`open_for_run`.
    run: str = field(default_factory=lambda: uuid.uuid4().hex)


def _begin(conn: Any, dsn: str) -> None:
    if is_sqlite(dsn):
        conn.execute("BEGIN IMMEDIATE")


def _commit(conn: Any) -> None:
    conn.commit() if not isinstance(conn, sqlite3.Connection) else conn.execute("COMMIT")


def _rollback(conn: Any) -> None:
    if isinstance(conn, sqlite3.Connection):
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    else:
        conn.rollback()


def ensure_checkpoint_table(conn: Any, dsn: str) -> None:
    """Create the checkpoint table when missing (the only thing a job creates)."""
    blob = "BIGINT" if not is_sqlite(dsn) else "INTEGER"
    sql = (
        f"CREATE TABLE IF NOT EXISTS {CHECKPOINT_TABLE} ("
        " job TEXT NOT NULL, lo " + blob + " NOT NULL, hi " + blob + ","
        " status TEXT NOT NULL, seen " + blob + " NOT NULL DEFAULT 0,"
        " changed " + blob + " NOT NULL DEFAULT 0, current_rows " + blob + " NOT NULL DEFAULT 0,"
        " conflicts " + blob + " NOT NULL DEFAULT 0, failed " + blob + " NOT NULL DEFAULT 0,"
        " worker TEXT, finished_at DOUBLE PRECISION, failures TEXT, PRIMARY KEY (job, lo))"
    )
    _begin(conn, dsn)
    conn.execute(sql)
    _commit(conn)


def plan_job(
    conn: Any, dsn: str, job: TableJob, *, chunk_rows: int, resume: bool
) -> tuple[list[tuple[int, int | None]], int]:
    """The partitions still to do, and how many were already done.

    A new job (``resume=False``) replaces any earlier checkpoint rows of the same
    name and plans key ranges of *chunk_rows* rows each (one scan of the key
    index); ``resume=True`` keeps the stored plan, so partition boundaries do not
    move between runs. The last range is open-ended (rows inserted later are
    included). Returns ``([(lo, hi_or_None), ...], done)``.
    """
    ph = _ph(dsn)
    ensure_checkpoint_table(conn, dsn)
    with closing(conn.cursor()) as cur:
        if resume:
            cur.execute(
                f"SELECT lo, hi, status FROM {CHECKPOINT_TABLE} WHERE job = {ph} ORDER BY lo",
                (job.job,),
            )
            rows = cur.fetchall()
            _rollback(conn)
            if rows:
                todo = [
                    (int(lo), None if hi is None else int(hi))
                    for lo, hi, st in rows
                    if st != "done"
                ]
                return todo, sum(1 for r in rows if r[2] == "done")
        k, t = ident(job.key), ident(job.table)
        cur.execute(
            f"SELECT {k} FROM (SELECT {k}, row_number() OVER (ORDER BY {k}) AS rn FROM {t}) s"
            f" WHERE (rn - 1) % {int(chunk_rows)} = 0 ORDER BY {k}"
        )
        starts = [int(r[0]) for r in cur.fetchall()]
        _rollback(conn)
        plan: list[tuple[int, int | None]] = [
            (lo, starts[i + 1] if i + 1 < len(starts) else None) for i, lo in enumerate(starts)
        ]
        _begin(conn, dsn)
        cur.execute(f"DELETE FROM {CHECKPOINT_TABLE} WHERE job = {ph}", (job.job,))
        cur.executemany(
            f"INSERT INTO {CHECKPOINT_TABLE} (job, lo, hi, status)"
            f" VALUES ({ph}, {ph}, {ph}, 'pending')",
            [(job.job, lo, hi) for lo, hi in plan],
        )
        _commit(conn)
    return plan, 0


def checkpoint_rows(dsn: str, job: str) -> list[tuple[Any, ...]]:
    """``(lo, hi, status, seen, changed, current, conflicts, failed, worker)`` per partition."""
    ph = _ph(dsn)
    with closing(connect(dsn)) as conn, closing(conn.cursor()) as cur:
        cur.execute(
            "SELECT lo, hi, status, seen, changed, current_rows, conflicts, failed, worker"
            f" FROM {CHECKPOINT_TABLE} WHERE job = {ph} ORDER BY lo",
            (job,),
        )
        return [tuple(r) for r in cur.fetchall()]


def _context(row: Sequence[Any], base: int, columns: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return {name: str(row[base + i]) for i, (name, _) in enumerate(columns)}


def _stored(cur: Any, job: TableJob, lo: int, name: str) -> PartitionResult | None:
    """The committed result of partition *lo* (``replayed``), or ``None`` while pending.

    A task Dask reruns after losing its worker finds the partition done when the
    first attempt committed before dying: its counts come from the checkpoint,
    so the report counts every row exactly once.
    """
    ph = _ph(job.dsn)
    cur.execute(
        "SELECT status, seen, changed, current_rows, conflicts, worker, failures"
        f" FROM {CHECKPOINT_TABLE} WHERE job = {ph} AND lo = {ph}",
        (job.job, lo),
    )
    got = cur.fetchone()
    if got is None:
        return PartitionResult(name, committed=False, stop_reason="done")
    if got[0] != "done":
        return None
    failures = tuple(BatchFailure(str(k), str(r)) for k, r in json.loads(got[6] or "[]"))
    return PartitionResult(
        name,
        seen=int(got[1]),
        changed=int(got[2]),
        current=int(got[3]),
        conflicts=int(got[4]),
        failures=failures,
        worker=str(got[5] or ""),
        replayed=True,
    )


def run_partition(
    job: TableJob,
    lo: int,
    hi: int | None,
    *,
    worker: str = "",
    pause: Callable[[], None] | None = None,
) -> PartitionResult:
    """Process the rows with ``lo <= key < hi`` and commit them with the checkpoint.

    Tokens that fail are reported with their keys and the partition goes on. A
    root outage is retried ``job.retries`` times with doubling back-off, then the
    partition returns uncommitted with ``stop_reason="root_unavailable"``.
    *pause* (tests) runs between processing and the write transaction.
    """
    started = time.monotonic()
    name = f"{lo}..{'' if hi is None else hi}"
    dsn, ph = job.dsn, _ph(job.dsn)
    k, t, c = ident(job.key), ident(job.table), ident(job.column)
    extra = []
    if job.tenant_column is not None:
        extra.append(ident(job.tenant_column))
    extra.extend(ident(col) for _, col in job.context_columns)
    select = ", ".join([k, c, *extra])
    where = f"{k} >= {ph}" + ("" if hi is None else f" AND {k} < {ph}")
    params: tuple[Any, ...] = (lo,) if hi is None else (lo, hi)
    with partition_connection(dsn) as conn:
        with closing(conn.cursor()) as cur:
            stored = _stored(cur, job, lo, name)
            if stored is not None:
                _rollback(conn)
                return stored
        rows, types = _read_rows(
            conn, f"SELECT {select} FROM {t} WHERE {where} ORDER BY {k}", params
        )
        attempt = 0
        while True:
            try:
                updates, failures, current = _process_rows(
                    open_for_run(job.spec, job.run), job, rows
                )
                break
            except RootKeyUnavailableError:
                attempt += 1
                if attempt > job.retries:
                    return PartitionResult(
                        name,
                        seen=len(rows),
                        worker=worker,
                        seconds=time.monotonic() - started,
                        committed=False,
                        stop_reason="root_unavailable",
                    )
                time.sleep(job.backoff * 2 ** (attempt - 1))
        if pause is not None:
            pause()
        changed = _write_back(conn, job, updates, types=types, lo=lo, hi=hi)
        conflicts = len(updates) - changed
        result = PartitionResult(
            name,
            seen=len(rows),
            changed=changed,
            current=current,
            conflicts=conflicts,
            failures=tuple(failures),
            worker=worker,
            seconds=time.monotonic() - started,
        )
        with closing(conn.cursor()) as cur:
            cur.execute(
                f"UPDATE {CHECKPOINT_TABLE} SET status = 'done', seen = {ph}, changed = {ph},"
                f" current_rows = {ph}, conflicts = {ph}, failed = {ph}, worker = {ph},"
                f" finished_at = {ph}, failures = {ph}"
                f" WHERE job = {ph} AND lo = {ph} AND status = 'pending'",
                (
                    result.seen,
                    changed,
                    current,
                    conflicts,
                    len(failures),
                    worker,
                    time.time(),
                    json.dumps([[f.key, f.reason] for f in failures]),
                    job.job,
                    lo,
                ),
            )
            if cur.rowcount != 1:
                # Another attempt committed this partition first: undo ours, report theirs.
                _rollback(conn)
                with closing(conn.cursor()) as again:
                    stored = _stored(again, job, lo, name)
                _rollback(conn)
                return stored or PartitionResult(name, committed=False, stop_reason="done")
        _commit(conn)
        return result


def _process_rows(
    env: Envelope, job: TableJob, rows: Sequence[Sequence[Any]]
) -> tuple[list[tuple[Any, Any, Any]], list[BatchFailure], int]:
    """``(updates, failures, current)`` for a partition's rows, in memory.

    *updates* holds ``(key, old token, new token)`` for the write-back; a
    token that is refused becomes a failure with its key, and the loop goes on.

    Raises:
        RootKeyUnavailableError: the root is down (the caller retries or stops).
    """
    updates: list[tuple[Any, Any, Any]] = []
    failures: list[BatchFailure] = []
    current = 0
    by_column = job.tenant_column is not None
    ctx_base = 3 if by_column else 2
    columns = job.context_columns
    mode = job.mode
    fixed: dict[str, str] = {}
    for row in rows:
        tenant = str(row[2]) if by_column else job.tenant
        assert tenant is not None
        token = row[1]
        if isinstance(token, memoryview):
            token = bytes(token)
        try:
            new = process_token(
                env,
                token,
                tenant=tenant,
                context=_context(row, ctx_base, columns) if columns else fixed,
                mode=mode,
            )
        except TokenError as exc:
            failures.append(BatchFailure(str(row[0]), failure_reason(exc)))
            continue
        if new is None:
            current += 1
        else:
            updates.append((row[0], token, new))
    return updates, failures, current


def _read_rows(conn: Any, sql: str, params: tuple[Any, ...]) -> tuple[list[Any], tuple[Any, ...]]:
    """The partition's rows, and the key's and token column's type (PostgreSQL OIDs).

    PostgreSQL rows come in the binary protocol: a ``bytea`` token arrives as
    its bytes, not as hex text the server encodes and the client decodes (3.7x
    less time per 1 KiB row, measured in ``benchmarks/compare_batch.py``'s
    notes). The read transaction ends before returning, so nothing is held
    while the worker computes.
    """
    if isinstance(conn, sqlite3.Connection):
        with closing(conn.cursor()) as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        _rollback(conn)
        return rows, ()
    with conn.cursor(binary=True) as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
        types = (cur.description[0].type_code, cur.description[1].type_code)
    _rollback(conn)
    return rows, types


def _work_mem_kib(updates: list[tuple[Any, Any, Any]]) -> int:
    """``work_mem`` (KiB) for one partition's ``UPDATE ... FROM``: 4x its bytes, 64 MiB to 2 GiB.

    With PostgreSQL's default 4 MiB, joining a 10,000-row partition of 1 KiB
    tokens sorts the temporary table on disk (45 MB external sort per
    partition). The setting is ``SET LOCAL``: it ends with the transaction.
    """
    size = sum(len(old) + len(new) for _, old, new in updates)
    return max(64 << 10, min(2 << 20, (4 * size) >> 10))


def _temp_storage(updates: list[tuple[Any, Any, Any]]) -> str:
    """The ``STORAGE`` of the temporary table's token columns for these rows.

    Why: a row of the temporary table holds two tokens, so 1 KiB tokens pass
    PostgreSQL's 2 KB TOAST threshold, and the default (``EXTENDED``) first
    tries to compress them: ciphertext never compresses, and the failed
    attempt made the ``COPY`` 4.5x slower (205 ms against 45 ms per 10,000
    rows). ``PLAIN`` stores rows inline, uncompressed, when every row fits a
    page; larger tokens go out of line, still uncompressed (``EXTERNAL``).
    """
    widest = max((len(old) + len(new) for _, old, new in updates), default=0)
    return "PLAIN" if widest <= _PLAIN_ROW_LIMIT else "EXTERNAL"


#: Bytes of two tokens that still fit one 8 KiB heap page with the tuple header,
#: the key and the varlena headers, with room to spare.
_PLAIN_ROW_LIMIT = 7_600


def _write_back(
    conn: Any,
    job: TableJob,
    updates: list[tuple[Any, Any, Any]],
    *,
    types: tuple[Any, ...],
    lo: int,
    hi: int | None,
) -> int:
    """Open the partition's transaction and apply *updates* with compare-and-set.

    Returns the rows changed. The transaction stays open: the caller marks the
    checkpoint and commits (or rolls back) both together. On PostgreSQL the
    temporary table is filled by one binary ``COPY`` (no text encoding of the
    tokens, no compression attempt: :func:`_temp_storage`) and joined to the
    partition's key range only. It is not ``ANALYZE``d: that cost 42 ms per
    10,000 rows and changed no plan, since the key range bounds the join.
    """
    k, t, c = ident(job.key), ident(job.table), ident(job.column)
    if isinstance(conn, sqlite3.Connection):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS styku_batch_new (k INTEGER PRIMARY KEY, old, new)"
        )
        conn.execute("DELETE FROM styku_batch_new")
        if not updates:
            return 0
        conn.executemany("INSERT INTO styku_batch_new (k, old, new) VALUES (?, ?, ?)", updates)
        cur = conn.execute(
            f"UPDATE {t} SET {c} = n.new FROM styku_batch_new AS n"
            f" WHERE {t}.{k} = n.k AND {t}.{c} = n.old"
        )
        changed = cur.rowcount
        conn.execute("DELETE FROM styku_batch_new")
        return int(changed)
    with conn.cursor() as cur:
        if not updates:
            cur.execute("SELECT 1")  # opens the transaction
            return 0
        cur.execute(f"SET LOCAL work_mem = '{_work_mem_kib(updates)}kB'")
        cur.execute(
            f"CREATE TEMP TABLE styku_batch_new ON COMMIT DROP AS"
            f" SELECT {k} AS k, {c} AS old, {c} AS new FROM {t} WITH NO DATA"
        )
        storage = _temp_storage(updates)
        cur.execute(
            f"ALTER TABLE styku_batch_new ALTER old SET STORAGE {storage},"
            f" ALTER new SET STORAGE {storage}"
        )
        with cur.copy("COPY styku_batch_new (k, old, new) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([types[0], types[1], types[1]])
            write = copy.write_row
            for row in updates:
                write(row)
        bound = f"t.{k} >= %s" + ("" if hi is None else f" AND t.{k} < %s")
        cur.execute(
            f"UPDATE {t} AS t SET {c} = n.new FROM styku_batch_new AS n"
            f" WHERE t.{k} = n.k AND t.{c} = n.old AND {bound}",
            (lo,) if hi is None else (lo, hi),
        )
        return int(cur.rowcount)


def context_pairs(
    context_columns: Sequence[str] | Mapping[str, str],
) -> tuple[tuple[str, str], ...]:
    """``(context key, column)`` pairs: a sequence uses each column's name as its key."""
    if isinstance(context_columns, Mapping):
        pairs = tuple((str(a), str(b)) for a, b in context_columns.items())
    else:
        if isinstance(context_columns, str):
            raise InvalidInputError("context_columns is a list of column names or a mapping")
        pairs = tuple((str(col), str(col)) for col in context_columns)
    for _, col in pairs:
        ident(col)
    return pairs

"""``rewrap_table``: rotate every token of a PostgreSQL or SQLite column on Dask."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from typing import Any

from styku_crypto.batch._cluster import client_for, run_all, worker_address
from styku_crypto.batch._report import BatchReport, PartitionResult
from styku_crypto.batch._sql import (
    TableJob,
    check_dsn,
    connect,
    context_pairs,
    ident,
    plan_job,
    run_partition,
)
from styku_crypto.batch._work import check_mode
from styku_crypto.envelope._spec import EnvelopeSpec
from styku_crypto.exceptions import InvalidInputError

__all__ = ["rewrap_table"]


def _partition_task(job: TableJob, lo: int, hi: int | None) -> PartitionResult:
    return run_partition(job, lo, hi, worker=worker_address())


def rewrap_table(
    dsn: str,
    table: str,
    column: str,
    *,
    spec: EnvelopeSpec,
    key: str = "id",
    tenant: str | None = None,
    tenant_column: str | None = None,
    chunk_rows: int = 10_000,
    client: Any = None,
    workers: int | None = None,
    mode: str = "rewrap",
    context_columns: Sequence[str] | Mapping[str, str] = (),
    job: str | None = None,
    resume: bool = False,
    retries: int = 3,
    progress: Callable[[int, int], None] | None = None,
) -> BatchReport:
    """Re-wrap (or re-encrypt) every token of ``table.column`` that is not current.

    Partitions the table by ranges of the integer primary key *key* (about
    *chunk_rows* rows each), records the plan in the checkpoint table
    ``styku_batch_checkpoints`` of the same database, and runs the partitions on
    *client* (a ``distributed.Client``), or on a local cluster of *workers*
    processes when *client* is ``None``. Each partition commits its rows and its
    checkpoint row in one transaction (see :mod:`styku_crypto.batch._sql`).

    Args:
        dsn: ``postgresql://user@host/db`` (no password: ``PGPASSWORD`` on the
            workers) or ``sqlite:///path``.
        table, column, key: the table, its token column (bytes or text tokens)
            and its integer primary key.
        spec: how workers open the key store (secret-free, picklable).
        tenant, tenant_column: one fixed tenant, or the column naming each row's tenant.
        mode: ``"rewrap"`` (new key wraps, payload untouched) or ``"reencrypt"``
            (fresh data keys; needs *context_columns* to match encryption).
        context_columns: columns whose values (as text) form each row's encryption
            context; a list uses the column names as context keys, a mapping is
            ``{context key: column}``.
        job: the checkpoint name (default ``"TABLE.COLUMN"``).
        resume: continue the stored plan of *job* instead of starting over.
        retries: attempts per partition on a root outage before the job stops.
        progress: called with ``(partitions done, partitions total)``.

    Returns:
        The :class:`BatchReport`; ``report.failures`` lists every refused token's
        key, ``report.complete`` is false when the job stopped early.

    Raises:
        InvalidInputError: bad names, both or neither of *tenant*/*tenant_column*,
            an unknown mode, or a password in *dsn*.
        MissingExtraError: Dask (``batch``) or psycopg (``postgres``) is missing.
    """
    check_dsn(dsn)
    check_mode(mode)
    if (tenant is None) == (tenant_column is None):
        raise InvalidInputError("pass exactly one of tenant= and tenant_column=")
    if not isinstance(spec, EnvelopeSpec):
        raise InvalidInputError("spec is an EnvelopeSpec")
    if chunk_rows < 1 or retries < 0:
        raise InvalidInputError("chunk_rows must be positive and retries non-negative")
    for name in (table, column, key, *(x for x in [tenant_column] if x)):
        ident(name)
    pairs = context_pairs(context_columns)
    tj = TableJob(
        dsn=dsn,
        job=job or f"{table}.{column}",
        table=table,
        column=column,
        key=key,
        tenant=tenant,
        tenant_column=tenant_column,
        context_columns=pairs,
        mode=mode,
        spec=spec,
        retries=retries,
    )
    try:
        with closing(connect(dsn)) as conn:
            todo, done = plan_job(conn, dsn, tj, chunk_rows=chunk_rows, resume=resume)
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in ("sqlite3", "psycopg"):
            raise
        # The database's message may quote SQL or values: name the class only.
        raise InvalidInputError(
            f"cannot plan {table}.{column}: {type(exc).__name__} (does the table exist?)"
        ) from None
    report = BatchReport(
        job=tj.job, mode=mode, partitions=len(todo) + done, partitions_skipped=done
    )
    if not todo:
        return report
    with client_for(client, workers=workers) as c:
        return run_all(
            c, _partition_task, [(tj, lo, hi) for lo, hi in todo], report, progress=progress
        )

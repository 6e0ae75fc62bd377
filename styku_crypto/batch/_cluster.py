"""Running partitions on Dask: the caller's client, or an embedded local cluster.

Dask is imported here, lazily (extra ``batch``). The driver keeps a bounded
number of partitions in flight, folds each result into the report as it
arrives, emits one ``envelope.batch.partition`` event per partition, and
stops submitting new work as soon as one partition reports a root outage (or
fails outright): what committed stays committed, the rest stays pending in the
checkpoint for ``resume=True``. A worker that dies mid-partition is Dask's to
handle: the scheduler reruns the task on another worker, and the partition's
uncommitted transaction died with the worker's connection.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from styku_crypto._extras import require
from styku_crypto.batch._report import BatchReport, PartitionResult

__all__ = ["client_for", "run_all", "worker_address"]

Progress = Callable[[int, int], None]


def _emit(event: str, *, outcome: str, level: int, attributes: dict[str, Any]) -> None:
    from styku_crypto.events import emit

    emit(event, capability="envelope", outcome=outcome, level=level, attributes=attributes)


def worker_address() -> str:
    """This Dask worker's address, or ``""`` outside a worker."""
    try:
        distributed = require("distributed", extra="batch")
        return str(distributed.get_worker().address)
    except ValueError:
        return ""


@contextlib.contextmanager
def client_for(client: Any, *, workers: int | None) -> Iterator[Any]:
    """*client*, or a client of a new local cluster of *workers* processes (closed after).

    Raises:
        MissingExtraError: Dask is not installed (``pip install 'styku-crypto[batch]'``).
    """
    distributed = require("distributed", extra="batch")
    if client is not None:
        yield client
        return
    cluster = distributed.LocalCluster(
        n_workers=workers or 2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
    )
    try:
        with distributed.Client(cluster) as local:
            yield local
    finally:
        cluster.close()


def run_all(
    client: Any,
    fn: Callable[..., PartitionResult],
    items: Sequence[tuple[Any, ...]],
    report: BatchReport,
    *,
    progress: Progress | None = None,
    in_flight: int | None = None,
) -> BatchReport:
    """Run ``fn(*item)`` for every item on *client* and fold the results into *report*."""
    distributed = require("distributed", extra="batch")
    started = time.monotonic()
    total = report.partitions
    done = report.partitions_skipped
    if progress is not None:
        progress(done, total)
    limit = in_flight or max(2, 2 * len(client.scheduler_info().get("workers", {})))
    pending = list(items)
    futures = distributed.as_completed()
    for _ in range(min(limit, len(pending))):
        futures.add(client.submit(fn, *pending.pop(0), pure=False))
    for future in futures:
        try:
            result: PartitionResult = future.result()
        except Exception as exc:  # a task that raised (database down, killed too often)
            report.stopped = report.stopped or f"error: {type(exc).__name__}"
            _emit(
                "envelope.batch.partition",
                outcome="failure",
                level=logging.ERROR,
                attributes={"batch_job": report.job, "reason": type(exc).__name__},
            )
            pending.clear()
            continue
        if result.committed:
            report.add(result)
            done += 1
        elif result.stop_reason == "done":
            report.partitions_skipped += 1  # another run committed it already
            done += 1
        else:
            report.stopped = report.stopped or result.stop_reason
            pending.clear()
        _emit(
            "envelope.batch.partition",
            outcome="success" if result.committed and not result.failures else "failure",
            level=logging.INFO if result.committed and not result.failures else logging.WARNING,
            attributes={
                "batch_job": report.job,
                "batch_partition": result.partition,
                "seen": result.seen,
                "changed": result.changed,
                "conflicts": result.conflicts,
                "failures": len(result.failures),
                "seconds": round(result.seconds, 3),
                "reason": result.stop_reason or ("token_failures" if result.failures else ""),
            },
        )
        if progress is not None:
            progress(done, total)
        if pending:
            futures.add(client.submit(fn, *pending.pop(0), pure=False))
    report.seconds = time.monotonic() - started
    _emit(
        "envelope.batch.finished",
        outcome="success" if report.complete and not report.failures else "failure",
        level=logging.INFO if report.complete and not report.failures else logging.WARNING,
        attributes={
            "batch_job": report.job,
            "batch_mode": report.mode,
            "seen": report.seen,
            "changed": report.changed,
            "conflicts": report.conflicts,
            "failures": report.failed,
            "seconds": round(report.seconds, 3),
            "reason": report.stopped,
        },
    )
    return report

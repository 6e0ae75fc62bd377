"""What a batch job did: :class:`BatchReport`, :class:`PartitionResult`, :class:`BatchFailure`.

Pure data (no Dask, no database): results travel from workers to the driver
pickled, so they hold counts, keys and failure classes, never a token or a key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BatchFailure", "BatchReport", "PartitionResult", "REPORT_SCHEMA"]

#: Version of the JSON document :meth:`BatchReport.to_dict` returns.
REPORT_SCHEMA = "styku-batch-report/1"


@dataclass(frozen=True, slots=True)
class BatchFailure:
    """One row or object that could not be processed.

    Attributes:
        key: the row's primary key or the object's key, as text.
        reason: ``tamper`` (wrong key, tenant or context, or altered bytes look
            the same), ``unknown_key``, ``key_destroyed``, ``unsupported_format``
            or ``not_a_token``.
    """

    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class PartitionResult:
    """The outcome of one partition, as committed (or not) by one worker.

    Attributes:
        partition: ``"lo..hi"`` key range or the object batch name.
        seen: rows or objects read.
        changed: rows or objects written back on the new keys.
        current: already on the primary key versions (left untouched).
        conflicts: changed by someone else while in flight (left as they are).
        failures: rows or objects that failed, with their keys.
        worker: the Dask worker address (empty when run locally).
        seconds: wall time of the partition on the worker.
        committed: false when the partition stopped before committing.
        stop_reason: why it stopped (``root_unavailable``), or empty.
        bytes_read: object bytes fetched (objects only).
        bytes_written: object bytes sent (objects only; server-side copies excluded).
        bytes_copied: object bytes copied server-side (S3 ``UploadPartCopy``).
        replayed: committed by an earlier attempt (a worker that died after its
            commit); the counts are the stored ones.
    """

    partition: str
    seen: int = 0
    changed: int = 0
    current: int = 0
    conflicts: int = 0
    failures: tuple[BatchFailure, ...] = ()
    worker: str = ""
    seconds: float = 0.0
    committed: bool = True
    stop_reason: str = ""
    bytes_read: int = 0
    bytes_written: int = 0
    bytes_copied: int = 0
    replayed: bool = False


@dataclass(slots=True)
class BatchReport:
    """The whole job: totals, failures and throughput per worker.

    ``complete`` is true when every partition committed; ``stopped`` names why
    the job stopped early (then rerun with ``resume=True``).
    """

    job: str
    mode: str
    partitions: int = 0
    partitions_done: int = 0
    partitions_skipped: int = 0
    seen: int = 0
    changed: int = 0
    current: int = 0
    conflicts: int = 0
    failures: list[BatchFailure] = field(default_factory=list)
    seconds: float = 0.0
    per_worker: dict[str, dict[str, float]] = field(default_factory=dict)
    stopped: str = ""
    bytes_read: int = 0
    bytes_written: int = 0
    bytes_copied: int = 0

    @property
    def failed(self) -> int:
        """Rows or objects that failed."""
        return len(self.failures)

    @property
    def complete(self) -> bool:
        """Every partition committed and nothing stopped the job."""
        return (
            not self.stopped and self.partitions_done + self.partitions_skipped == self.partitions
        )

    def add(self, result: PartitionResult) -> None:
        """Fold one committed partition into the totals."""
        self.partitions_done += 1
        self.seen += result.seen
        self.changed += result.changed
        self.current += result.current
        self.conflicts += result.conflicts
        self.failures.extend(result.failures)
        self.bytes_read += result.bytes_read
        self.bytes_written += result.bytes_written
        self.bytes_copied += result.bytes_copied
        w = self.per_worker.setdefault(
            result.worker or "local", {"partitions": 0, "rows": 0, "seconds": 0.0}
        )
        w["partitions"] += 1
        w["rows"] += result.seen
        w["seconds"] += result.seconds

    def throughput(self) -> dict[str, float]:
        """Rows (or objects) per second of busy time, per worker."""
        return {
            name: (w["rows"] / w["seconds"] if w["seconds"] > 0 else 0.0)
            for name, w in sorted(self.per_worker.items())
        }

    def to_dict(self) -> dict[str, Any]:
        """The report as the versioned JSON document (schema ``styku-batch-report/1``)."""
        return {
            "schema": REPORT_SCHEMA,
            "job": self.job,
            "mode": self.mode,
            "complete": self.complete,
            "stopped": self.stopped or None,
            "partitions": self.partitions,
            "partitions_done": self.partitions_done,
            "partitions_skipped": self.partitions_skipped,
            "seen": self.seen,
            "changed": self.changed,
            "current": self.current,
            "conflicts": self.conflicts,
            "failed": self.failed,
            "failures": [{"key": f.key, "reason": f.reason} for f in self.failures],
            "seconds": round(self.seconds, 3),
            "per_worker": {
                name: {
                    "partitions": int(w["partitions"]),
                    "rows": int(w["rows"]),
                    "rows_per_second": round(self.throughput()[name], 1),
                }
                for name, w in sorted(self.per_worker.items())
            },
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "bytes_copied": self.bytes_copied,
        }

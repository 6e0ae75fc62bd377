"""Disaster-recovery drills: restore a backup into a scratch store and prove it decrypts.

A drill verifies a backup (MAC and checksums), restores it into a throw-away
SQLite store in a temporary directory (or a scratch store you name) configured
with the *production* root provider(s), then decrypts the canaries written at
backup time: one per live tenant key version, each under a key derived from
that version. Every tenant gets ``pass``, ``fail`` (with the error type) or
``shredded`` (a shred list names it, so its keys were not restored), and the
time it took. The report is a JSON document (schema ``styku-keys-drill/1``)
for the DR record. Emits ``key.drill``.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from styku_crypto.events import emit
from styku_crypto.exceptions import StykuCryptoError
from styku_crypto.keys._backup import Destination, check_canary, load_backup, restore
from styku_crypto.keys._provider import RootKeyProvider
from styku_crypto.keys._sqlite import SQLiteBackend
from styku_crypto.keys._store import KeyStore

__all__ = ["DRILL_FORMAT", "DrillReport", "TenantDrill", "drill"]

DRILL_FORMAT = "styku-keys-drill/1"


@dataclass(frozen=True)
class TenantDrill:
    """The drill result of one tenant."""

    tenant: str
    status: str  # "pass" | "fail" | "shredded"
    seconds: float
    canaries: int
    error: str | None = None


@dataclass(frozen=True)
class DrillReport:
    """The whole drill: restore time, per-tenant results, store check problems."""

    backup_id: str
    source: str
    started_at: str
    restore_seconds: float
    total_seconds: float
    tenants: tuple[TenantDrill, ...]
    check_problems: tuple[str, ...] = ()
    format: str = DRILL_FORMAT
    error: str | None = field(default=None)

    @property
    def passed(self) -> bool:
        """True when the restore worked, no tenant failed and the scratch store checks clean."""
        return (
            self.error is None
            and not self.check_problems
            and all(t.status != "fail" for t in self.tenants)
        )

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict (schema ``styku-keys-drill/1``).

        Its ``schema`` field names the schema, as in every JSON output of the command
        line; ``format`` holds the same value for readers of the first reports.
        """
        doc = {"schema": self.format, **asdict(self)}
        doc["tenants"] = [asdict(t) for t in self.tenants]
        doc["check_problems"] = list(self.check_problems)
        doc["passed"] = self.passed
        return doc


class _Borrowed(RootKeyProvider):
    """A caller's provider lent to the scratch store: closing the store leaves it open."""

    def __init__(self, inner: RootKeyProvider) -> None:
        self._inner = inner

    @property
    def provider_id(self) -> str:
        return self._inner.provider_id

    def wrap(self, key: bytes, *, aad: bytes) -> bytes:
        return self._inner.wrap(key, aad=aad)

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        return self._inner.unwrap(wrapped, aad=aad)


def drill(
    source: str | os.PathLike[str] | Destination,
    *,
    root: RootKeyProvider | Sequence[RootKeyProvider],
    backup_id: str | None = None,
    shred_lists: Iterable[str | os.PathLike[str]] = (),
    actor: str | None = None,
) -> DrillReport:
    """Restore the newest (or the named) backup at *source* into a scratch store and test it.

    The scratch store is a SQLite file in a private temporary directory,
    deleted afterwards; the production store is never touched.

    Returns:
        The :class:`DrillReport`; failures are reported in it, not raised.
    """
    providers = (root,) if isinstance(root, RootKeyProvider) else tuple(root)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    label = source.describe() if isinstance(source, Destination) else os.fspath(source)
    results: list[TenantDrill] = []
    problems: tuple[str, ...] = ()
    restore_seconds = 0.0
    bid = backup_id or "?"
    error: str | None = None
    with tempfile.TemporaryDirectory(prefix="styku-drill-") as scratch_dir:
        backend = SQLiteBackend(Path(scratch_dir) / "scratch.db")
        backend.initialize()
        # Providers belong to the caller: the scratch store borrows them.
        store = KeyStore(backend, root=[_Borrowed(p) for p in providers], cache_ttl=60)
        try:
            vb = load_backup(source, providers, backup_id=backup_id)
            bid = vb.backup_id
            r0 = time.perf_counter()
            restored = restore(
                source, store, backup_id=vb.backup_id, shred_lists=shred_lists, actor=actor
            )
            restore_seconds = time.perf_counter() - r0
            by_tenant: dict[str, list[dict[str, Any]]] = {}
            for canary in vb.canaries:
                by_tenant.setdefault(str(canary.get("tenant")), []).append(canary)
            shredded = {name for name, _ in backend.shred_list()}
            for tenant in sorted({t.name for t in vb.snapshot.tenants} | set(by_tenant)):
                c0 = time.perf_counter()
                if tenant in shredded:
                    results.append(TenantDrill(tenant, "shredded", 0.0, 0))
                    continue
                canaries = by_tenant.get(tenant, [])
                try:
                    if not canaries:
                        raise StykuCryptoError("no canary recorded for this tenant")
                    for canary in canaries:
                        check_canary(store, vb.backup_id, canary)
                    results.append(
                        TenantDrill(tenant, "pass", time.perf_counter() - c0, len(canaries))
                    )
                except StykuCryptoError as exc:
                    results.append(
                        TenantDrill(
                            tenant,
                            "fail",
                            time.perf_counter() - c0,
                            len(canaries),
                            error=type(exc).__name__,
                        )
                    )
            problems = tuple(store.check())
            del restored
        except StykuCryptoError as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            store.close()
    report = DrillReport(
        backup_id=bid,
        source=label,
        started_at=started,
        restore_seconds=round(restore_seconds, 6),
        total_seconds=round(time.perf_counter() - t0, 6),
        tenants=tuple(
            TenantDrill(t.tenant, t.status, round(t.seconds, 6), t.canaries, t.error)
            for t in results
        ),
        check_problems=problems,
        error=error,
    )
    emit(
        "key.drill",
        capability="keys",
        outcome="success" if report.passed else "failure",
        level=logging.INFO if report.passed else logging.WARNING,
        actor=actor,
        reason=None if report.passed else "drill_failed",
        attributes={
            "backup_id": bid,
            "tenants_passed": sum(t.status == "pass" for t in report.tenants),
            "tenants_failed": sum(t.status == "fail" for t in report.tenants),
            "tenants_shredded": sum(t.status == "shredded" for t in report.tenants),
            "seconds": report.total_seconds,
        },
    )
    return report

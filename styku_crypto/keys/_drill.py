"""Disaster-recovery drills: restore a backup into a scratch store and prove it decrypts.

A drill verifies a backup (MAC and checksums), restores it into a throw-away
SQLite store in a temporary directory (or a scratch store you name) configured
with the *production* root provider(s), then decrypts the canaries written at
backup time: one per live tenant key version, each under a key derived from
that version. Recovery is proven under **each** configured root on its own:
the backup's MAC verifies under each root alone, every canary decrypts through
a store that has only that root, and the final check is ``check(deep=True)``
(every key unwraps under every root). So a backup whose wraps under root B are
corrupt fails the drill even while root A answers first. Every tenant gets
``pass``, ``fail`` (with the error type and the root it failed under) or
``shredded`` (a shred list names it, so its keys were not restored), and the
time it took; ``roots`` lists each root's result. The report is a JSON
document (schema ``styku-keys-drill/1``) for the DR record. Emits ``key.drill``.
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
from styku_crypto.exceptions import RootKeyUnavailableError, StykuCryptoError
from styku_crypto.keys._backup_destinations import BackupDestination
from styku_crypto.keys._backup_format import check_canary
from styku_crypto.keys._provider import RootKeyProvider
from styku_crypto.keys._restore import load_backup, restore
from styku_crypto.keys._sqlite import SQLiteBackend
from styku_crypto.keys._store import KeyStore

__all__ = ["DRILL_FORMAT", "DrillReport", "RootDrill", "TenantDrill", "drill"]

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
class RootDrill:
    """Whether the backup is recoverable under one root provider alone."""

    provider: str
    status: str  # "pass" | "fail" | "unavailable" (not proven: the drill fails)
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
    roots: tuple[RootDrill, ...] = ()

    @property
    def passed(self) -> bool:
        """True when the restore worked, no tenant failed and the scratch store checks clean."""
        return (
            self.error is None
            and not self.check_problems
            and all(t.status != "fail" for t in self.tenants)
            and all(r.status == "pass" for r in self.roots)
        )

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict (schema ``styku-keys-drill/1``).

        Its ``schema`` field names the schema, as in every JSON output of the command
        line; ``format`` holds the same value for readers of the first reports.
        """
        doc = {"schema": self.format, **asdict(self)}
        doc["tenants"] = [asdict(t) for t in self.tenants]
        doc["roots"] = [asdict(r) for r in self.roots]
        doc["check_problems"] = list(self.check_problems)
        doc["passed"] = self.passed
        return doc


class _Borrowed(RootKeyProvider):
    """A caller's provider lent to the scratch store: closing the store leaves it open."""

    def __init__(self, inner: RootKeyProvider) -> None:
        self._inner = inner
        # Per-tenant objects are reached through the lent root (never created or
        # destroyed by a drill: those calls keep the base class's refusal).
        self.supports_tenant_roots = inner.supports_tenant_roots

    @property
    def provider_id(self) -> str:
        return self._inner.provider_id

    def wrap(self, key: bytes, *, aad: bytes) -> bytes:
        return self._inner.wrap(key, aad=aad)

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        return self._inner.unwrap(wrapped, aad=aad)

    def tenant_root(self, ref: str) -> RootKeyProvider:
        return self._inner.tenant_root(ref)


def drill(
    source: str | os.PathLike[str] | BackupDestination,
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
    label = source.describe() if isinstance(source, BackupDestination) else os.fspath(source)
    results: list[TenantDrill] = []
    problems: tuple[str, ...] = ()
    restore_seconds = 0.0
    bid = backup_id or "?"
    error: str | None = None
    roots: tuple[RootDrill, ...] = ()
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
            # Each root on its own: a store that has only that root (no failover).
            solo = {
                p.provider_id: KeyStore(backend, root=[_Borrowed(p)], cache_ttl=60)
                for p in providers
            }
            root_errors: dict[str, str] = {}
            down: set[str] = set()
            for p in providers:
                try:
                    load_backup(source, [p], backup_id=vb.backup_id)
                except RootKeyUnavailableError:
                    down.add(p.provider_id)
                except StykuCryptoError as exc:
                    root_errors[p.provider_id] = f"{type(exc).__name__}: {exc}"
            for tenant in sorted({t.name for t in vb.snapshot.tenants} | set(by_tenant)):
                c0 = time.perf_counter()
                if tenant in shredded:
                    results.append(TenantDrill(tenant, "shredded", 0.0, 0))
                    continue
                canaries = by_tenant.get(tenant, [])
                failed: list[str] = []
                if not canaries:
                    failed.append("StykuCryptoError (no canary recorded for this tenant)")
                for pid, view in solo.items():
                    if pid in down:
                        continue
                    try:
                        for canary in canaries:
                            check_canary(view, vb.backup_id, canary)
                    except StykuCryptoError as exc:
                        failed.append(f"{type(exc).__name__} under {pid}")
                        root_errors.setdefault(pid, f"tenant {tenant!r}: {type(exc).__name__}")
                seconds = time.perf_counter() - c0
                if len(down) == len(solo):
                    failed.append("RootKeyUnavailableError under every root")
                if failed:
                    results.append(
                        TenantDrill(tenant, "fail", seconds, len(canaries), error="; ".join(failed))
                    )
                else:
                    results.append(TenantDrill(tenant, "pass", seconds, len(canaries)))
            roots = tuple(
                RootDrill(
                    p.provider_id,
                    "fail"
                    if p.provider_id in root_errors
                    else "unavailable"
                    if p.provider_id in down
                    else "pass",
                    root_errors.get(p.provider_id)
                    or ("RootKeyUnavailableError" if p.provider_id in down else None),
                )
                for p in providers
            )
            problems = tuple(store.check(deep=True))
            del restored
        except StykuCryptoError as exc:
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # the drill must always report and emit
            # An unexpected failure (a bug, an OS error) still yields a failed report;
            # only the type is recorded (the message could carry anything).
            error = f"unexpected {type(exc).__name__}"
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
        roots=roots,
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
            "roots_failed": ",".join(r.provider for r in report.roots if r.status != "pass"),
            "seconds": report.total_seconds,
        },
    )
    return report

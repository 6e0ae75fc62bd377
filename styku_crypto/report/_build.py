"""Assemble the :class:`EvidenceReport`: gather, judge, and collect the chart data."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from styku_crypto.report._config import ReportConfig
from styku_crypto.report._controls import evaluate
from styku_crypto.report._gather import Progress, gather
from styku_crypto.report._model import EvidenceReport, SourceResult, _iso
from styku_crypto.report._sources import (
    BackupFacts,
    DrillFacts,
    IncidentFacts,
    KeyFacts,
    TLSFacts,
)

__all__ = ["build_report", "run_report"]


def run_report(
    config: ReportConfig,
    *,
    timeout: float | None = None,
    progress: Progress | None = None,
    demo: bool = False,
) -> EvidenceReport:
    """Gather every source concurrently (bounded by *timeout*, default the config's) and judge.

    Never raises because a source is unreachable: its controls are
    ``not-gathered`` with the reason. The report changes nothing it reads.
    """
    t0 = time.perf_counter()
    sources = gather(config, timeout=timeout or config.timeout, progress=progress)
    return build_report(config, sources, seconds=time.perf_counter() - t0, demo=demo)


def build_report(
    config: ReportConfig,
    sources: Mapping[str, SourceResult],
    *,
    seconds: float = 0.0,
    now: datetime | None = None,
    demo: bool = False,
) -> EvidenceReport:
    """Judge gathered *sources* against *config* and collect chart data."""
    when = (now or datetime.now(UTC)).replace(microsecond=0)
    return EvidenceReport(
        title=config.title,
        generated_at=when,
        config=config.path,
        seconds=seconds,
        controls=evaluate(config, sources, today=when.date()),
        sources=tuple(sources.values()),
        charts=_charts(config, sources, when),
        demo=demo,
    )


def _data(sources: Mapping[str, SourceResult], name: str) -> Any:
    src = sources.get(name)
    return src.data if src is not None and src.gathered else None


def _charts(
    config: ReportConfig, sources: Mapping[str, SourceResult], now: datetime
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "endpoints": [],
        "key_ages": [],
        "rotation_days": config.keys.max_age_days if config.keys else None,
        "backups": [],
        "backup_max_age_hours": config.backups.max_age_hours if config.backups else None,
        "drills": [],
        "drill_max_age_days": config.drill.max_age_days if config.drill else None,
        "incidents": [],
    }
    tls: TLSFacts | None = _data(sources, "tls")
    if tls is not None:
        for t in tls.audit.targets:
            expires = tls.cert_expiry.get(t.target.label)
            out["endpoints"].append(
                {
                    "target": t.target.label,
                    "protocol": t.target.protocol,
                    "grade": t.grade,
                    "compliant": t.compliant,
                    "errors": sum(1 for f in t.findings if f.severity == "error" and not f.waived),
                    "error": t.error,
                    "cert_expires": _iso(expires) if expires else None,
                }
            )
    keys: KeyFacts | None = _data(sources, "keys")
    if keys is not None:
        out["key_ages"] = [
            {
                "tenant": k.tenant,
                "purpose": k.purpose,
                "version": k.version,
                "primary": k.primary,
                "age_days": round((keys.at - k.created_at).total_seconds() / 86400, 2),
            }
            for k in keys.keys
        ]
    bk: BackupFacts | None = _data(sources, "backups")
    if bk is not None:
        out["backups"] = [
            {
                "destination": e.destination,
                "backup_id": e.backup_id,
                "created_at": _iso(e.created_at) if e.created_at else None,
                "error": e.error,
            }
            for e in bk.entries
        ]
    dr: DrillFacts | None = _data(sources, "drills")
    if dr is not None:
        out["drills"] = [
            {
                "started_at": _iso(r.started_at),
                "passed": r.passed,
                "backup_id": r.backup_id,
                "canaries": r.canaries,
            }
            for r in dr.runs
        ]
    inc: IncidentFacts | None = _data(sources, "incidents")
    if inc is not None:
        out["incidents"] = [
            {
                "id": i.id,
                "title": i.title,
                "severity": i.severity,
                "status": i.status,
                "open": i.open,
                "detected_at": _iso(i.detected_at),
                "resolved_at": _iso(i.resolved_at) if i.resolved_at else None,
                "overdue": list(i.overdue),
            }
            for i in inc.incidents
        ]
    return out

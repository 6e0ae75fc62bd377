"""The controls: stable ids, their DPA Annex 2 clause, what they check and the fix.

One table (:data:`CONTROLS`) maps each id to its evaluator. An evaluator reads
the gathered facts and returns evidence (numbers with their source and time),
problems (one per failing subject: tenant, endpoint, destination...) and the
reasons evidence is missing. :func:`judge` then applies the waivers:

* an unwaived problem: ``fail`` (a known failure stays a failure even when
  other evidence is missing);
* else missing evidence: ``not-gathered`` (a waiver never hides missing evidence);
* else problems, all waived by active waivers: ``waived``;
* else ``pass``. AV-REPLICA without a configured secondary: ``not-applicable``.

A waiver applies until the end of its expiry day; an expired waiver waives
nothing and is listed as expired.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from styku_crypto.report._config import CONTROL_IDS, ReportConfig
from styku_crypto.report._model import (
    ControlResult,
    Evidence,
    Problem,
    SourceResult,
    Status,
    Waiver,
)
from styku_crypto.report._sources import (
    BackupFacts,
    DetectionFacts,
    DrillFacts,
    IncidentFacts,
    KeyFacts,
    PasswordFacts,
    ReplicaFacts,
    TLSFacts,
)

__all__ = ["CONTROLS", "ControlSpec", "evaluate"]

Sources = Mapping[str, SourceResult]


@dataclass
class Outcome:
    """What an evaluator found (before waivers)."""

    evidence: list[Evidence] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    summary: str = ""
    applicable: bool = True


class _MissingError(Exception):
    """The source an evaluator needs was not gathered (the message says why)."""


@dataclass(frozen=True)
class ControlSpec:
    """One control: id, clause, title, what it checks, the fix and its evaluator."""

    id: str
    clause: str
    title: str
    checks: str
    fix: str
    evaluate: Callable[[ReportConfig, Sources], Outcome]


def _need(sources: Sources, name: str, why_absent: str) -> Any:
    src = sources.get(name)
    if src is None:
        raise _MissingError(why_absent)
    if not src.gathered:
        raise _MissingError(f"{name}: {src.error}")
    return src.data


def _days(now: datetime, then: datetime) -> float:
    return round((now - then).total_seconds() / 86400, 1)


# -- c) transmission and at rest ---------------------------------------------------------


def _tx_https(cfg: ReportConfig, s: Sources) -> Outcome:
    tls: TLSFacts = _need(s, "tls", "no [tls] endpoints or login_urls in the configuration")
    out = Outcome()
    src = f"tls audit ({tls.audit.policy})"
    for t in tls.audit.targets:
        label = t.target.label
        if not t.complete:
            out.missing.append(f"{label}: {t.error}")
            continue
        errors = list(
            dict.fromkeys(f.rule for f in t.findings if f.severity == "error" and not f.waived)
        )
        out.evidence.append(Evidence(f"{label} grade", t.grade, src, tls.at))
        if errors:
            out.problems.append((label, f"grade {t.grade}; policy errors: {', '.join(errors[:8])}"))
    for w in tls.logins:
        if not w.reachable:
            out.missing.append(f"{w.target}: HTTPS unreachable ({w.https.error})")
            continue
        hsts = [f.rule for f in w.findings if f.severity == "error"]
        out.evidence.append(
            Evidence(
                f"{w.target} HSTS",
                w.https.hsts[0] if w.https.hsts else "absent",
                "web check",
                w.checked_at,
            )
        )
        if hsts:
            out.problems.append((w.target, f"login URL findings: {', '.join(hsts)}"))
    n = len(tls.audit.targets)
    out.summary = f"{n - len(out.missing) - len(out.problems)} of {n} endpoints compliant"
    if tls.logins:
        out.summary += f"; {len(tls.logins)} login URL(s) checked for HSTS"
    return out


def _tx_cert(cfg: ReportConfig, s: Sources) -> Outcome:
    tls: TLSFacts = _need(s, "tls", "no [tls] endpoints in the configuration")
    out = Outcome()
    horizon = cfg.tls.cert_horizon_days
    for t in tls.audit.targets:
        label = t.target.label
        expires = tls.cert_expiry.get(label)
        if expires is None:
            out.missing.append(f"{label}: no certificate observed ({t.error or 'scan incomplete'})")
            continue
        left = _days(expires, tls.at)
        out.evidence.append(
            Evidence(f"{label} certificate expires in (days)", left, "tls audit", tls.at)
        )
        if left < horizon:
            out.problems.append(
                (label, f"certificate expires {expires:%Y-%m-%d} ({left} days, horizon {horizon})")
            )
    out.summary = f"{len(out.evidence)} certificate(s) checked against a {horizon}-day horizon"
    return out


def _ar_layered(cfg: ReportConfig, s: Sources) -> Outcome:
    keys: KeyFacts = _need(s, "keys", "no [keys] table in the configuration")
    assert cfg.keys is not None
    out = Outcome()
    need = cfg.keys.min_roots
    src = f"key store {keys.location}"
    out.evidence += [
        Evidence("live tenants", len(keys.tenants), src, keys.at),
        Evidence("root providers configured", len(keys.roots), src, keys.at),
        Evidence("store check problems", len(keys.problems), src, keys.at),
    ]
    for tenant in keys.tenants:
        mine = [k for k in keys.keys if k.tenant == tenant]
        have = {k.purpose for k in mine}
        for purpose in cfg.keys.purposes:
            if purpose not in have:
                out.problems.append((tenant, f"no {purpose} key"))
        thin = sorted({len(k.providers) for k in mine if len(k.providers) < need})
        if thin:
            out.problems.append(
                (tenant, f"keys wrapped under {thin[0]} root(s), fewer than {need}")
            )
    for problem in keys.problems:
        out.problems.append(("store", problem))
    least = min((len(k.providers) for k in keys.keys), default=0)
    out.evidence.append(Evidence("fewest roots wrapping a key", least, src, keys.at))
    purposes = ", ".join(cfg.keys.purposes)
    out.summary = (
        f"{len(keys.tenants)} tenants; every key needs {need}+ root wraps and purposes {purposes}"
    )
    return out


def _ar_rotation(cfg: ReportConfig, s: Sources) -> Outcome:
    keys: KeyFacts = _need(s, "keys", "no [keys] table in the configuration")
    assert cfg.keys is not None
    out = Outcome()
    limit = cfg.keys.max_age_days
    primaries = [k for k in keys.keys if k.primary]
    ages = [(k, _days(keys.at, k.created_at)) for k in primaries]
    for k, age in ages:
        if age > limit:
            out.problems.append(
                (k.tenant, f"{k.purpose} v{k.version} is {age:g} days old (limit {limit})")
            )
    oldest = max((a for _, a in ages), default=0.0)
    src = f"key store {keys.location}"
    out.evidence += [
        Evidence("current keys", len(primaries), src, keys.at),
        Evidence("oldest current key (days)", oldest, src, keys.at),
        Evidence("rotation limit (days)", limit, cfg.path, keys.at),
    ]
    young = len(primaries) - len(out.problems)
    out.summary = f"{young} of {len(primaries)} current keys younger than {limit} days"
    return out


def _ar_passwords(cfg: ReportConfig, s: Sources) -> Outcome:
    pw: PasswordFacts = _need(s, "passwords", "passwords not gathered")
    out = Outcome()
    p = cfg.passwords
    src = f"profile {pw.profile}"
    out.evidence += [
        Evidence("memory (KiB)", pw.memory_kib, src, pw.at),
        Evidence("passes", pw.time_cost, src, pw.at),
        Evidence("parallelism", pw.parallelism, src, pw.at),
    ]
    if pw.memory_kib * pw.time_cost < p.min_memory_kib * p.min_time_cost:
        out.problems.append(
            (
                pw.profile,
                f"memory x passes {pw.memory_kib * pw.time_cost} below the policy's "
                f"{p.min_memory_kib * p.min_time_cost}",
            )
        )
    if pw.sampled is not None and pw.needs_rehash is not None and pw.invalid is not None:
        share = (pw.needs_rehash + pw.invalid) / pw.sampled if pw.sampled else 0.0
        out.evidence += [
            Evidence("hashes sampled", pw.sampled, pw.source or "", pw.at),
            Evidence("needing an upgrade", pw.needs_rehash + pw.invalid, pw.source or "", pw.at),
            Evidence("share needing an upgrade", round(share, 4), pw.source or "", pw.at),
        ]
        if share > p.max_upgrade_share:
            out.problems.append(
                (
                    "stored hashes",
                    f"{share:.1%} need an upgrade (allowed {p.max_upgrade_share:.1%})",
                )
            )
        upgrade = pw.needs_rehash + pw.invalid
        out.summary = f"{pw.profile}; {upgrade} of {pw.sampled} sampled hashes need an upgrade"
    else:
        out.summary = f"{pw.profile} (no hash sample configured)"
    return out


# -- d) incident management ----------------------------------------------------------------


def _incidents(s: Sources) -> IncidentFacts:
    inc: IncidentFacts = _need(
        s, "incidents", "no [keys] table: the incident log needs the key store"
    )
    return inc


def _im_log(cfg: ReportConfig, s: Sources) -> Outcome:
    inc = _incidents(s)
    out = Outcome()
    if inc.tampered is not None:
        out.problems.append((inc.location, f"does not verify: {inc.tampered}"))
        out.summary = "the incident log does not verify"
        return out
    out.evidence += [
        Evidence("entries verified", inc.entries, f"incident log {inc.location}", inc.at),
        Evidence("head record checked", inc.head_checked, f"incident log {inc.location}", inc.at),
    ]
    if inc.entries and not inc.head_checked:
        out.problems.append(
            (inc.location, "no head record: removing entries from the end would go unnoticed")
        )
    out.summary = f"{inc.entries} entries verified (hash chain, MACs, head record)"
    return out


def _usable_incidents(s: Sources) -> IncidentFacts:
    inc = _incidents(s)
    if inc.tampered is not None:
        raise _MissingError("the incident log does not verify (see IM-LOG-INTEGRITY)")
    return inc


def _im_open(cfg: ReportConfig, s: Sources) -> Outcome:
    inc = _usable_incidents(s)
    out = Outcome()
    limit = cfg.incidents.max_open_days
    open_ = [i for i in inc.incidents if i.open]
    for i in open_:
        age = _days(inc.at, i.detected_at)
        if age > limit:
            out.problems.append(
                (i.id, f"{i.severity} incident open for {age:g} days (limit {limit:g})")
            )
    src = f"incident log {inc.location}"
    out.evidence += [
        Evidence("incidents", len(inc.incidents), src, inc.at),
        Evidence("open incidents", len(open_), src, inc.at),
    ]
    out.summary = f"{len(open_)} open incident(s); none may stay open over {limit:g} days"
    return out


def _im_notify(cfg: ReportConfig, s: Sources) -> Outcome:
    inc = _usable_incidents(s)
    out = Outcome()
    duties = sum(len(i.deadlines) for i in inc.incidents)
    for i in inc.incidents:
        for tenant in i.overdue:
            out.problems.append(
                (f"{i.id}/{tenant}", f"customer {tenant} not notified by the deadline")
            )
    src = f"incident log {inc.location}"
    out.evidence += [
        Evidence("notification duties", duties, src, inc.at),
        Evidence("overdue notifications", len(out.problems), src, inc.at),
        Evidence("window (hours)", cfg.incidents.notification_hours, cfg.path, inc.at),
    ]
    out.summary = f"{len(out.problems)} of {duties} customer notifications overdue"
    return out


def _im_detect(cfg: ReportConfig, s: Sources) -> Outcome:
    det: DetectionFacts = _need(s, "detection", "detection not gathered")
    out = Outcome()
    if not det.rules:
        out.problems.append((det.source, "no detector rules configured"))
    for name, fired, itype in det.rules:
        out.evidence.append(
            Evidence(
                f"rule {name}", "fired" if fired else "silent", f"self-test of {det.source}", det.at
            )
        )
        if itype:
            out.evidence.append(Evidence(f"rule {name} opens", itype, "incident bridge", det.at))
        if not fired:
            out.problems.append((name, "did not fire at its threshold in the self-test"))
    fired_n = sum(1 for _, f, _ in det.rules if f)
    out.summary = f"{fired_n} of {len(det.rules)} detector rules fired in the self-test"
    return out


# -- e) availability ----------------------------------------------------------------------------


def _av_backup(cfg: ReportConfig, s: Sources) -> Outcome:
    if cfg.backups is None:
        raise _MissingError("no [backups] table in the configuration")
    bk: BackupFacts = _need(s, "backups", "no [keys] table: backups are verified under its roots")
    out = Outcome()
    limit = cfg.backups.max_age_hours
    for e in bk.entries:
        if e.unreachable:
            out.missing.append(f"{e.destination}: {e.error}")
            continue
        if e.created_at is None:
            out.problems.append((e.destination, e.error or "no verified backup"))
            continue
        hours = round((bk.at - e.created_at).total_seconds() / 3600, 1)
        out.evidence.append(
            Evidence(
                f"{e.destination} newest backup age (hours)", hours, f"backup {e.backup_id}", bk.at
            )
        )
        out.evidence.append(
            Evidence(f"{e.destination} shred tombstones", e.tombstones, e.destination, bk.at)
        )
        if hours > limit:
            out.problems.append(
                (e.destination, f"newest backup is {hours:g} h old (limit {limit:g} h)")
            )
    n = len(bk.entries)
    ok = n - len(out.problems) - len(out.missing)
    out.summary = f"{ok} of {n} destinations hold a verified backup younger than {limit:g} h"
    return out


def _av_drill(cfg: ReportConfig, s: Sources) -> Outcome:
    if cfg.drill is None:
        raise _MissingError("no [drill] table in the configuration")
    dr: DrillFacts = _need(s, "drills", "drills not gathered")
    out = Outcome()
    limit = cfg.drill.max_age_days
    for file, why in dr.unreadable:
        out.evidence.append(Evidence("unreadable drill report", why, file, dr.at))
    if not dr.runs:
        out.problems.append(("drills", "no drill report found"))
        out.summary = "no drill report found"
        return out
    last = dr.runs[0]
    age = _days(dr.at, last.started_at)
    out.evidence += [
        Evidence("latest drill age (days)", age, last.file, dr.at),
        Evidence("latest drill passed", last.passed, last.file, dr.at),
        Evidence("canaries decrypted", last.canaries, last.file, dr.at),
        Evidence("tenants failed", last.failed_tenants, last.file, dr.at),
    ]
    if not last.passed or last.failed_tenants:
        out.problems.append(
            (last.backup_id, f"the latest drill ({last.started_at:%Y-%m-%d}) did not pass")
        )
    if last.canaries == 0:
        out.problems.append((last.backup_id, "the latest drill decrypted no canary"))
    if age > limit:
        out.problems.append(("drills", f"the latest drill is {age:g} days old (limit {limit:g})"))
    verdict = "passed" if last.passed else "failed"
    out.summary = f"latest drill {age:g} days ago, {verdict}, {last.canaries} canaries"
    return out


def _av_replica(cfg: ReportConfig, s: Sources) -> Outcome:
    if cfg.replica is None:
        return Outcome(applicable=False, summary="no PostgreSQL secondary configured")
    rep: ReplicaFacts = _need(s, "replica", "replica not gathered")
    out = Outcome()
    out.evidence.append(Evidence("answered", rep.answered, rep.target, rep.at))
    if rep.answered:
        out.evidence.append(
            Evidence("in recovery (streaming replica)", rep.in_recovery, rep.target, rep.at)
        )
        out.summary = f"the secondary answered in {rep.seconds:.2f} s"
    else:
        out.problems.append((rep.target, f"does not answer: {rep.error}"))
        out.summary = "the secondary does not answer"
    return out


_C, _D, _E = "c", "d", "e"

#: Every control, in report order. Ids are stable: never reuse or rename one.
CONTROLS: tuple[ControlSpec, ...] = (
    ControlSpec(
        "TX-HTTPS",
        _C,
        "Encryption in transit",
        "every endpoint complies with the TLS policy; HSTS on login URLs",
        "Apply the policy's server configuration (styku-crypto tls config) "
        "and send HSTS on login pages.",
        _tx_https,
    ),
    ControlSpec(
        "TX-CERT",
        _C,
        "Certificates valid",
        "no certificate expires within the horizon",
        "Renew the certificate and check automated renewal (ACME) runs.",
        _tx_cert,
    ),
    ControlSpec(
        "AR-LAYERED",
        _C,
        "Layered encryption at rest",
        "every tenant has its customer and sensitive keys, each wrapped under the minimum "
        "number of roots; the store checks clean",
        "Create missing keys (keys rotate), add a root (keys root add) "
        "and repair wraps (keys check --repair).",
        _ar_layered,
    ),
    ControlSpec(
        "AR-ROTATION",
        _C,
        "Key rotation",
        "every current tenant key is younger than the rotation limit",
        "Rotate the listed tenants (styku-crypto keys rotate TENANT) and rewrap their data.",
        _ar_rotation,
    ),
    ControlSpec(
        "AR-PASSWORDS",
        _C,
        "Password hashing",
        "the Argon2id profile meets the policy; the share of sampled hashes "
        "needing an upgrade is within bounds",
        "Move to a stronger profile (passwords calibrate) "
        "and upgrade hashes at login (needs_rehash).",
        _ar_passwords,
    ),
    ControlSpec(
        "IM-LOG-INTEGRITY",
        _D,
        "Incident log integrity",
        "the incident log verifies: hash chain, MACs, head record",
        "Investigate tampering; restore the log from backup; see docs/incidents.md.",
        _im_log,
    ),
    ControlSpec(
        "IM-OPEN-INCIDENTS",
        _D,
        "Incidents handled",
        "no incident stays open longer than the limit",
        "Work the incident's playbook to resolution (styku-crypto incidents show ID).",
        _im_open,
    ),
    ControlSpec(
        "IM-NOTIFICATION",
        _D,
        "Customers notified",
        "no customer notification is overdue",
        "Notify the customer and record it (styku-crypto incidents notify ID --tenant T).",
        _im_notify,
    ),
    ControlSpec(
        "IM-DETECTION",
        _D,
        "Detection",
        "detector rules are configured and each fires at its threshold in a self-test",
        "Fix the detector configuration (see docs/events.md) so each rule fires.",
        _im_detect,
    ),
    ControlSpec(
        "AV-BACKUP",
        _E,
        "Key backups",
        "every destination holds a verified backup younger than the limit",
        "Run styku-crypto keys backup (check its schedule) and fix the failing destination.",
        _av_backup,
    ),
    ControlSpec(
        "AV-DRILL",
        _E,
        "Recovery drills",
        "a recent drill restored a backup and decrypted every canary",
        "Run styku-crypto keys drill DEST --report FILE and fix what it reports.",
        _av_drill,
    ),
    ControlSpec(
        "AV-REPLICA",
        _E,
        "Database replica",
        "the configured PostgreSQL secondary answers",
        "Restore the replica (streaming replication) or the network path to it.",
        _av_replica,
    ),
)
assert tuple(c.id for c in CONTROLS) == CONTROL_IDS


def _waive(
    spec: ControlSpec, subject: str, waivers: tuple[Waiver, ...], today: date
) -> Waiver | None:
    for w in waivers:
        if w.control == spec.id and w.subject in (None, subject) and w.active(today):
            return w
    return None


def judge(
    spec: ControlSpec, outcome: Outcome, waivers: tuple[Waiver, ...], today: date
) -> ControlResult:
    """Apply *waivers* to *outcome* and return the control's verdict."""
    mine = tuple(w for w in waivers if w.control == spec.id)
    problems = tuple(
        Problem(subj, msg, _waive(spec, subj, mine, today)) for subj, msg in outcome.problems
    )
    reason = "; ".join(outcome.missing) if outcome.missing else None
    if not outcome.applicable:
        status = Status.NOT_APPLICABLE
    elif any(p.waived_by is None for p in problems):
        status = Status.FAIL
    elif outcome.missing:
        status = Status.NOT_GATHERED
    elif problems:
        status = Status.WAIVED
    else:
        status = Status.PASS
    return ControlResult(
        id=spec.id,
        clause=spec.clause,
        title=spec.title,
        checks=spec.checks,
        status=status,
        summary=outcome.summary or (reason or ""),
        fix=spec.fix,
        evidence=tuple(outcome.evidence),
        problems=problems,
        waivers=mine,
        reason=reason,
    )


def evaluate(config: ReportConfig, sources: Sources, *, today: date) -> tuple[ControlResult, ...]:
    """Every control's verdict from the gathered *sources*."""
    out = []
    for spec in CONTROLS:
        try:
            outcome = spec.evaluate(config, sources)
        except _MissingError as exc:
            outcome = Outcome(missing=[str(exc)], summary="evidence not gathered")
        out.append(judge(spec, outcome, config.waivers, today))
    return tuple(out)

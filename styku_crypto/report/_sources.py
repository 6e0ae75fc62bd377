"""The gatherers: each reads one kind of evidence through the library's public API.

A gatherer takes the parsed configuration and returns plain facts (counts, names,
times, grades); it never returns or keeps key material, hashes or tokens. Stores
are opened read-only and never created (``create=False``): the report changes
nothing it looks at. A gatherer that cannot reach its source raises; the runner
turns that into *not gathered* with the reason.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from styku_crypto._extras import require
from styku_crypto.events import DEFAULT_RULES, Alert, AnomalyDetector
from styku_crypto.exceptions import TamperedLogError
from styku_crypto.incidents import DEFAULT_BRIDGE_RULES, IncidentLog, NotificationPolicy
from styku_crypto.keys import BackupDestination, KeyStore
from styku_crypto.keys._drill import DRILL_FORMAT
from styku_crypto.keys._restore import load_backup
from styku_crypto.passwords import PasswordHasher, profiles
from styku_crypto.report._config import ReportConfig
from styku_crypto.tls.audit import AuditReport, audit
from styku_crypto.web import WebCheckReport, check_url

__all__ = [
    "BackupFacts",
    "DetectionFacts",
    "DrillFacts",
    "IncidentFacts",
    "KeyFacts",
    "PasswordFacts",
    "ReplicaFacts",
    "SOURCES",
    "TLSFacts",
]

#: Largest drill report file read (a drill of 100 000 tenants is well under this).
_MAX_DRILL_FILE = 32 * 1024 * 1024
#: Most stored hashes a password sample looks at.
MAX_SAMPLE = 100_000


def now_utc() -> datetime:
    """The current time, UTC, to the second (reports show seconds)."""
    return datetime.now(UTC).replace(microsecond=0)


@contextmanager
def _store(config: ReportConfig) -> Iterator[KeyStore]:
    assert config.keys is not None
    roots = list(config.keys.roots) or None
    store = KeyStore.open(config.keys.store, roots=roots, read_only=True, create=False)
    try:
        yield store
    finally:
        store.close()


# -- TLS -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TLSFacts:
    """The TLS audit of every endpoint and the web check of every login URL."""

    audit: AuditReport
    logins: tuple[WebCheckReport, ...]
    at: datetime
    cert_expiry: dict[str, datetime] = field(default_factory=dict)


def gather_tls(config: ReportConfig, timeout: float) -> TLSFacts:
    """Audit every endpoint (concurrently, in one run) and check every login URL."""
    at = now_utc()
    per_connection = max(0.5, min(5.0, timeout / 4))
    targets = [*config.tls.endpoints, *config.tls.starttls]
    report = audit(
        targets,
        policy=config.tls.policy,
        timeout=per_connection,
        concurrency=32,
        per_host=8,
        ca_file=config.tls.ca_file,
    )
    expiry: dict[str, datetime] = {}
    for t in report.targets:
        if t.facts.certificates:
            leaf = x509.load_der_x509_certificate(t.facts.certificates[0])
            expiry[t.target.label] = leaf.not_valid_after_utc
    logins = tuple(
        check_url(
            url,
            policy=None,
            cafile=config.tls.ca_file,
            http_port=config.tls.http_port,
            timeout=per_connection,
        )
        for url in config.tls.login_urls
    )
    return TLSFacts(audit=report, logins=logins, at=at, cert_expiry=expiry)


# -- keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyVersion:
    """One live key version: who, what, how old, wrapped under which roots."""

    tenant: str
    purpose: str
    version: int
    primary: bool
    created_at: datetime
    providers: tuple[str, ...]


@dataclass(frozen=True)
class KeyFacts:
    """Tenants, their key versions, the configured roots and the store's own check."""

    location: str
    roots: tuple[str, ...]
    tenants: tuple[str, ...]
    shredded: tuple[str, ...]
    keys: tuple[KeyVersion, ...]
    problems: tuple[str, ...]
    at: datetime


def gather_keys(config: ReportConfig, timeout: float) -> KeyFacts:
    """Describe every tenant and run the store's consistency check (sealed metadata, wraps)."""
    at = now_utc()
    with _store(config) as store:
        live: list[str] = []
        shredded: list[str] = []
        keys: list[KeyVersion] = []
        for record in store.tenants():
            if record.name.startswith("styku-internal-"):
                continue  # reserved tenants (incident MAC keys...) are not customer tenants
            info = store.describe(record.name)
            if info.shredded:
                shredded.append(info.name)
                continue
            live.append(info.name)
            keys.extend(
                KeyVersion(info.name, k.purpose, k.version, k.primary, k.created_at, k.providers)
                for k in info.keys
            )
        return KeyFacts(
            location=store.backend.location,
            roots=tuple(p.provider_id for p in store.providers),
            tenants=tuple(live),
            shredded=tuple(shredded),
            keys=tuple(keys),
            problems=tuple(store.check()),
            at=at,
        )


# -- backups -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupEntry:
    """The newest verified backup at one destination, or why there is none."""

    destination: str
    backup_id: str | None
    created_at: datetime | None
    count: int
    tombstones: int
    error: str | None = None
    unreachable: bool = False


@dataclass(frozen=True)
class BackupFacts:
    """Every destination's newest verified backup."""

    entries: tuple[BackupEntry, ...]
    at: datetime


def gather_backups(config: ReportConfig, timeout: float) -> BackupFacts:
    """Verify (MAC and checksums, under the store's roots) the newest backup at each destination."""
    assert config.backups is not None
    at = now_utc()
    entries: list[BackupEntry] = []
    with _store(config) as store:
        for spec in config.backups.destinations:
            dest = BackupDestination.from_url(spec)
            try:
                ids = dest.list_backups()
                tombstones = len(dest.list_tombstones())
            except (OSError, Exception) as exc:
                entries.append(
                    BackupEntry(dest.describe(), None, None, 0, 0, _reason(exc), unreachable=True)
                )
                continue
            if not ids:
                entries.append(BackupEntry(dest.describe(), None, None, 0, tombstones, "no backup"))
                continue
            try:
                verified = load_backup(dest, store.providers)
            except Exception as exc:
                entries.append(
                    BackupEntry(dest.describe(), None, None, len(ids), tombstones, _reason(exc))
                )
                continue
            entries.append(
                BackupEntry(
                    dest.describe(),
                    verified.backup_id,
                    verified.created_at,
                    len(ids),
                    tombstones,
                )
            )
    return BackupFacts(entries=tuple(entries), at=at)


# -- drills ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrillRun:
    """One drill report found on disk."""

    file: str
    backup_id: str
    started_at: datetime
    passed: bool
    tenants: int
    failed_tenants: int
    canaries: int
    roots: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DrillFacts:
    """Every readable drill report, newest first, and the files that were not."""

    runs: tuple[DrillRun, ...]
    unreadable: tuple[tuple[str, str], ...]
    at: datetime


def _drill_files(spec: str) -> list[Path]:
    path = Path(spec)
    if path.is_dir():
        return sorted(p for p in path.glob("*.json") if p.is_file())
    if path.is_file():
        return [path]
    raise FileNotFoundError(f"no such file or directory: {spec}")


def gather_drills(config: ReportConfig, timeout: float) -> DrillFacts:
    """Read the drill reports (``styku-keys-drill/1``) the configuration names."""
    assert config.drill is not None
    at = now_utc()
    runs: list[DrillRun] = []
    unreadable: list[tuple[str, str]] = []
    for spec in config.drill.reports:
        for file in _drill_files(spec):
            try:
                if file.stat().st_size > _MAX_DRILL_FILE:
                    raise ValueError("file too large")
                runs.append(_drill_run(file, json.loads(file.read_bytes())))
            except (ValueError, KeyError, TypeError, OSError) as exc:
                unreadable.append((str(file), _reason(exc)))
    runs.sort(key=lambda r: r.started_at, reverse=True)
    return DrillFacts(runs=tuple(runs), unreadable=tuple(unreadable), at=at)


def _drill_run(file: Path, doc: Any) -> DrillRun:
    if not isinstance(doc, dict) or doc.get("schema", doc.get("format")) != DRILL_FORMAT:
        raise ValueError(f"not a {DRILL_FORMAT} report")
    started = datetime.fromisoformat(str(doc["started_at"]))
    if started.tzinfo is None:
        raise ValueError("started_at has no UTC offset")
    tenants = [t for t in doc["tenants"] if isinstance(t, dict)]
    roots = tuple((str(r["provider"]), str(r["status"])) for r in doc.get("roots", []))
    return DrillRun(
        file=str(file),
        backup_id=str(doc["backup_id"]),
        started_at=started.astimezone(UTC),
        passed=doc.get("passed") is True,
        tenants=len(tenants),
        failed_tenants=sum(1 for t in tenants if t.get("status") == "fail"),
        canaries=sum(int(t.get("canaries", 0)) for t in tenants),
        roots=roots,
    )


# -- passwords -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PasswordFacts:
    """The profile in use and, when sampled, how many stored hashes need an upgrade."""

    profile: str
    memory_kib: int
    time_cost: int
    parallelism: int
    sampled: int | None
    needs_rehash: int | None
    invalid: int | None
    source: str | None
    at: datetime


def gather_passwords(config: ReportConfig, timeout: float) -> PasswordFacts:
    """Read the profile and, with a sample query, count hashes ``needs_rehash`` flags."""
    at = now_utc()
    cfg = config.passwords
    profile: profiles.Argon2Profile = getattr(profiles, cfg.profile)
    sampled = rehash = invalid = None
    source = None
    if cfg.database is not None and cfg.sample_query is not None:
        hashes, source = _sample(cfg.database, cfg.sample_query, timeout)
        hasher = PasswordHasher(profile=profile)
        sampled, rehash, invalid = len(hashes), 0, 0
        for stored in hashes:
            try:
                rehash += hasher.needs_rehash(stored)
            except Exception:
                invalid += 1
        del hashes
    return PasswordFacts(
        profile=cfg.profile,
        memory_kib=profile.memory_cost,
        time_cost=profile.time_cost,
        parallelism=profile.parallelism,
        sampled=sampled,
        needs_rehash=rehash,
        invalid=invalid,
        source=source,
        at=at,
    )


def _sample(database: str, query: str, timeout: float) -> tuple[list[str], str]:
    """Run the sample query (first column, at most MAX_SAMPLE rows); returns hashes and a label.

    SQLite databases are opened read-only; PostgreSQL runs the query in a
    read-only transaction. The label never includes credentials.
    """
    if database.startswith(("postgresql://", "postgres://")):
        psycopg = require("psycopg", extra="postgres")
        with psycopg.connect(database, connect_timeout=max(1, int(timeout))) as conn:
            conn.read_only = True
            rows = conn.execute(query).fetchmany(MAX_SAMPLE)
        host = database.split("@")[-1]
        label = f"postgresql://{host}"
    else:
        path = database.removeprefix("sqlite:///")
        if not Path(path).is_file():
            raise FileNotFoundError(f"no such database: {path}")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
        try:
            rows = conn.execute(query).fetchmany(MAX_SAMPLE)
        finally:
            conn.close()
        label = f"sqlite:///{path}"
    return [str(r[0]) for r in rows if r and r[0] is not None], label


# -- incidents and detection -------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentRow:
    """One incident as the report shows it (no description text, no notes)."""

    id: str
    title: str
    severity: str
    status: str
    detected_at: datetime
    resolved_at: datetime | None
    open: bool
    tenants: tuple[str, ...]
    overdue: tuple[str, ...]
    deadlines: tuple[tuple[str, datetime], ...]


@dataclass(frozen=True)
class IncidentFacts:
    """The log's verification and its incidents."""

    location: str
    entries: int
    head_checked: bool
    incidents: tuple[IncidentRow, ...]
    at: datetime
    tampered: str | None = None


def gather_incidents(config: ReportConfig, timeout: float) -> IncidentFacts:
    """Verify the whole log (chain, MACs, head record) and fold its incidents."""
    at = now_utc()
    policy = NotificationPolicy(default_hours=config.incidents.notification_hours)
    with _store(config) as store:
        log = IncidentLog.open(
            config.incidents.log, store=store, name=config.incidents.name, policy=policy
        )
        try:
            report = log.verify()
        except TamperedLogError as exc:
            return IncidentFacts(log.location, 0, False, (), at, tampered=str(exc))
        late = {inc.id: tuple(n.tenant for n in notices) for inc, notices in log.overdue(at)}
        rows = tuple(
            IncidentRow(
                id=inc.id,
                title=inc.title,
                severity=str(inc.severity),
                status=str(inc.status),
                detected_at=inc.detected_at,
                resolved_at=inc.resolved_at,
                open=inc.is_open,
                tenants=tuple(inc.tenants),
                overdue=late.get(inc.id, ()),
                deadlines=tuple(
                    (n.tenant, n.deadline) for n in inc.notices if n.deadline is not None
                ),
            )
            for inc in log.incidents()
        )
        return IncidentFacts(
            location=log.location,
            entries=report.entries,
            head_checked=report.head_checked,
            incidents=rows,
            at=at,
        )


@dataclass(frozen=True)
class DetectionFacts:
    """Each detector rule, whether it fired in the self-test, and its incident type."""

    source: str
    rules: tuple[tuple[str, bool, str | None], ...]
    at: datetime


def gather_detection(config: ReportConfig, timeout: float) -> DetectionFacts:
    """Self-test: feed each rule exactly *threshold* synthetic events and expect one alert.

    The detector runs on a private clock with logging of alerts off, so the
    self-test raises nothing anywhere else and opens no incident.
    """
    at = now_utc()
    path = config.incidents.detectors
    fired: list[Alert] = []
    clock = [0.0]
    kwargs: dict[str, Any] = {
        "on_alert": fired.append,
        "clock": lambda: clock[0],
        "alert_level": None,
    }
    if path is not None:
        detector = AnomalyDetector.from_toml(path, **kwargs)
        source = path
    else:
        detector = AnomalyDetector(DEFAULT_RULES, **kwargs)
        source = "built-in DEFAULT_RULES"
    results: list[tuple[str, bool, str | None]] = []
    for rule in detector.rules:
        fired.clear()
        clock[0] += 10 * rule.window + 1  # a fresh window for each rule
        event = {"event": rule.events[0], **{d: f"report-self-test-{d}" for d in rule.per}}
        for _ in range(rule.threshold):
            detector.observe(event)
        ok = any(a.rule == rule.name for a in fired)
        results.append((rule.name, ok, DEFAULT_BRIDGE_RULES.get(rule.name)))
    return DetectionFacts(source=source, rules=tuple(results), at=at)


# -- replica -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaFacts:
    """Whether the PostgreSQL secondary answered, and what it said."""

    target: str
    answered: bool
    in_recovery: bool | None
    seconds: float
    error: str | None
    at: datetime


def gather_replica(config: ReportConfig, timeout: float) -> ReplicaFacts:
    """Connect to the secondary and ask ``pg_is_in_recovery()`` (a read, nothing else)."""
    assert config.replica is not None
    psycopg = require("psycopg", extra="postgres")
    at = now_utc()
    target = "postgresql://" + config.replica.split("@")[-1].split("://")[-1]
    t0 = time.perf_counter()
    try:
        with psycopg.connect(config.replica, connect_timeout=max(1, int(timeout))) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    except psycopg.Error as exc:
        return ReplicaFacts(target, False, None, time.perf_counter() - t0, _reason(exc), at)
    return ReplicaFacts(target, True, bool(row[0]), time.perf_counter() - t0, None, at)


def _reason(exc: BaseException) -> str:
    """A one-line, non-secret reason: the error type and its first line (no URLs' passwords)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if "://" in text and "@" in text:
        text = text.split("@")[-1]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


Gatherer = Callable[[ReportConfig, float], Any]

#: Source name -> (gatherer, whether the configuration asks for it).
SOURCES: dict[str, tuple[Gatherer, Callable[[ReportConfig], bool]]] = {
    "tls": (gather_tls, lambda c: bool(c.tls.endpoints or c.tls.starttls or c.tls.login_urls)),
    "keys": (gather_keys, lambda c: c.keys is not None),
    "backups": (gather_backups, lambda c: c.backups is not None and c.keys is not None),
    "drills": (gather_drills, lambda c: c.drill is not None),
    "passwords": (gather_passwords, lambda c: True),
    "incidents": (gather_incidents, lambda c: c.keys is not None),
    "detection": (gather_detection, lambda c: True),
    "replica": (gather_replica, lambda c: c.replica is not None),
}

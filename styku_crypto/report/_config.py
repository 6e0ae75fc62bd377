"""``report.toml``: what the evidence report looks at, parsed strictly.

Every table and key is on an allowlist and type-checked, so a typo
(``max_age_hour``) is an error, not a silently ignored threshold. Every error is a
:class:`ReportConfigError` naming the file, the line and the key
(``report.toml:12: backups.max_age_hour: unknown key (known: destinations, max_age_hours)``).
Relative paths are resolved against the configuration file's directory. The
file holds names, URLs and thresholds only: root keys are given as provider
specs (a key *file* path, a KMS ARN, a PKCS#11 URI), never as key material.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.passwords import profiles
from styku_crypto.report._model import Waiver
from styku_crypto.report._tomlpos import KeyPath, format_path, key_lines, line_of, syntax_error_line

__all__ = [
    "BackupsConfig",
    "DrillConfig",
    "IncidentsConfig",
    "KeysConfig",
    "PasswordsConfig",
    "ReportConfig",
    "ReportConfigError",
    "TLSConfig",
    "load_config",
    "parse_config",
]

#: Control ids a waiver may name (kept here, the lowest floor; ``_controls`` checks it matches).
CONTROL_IDS = (
    "TX-HTTPS",
    "TX-CERT",
    "AR-LAYERED",
    "AR-ROTATION",
    "AR-PASSWORDS",
    "IM-LOG-INTEGRITY",
    "IM-OPEN-INCIDENTS",
    "IM-NOTIFICATION",
    "IM-DETECTION",
    "AV-BACKUP",
    "AV-DRILL",
    "AV-REPLICA",
)


class ReportConfigError(InvalidInputError):
    """The report configuration is invalid; ``file``, ``line`` and ``key`` say where.

    Attributes:
        file: the configuration file.
        line: the 1-based line (``None`` when the key is absent from the file).
        key: the dotted key (``tls.endpoints[1]``), or ``""`` for the whole file.
    """

    def __init__(self, file: str, line: int | None, key: str, problem: str) -> None:
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")
        self.file = file
        self.line = line
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class KeysConfig:
    """``[keys]`` and ``[rotation]``: the store, its roots and what AR-* expect."""

    store: str
    roots: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ("customer", "sensitive")
    min_roots: int = 2
    max_age_days: int = 365


@dataclass(frozen=True)
class TLSConfig:
    """``[tls]``: endpoints, login URLs and the certificate horizon."""

    endpoints: tuple[str, ...] = ()
    starttls: tuple[str, ...] = ()
    login_urls: tuple[str, ...] = ()
    policy: str = "intermediate"
    ca_file: str | None = None
    cert_horizon_days: int = 30
    http_port: int | None = None


@dataclass(frozen=True)
class BackupsConfig:
    """``[backups]``: destinations and the freshness bound."""

    destinations: tuple[str, ...]
    max_age_hours: float = 26.0


@dataclass(frozen=True)
class DrillConfig:
    """``[drill]``: where drill reports (``styku-keys-drill/1``) are kept, and how recent."""

    reports: tuple[str, ...]
    max_age_days: float = 92.0


@dataclass(frozen=True)
class PasswordsConfig:
    """``[passwords]``: the profile in use, the minimum, and an optional hash sample."""

    profile: str = "RFC_9106_LOW_MEMORY"
    min_memory_kib: int = 19456
    min_time_cost: int = 2
    database: str | None = None
    sample_query: str | None = None
    max_upgrade_share: float = 0.0


@dataclass(frozen=True)
class IncidentsConfig:
    """``[incidents]``: the log, notification windows, detectors."""

    log: str | None = None
    name: str | None = None
    notification_hours: int = 72
    max_open_days: float = 30.0
    detectors: str | None = None


@dataclass(frozen=True)
class ReportConfig:
    """The whole parsed configuration (see docs/report.md for every key)."""

    path: str
    title: str = "DPA Annex 2 evidence"
    keys: KeysConfig | None = None
    tls: TLSConfig = field(default_factory=TLSConfig)
    backups: BackupsConfig | None = None
    drill: DrillConfig | None = None
    passwords: PasswordsConfig = field(default_factory=PasswordsConfig)
    incidents: IncidentsConfig = field(default_factory=IncidentsConfig)
    replica: str | None = None
    waivers: tuple[Waiver, ...] = ()
    timeout: float = 60.0


# -- the schema: table -> key -> (type, required) ------------------------------------

_STR, _INT, _NUM, _STRS, _DATE = "string", "integer", "number", "list of strings", "date"

_SCHEMA: dict[str, dict[str, tuple[str, bool]]] = {
    "report": {"title": (_STR, False), "timeout": (_NUM, False)},
    "keys": {
        "store": (_STR, True),
        "roots": (_STRS, False),
        "purposes": (_STRS, False),
        "min_roots": (_INT, False),
    },
    "rotation": {"max_age_days": (_INT, True)},
    "tls": {
        "endpoints": (_STRS, False),
        "starttls": (_STRS, False),
        "login_urls": (_STRS, False),
        "policy": (_STR, False),
        "ca_file": (_STR, False),
        "cert_horizon_days": (_INT, False),
        "http_port": (_INT, False),
    },
    "backups": {"destinations": (_STRS, True), "max_age_hours": (_NUM, False)},
    "drill": {"reports": (_STRS, True), "max_age_days": (_NUM, False)},
    "passwords": {
        "profile": (_STR, False),
        "min_memory_kib": (_INT, False),
        "min_time_cost": (_INT, False),
        "database": (_STR, False),
        "sample_query": (_STR, False),
        "max_upgrade_share": (_NUM, False),
    },
    "incidents": {
        "log": (_STR, False),
        "name": (_STR, False),
        "notification_hours": (_INT, False),
        "max_open_days": (_NUM, False),
        "detectors": (_STR, False),
    },
    "replica": {"url": (_STR, True)},
}
_WAIVER = {
    "control": (_STR, True),
    "reason": (_STR, True),
    "expires": (_DATE, True),
    "subject": (_STR, False),
}


class _Reader:
    """Type-checks values and raises errors that carry file, line and key."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.lines = key_lines(text)

    def error(self, path: KeyPath, problem: str) -> ReportConfigError:
        return ReportConfigError(self.file, line_of(self.lines, path), format_path(path), problem)

    def table(self, doc: Mapping[str, Any], name: str) -> dict[str, Any] | None:
        value = doc.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error((name,), "must be a table")
        self.known((name,), value, _SCHEMA[name])
        return value

    def known(self, path: KeyPath, table: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
        for key in table:
            if key not in schema:
                names = ", ".join(sorted(schema))
                raise self.error((*path, key), f"unknown key (known: {names})")
        for key, (_kind, required) in schema.items():
            if required and key not in table:
                raise self.error(path, f"missing required key {key!r}")

    def get(self, path: KeyPath, table: Mapping[str, Any], key: str, kind: str) -> Any:
        if key not in table:
            return None
        value = table[key]
        where = (*path, key)
        ok = {
            _STR: lambda v: isinstance(v, str) and v != "",
            _INT: lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
            _NUM: lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= 0,
            _STRS: lambda v: isinstance(v, list),
            _DATE: lambda v: isinstance(v, date),
        }[kind](value)
        if not ok:
            need = {_INT: "a positive integer", _NUM: "a non-negative number"}.get(
                kind, f"a non-empty {kind}" if kind == _STR else f"a {kind}"
            )
            raise self.error(where, f"must be {need}")
        if kind == _STRS:
            for i, item in enumerate(value):
                if not isinstance(item, str) or not item:
                    raise self.error((*where, i), "must be a non-empty string")
            return tuple(value)
        return value


def _resolve(base: Path, value: str | None) -> str | None:
    """Paths relative to the config file; URLs and specs with a scheme stay as written."""
    if value is None or "://" in value or value.startswith(("aws-kms:", "pkcs11:", "local:")):
        return value
    path = Path(os.path.expanduser(value))
    return str(path if path.is_absolute() else base / path)


def _root_spec(base: Path, spec: str) -> str:
    """``local:relative/file`` is resolved against the config directory too."""
    if spec.startswith("local:") and not spec.startswith("local:/"):
        return "local:" + str(base / spec[len("local:") :])
    return spec


def parse_config(text: str, *, path: str | os.PathLike[str] = "report.toml") -> ReportConfig:
    """Parse configuration *text* (from *path*, used in errors and for relative paths).

    Raises:
        ReportConfigError: invalid TOML, an unknown table or key, a wrong type,
            a missing required key, an unknown control in a waiver.
    """
    file = os.fspath(path)
    base = Path(file).resolve().parent
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        raise ReportConfigError(
            file, syntax_error_line(message), "", f"invalid TOML: {message}"
        ) from None
    r = _Reader(file, text)
    top = {**dict.fromkeys(_SCHEMA), "waivers": None}
    for name in doc:
        if name not in top:
            known = ", ".join(sorted(top))
            raise r.error((name,), f"unknown table (known: {known})")

    report = r.table(doc, "report") or {}
    title = r.get(("report",), report, "title", _STR) or "DPA Annex 2 evidence"
    timeout = r.get(("report",), report, "timeout", _NUM)
    if timeout is not None and not 0 < timeout <= 3600:
        raise r.error(("report", "timeout"), "must be in (0, 3600] seconds")

    keys = None
    k = r.table(doc, "keys")
    rot = r.table(doc, "rotation") or {}
    if k is not None:
        store = r.get(("keys",), k, "store", _STR)
        roots = r.get(("keys",), k, "roots", _STRS) or ()
        purposes = r.get(("keys",), k, "purposes", _STRS) or ("customer", "sensitive")
        min_roots = r.get(("keys",), k, "min_roots", _INT) or 2
        keys = KeysConfig(
            store=_resolve(base, store) or store,
            roots=tuple(_root_spec(base, s) for s in roots),
            purposes=purposes,
            min_roots=min_roots,
            max_age_days=r.get(("rotation",), rot, "max_age_days", _INT) or 365,
        )
    elif rot:
        raise r.error(("rotation",), "needs a [keys] table naming the store")

    t = r.table(doc, "tls") or {}

    def g(key: str, kind: str, table: dict[str, Any] = t) -> Any:
        return r.get(("tls",), table, key, kind)

    http_port = g("http_port", _INT)
    if http_port is not None and http_port > 65535:
        raise r.error(("tls", "http_port"), "must be a port number (1-65535)")
    tls = TLSConfig(
        endpoints=g("endpoints", _STRS) or (),
        starttls=g("starttls", _STRS) or (),
        login_urls=g("login_urls", _STRS) or (),
        policy=_policy(base, g("policy", _STR)),
        ca_file=_resolve(base, g("ca_file", _STR)),
        cert_horizon_days=g("cert_horizon_days", _INT) or 30,
        http_port=http_port,
    )

    backups = None
    b = r.table(doc, "backups")
    if b is not None:
        dests = r.get(("backups",), b, "destinations", _STRS)
        if not dests:
            raise r.error(("backups", "destinations"), "must name at least one destination")
        age = r.get(("backups",), b, "max_age_hours", _NUM)
        backups = BackupsConfig(
            tuple(_resolve(base, d) or d for d in dests), 26.0 if age is None else float(age)
        )

    drill = None
    d = r.table(doc, "drill")
    if d is not None:
        reports = r.get(("drill",), d, "reports", _STRS)
        if not reports:
            raise r.error(("drill", "reports"), "must name at least one file or directory")
        age = r.get(("drill",), d, "max_age_days", _NUM)
        drill = DrillConfig(
            tuple(_resolve(base, x) or x for x in reports), 92.0 if age is None else float(age)
        )

    p = r.table(doc, "passwords") or {}

    def gp(key: str, kind: str, table: dict[str, Any] = p) -> Any:
        return r.get(("passwords",), table, key, kind)

    share = gp("max_upgrade_share", _NUM)
    if share is not None and share > 1:
        raise r.error(("passwords", "max_upgrade_share"), "must be a fraction in [0, 1]")
    if (gp("sample_query", _STR) is None) != (gp("database", _STR) is None):
        key = "database" if gp("database", _STR) is None else "sample_query"
        raise r.error(("passwords",), f"sample_query and database go together: missing {key!r}")
    passwords = PasswordsConfig(
        profile=gp("profile", _STR) or "RFC_9106_LOW_MEMORY",
        min_memory_kib=gp("min_memory_kib", _INT) or 19456,
        min_time_cost=gp("min_time_cost", _INT) or 2,
        database=_resolve(base, gp("database", _STR)),
        sample_query=gp("sample_query", _STR),
        max_upgrade_share=0.0 if share is None else float(share),
    )
    _check_profile(r, passwords.profile)

    i = r.table(doc, "incidents") or {}

    def gi(key: str, kind: str, table: dict[str, Any] = i) -> Any:
        return r.get(("incidents",), table, key, kind)

    hours = gi("notification_hours", _INT)
    if hours is not None and hours > 8784:
        raise r.error(("incidents", "notification_hours"), "must be 1..8784 hours")
    open_days = gi("max_open_days", _NUM)
    incidents = IncidentsConfig(
        log=_resolve(base, gi("log", _STR)),
        name=gi("name", _STR),
        notification_hours=hours or 72,
        max_open_days=30.0 if open_days is None else float(open_days),
        detectors=_resolve(base, gi("detectors", _STR)),
    )

    rep = r.table(doc, "replica")
    replica = r.get(("replica",), rep, "url", _STR) if rep is not None else None

    return ReportConfig(
        path=file,
        title=title,
        keys=keys,
        tls=tls,
        backups=backups,
        drill=drill,
        passwords=passwords,
        incidents=incidents,
        replica=replica,
        waivers=_waivers(r, doc.get("waivers")),
        timeout=60.0 if timeout is None else float(timeout),
    )


def _policy(base: Path, value: str | None) -> str:
    if value is None:
        return "intermediate"
    if value.endswith(".toml"):
        return _resolve(base, value) or value
    return value


def _check_profile(r: _Reader, name: str) -> None:
    if not isinstance(getattr(profiles, name, None), profiles.Argon2Profile):
        known = ", ".join(n for n in dir(profiles) if n.isupper())
        raise r.error(("passwords", "profile"), f"unknown profile {name!r} (known: {known})")


def _waivers(r: _Reader, value: object) -> tuple[Waiver, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(w, dict) for w in value):
        raise r.error(("waivers",), "must be an array of tables ([[waivers]])")
    out: list[Waiver] = []
    for n, w in enumerate(value):
        path: KeyPath = ("waivers", n)
        r.known(path, w, _WAIVER)
        control = r.get(path, w, "control", _STR)
        if control not in CONTROL_IDS:
            raise r.error(
                (*path, "control"), f"unknown control {control!r} (known: {', '.join(CONTROL_IDS)})"
            )
        expires = r.get(path, w, "expires", _DATE)
        if not isinstance(expires, date) or hasattr(expires, "hour"):
            raise r.error((*path, "expires"), "must be a date (2027-03-31)")
        line = line_of(r.lines, path)
        out.append(
            Waiver(
                control=control,
                reason=r.get(path, w, "reason", _STR),
                expires=expires,
                subject=r.get(path, w, "subject", _STR),
                where=f"{r.file}:{line}" if line else r.file,
            )
        )
    return tuple(out)


def load_config(path: str | os.PathLike[str]) -> ReportConfig:
    """Read and parse the configuration file at *path*.

    Raises:
        ReportConfigError: unreadable, not UTF-8, or invalid (see :func:`parse_config`).
    """
    file = os.fspath(path)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ReportConfigError(file, None, "", "not UTF-8 text") from None
    except OSError as exc:
        raise ReportConfigError(
            file, None, "", f"cannot read: {exc.strerror or 'I/O error'}"
        ) from None
    return parse_config(text, path=file)

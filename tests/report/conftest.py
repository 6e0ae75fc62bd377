"""A real environment to report on, built once per session.

Two loopback TLS servers from the audit test bed (one Mozilla-intermediate
compliant with HSTS, one weak), a SQLite key store under two local roots with
two tenants, verified backups at two destinations, a real drill report, a
password table, an incident log with a handled incident, a second log with an
overdue notification, and a tampered copy. Every secret made here is
registered with the leak guard.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from styku_crypto.incidents import IncidentLog, NotificationPolicy
from styku_crypto.keys import KeyStore, LocalRootKey, backup, drill
from styku_crypto.passwords import PasswordHasher, profiles
from tests._support import leaks
from tests._support.postgres import postgres_server  # noqa: F401 - fixture
from tests.tls.audit import _bed

PASSWORDS = ("report-pw-ada-3f9c1e", "report-pw-bob-77a0d2", "report-pw-cy-c0ffee")


@dataclass
class Env:
    """Paths and endpoints of the session's environment."""

    dir: Path
    ca: Path
    good: str
    weak: str
    silent: str
    refused: str
    store: Path
    roots: list[str]
    dests: list[Path]
    drills: Path
    app_db: Path
    log: Path
    overdue_log: Path
    tampered_log: Path
    secrets: list[bytes]
    certs: _bed.Certs

    def config(
        self, extra: str = "", *, tls: str | None = None, incidents: str | None = None
    ) -> str:
        """A report.toml for this environment; *tls* / *incidents* replace those tables."""
        roots = json.dumps(self.roots)
        tls_table = (
            tls
            if tls is not None
            else (f'[tls]\nendpoints = ["{self.good}"]\nca_file = "{self.ca}"\n')
        )
        inc = incidents if incidents is not None else f'[incidents]\nlog = "{self.log}"\n'
        return (
            f'[keys]\nstore = "{self.store}"\nroots = {roots}\n\n'
            f"[rotation]\nmax_age_days = 365\n\n{tls_table}\n"
            f"[backups]\ndestinations = {json.dumps([str(d) for d in self.dests])}\n\n"
            f'[drill]\nreports = ["{self.drills}"]\n\n'
            f'[passwords]\nprofile = "RFC_9106_LOW_MEMORY"\ndatabase = "{self.app_db}"\n'
            'sample_query = "SELECT password_hash FROM users"\nmax_upgrade_share = 0.5\n\n'
            f"{inc}\n{extra}"
        )

    def write(self, tmp: Path, text: str) -> Path:
        """Write *text* as tmp/report.toml and return its path."""
        path = tmp / "report.toml"
        path.write_text(text)
        return path


def _silent_server(stop: threading.Event) -> tuple[str, object]:
    """Accepts connections and never answers (a hung endpoint)."""
    sock = _bed._listener()
    held: list[object] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=loop, daemon=True).start()
    return f"127.0.0.1:{sock.getsockname()[1]}", sock


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """Build the environment and start its servers; stop them at the end."""
    d = tmp_path_factory.mktemp("report-env")
    certs = _bed.make_certs(d)
    secrets: list[bytes] = []
    for _cert, key in (certs.good, certs.weak):
        secrets.append(key.read_bytes())
    v = ssl.TLSVersion
    good = _bed.https_server(
        "good",
        _bed.server_context(
            certs.good,
            minimum=v.TLSv1_2,
            maximum=v.TLSv1_3,
            ciphers=_bed.MOZILLA_INTERMEDIATE_OPENSSL,
            curve="prime256v1",
        ),
        _bed.LONG_HSTS,
    )
    weak = _bed.https_server(
        "weak",
        _bed.server_context(
            certs.good, minimum=v.TLSv1, maximum=v.TLSv1_2, ciphers="DEFAULT:@SECLEVEL=0"
        ),
        None,
    )
    stop = threading.Event()
    silent, silent_sock = _silent_server(stop)

    roots = [LocalRootKey(d / "root-a.key"), LocalRootKey(d / "root-b.key")]
    secrets += [(d / "root-a.key").read_bytes(), (d / "root-b.key").read_bytes()]
    store_path = d / "keys.db"
    dests = [d / "backup-a", d / "backup-b"]
    for dest in dests:
        dest.mkdir()
    now = datetime.now(UTC)
    with KeyStore.open(store_path, root=roots) as store:
        store.create_tenant("acme")
        store.create_tenant("globex")
        log = IncidentLog.open(d / "incidents.jsonl", store=store, policy=NotificationPolicy())
        inc = log.open_incident(
            type="key-compromise", tenants=["globex"], detected_at=now - timedelta(days=2)
        )
        log.update(inc.id, status="confirmed", at=now - timedelta(days=2))
        log.notify(inc.id, tenant="globex", channel="email", at=now - timedelta(days=1))
        late = IncidentLog.open(
            d / "overdue.jsonl", store=store, name="overdue", policy=NotificationPolicy()
        )
        inc = late.open_incident(
            type="data-exposure", tenants=["acme"], detected_at=now - timedelta(days=5)
        )
        late.update(inc.id, status="confirmed", at=now - timedelta(days=5))
        backup(store, dests)
        report = drill(dests[0], root=roots)
    (d / "drills").mkdir()
    (d / "drills" / "drill-1.json").write_text(json.dumps(report.to_json()))
    tampered = d / "tampered.jsonl"
    shutil.copy(d / "incidents.jsonl", tampered)
    raw = tampered.read_text().replace("globex", "globey", 1)
    tampered.write_text(raw)

    db = d / "app.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE users (name TEXT, password_hash TEXT)")
        cur = PasswordHasher(profile=profiles.RFC_9106_LOW_MEMORY)
        old = PasswordHasher(profile=profiles.OWASP_M7168_T5)
        hashes = [cur.hash(PASSWORDS[0]), cur.hash(PASSWORDS[1]), old.hash(PASSWORDS[2])]
        conn.executemany(
            "INSERT INTO users VALUES (?, ?)", list(zip(("ada", "bob", "cy"), hashes, strict=True))
        )
        conn.commit()
    secrets += [p.encode() for p in PASSWORDS] + [h.encode() for h in hashes]
    for s in secrets:
        leaks.register_secret(s)
    refused = f"127.0.0.1:{_bed.free_port()}"
    try:
        yield Env(
            dir=d,
            ca=certs.ca,
            good=good.target,
            weak=weak.target,
            silent=silent,
            refused=refused,
            store=store_path,
            roots=[f"local:{d / 'root-a.key'}", f"local:{d / 'root-b.key'}"],
            dests=dests,
            drills=d / "drills",
            app_db=db,
            log=d / "incidents.jsonl",
            overdue_log=d / "overdue.jsonl",
            tampered_log=tampered,
            secrets=secrets,
            certs=certs,
        )
    finally:
        stop.set()
        silent_sock.close()  # type: ignore[attr-defined]
        good.stop()
        weak.stop()

"""Session fixtures: the audit test bed, started once and scanned once, concurrently."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from styku_crypto.tls.audit import AuditReport, TargetReport, audit, parse_target
from tests._support import leaks
from tests.tls.audit import _bed

#: Per-connection timeout of the bed scan: the hostile servers cost at most this.
BED_TIMEOUT = 3.0


@dataclass
class Bed:
    """The running test bed and the report of one concurrent scan of all of it."""

    certs: _bed.Certs
    servers: dict[str, _bed.Server]
    report: AuditReport
    hold: threading.Event

    def result(self, name: str) -> TargetReport:
        """The report for server *name*."""
        label = self.servers[name].target
        for target in self.report.targets:
            if target.target.label == label:
                return target
        raise KeyError(name)


@pytest.fixture(scope="session")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    """Start every bed server, scan them all in one concurrent audit, stop them at the end."""
    directory: Path = tmp_path_factory.mktemp("audit-bed")
    certs = _bed.make_certs(directory)
    for _cert, key in (certs.good, certs.weak, certs.badname):
        leaks.register_secret(key.read_bytes())
    hold = threading.Event()
    servers = _bed.start_bed(certs, hold)
    refused = _bed.free_port()
    try:
        targets = [s.target for s in servers] + [f"127.0.0.1:{refused}"]
        report = audit(
            targets,
            policy="intermediate",
            timeout=BED_TIMEOUT,
            concurrency=64,
            per_host=64,
            ca_file=certs.ca,
        )
        yield Bed(
            certs=certs,
            servers={s.name: s for s in servers}
            | {"refused": _bed.Server("refused", refused, lambda: None)},
            report=report,
            hold=hold,
        )
    finally:
        hold.set()
        for server in servers:
            server.stop()


# ----------------------------------------------------------------------------- STARTTLS

#: Per-connection timeout of the STARTTLS scans: the silent server costs this once.
STARTTLS_TIMEOUT = 1.5


@dataclass
class Scanned:
    """Servers by name, their audit targets, and the report of one concurrent scan."""

    targets: dict[str, str]
    report: AuditReport
    certs: _bed.Certs

    def result(self, name: str) -> TargetReport:
        """The report for the server *name*."""
        wanted = parse_target(self.targets[name])
        for target in self.report.targets:
            if (target.target.port, target.target.protocol) == (wanted.port, wanted.protocol):
                return target
        raise KeyError(name)


@pytest.fixture(scope="session")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scanned]:
    """Hand-scripted preambles for all eight protocols (ok and refusing) plus hostile ones."""
    import ssl

    from tests.tls.audit import _scripted

    directory: Path = tmp_path_factory.mktemp("starttls-scripted")
    certs = _bed.make_certs(directory)
    leaks.register_secret(certs.good[1].read_bytes())
    ctx = _bed.server_context(
        certs.good,
        minimum=ssl.TLSVersion.TLSv1_2,
        maximum=ssl.TLSVersion.TLSv1_3,
        ciphers=_bed.MOZILLA_INTERMEDIATE_OPENSSL,
        curve="prime256v1",
        server_preference=False,
    )
    plans = [(f"{p}-{m}", p, m) for p in _scripted.PROTOCOLS for m in ("ok", "refuse")]
    plans += [
        ("smtp-silent", "smtp", "silent"),
        ("smtp-garbage", "smtp", "garbage"),
        ("smtp-inject", "smtp", "inject"),
        ("postgres-http", "postgres", "http"),
        ("imap-http", "imap", "http"),
    ]
    servers = [_scripted.scripted_server(name, proto, ctx, mode) for name, proto, mode in plans]
    targets = {
        name: f"{proto}://127.0.0.1:{s.port}"
        for (name, proto, _mode), s in zip(plans, servers, strict=True)
    }
    # DHE servers with a well-known 1024-bit prime and a custom one (plain TLS).
    oakley = directory / "oakley2.pem"
    oakley.write_bytes(_scripted.oakley2_pem())
    for name, dh in (("dhe-oakley2", oakley), ("dhe-custom", certs.dh1024)):
        dctx = _bed.server_context(
            certs.good,
            minimum=ssl.TLSVersion.TLSv1_2,
            maximum=ssl.TLSVersion.TLSv1_2,
            ciphers="DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
            dh=dh,
        )
        server = _bed.https_server(name, dctx, None)
        servers.append(server)
        targets[name] = f"tls://127.0.0.1:{server.port}"
    http = _bed.hostile_server("plain-http", "garbage", threading.Event())
    servers.append(http)
    targets["plain-http"] = f"127.0.0.1:{http.port}"
    try:
        report = audit(
            list(targets.values()),
            policy="intermediate",
            timeout=STARTTLS_TIMEOUT,
            concurrency=64,
            per_host=64,
            ca_file=certs.ca,
            sni="localhost",
        )
        yield Scanned(targets=targets, report=report, certs=certs)
    finally:
        for server in servers:
            server.stop()


@dataclass
class Daemons(Scanned):
    """The real-daemon scan, plus PostgreSQL rescanned after each reconfiguration."""

    postgres: dict[str, TargetReport]
    #: Prosody scanned without ``--sni``: its stream names a host it does not serve.
    xmpp_wrong_host: TargetReport
    #: Prosody's servers by name -> (the port the test chose, every port it listens on).
    xmpp_listeners: dict[str, tuple[int, set[int]]]


@pytest.fixture(scope="session")
def daemons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemons]:
    """Real PostgreSQL, aiosmtpd, gnutls-serv, Dovecot, MariaDB, slapd, vsftpd and Prosody.

    All scanned once. Every daemon but PostgreSQL runs a good and a weak configuration side by
    side; the one PostgreSQL cluster (initdb is the slow part) is scanned good,
    then reloaded weak, then reloaded with ``ssl = off``.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tests.tls.audit import _daemons

    directory: Path = tmp_path_factory.mktemp("starttls-daemons")
    certs = _bed.make_certs(directory)
    leaks.register_secret(certs.good[1].read_bytes())
    weak_order = (
        "NONE:+VERS-TLS1.2:+RSA:+ECDHE-RSA:+AES-128-CBC:+AES-128-GCM:+SHA1:+AEAD:+SIGN-ALL:"
        "+COMP-NULL:+GROUP-ALL:%SERVER_PRECEDENCE"
    )
    ffdhe = "NORMAL:-VERS-TLS1.3:-KX-ALL:+DHE-RSA"
    good = (
        "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"
        "+CHACHA20-POLY1305:-KX-ALL:+ECDHE-RSA:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"
        "+GROUP-SECP384R1"
    )
    servers: list[_bed.Server] = []
    targets: dict[str, str] = {}
    listeners: dict[str, tuple[int, set[int]]] = {}
    # PostgreSQL (initdb, then pg_ctl, which detaches) starts in a worker thread while
    # the others start here: they die with the thread that spawned them (PDEATHSIG).
    with ThreadPoolExecutor(max_workers=1) as pool:
        pg = pool.submit(_daemons.postgres, "postgres", certs, weak=False)
        started = {
            f"{kind}-{mode}": fn(f"{kind}-{mode}", certs, directory, weak=mode == "weak")
            for kind, fn in (
                ("mariadb", _daemons.mariadb),
                ("slapd", _daemons.slapd),
                ("vsftpd", _daemons.vsftpd),
                ("dovecot", _daemons.dovecot),
            )
            for mode in ("good", "weak")
        }
        postgres = pg.result()
    try:
        for name, value in started.items():
            kind, mode = name.split("-")
            if kind == "dovecot":
                server, imap, pop3 = value  # type: ignore[misc]
                servers.append(server)
                targets[f"imap-{mode}"] = f"imap://127.0.0.1:{imap}"
                targets[f"pop3-{mode}"] = f"pop3://127.0.0.1:{pop3}"
            else:
                servers.append(value)  # type: ignore[arg-type]
                scheme = {"mariadb": "mysql", "slapd": "ldap", "vsftpd": "ftp"}[kind]
                targets[name] = f"{scheme}://127.0.0.1:{value.port}"  # type: ignore[union-attr]
        for mode in ("good", "weak"):
            smtp = _daemons.smtp(f"smtp-{mode}", certs, weak=mode == "weak")
            servers.append(smtp)
            targets[f"smtp-{mode}"] = f"smtp://127.0.0.1:{smtp.port}"
            xmpp = _daemons.prosody(f"xmpp-{mode}", certs, weak=mode == "weak")
            servers.append(xmpp)
            listeners[xmpp.name] = (xmpp.port, _daemons.listening_ports(xmpp.pid))
            targets[f"xmpp-{mode}"] = f"xmpp://127.0.0.1:{xmpp.port}"
        for name, priority in (
            ("gnutls-good", good),
            ("gnutls-ffdhe", ffdhe),
            ("gnutls-order", weak_order),
        ):
            server = _daemons.gnutls(name, certs, directory, priority=priority)
            servers.append(server)
            targets[name] = f"tls://127.0.0.1:{server.port}"
        targets["postgres-good"] = f"postgres://127.0.0.1:{postgres.port}"
        kwargs = {
            "policy": "intermediate",
            "timeout": 5.0,
            "concurrency": 32,
            "per_host": 32,
            "ca_file": certs.ca,
            "sni": "localhost",
        }
        report = audit(list(targets.values()), **kwargs)  # type: ignore[arg-type]
        rescans: dict[str, TargetReport] = {}
        for mode, weak, ssl_on in (("weak", True, True), ("off", False, False)):
            _daemons.reconfigure_postgres(postgres, certs, weak=weak, ssl_on=ssl_on)
            rescans[mode] = audit([targets["postgres-good"]], **kwargs).targets[0]  # type: ignore[arg-type]
        wrong_host = audit(
            [targets["xmpp-good"]],
            **{**kwargs, "sni": None},  # type: ignore[arg-type]
        ).targets[0]
        yield Daemons(
            targets=targets,
            report=report,
            certs=certs,
            postgres=rescans,
            xmpp_wrong_host=wrong_host,
            xmpp_listeners=listeners,
        )
    finally:
        for server in servers:
            server.stop()
        postgres.stop()

"""Real servers for the STARTTLS audit tests, each on a free loopback port.

Every daemon is the Debian package's binary (installed by
``scripts/system-deps.sh``), started in the foreground with a private
configuration and data directory under the test's temporary directory, and
stopped by the PID the test started: nothing else on the machine is touched.
aiosmtpd (PyPI) is the SMTP server; Prosody the XMPP one.

Each comes in two configurations: ``good`` (TLS 1.2+, the Mozilla intermediate
suites) and ``weak`` (an RSA key-exchange CBC suite, no forward secrecy).
"""

from __future__ import annotations

import contextlib
import ctypes  # noqa: F401  (loaded here: a child that dropped root cannot read the venv)
import logging
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.tls.audit._bed import (
    MOZILLA_INTERMEDIATE_OPENSSL,
    Certs,
    Server,
    _die_with_parent,
    free_port,
    server_context,
)

#: The weak configuration's OpenSSL cipher string: TLS_RSA_WITH_AES_128_CBC_SHA first.
WEAK_OPENSSL = "AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256"


@dataclass
class Daemon(Server):
    """A server run as a child process: its PID, for checks on what it opened."""

    pid: int = 0


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process *pid* listens on (its socket inodes matched in /proc/net/tcp*)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            link = os.readlink(fd)
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # state LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _wait_port(port: int, proc: subprocess.Popen[bytes] | None, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        time.sleep(0.05)
    return False


def _stopper(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> Callable[[], None]:
    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    return stop


def daemon(
    name: str,
    argv: Callable[[int], list[str]],
    *,
    cwd: Path,
    log: Path,
    before: Callable[[int], None] | None = None,
    stop_signal: int = signal.SIGTERM,
    env: dict[str, str] | None = None,
    user: str | None = None,
) -> Server:
    """Start ``argv(port)`` on a free port and wait until it accepts connections.

    *user* runs the daemon as that account (this process must be root).

    Raises:
        RuntimeError: the daemon did not come up (its log tail is in the message).
    """
    for _attempt in range(3):
        port = free_port()
        if before:
            before(port)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv(port),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                env={**os.environ, **(env or {})},
                user=user,
                group=pwd.getpwnam(user).pw_gid if user else None,
            )
        if _wait_port(port, proc):
            return Daemon(name=name, port=port, stop=_stopper(proc, stop_signal), pid=proc.pid)
        _stopper(proc)()
    tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
    raise RuntimeError(f"{name} did not start: {tail}")


def openssl_groups(directory: Path) -> dict[str, str]:
    """Environment that limits an OpenSSL-linked daemon to the policy's groups.

    Servers without a groups option of their own (MariaDB, vsftpd) take
    OpenSSL's defaults (x448, secp521r1, ffdhe*); an ``OPENSSL_CONF`` with a
    ``system_default`` section is how an operator restricts them.
    """
    conf = directory / "openssl-groups.cnf"
    if not conf.exists():
        conf.write_text(
            "openssl_conf = default_conf\n[default_conf]\nssl_conf = ssl_sect\n"
            "[ssl_sect]\nsystem_default = system_default_sect\n"
            "[system_default_sect]\nGroups = X25519:P-256:P-384\n"
        )
    return {"OPENSSL_CONF": str(conf)}


# --------------------------------------------------------------------------- PostgreSQL


class _Postgres(Server):
    cluster: object = None


def _postgres_conf(datadir: Path, *, weak: bool, ssl_on: bool) -> None:
    ciphers = WEAK_OPENSSL if weak else MOZILLA_INTERMEDIATE_OPENSSL
    (datadir / "styku_tls.conf").write_text(
        f"ssl = {'on' if ssl_on else 'off'}\nssl_cert_file = 'server.crt'\n"
        f"ssl_key_file = 'server.key'\nssl_ciphers = '{ciphers}'\n"
        "ssl_min_protocol_version = 'TLSv1.2'\n"
    )


def postgres(name: str, certs: Certs, *, weak: bool, ssl_on: bool = True) -> Server:
    """PostgreSQL 15 with ``ssl = on`` (or off) and the certs in its data directory."""
    from tests._support.postgres import PostgresServer

    cluster = PostgresServer.create()
    cert, key = cluster.datadir / "server.crt", cluster.datadir / "server.key"
    shutil.copy(certs.good[0], cert)
    shutil.copy(certs.good[1], key)
    os.chmod(key, 0o600)
    with contextlib.suppress(KeyError, PermissionError):
        user = pwd.getpwnam("postgres")
        for path in (cert, key):
            os.chown(path, user.pw_uid, user.pw_gid)
    _postgres_conf(cluster.datadir, weak=weak, ssl_on=ssl_on)
    with (cluster.datadir / "postgresql.conf").open("a") as handle:
        handle.write("\ninclude = 'styku_tls.conf'\n")
    cluster.stop()
    cluster.start()
    server = _Postgres(name=name, port=cluster.port, stop=cluster.destroy)
    server.cluster = cluster
    return server


def reconfigure_postgres(server: Server, certs: Certs, *, weak: bool, ssl_on: bool) -> None:
    """Rewrite the TLS settings and reload (SIGHUP): PostgreSQL applies SSL settings on reload."""
    cluster = getattr(server, "cluster")  # noqa: B009
    _postgres_conf(cluster.datadir, weak=weak, ssl_on=ssl_on)
    pid = int((cluster.datadir / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGHUP)
    # The postmaster reloads asynchronously: wait until a new connection sees the change.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _postgres_state(server.port) == ("off" if not ssl_on else "weak" if weak else "good"):
            return
        time.sleep(0.05)
    raise RuntimeError("PostgreSQL did not apply the new TLS settings")


def _postgres_state(port: int) -> str:
    """``off`` (SSLRequest refused), ``weak`` (accepts AES128-SHA alone) or ``good``."""
    with socket.create_connection(("127.0.0.1", port), 2) as sock:
        sock.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")
        if sock.recv(1) != b"S":
            return "off"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("AES128-SHA")
        try:
            with ctx.wrap_socket(sock):
                return "weak"
        except (ssl.SSLError, OSError):
            return "good"


# --------------------------------------------------------------------------- SMTP


def smtp(name: str, certs: Certs, *, weak: bool) -> Server:
    """aiosmtpd with STARTTLS (in this process, on its own event-loop thread)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    ctx = server_context(
        certs.good,
        minimum=ssl.TLSVersion.TLSv1_2,
        maximum=ssl.TLSVersion.TLSv1_2 if weak else ssl.TLSVersion.TLSv1_3,
        ciphers=WEAK_OPENSSL if weak else MOZILLA_INTERMEDIATE_OPENSSL,
        curve="prime256v1",
    )
    # aiosmtpd logs a traceback for every refused handshake; the scan causes hundreds.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    port = free_port()
    controller = Controller(
        Sink(), hostname="127.0.0.1", port=port, tls_context=ctx, ready_timeout=10
    )
    controller.start()
    return Server(name=name, port=port, stop=controller.stop)


# --------------------------------------------------------------------------- gnutls-serv


def gnutls(name: str, certs: Certs, directory: Path, *, priority: str) -> Server:
    """``gnutls-serv`` (GnuTLS) with a priority string, echoing application data."""
    return daemon(
        name,
        lambda port: [
            "gnutls-serv",
            "--echo",
            "--quiet",
            "--port",
            str(port),
            "--x509certfile",
            str(certs.good[0]),
            "--x509keyfile",
            str(certs.good[1]),
            "--priority",
            priority,
        ],
        cwd=directory,
        log=directory / f"{name}.log",
    )


# --------------------------------------------------------------------------- Dovecot


def dovecot(name: str, certs: Certs, directory: Path, *, weak: bool) -> tuple[Server, int, int]:
    """Dovecot 2.3 serving IMAP and POP3 with STARTTLS; returns (server, imap port, pop3 port)."""
    base = directory / name
    base.mkdir()
    ciphers = WEAK_OPENSSL if weak else MOZILLA_INTERMEDIATE_OPENSSL
    ports: list[int] = []

    def configure(imap_port: int) -> None:
        pop3_port = free_port()
        ports[:] = [imap_port, pop3_port]
        (base / "dovecot.conf").write_text(
            f"base_dir = {base}/run\nstate_dir = {base}/state\nlog_path = {base}/dovecot.log\n"
            "protocols = imap pop3\nlisten = 127.0.0.1\nssl = yes\n"
            f"ssl_cert = <{certs.good[0]}\nssl_key = <{certs.good[1]}\n"
            f"ssl_min_protocol = TLSv1.2\nssl_cipher_list = {ciphers}\n"
            f"ssl_prefer_server_ciphers = {'yes' if weak else 'no'}\n"
            + ("" if weak else "ssl_curve_list = X25519:P-256:P-384\n")
            + "auth_mechanisms = plain\n"
            "passdb {\n  driver = static\n  args = password=unused-test-password\n}\n"
            "userdb {\n  driver = static\n  args = uid=nobody gid=nogroup home=/nonexistent\n}\n"
            f"service imap-login {{\n  inet_listener imap {{\n    port = {imap_port}\n  }}\n"
            "  inet_listener imaps {\n    port = 0\n  }\n}\n"
            f"service pop3-login {{\n  inet_listener pop3 {{\n    port = {pop3_port}\n  }}\n"
            "  inet_listener pop3s {\n    port = 0\n  }\n}\n"
        )

    server = daemon(
        name,
        lambda port: ["dovecot", "-F", "-c", str(base / "dovecot.conf")],
        cwd=base,
        log=base / "stdout.log",
        before=configure,
    )
    if not _wait_port(ports[1], None, 10):
        server.stop()
        raise RuntimeError(f"{name}: POP3 listener did not come up")
    return server, ports[0], ports[1]


# --------------------------------------------------------------------------- MariaDB


def mariadb(name: str, certs: Certs, directory: Path, *, weak: bool) -> Server:
    """MariaDB 10.11 with TLS, on an empty data directory (grant tables skipped)."""
    base = directory / name
    (base / "data").mkdir(parents=True)
    ciphers = WEAK_OPENSSL if weak else MOZILLA_INTERMEDIATE_OPENSSL
    return daemon(
        name,
        lambda port: [
            "mariadbd",
            "--no-defaults",
            f"--datadir={base / 'data'}",
            f"--socket={base / 'mysqld.sock'}",
            f"--pid-file={base / 'mysqld.pid'}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            "--user=root",
            "--skip-grant-tables",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=8M",
            "--innodb-log-file-size=4M",
            "--aria-log-dir-path=" + str(base / "data"),
            f"--ssl-cert={certs.good[0]}",
            f"--ssl-key={certs.good[1]}",
            f"--ssl-cipher={ciphers}",
            "--tls-version=TLSv1.2" if weak else "--tls-version=TLSv1.2,TLSv1.3",
        ],
        cwd=base,
        log=base / "mariadb.log",
        env=None if weak else openssl_groups(directory),
    )


# --------------------------------------------------------------------------- OpenLDAP


def slapd(name: str, certs: Certs, directory: Path, *, weak: bool) -> Server:
    """OpenLDAP slapd (GnuTLS build) with StartTLS and no database."""
    base = directory / name
    base.mkdir()
    # Debian's slapd links GnuTLS: TLSCipherSuite is a GnuTLS priority string.
    priority = (
        "NONE:+VERS-TLS1.2:+RSA:+ECDHE-RSA:+AES-128-CBC:+AES-128-GCM:+SHA1:+AEAD:"
        "+SIGN-ALL:+COMP-NULL:+GROUP-ALL:%SERVER_PRECEDENCE"
        if weak
        else "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:"
        "+AES-256-GCM:+CHACHA20-POLY1305:-KX-ALL:+ECDHE-RSA:-GROUP-ALL:+GROUP-X25519:"
        "+GROUP-SECP256R1:+GROUP-SECP384R1"
    )
    conf = base / "slapd.conf"
    conf.write_text(
        f"pidfile {base}/slapd.pid\n"
        f"TLSCertificateFile {certs.good[0]}\nTLSCertificateKeyFile {certs.good[1]}\n"
        f"TLSCipherSuite {priority}\n"
    )
    return daemon(
        name,
        lambda port: ["slapd", "-d", "0", "-h", f"ldap://127.0.0.1:{port}/", "-f", str(conf)],
        cwd=base,
        log=base / "slapd.log",
        stop_signal=signal.SIGINT,
    )


# --------------------------------------------------------------------------- vsftpd


def vsftpd(name: str, certs: Certs, directory: Path, *, weak: bool) -> Server:
    """vsftpd 3 with AUTH TLS (explicit FTPS); nobody logs in (the audit never authenticates)."""
    base = directory / name
    (base / "empty").mkdir(parents=True)
    ciphers = WEAK_OPENSSL if weak else MOZILLA_INTERMEDIATE_OPENSSL
    conf = base / "vsftpd.conf"

    def configure(port: int) -> None:
        conf.write_text(
            "listen=YES\nlisten_ipv6=NO\nbackground=NO\n"
            f"listen_address=127.0.0.1\nlisten_port={port}\n"
            "anonymous_enable=NO\nlocal_enable=YES\nseccomp_sandbox=NO\n"
            f"secure_chroot_dir={base / 'empty'}\n"
            "ssl_enable=YES\nssl_sslv2=NO\nssl_sslv3=NO\nssl_tlsv1=NO\n"
            f"rsa_cert_file={certs.good[0]}\nrsa_private_key_file={certs.good[1]}\n"
            f"ssl_ciphers={ciphers}\nrequire_ssl_reuse=NO\n"
            f"vsftpd_log_file={base / 'vsftpd.log'}\n"
        )
        os.chmod(conf, 0o600)

    return daemon(
        name,
        lambda port: ["vsftpd", str(conf)],
        cwd=base,
        log=base / "stdout.log",
        before=configure,
        env=None if weak else openssl_groups(directory),
    )


# --------------------------------------------------------------------------- Prosody


def _prosody_account() -> str | None:
    """The unprivileged account Prosody runs as: its package's ``prosody`` user when root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("prosody")
    except KeyError:
        return "nobody"
    return "prosody"


def prosody(name: str, certs: Certs, *, weak: bool) -> Daemon:
    """Prosody 0.12 (XMPP) with STARTTLS on c2s only, as an unprivileged user.

    Its directory is a private ``mkdtemp`` (pytest's temporary root is not
    traversable by another account) holding the generated Lua configuration,
    a copy of the certificate and key, the data directory and the pid file; it
    is removed when the server stops. No s2s, HTTP or direct-TLS listener is
    opened: the one port is the c2s port the test chose.
    """
    base = Path(tempfile.mkdtemp(prefix=f"styku-{name}-"))
    os.chmod(base, 0o755)
    account = _prosody_account()
    cert, key = base / "server.crt", base / "server.key"
    shutil.copy(certs.good[0], cert)
    shutil.copy(certs.good[1], key)
    os.chmod(key, 0o600)
    (base / "data").mkdir()
    ssl_options = (
        f'protocol = "tlsv1_2"; ciphers = "{WEAK_OPENSSL}"; '
        'options = { "cipher_server_preference", "no_compression" }'
        if weak
        else f'protocol = "tlsv1_2+"; ciphers = "{MOZILLA_INTERMEDIATE_OPENSSL}"; '
        'curveslist = { "X25519", "P-256", "P-384" }'
    )

    def configure(port: int) -> None:
        (base / "prosody.cfg.lua").write_text(
            f'pidfile = "{base}/data/prosody.pid"\n'
            f'data_path = "{base}/data"\n'
            f'certificates = "{base}"\n'
            'log = { warn = "*console" }\n'
            "daemonize = false\n"
            'modules_enabled = { "tls", "saslauth", "ping" }\n'
            'modules_disabled = { "s2s", "offline" }\n'
            'interfaces = { "127.0.0.1" }\n'
            f"c2s_ports = {{ {port} }}\n"
            "c2s_direct_tls_ports = {}\ns2s_ports = {}\n"
            "c2s_require_encryption = true\n"
            f'ssl = {{ certificate = "{cert}"; key = "{key}"; {ssl_options} }}\n'
            'VirtualHost "localhost"\n'
        )
        if account:
            user = pwd.getpwnam(account)
            for path in (base, base / "data", cert, key, base / "prosody.cfg.lua"):
                os.chown(path, user.pw_uid, user.pw_gid)

    try:
        server = daemon(
            name,
            lambda port: ["prosody", "-F", "--config", str(base / "prosody.cfg.lua")],
            cwd=base,
            log=base / "prosody.log",
            before=configure,
            user=account,
        )
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    assert isinstance(server, Daemon)
    stop = server.stop

    def stop_and_clean() -> None:
        stop()
        shutil.rmtree(base, ignore_errors=True)

    return Daemon(name=name, port=server.port, stop=stop_and_clean, pid=server.pid)

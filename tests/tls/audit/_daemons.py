"""Real servers for the STARTTLS audit tests, each on a free loopback port.

Every daemon is the Debian package's binary (installed by
``scripts/system-deps.sh``), started in the foreground with a private
configuration and data directory under the test's temporary directory, and
stopped by the PID the test started: nothing else on the machine is touched.
aiosmtpd (PyPI) is the SMTP server.

Each comes in two configurations: ``good`` (TLS 1.2+, the Mozilla intermediate
suites) and ``weak`` (an RSA key-exchange CBC suite, no forward secrecy).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
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
) -> Server:
    """Start ``argv(port)`` on a free port and wait until it accepts connections.

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
            )
        if _wait_port(port, proc):
            return Server(name=name, port=port, stop=_stopper(proc, stop_signal))
        _stopper(proc)()
    tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
    raise RuntimeError(f"{name} did not start: {tail}")


# --------------------------------------------------------------------------- PostgreSQL


def postgres(name: str, certs: Certs, *, weak: bool, ssl_on: bool = True) -> Server:
    """PostgreSQL 15 with ``ssl = on`` (or off) and the certs in its data directory."""
    from tests._support.postgres import PostgresServer

    server = PostgresServer.create()
    conf = server.datadir / "postgresql.conf"
    cert, key = server.datadir / "server.crt", server.datadir / "server.key"
    shutil.copy(certs.good[0], cert)
    shutil.copy(certs.good[1], key)
    os.chmod(key, 0o600)
    with contextlib.suppress(KeyError, PermissionError):
        user = pwd.getpwnam("postgres")
        for path in (cert, key):
            os.chown(path, user.pw_uid, user.pw_gid)
    ciphers = WEAK_OPENSSL if weak else MOZILLA_INTERMEDIATE_OPENSSL
    with conf.open("a") as handle:
        handle.write(
            f"\nssl = {'on' if ssl_on else 'off'}\nssl_cert_file = 'server.crt'\n"
            f"ssl_key_file = 'server.key'\nssl_ciphers = '{ciphers}'\n"
            "ssl_min_protocol_version = 'TLSv1.2'\n"
        )
    server.stop()
    server.start()
    return Server(name=name, port=server.port, stop=server.destroy)


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
    )
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

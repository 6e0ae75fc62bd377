"""A REAL PostgreSQL 15 server for the tests, started in a temporary directory.

The server runs the Debian ``postgresql-15`` binaries (``scripts/system-deps.sh``
installs them) on a free loopback port with trust authentication, ``fsync=off``
(the tests kill clients, never the server's machine) and a private socket dir.
``initdb`` refuses to run as root, so when the tests run as root the server runs
as the ``postgres`` system user (created when missing) through ``runuser``.

Use it from a ``conftest.py``::

    from tests._support.postgres import postgres_server, postgres_url  # noqa: F401

``postgres_server`` is session-scoped (one server start, ~2 s, per session);
``postgres_url`` is function-scoped and yields the URL of a fresh, empty database
created for that test (dropped afterwards). :func:`PostgresServer.replica` makes
a streaming hot-standby copy (``pg_basebackup -R``): a real read-only secondary.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

__all__ = [
    "PG_BIN",
    "PostgresServer",
    "free_port",
    "postgres_server",
    "postgres_url",
]

PG_BIN = Path(os.environ.get("STYKU_PG_BIN", "/usr/lib/postgresql/15/bin"))
_RUN_USER = "postgres"


def free_port() -> int:
    """Return a currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ensure_user() -> tuple[int, int] | None:
    """Return (uid, gid) of the unprivileged user the server runs as, or None if not root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(_RUN_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/bin/sh", _RUN_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(_RUN_USER)
    return entry.pw_uid, entry.pw_gid


def _alive(pid: int) -> bool:
    """True while *pid* runs (a zombie, left when pid 1 does not reap, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", _RUN_USER, "--", *argv]
    return argv


class PostgresServer:
    """One PostgreSQL cluster in its own temporary directory.

    Args:
        base: directory to hold the cluster (created, handed to the server user).
    """

    def __init__(self, base: Path, settings: Mapping[str, str] | None = None) -> None:
        self.base = base
        self.settings = dict(settings or {})
        self.datadir = base / "data"
        self.sockdir = base / "sock"
        self.logfile = base / "server.log"
        self.port = 0
        self.host = "127.0.0.1"
        self._ids = _ensure_user()

    # -- lifecycle ---------------------------------------------------------
    @classmethod
    def create(cls, *, settings: Mapping[str, str] | None = None) -> PostgresServer:
        """Create and start a fresh cluster (initdb + pg_ctl start).

        *settings* override the test defaults (``-c name=value``): the benchmarks
        use them to run a production-like server (``fsync=on``, larger buffers).
        """
        if not (PG_BIN / "initdb").exists():
            pytest.fail(
                f"PostgreSQL 15 binaries missing at {PG_BIN}; run scripts/system-deps.sh "
                "(they must be present; not skipping)"
            )
        server = cls(Path(tempfile.mkdtemp(prefix="styku-pg-")), settings)
        server._prepare_dirs()
        server._run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(server.datadir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        server.start()
        return server

    def _prepare_dirs(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.sockdir.mkdir(exist_ok=True)
        os.chmod(self.base, 0o755)
        if self._ids is not None:
            uid, gid = self._ids
            for path in (self.base, self.sockdir):
                os.chown(path, uid, gid)

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            _as_server_user(argv), capture_output=True, text=True, timeout=120, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{Path(argv[0]).name} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}"
            )
        return proc

    def start(self, *, attempts: int = 5) -> None:
        """Start the server on a free loopback port (retries if the port was taken)."""
        last: Exception | None = None
        for _ in range(attempts):
            self.port = free_port()
            opts = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 "
                f"-c unix_socket_directories={self.sockdir} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60 "
                "-c shared_buffers=16MB -c max_wal_senders=4 -c wal_level=replica"
            )
            opts += "".join(f" -c {name}={value}" for name, value in self.settings.items())
            try:
                self._run(
                    [
                        str(PG_BIN / "pg_ctl"),
                        "-D",
                        str(self.datadir),
                        "-l",
                        str(self.logfile),
                        "-o",
                        opts,
                        "-w",
                        "-t",
                        "30",
                        "start",
                    ]
                )
                return
            except RuntimeError as exc:
                last = exc
        raise RuntimeError(f"could not start PostgreSQL: {last}; log: {self.log_tail()}")

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server (``mode`` is pg_ctl's: smart, fast or immediate).

        Signals the postmaster directly (SIGTERM/SIGINT/SIGQUIT) and polls for
        its exit every 10 ms: ``pg_ctl stop -w`` polls much more slowly.
        """
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.01)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def destroy(self) -> None:
        """Stop the server and delete its directory."""
        self.stop(mode="immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, n: int = 2000) -> str:
        """The end of the server log, for failure messages."""
        try:
            return self.logfile.read_text(errors="replace")[-n:]
        except OSError:
            return "<no log>"

    # -- databases ---------------------------------------------------------
    def url(self, dbname: str = "postgres") -> str:
        """A ``postgresql://`` URL for *dbname* on this server."""
        return f"postgresql://postgres@{self.host}:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database named in *url* (terminating its sessions)."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def replica(self) -> PostgresServer:
        """Start a streaming hot standby of this server (a real read-only secondary).

        The copy is taken with ``pg_basebackup -R`` so it follows the primary
        while both run and keeps serving reads after the primary stops.
        """
        rep = PostgresServer(Path(tempfile.mkdtemp(prefix="styku-pg-replica-")))
        rep._prepare_dirs()
        rep._run(
            [
                str(PG_BIN / "pg_basebackup"),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-D",
                str(rep.datadir),
                "-R",
                "-X",
                "stream",
                "--no-sync",
                "-c",
                "fast",
            ]
        )
        rep.start()
        return rep

    def wait_replayed(self, replica: PostgresServer, *, timeout: float = 10.0) -> None:
        """Block until *replica* has replayed everything this server has written."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        target = row[0]
        deadline = time.monotonic() + timeout
        with psycopg.connect(replica.url(), autocommit=True, connect_timeout=10) as conn:
            while time.monotonic() < deadline:
                done = conn.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
                ).fetchone()
                if done and done[0]:
                    return
                time.sleep(0.02)
        raise RuntimeError("replica did not catch up in time")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL 15 server for the whole session, stopped at teardown."""
    server = PostgresServer.create()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a fresh, empty database on the session's server (dropped after the test)."""
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        with contextlib.suppress(Exception):
            postgres_server.drop_database(url)

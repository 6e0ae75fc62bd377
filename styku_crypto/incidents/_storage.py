"""Where incident log entries live: a JSON Lines file or an SQLite table.

Both storages read a consistent snapshot (entries plus the head record) under
a shared lock and append under an exclusive one, so concurrent writers in
threads and processes are serialised and nothing is lost.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from styku_crypto._fs import fsync_dir
from styku_crypto.exceptions import KeyStoreError
from styku_crypto.incidents._chain import ChainTamperedError

__all__ = [
    "FileStorage",
    "HeadReader",
    "Snapshot",
    "SqliteStorage",
    "Storage",
    "feed",
    "storage_error",
]

_TABLE = "styku_incident_log"
_SQL_CREATE = f"CREATE TABLE IF NOT EXISTS {_TABLE} (seq INTEGER PRIMARY KEY, entry TEXT NOT NULL)"
_SQL_SELECT = f"SELECT entry FROM {_TABLE} ORDER BY seq"  # noqa: S608 - constant identifier
_SQL_COUNT = f"SELECT COUNT(*) FROM {_TABLE}"  # noqa: S608 - constant identifier
_SQL_INSERT = f"INSERT INTO {_TABLE} (seq, entry) VALUES (?, ?)"  # noqa: S608 - constant identifier


@dataclass(frozen=True, slots=True)
class Snapshot:
    lines: list[str]
    complete_bytes: int
    tail_bytes: int
    head: bytes | None = None  # the raw head record, read under the same lock


HeadReader = Callable[[], bytes | None]


class FileStorage:
    """JSON Lines file; appends under ``flock`` with ``O_APPEND`` and ``fsync``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return str(self.path)

    def read(self, head: HeadReader) -> Snapshot:
        # O_NOFOLLOW like the writer: a symlink planted at the log path is refused
        # (ELOOP), never followed; O_NONBLOCK so a FIFO cannot hang the open.
        flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
        try:
            fd = os.open(self.path, flags)
        except FileNotFoundError:
            return Snapshot([], 0, 0, head())
        try:
            _require_regular(fd, self.path)
            fcntl.flock(fd, fcntl.LOCK_SH)
            try:
                data = _read_all(fd)
                raw_head = head()
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        return replace(_split(data), head=raw_head)

    @contextlib.contextmanager
    def locked(self) -> Iterator[_FileWriter]:
        created = not self.path.exists()
        fd = os.open(
            self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
        )
        try:
            _require_regular(fd, self.path)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if created:
                    fsync_dir(self.path.parent)
                yield _FileWriter(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


class _FileWriter:
    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._snapshot: Snapshot | None = None

    def snapshot(self, head: HeadReader) -> Snapshot:
        self._snapshot = replace(_split(_read_all(self._fd)), head=head())
        return self._snapshot

    def write(self, line: str) -> None:
        snapshot = self._snapshot
        if snapshot is None:
            raise RuntimeError("internal error: snapshot() must precede write()")
        if snapshot.tail_bytes:
            # a previous writer crashed mid-append: drop its partial line first
            os.ftruncate(self._fd, snapshot.complete_bytes)
        _write_all(self._fd, (line + "\n").encode("ascii"))
        os.fsync(self._fd)


class SqliteStorage:
    """A table in an SQLite database (the key store's), one row per entry."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".incidents.lock")

    def describe(self) -> str:
        return f"sqlite:///{self.path}#{_TABLE}"

    def _connect(self) -> sqlite3.Connection:
        self._refuse_symlink()
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute(_SQL_CREATE)
        return conn

    def _refuse_symlink(self) -> None:
        # sqlite3 cannot open with O_NOFOLLOW: refuse a symlinked database path
        # explicitly, for reads and writes alike (as the file storage does).
        if self.path.is_symlink():
            raise KeyStoreError(f"incident log {self.describe()}: refusing a symbolic link")

    def read(self, head: HeadReader) -> Snapshot:
        self._refuse_symlink()
        if not self.path.exists():
            return Snapshot([], 0, 0, head())
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            try:
                with contextlib.closing(self._connect()) as conn:
                    return replace(_rows(conn), head=head())
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def locked(self) -> Iterator[_SqliteWriter]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                with contextlib.closing(self._connect()) as conn:
                    yield _SqliteWriter(conn)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


class _SqliteWriter:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._count = 0

    def snapshot(self, head: HeadReader) -> Snapshot:
        snapshot = replace(_rows(self._conn), head=head())
        self._count = len(snapshot.lines)
        return snapshot

    def write(self, line: str) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            (count,) = conn.execute(_SQL_COUNT).fetchone()
            if count != self._count:
                raise ChainTamperedError(
                    "incident table changed outside the log's lock", "concurrent_change"
                )
            conn.execute(_SQL_INSERT, (count + 1, line))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _rows(conn: sqlite3.Connection) -> Snapshot:
    rows = conn.execute(_SQL_SELECT).fetchall()
    return Snapshot([str(r[0]) for r in rows], 0, 0)


Storage = FileStorage | SqliteStorage


def feed(h: hashlib._Hash, lines: Sequence[str]) -> None:
    """Hash *lines* (each with a newline) into *h*: the identity of a verified prefix."""
    for line in lines:
        h.update(line.encode("utf-8", "surrogatepass"))
        h.update(b"\n")


def _split(data: bytes) -> Snapshot:
    end = data.rfind(b"\n") + 1
    complete = data[:end]
    lines = [raw.decode("utf-8", "replace") for raw in complete.split(b"\n")[:-1]]
    return Snapshot(lines, end, len(data) - end)


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    offset = 0
    while True:
        chunk = os.pread(fd, 1 << 20, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _require_regular(fd: int, path: Path) -> None:
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        raise KeyStoreError(f"incident log {path}: not a regular file")


def storage_error(where: str, exc: OSError | sqlite3.Error) -> KeyStoreError:
    # Name the location and the kind of failure only: never the OS or SQLite
    # message text beyond its fixed description, never entry content.
    if isinstance(exc, OSError):
        if exc.errno == errno.ELOOP:
            problem = "refusing a symbolic link"
        else:
            problem = f"I/O error ({exc.strerror or type(exc).__name__})"
    else:
        name = getattr(exc, "sqlite_errorname", None)
        problem = f"database error ({name or type(exc).__name__})"
    return KeyStoreError(f"incident log {where}: {problem}")

"""The embedded key-store backend: one SQLite file (stdlib ``sqlite3``, WAL)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from styku_crypto.exceptions import (
    KeyDestroyedError,
    KeyNotFoundError,
    KeyStoreError,
    ShredIncompleteError,
)
from styku_crypto.keys._backend import (
    PURPOSES,
    KeyRecord,
    KeyStoreBackend,
    StoreSnapshot,
    TenantRecord,
    check_rewrap,
    next_version,
)
from styku_crypto.keys._local import LocalRootKey
from styku_crypto.keys._provider import RootKeyProvider
from styku_crypto.keys._schemes import StoreScheme, register_store_scheme
from styku_crypto.keys._sealing import TenantState, is_store_seal
from styku_crypto.keys._shred import (
    PENDING_PREFIX,
    find_markers,
    load_pending,
    markers_of,
    other_processes_with,
    pending_record,
    unique_markers,
)

__all__ = ["SQLiteBackend"]

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    name TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    shredded_at TEXT
);
CREATE TABLE IF NOT EXISTS tenant_keys (
    tenant TEXT NOT NULL REFERENCES tenants(name),
    purpose TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    key_id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant, purpose, version)
);
CREATE TABLE IF NOT EXISTS key_wraps (
    tenant TEXT NOT NULL,
    purpose TEXT NOT NULL,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL,
    provider_id TEXT NOT NULL,
    wrapped BLOB NOT NULL,
    PRIMARY KEY (tenant, purpose, version, provider_id),
    FOREIGN KEY (tenant, purpose, version) REFERENCES tenant_keys(tenant, purpose, version)
);
CREATE TABLE IF NOT EXISTS shredded (
    tenant TEXT PRIMARY KEY,
    shredded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""


def _create_private(path: Path) -> None:
    """Create an empty store file with mode 0600 (SQLite gives -wal/-shm the same mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _ts_req(value: str) -> datetime:
    return datetime.fromisoformat(value)


class _View:
    """A :class:`~styku_crypto.keys._sealing.SealView` over one SQLite transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def lock(self) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` already holds the write lock."""

    def tenant_state(self, name: str) -> TenantState | None:
        conn = self._conn
        row = conn.execute("SELECT shredded_at FROM tenants WHERE name = ?", (name,)).fetchone()
        tomb = conn.execute("SELECT 1 FROM shredded WHERE tenant = ?", (name,)).fetchone()
        if row is None and tomb is None:
            return None
        keys = conn.execute(
            "SELECT purpose, version, key_id FROM tenant_keys WHERE tenant = ?"
            " ORDER BY purpose, version",
            (name,),
        ).fetchall()
        return TenantState(
            name,
            row is None or row[0] is not None,
            tomb is not None,
            tuple((str(p), int(v), str(k)) for p, v, k in keys),
        )

    def tenant_names(self) -> list[str]:
        rows = self._conn.execute(
            "SELECT name FROM tenants UNION SELECT tenant FROM shredded"
        ).fetchall()
        return sorted(r[0] for r in rows)

    def meta_get(self, name: str) -> bytes | None:
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def meta_put(self, name: str, value: bytes | None) -> None:
        if value is None:
            self._conn.execute("DELETE FROM meta WHERE name = ?", (name,))
        else:
            self._conn.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, bytes(value)),
            )

    def meta_scan(self, prefix: str) -> list[tuple[str, bytes]]:
        rows = self._conn.execute(
            "SELECT name, value FROM meta WHERE substr(name, 1, ?) = ? ORDER BY name",
            (len(prefix), prefix),
        ).fetchall()
        return [(r[0], bytes(r[1])) for r in rows]


class SQLiteBackend(KeyStoreBackend):
    """Tenants and wrapped keys in one SQLite file.

    WAL journal, ``secure_delete`` on, ``BEGIN IMMEDIATE`` for every write (so
    concurrent writers in other processes serialise on the file lock) and a busy
    timeout. One connection guarded by a lock makes it thread-safe.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        busy_timeout: float = 10.0,
        create: bool = True,
    ) -> None:
        """Open (and with ``read_only=False`` and *create* create) the store file at *path*.

        Raises:
            KeyStoreError: the file cannot be opened or is not a key store.
        """
        self._path = Path(path)
        self._read_only = read_only
        self._lock = threading.RLock()
        self._closed = False
        try:
            if read_only or not create:
                # mode=rw opens an existing file for writing and never creates one.
                mode = "ro" if read_only else "rw"
                uri = "file:" + str(self._path.resolve()) + "?mode=" + mode
                conn = sqlite3.connect(
                    uri,
                    uri=True,
                    timeout=busy_timeout,
                    check_same_thread=False,
                    isolation_level=None,
                )
            else:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                _create_private(self._path)
                conn = sqlite3.connect(
                    self._path,
                    timeout=busy_timeout,
                    check_same_thread=False,
                    isolation_level=None,
                )
            self._busy_ms = int(busy_timeout * 1000)
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("PRAGMA foreign_keys = ON")
            if not read_only:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            raise KeyStoreError(f"cannot open key store {self._path}: {exc}") from None
        except OSError as exc:  # creating the directory or the 0600 file
            raise KeyStoreError(
                f"cannot open key store {self._path}: {exc.strerror or type(exc).__name__}"
            ) from None
        self._conn = conn

    # -- plumbing -----------------------------------------------------------

    @property
    def read_only(self) -> bool:
        """True when opened read-only."""
        return self._read_only

    @property
    def location(self) -> str:
        """The store file path."""
        return str(self._path)

    @property
    def path(self) -> Path:
        """The store file path."""
        return self._path

    def __repr__(self) -> str:
        return f"<SQLiteBackend {str(self._path)!r}{' read-only' if self._read_only else ''}>"

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._ensure_open()
            try:
                self._conn.execute("BEGIN")
                try:
                    yield self._conn
                finally:
                    self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise KeyStoreError(f"key store read failed: {exc}") from None

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._ensure_open()
            if self._read_only:
                raise KeyStoreError("key store is open read-only")
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise KeyStoreError(f"key store is locked or unwritable: {exc}") from None
            try:
                yield self._conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise KeyStoreError(f"key store commit failed: {exc}") from None

    def _ensure_open(self) -> None:
        if self._closed:
            raise KeyStoreError("key store is closed")

    @contextlib.contextmanager
    def seal_view(self, *, write: bool = False) -> Iterator[_View]:
        """One read (or, with *write*, ``BEGIN IMMEDIATE``) transaction as a seal view."""
        if not write:
            with self._read() as conn:
                yield _View(conn)
            return
        try:
            with self._write() as conn:
                yield _View(conn)
        except sqlite3.Error as exc:
            raise KeyStoreError(f"key store write failed: {exc}") from None

    def _run_write(self, fn: Callable[[sqlite3.Connection], object]) -> None:
        try:
            with self._write() as conn:
                fn(conn)
        except sqlite3.IntegrityError as exc:
            raise KeyStoreError(f"key store constraint violated: {exc}") from None
        except sqlite3.Error as exc:
            raise KeyStoreError(f"key store write failed: {exc}") from None

    # -- schema -------------------------------------------------------------

    def initialize(self) -> None:
        """Create the schema if absent (idempotent)."""
        if self._read_only:
            self._check_schema()
            return

        def run(conn: sqlite3.Connection) -> None:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise KeyStoreError(f"unsupported key store schema version {version}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

        self._run_write(run)

    def _check_schema(self) -> None:
        with self._read() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version != _SCHEMA_VERSION:
            raise KeyStoreError(f"{self._path} is not an initialised key store")

    # -- tenants ------------------------------------------------------------

    def create_tenant(self, name: str, records: Sequence[KeyRecord]) -> TenantRecord:
        """Insert tenant *name* and its first keys in one transaction."""
        created = _now()

        def run(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT 1 FROM tenants WHERE name = ?", (name,)).fetchone()
            if row is not None:
                raise KeyStoreError(f"tenant {name!r} already exists")
            if conn.execute("SELECT 1 FROM shredded WHERE tenant = ?", (name,)).fetchone():
                raise KeyStoreError(f"tenant {name!r} was shredded; names are never reused")
            self._seal_before(_View(conn), [name])
            conn.execute("INSERT INTO tenants (name, created_at) VALUES (?, ?)", (name, created))
            for record in records:
                if record.tenant != name:
                    raise KeyStoreError("key record belongs to another tenant")
                self._insert_key(conn, record)
            self._seal_after(_View(conn), [name])

        self._run_write(run)
        return TenantRecord(name=name, created_at=_ts_req(created))

    @staticmethod
    def _insert_key(conn: sqlite3.Connection, record: KeyRecord) -> None:
        if not record.wraps:
            raise KeyStoreError("a key record needs at least one wrap")
        conn.execute(
            "INSERT INTO tenant_keys (tenant, purpose, version, key_id, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                record.tenant,
                record.purpose,
                record.version,
                record.key_id,
                record.created_at.isoformat(timespec="microseconds"),
            ),
        )
        for position, (provider_id, wrapped) in enumerate(record.wraps):
            conn.execute(
                "INSERT INTO key_wraps (tenant, purpose, version, position, provider_id, wrapped)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (record.tenant, record.purpose, record.version, position, provider_id, wrapped),
            )

    def get_tenant(self, name: str) -> TenantRecord:
        """Return tenant *name*; :class:`KeyNotFoundError` if unknown."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT name, created_at, shredded_at FROM tenants WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            raise KeyNotFoundError(f"unknown tenant {name!r}")
        return TenantRecord(row[0], _ts_req(row[1]), _ts(row[2]))

    def list_tenants(self) -> list[TenantRecord]:
        """Every tenant, sorted by name."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT name, created_at, shredded_at FROM tenants ORDER BY name"
            ).fetchall()
        return [TenantRecord(r[0], _ts_req(r[1]), _ts(r[2])) for r in rows]

    # -- keys ---------------------------------------------------------------

    @staticmethod
    def _tenant_state(conn: sqlite3.Connection, tenant: str) -> None:
        row = conn.execute("SELECT shredded_at FROM tenants WHERE name = ?", (tenant,)).fetchone()
        if row is None:
            if conn.execute("SELECT 1 FROM shredded WHERE tenant = ?", (tenant,)).fetchone():
                raise KeyDestroyedError(f"the keys of tenant {tenant!r} were destroyed")
            raise KeyNotFoundError(f"unknown tenant {tenant!r}")
        if row[0] is not None:
            raise KeyDestroyedError(f"the keys of tenant {tenant!r} were destroyed")

    @staticmethod
    def _load_keys(
        conn: sqlite3.Connection, where: str, args: tuple[object, ...]
    ) -> list[KeyRecord]:
        # *where* is always a constant from this module; values are bound parameters.
        query = "SELECT tenant, purpose, version, key_id, created_at FROM tenant_keys WHERE "
        rows = conn.execute(query + where + " ORDER BY purpose, version", args).fetchall()
        out = []
        for tenant, purpose, version, key_id, created_at in rows:
            wraps = conn.execute(
                "SELECT provider_id, wrapped FROM key_wraps"
                " WHERE tenant = ? AND purpose = ? AND version = ? ORDER BY position",
                (tenant, purpose, version),
            ).fetchall()
            out.append(
                KeyRecord(
                    tenant=tenant,
                    purpose=purpose,
                    version=version,
                    key_id=key_id,
                    wraps=tuple((p, bytes(w)) for p, w in wraps),
                    created_at=_ts_req(created_at),
                )
            )
        return out

    def get_key(self, tenant: str, purpose: str, version: int) -> KeyRecord:
        """Return one key version."""
        with self._read() as conn:
            self._tenant_state(conn, tenant)
            found = self._load_keys(
                conn, "tenant = ? AND purpose = ? AND version = ?", (tenant, purpose, version)
            )
        if not found:
            raise KeyNotFoundError(f"tenant {tenant!r} has no {purpose} key version {version}")
        return found[0]

    def get_primary(self, tenant: str, purpose: str) -> KeyRecord:
        """Return the highest version of (*tenant*, *purpose*)."""
        with self._read() as conn:
            self._tenant_state(conn, tenant)
            found = self._load_keys(
                conn,
                "tenant = ? AND purpose = ? AND version = (SELECT MAX(version) FROM tenant_keys"
                " WHERE tenant = ? AND purpose = ?)",
                (tenant, purpose, tenant, purpose),
            )
        if not found:
            raise KeyNotFoundError(f"tenant {tenant!r} has no {purpose} key")
        return found[0]

    def list_keys(self, tenant: str) -> list[KeyRecord]:
        """Every key of *tenant*."""
        with self._read() as conn:
            self._tenant_state(conn, tenant)
            return self._load_keys(conn, "tenant = ?", (tenant,))

    def rotate(self, tenant: str, purpose: str, make: Callable[[int], KeyRecord]) -> KeyRecord:
        """Insert the next version of (*tenant*, *purpose*) under the write lock."""
        result: list[KeyRecord] = []

        def run(conn: sqlite3.Connection) -> None:
            self._tenant_state(conn, tenant)
            self._seal_before(_View(conn), [tenant])
            row = conn.execute(
                "SELECT MAX(version) FROM tenant_keys WHERE tenant = ? AND purpose = ?",
                (tenant, purpose),
            ).fetchone()
            record = next_version(tenant, purpose, None if row is None else row[0], make)
            self._insert_key(conn, record)
            self._seal_after(_View(conn), [tenant])
            result.append(record)

        self._run_write(run)
        return result[0]

    def replace_wraps(self, records: Sequence[KeyRecord]) -> None:
        """Replace the wraps of existing key versions in one transaction."""

        def run(conn: sqlite3.Connection) -> None:
            for record in records:
                row = conn.execute(
                    "SELECT key_id FROM tenant_keys"
                    " WHERE tenant = ? AND purpose = ? AND version = ?",
                    (record.tenant, record.purpose, record.version),
                ).fetchone()
                check_rewrap(record, None if row is None else row[0])
                conn.execute(
                    "DELETE FROM key_wraps WHERE tenant = ? AND purpose = ? AND version = ?",
                    (record.tenant, record.purpose, record.version),
                )
                for position, (provider_id, wrapped) in enumerate(record.wraps):
                    conn.execute(
                        "INSERT INTO key_wraps"
                        " (tenant, purpose, version, position, provider_id, wrapped)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            record.tenant,
                            record.purpose,
                            record.version,
                            position,
                            provider_id,
                            wrapped,
                        ),
                    )

        self._run_write(run)

    # -- shredding ----------------------------------------------------------

    #: Upper bound (seconds) on how long a shred waits for its bytes to leave the files.
    shred_timeout: float = 10.0

    def shred(self, tenant: str) -> None:
        """Delete every key of *tenant*, then purge the bytes from the file and the WAL.

        Raises:
            KeyNotFoundError: unknown tenant.
            ShredIncompleteError: the keys are deleted, but copies of their bytes
                remain after ``shred_timeout`` seconds (named file, copies, and the
                blocking reader); :meth:`finish_shred` completes it later.
        """
        when = _now()

        def run(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT 1 FROM tenants WHERE name = ?", (tenant,)).fetchone()
            if row is None:
                raise KeyNotFoundError(f"unknown tenant {tenant!r}")
            self._seal_before(_View(conn), [tenant])
            wraps = conn.execute(
                "SELECT wrapped FROM key_wraps WHERE tenant = ?", (tenant,)
            ).fetchall()
            conn.execute("DELETE FROM key_wraps WHERE tenant = ?", (tenant,))
            conn.execute("DELETE FROM tenant_keys WHERE tenant = ?", (tenant,))
            conn.execute(
                "UPDATE tenants SET shredded_at = COALESCE(shredded_at, ?) WHERE name = ?",
                (when, tenant),
            )
            conn.execute(
                "INSERT OR IGNORE INTO shredded (tenant, shredded_at) VALUES (?, ?)",
                (tenant, when),
            )
            live = conn.execute(
                "SELECT wrapped FROM key_wraps WHERE tenant <> ?", (tenant,)
            ).fetchall()
            markers = unique_markers(
                markers_of(bytes(w[0]) for w in wraps), (bytes(w[0]) for w in live)
            )
            previous = load_pending(_View(conn).meta_get(PENDING_PREFIX + tenant)) or []
            _View(conn).meta_put(PENDING_PREFIX + tenant, pending_record(previous + markers))
            self._seal_after(_View(conn), [tenant])

        self._run_write(run)
        self.finish_shred(tenant)

    def finish_shred(self, tenant: str) -> None:
        """Purge until no byte of *tenant*'s deleted wraps remains in the file or the WAL.

        Idempotent: returns at once when no shred of *tenant* is pending.

        Raises:
            ShredIncompleteError: copies remain after ``shred_timeout`` seconds.
        """
        markers = load_pending(self.get_meta(PENDING_PREFIX + tenant))
        if markers is None:
            return
        files = [self._path, Path(f"{self._path}-wal"), Path(f"{self._path}-shm")]
        deadline = time.monotonic() + self.shred_timeout
        while True:
            busy = self._purge()
            found = find_markers(files, markers)
            if not found:
                self._run_write(
                    lambda conn: conn.execute(
                        "DELETE FROM meta WHERE name = ?", (PENDING_PREFIX + tenant,)
                    )
                )
                self._purge()
                return
            if time.monotonic() >= deadline:
                where = ", ".join(
                    f"{f} ({n} cop{'y' if n == 1 else 'ies'})" for f, n in found.items()
                )
                readers = other_processes_with(files)
                why = (
                    "another connection holds a read snapshot"
                    + (f": {', '.join(readers)}" if readers else " (not identifiable)")
                    if busy
                    else "the WAL could not be checkpointed"
                )
                raise ShredIncompleteError(
                    f"tenant {tenant!r}: keys deleted, but copies of the wrapped keys remain in"
                    f" {where} after {self.shred_timeout:g}s; {why}. Run `keys shred --finish"
                    f" {tenant}` when it ends."
                )
            time.sleep(0.05)

    def _purge(self) -> bool:
        """Checkpoint the WAL into the file, VACUUM free pages away, truncate the WAL.

        Returns:
            True when a reader blocked a checkpoint (copies may remain).
        """
        with self._lock:
            self._ensure_open()
            # A TRUNCATE checkpoint waits in the busy handler for readers: keep each
            # wait short so that the whole shred stays within shred_timeout.
            self._conn.execute("PRAGMA busy_timeout = 200")
            try:
                busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                self._conn.execute("VACUUM")
                busy2 = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.Error as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    return True
                raise KeyStoreError(
                    f"keys were deleted but the store file could not be purged: {exc}"
                ) from None
            finally:
                self._conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        return bool(busy or busy2)

    def shred_list(self) -> list[tuple[str, datetime]]:
        """Every shredded tenant with its shred time."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT tenant, shredded_at FROM shredded ORDER BY tenant"
            ).fetchall()
        return [(r[0], _ts_req(r[1])) for r in rows]

    # -- meta ---------------------------------------------------------------

    def get_meta(self, name: str) -> bytes | None:
        """A small value by name, or ``None``."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def set_meta(self, name: str, value: bytes | None) -> None:
        """Set or delete a small value (names under ``styku/seal/`` are refused)."""
        self._check_meta_name(name)

        def run(conn: sqlite3.Connection) -> None:
            if value is None:
                conn.execute("DELETE FROM meta WHERE name = ?", (name,))
            else:
                conn.execute(
                    "INSERT INTO meta (name, value) VALUES (?, ?)"
                    " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    (name, bytes(value)),
                )

        self._run_write(run)

    # -- snapshots ----------------------------------------------------------

    def export_snapshot(self) -> StoreSnapshot:
        """A consistent copy of the whole store."""
        with self._read() as conn:
            tenants = conn.execute(
                "SELECT name, created_at, shredded_at FROM tenants ORDER BY name"
            ).fetchall()
            keys = self._load_keys(conn, "1 = 1", ())
            shredded = conn.execute(
                "SELECT tenant, shredded_at FROM shredded ORDER BY tenant"
            ).fetchall()
            meta = conn.execute("SELECT name, value FROM meta ORDER BY name").fetchall()
        return StoreSnapshot(
            tenants=tuple(TenantRecord(r[0], _ts_req(r[1]), _ts(r[2])) for r in tenants),
            keys=tuple(sorted(keys, key=lambda k: (k.tenant, k.purpose, k.version))),
            shredded=tuple((r[0], _ts_req(r[1])) for r in shredded),
            meta=tuple((r[0], bytes(r[1])) for r in meta),
        )

    def import_snapshot(self, snapshot: StoreSnapshot) -> None:
        """Load *snapshot* into this (empty) store."""
        if snapshot.format_version != 1:
            raise KeyStoreError(f"unsupported snapshot format {snapshot.format_version}")

        def run(conn: sqlite3.Connection) -> None:
            for table in ("tenants", "tenant_keys", "shredded"):
                if conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():  # noqa: S608
                    raise KeyStoreError("import_snapshot needs an empty key store")
            for t in snapshot.tenants:
                conn.execute(
                    "INSERT INTO tenants (name, created_at, shredded_at) VALUES (?, ?, ?)",
                    (
                        t.name,
                        t.created_at.isoformat(timespec="microseconds"),
                        None
                        if t.shredded_at is None
                        else t.shredded_at.isoformat(timespec="microseconds"),
                    ),
                )
            for k in snapshot.keys:
                self._insert_key(conn, k)
            for tenant, when in snapshot.shredded:
                conn.execute(
                    "INSERT INTO shredded (tenant, shredded_at) VALUES (?, ?)",
                    (tenant, when.isoformat(timespec="microseconds")),
                )
            for name, value in snapshot.meta:
                if is_store_seal(name):
                    continue  # the source's seals: resealed below under this store's key
                conn.execute(
                    "INSERT INTO meta (name, value) VALUES (?, ?)"
                    " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    (name, value),
                )
            self._seal_after(_View(conn), [], everything=True)

        self._run_write(run)

    # -- health -------------------------------------------------------------

    def check(self) -> list[str]:
        """Consistency problems: integrity check, keyless or gapped tenants, orphans."""
        problems: list[str] = []
        try:
            with self._read() as conn:
                for (msg,) in conn.execute("PRAGMA integrity_check").fetchall():
                    if msg != "ok":
                        problems.append(f"sqlite integrity: {msg}")
                for row in conn.execute("PRAGMA foreign_key_check").fetchall():
                    problems.append(f"foreign key violation in table {row[0]}")
                tenants = conn.execute("SELECT name, shredded_at FROM tenants").fetchall()
                shredded = {r[0] for r in conn.execute("SELECT tenant FROM shredded").fetchall()}
                for name, shredded_at in tenants:
                    rows = conn.execute(
                        "SELECT purpose, version FROM tenant_keys WHERE tenant = ?"
                        " ORDER BY purpose, version",
                        (name,),
                    ).fetchall()
                    if shredded_at is not None:
                        if rows:
                            problems.append(f"tenant {name!r} is shredded but still has keys")
                        if name not in shredded:
                            problems.append(
                                f"tenant {name!r} is shredded but not on the shred list"
                            )
                        continue
                    if name in shredded:
                        problems.append(f"tenant {name!r} is on the shred list but not shredded")
                    for purpose in PURPOSES:
                        versions = [v for p, v in rows if p == purpose]
                        if not versions:
                            problems.append(f"tenant {name!r} has no {purpose} key")
                        elif versions != list(range(1, len(versions) + 1)):
                            problems.append(f"tenant {name!r} {purpose} versions have gaps")
                orphans = conn.execute(
                    "SELECT COUNT(*) FROM tenant_keys k WHERE NOT EXISTS"
                    " (SELECT 1 FROM key_wraps w WHERE w.tenant = k.tenant"
                    " AND w.purpose = k.purpose AND w.version = k.version)"
                ).fetchone()[0]
                if orphans:
                    problems.append(f"{orphans} key version(s) have no wrap")
                stray = conn.execute(
                    "SELECT COUNT(*) FROM key_wraps w WHERE NOT EXISTS"
                    " (SELECT 1 FROM tenant_keys k WHERE w.tenant = k.tenant"
                    " AND w.purpose = k.purpose AND w.version = k.version)"
                ).fetchone()[0]
                if stray:
                    problems.append(f"{stray} wrap(s) belong to no key version")
        except KeyStoreError as exc:
            problems.append(str(exc))
        return problems

    def close(self) -> None:
        """Close the connection. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()


def _default_root(location: str, create: bool) -> RootKeyProvider:
    """A SQLite store's development root: ``$STYKU_CRYPTO_ROOT_KEY_FILE`` or ``<store>.rootkey``."""
    return LocalRootKey.for_store(location, create=create)


register_store_scheme(
    "sqlite",
    StoreScheme(
        make=lambda location, read_only, create: SQLiteBackend(
            location, read_only=read_only, create=create
        ),
        exists=lambda location: Path(location).exists(),
        default_root=_default_root,
        strip_scheme=True,
    ),
)

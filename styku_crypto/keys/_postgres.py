"""The PostgreSQL key-store backend (``postgres`` extra: psycopg 3, imported lazily).

Same interface and guarantees as the SQLite backend. Tables are prefixed
``styku_`` so the store can share a database with an application.

Concurrency: every write runs in one transaction; operations on one tenant
(``rotate``, ``shred``, ``replace_wraps``) first take the tenant's row lock
(``SELECT ... FOR UPDATE``), so concurrent rotations from many processes get
distinct consecutive versions, and a shred cannot interleave with a rotation.
Schema creation is serialised by a transaction-scoped advisory lock.

Secondary: a read-only *secondary* URL (a streaming replica) serves reads when
the primary cannot be reached; writes never go to it (they raise
:class:`~styku_crypto.exceptions.KeyStoreError` naming the unreachable
primary). Pass it as ``secondary=`` or in the store URL's ``secondary`` query
parameter (URL-encoded), which :meth:`KeyStore.open` forwards untouched::

    postgresql://app@db1/keys?secondary=postgresql%3A%2F%2Fapp%40db2%2Fkeys

After a primary failure, reads stay on the secondary for ``retry_primary_after``
seconds before the primary is tried again. A read that fails on the primary
*while in flight* (the server stopped, was frozen or timed out mid-transaction)
is run again from the start on the secondary.

Opening never needs the primary: :meth:`PostgresBackend.initialize` only
*reads* the schema version (from the secondary when the primary is down) and
creates the schema only when it is absent. If no server answers at open, the
check is made by the first call instead.

Bounded time: one setting, ``timeouts`` (seconds, default 5; also the URL's
``timeouts`` query parameter), bounds every step:

* connecting: libpq ``connect_timeout`` = max(2, timeouts) (libpq's minimum is 2 s);
* a dead peer on an idle connection: TCP keepalives (idle = timeouts, then 3
  probes 1 s apart) and ``tcp_user_timeout`` = timeouts;
* one transaction on one server: server-side ``statement_timeout`` and
  ``lock_timeout`` = timeouts, and a client-side watchdog
  (:mod:`~styku_crypto.keys._watchdog`) that cuts the connection when a frozen
  server never answers; whole-store reads (backup export, check) get
  ``12 x timeouts``.

So a read ends within ``2 x (max(2, timeouts) + timeouts)`` (primary, then the
secondary), and a write within ``max(2, timeouts) + timeouts``; see the "Under
faults" table in ``docs/keys.md``.

.. warning::
   PostgreSQL cannot promise that deleted bytes are physically gone: after a
   shred the wrap rows are deleted and the wraps table is rewritten
   (``VACUUM FULL``), but copies may remain in WAL segments, replicas' files
   and database backups until they are recycled. Crypto-shredding still holds
   while the root key is intact: a wrapped key is useless without the root,
   and restores honour the shred list (see ``docs/keys.md``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from styku_crypto._extras import require
from styku_crypto.exceptions import (
    InvalidInputError,
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
from styku_crypto.keys._pg_connections import (
    BULK_FACTOR,
    PgConnections,
    RetryOnSecondary,
    UnreachableError,
    check_timeouts,
    check_url,
    describe,
    failover_read,
    split_url,
)
from styku_crypto.keys._schemes import StoreScheme, register_store_scheme
from styku_crypto.keys._sealing import SealView, TenantState, is_store_seal
from styku_crypto.keys._shred import (
    PENDING_PREFIX,
    load_pending,
    markers_of,
    pending_record,
    pending_since,
)

__all__ = ["PostgresBackend"]

_DEFAULT_TIMEOUT = 5.0
_T = TypeVar("_T")


_SCHEMA_VERSION = 1
_ADVISORY_LOCK = 0x5354594B  # "STYK"
_SEAL_LOCK = 0x5354594C  # serialises sealed writers (one global seal counter)
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS styku_schema (
        singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
        version INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS styku_tenants (
        name TEXT PRIMARY KEY,
        created_at TIMESTAMPTZ NOT NULL,
        shredded_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS styku_tenant_keys (
        tenant TEXT NOT NULL REFERENCES styku_tenants(name),
        purpose TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        key_id TEXT NOT NULL UNIQUE,
        created_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (tenant, purpose, version))""",
    """CREATE TABLE IF NOT EXISTS styku_key_wraps (
        tenant TEXT NOT NULL,
        purpose TEXT NOT NULL,
        version INTEGER NOT NULL,
        position INTEGER NOT NULL,
        provider_id TEXT NOT NULL,
        wrapped BYTEA NOT NULL,
        PRIMARY KEY (tenant, purpose, version, provider_id),
        FOREIGN KEY (tenant, purpose, version)
            REFERENCES styku_tenant_keys(tenant, purpose, version))""",
    """CREATE TABLE IF NOT EXISTS styku_shredded (
        tenant TEXT PRIMARY KEY,
        shredded_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS styku_meta (
        name TEXT PRIMARY KEY,
        value BYTEA NOT NULL)""",
)
_TENANT_STATE = "SELECT shredded_at FROM styku_tenants WHERE name = %s"
_TENANT_FOR_UPDATE = _TENANT_STATE + " FOR UPDATE"
_KEYS_SELECT = (
    "SELECT k.tenant, k.purpose, k.version, k.key_id, k.created_at, w.provider_id, w.wrapped"
    " FROM styku_tenant_keys k LEFT JOIN styku_key_wraps w"
    " ON w.tenant = k.tenant AND w.purpose = k.purpose AND w.version = k.version WHERE "
)
_KEYS_ORDER = ' ORDER BY k.tenant COLLATE "C", k.purpose, k.version, w.position'
# Other sessions holding any lock on a table (a rewrite would queue behind them).
# Other sessions holding a granted lock on any of the given tables (a text[] of names).
_LOCK_HOLDERS = (
    "SELECT DISTINCT l.pid, a.application_name, COALESCE(a.state, '?') FROM pg_locks l"
    " LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.relation = ANY(%s::regclass[]) AND l.granted AND l.pid <> pg_backend_pid()"
    " ORDER BY l.pid"
)
_PURGED = ("styku_key_wraps", "styku_tenant_keys")  # rewritten by a shred
_TABLES = ("styku_tenants", "styku_tenant_keys", "styku_key_wraps", "styku_shredded")


class _View:
    """A :class:`~styku_crypto.keys._sealing.SealView` over one PostgreSQL transaction."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def lock(self) -> None:
        """Take the transaction-scoped advisory lock that serialises sealed writers."""
        self._cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SEAL_LOCK,))

    def tenant_state(self, name: str) -> TenantState | None:
        cur = self._cur
        cur.execute("SELECT shredded_at FROM styku_tenants WHERE name = %s", (name,))
        row = cur.fetchone()
        cur.execute("SELECT 1 FROM styku_shredded WHERE tenant = %s", (name,))
        tomb = cur.fetchone()
        if row is None and tomb is None:
            return None
        cur.execute(
            "SELECT purpose, version, key_id FROM styku_tenant_keys WHERE tenant = %s"
            ' ORDER BY purpose COLLATE "C", version',
            (name,),
        )
        keys = cur.fetchall()
        return TenantState(
            name,
            row is None or row[0] is not None,
            tomb is not None,
            tuple((str(p), int(v), str(k)) for p, v, k in keys),
        )

    def tenant_names(self) -> list[str]:
        self._cur.execute("SELECT name FROM styku_tenants UNION SELECT tenant FROM styku_shredded")
        return sorted(r[0] for r in self._cur.fetchall())

    def meta_get(self, name: str) -> bytes | None:
        self._cur.execute("SELECT value FROM styku_meta WHERE name = %s", (name,))
        row = self._cur.fetchone()
        return None if row is None else bytes(row[0])

    def meta_put(self, name: str, value: bytes | None) -> None:
        if value is None:
            self._cur.execute("DELETE FROM styku_meta WHERE name = %s", (name,))
        else:
            self._cur.execute(
                "INSERT INTO styku_meta (name, value) VALUES (%s, %s)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, bytes(value)),
            )

    def meta_scan(self, prefix: str) -> list[tuple[str, bytes]]:
        self._cur.execute(
            "SELECT name, value FROM styku_meta WHERE substr(name, 1, %s) = %s"
            ' ORDER BY name COLLATE "C"',
            (len(prefix), prefix),
        )
        return [(r[0], bytes(r[1])) for r in self._cur.fetchall()]


class PostgresBackend(KeyStoreBackend):
    """Tenants and wrapped keys in PostgreSQL (psycopg 3).

    Args:
        url: ``postgresql://user[:password]@host[:port]/dbname[?...]``; a
            ``secondary`` query parameter names a read-only replica, a
            ``timeouts`` one sets *timeouts*.
        read_only: refuse every write (and use only reads on the primary).
        secondary: URL of a read-only replica for reads when the primary is
            unreachable (overrides the query parameter).
        timeouts: seconds bounding each step (connect, one transaction on one
            server; see the module docstring); default 5.
        retry_primary_after: seconds reads stay on the secondary after the
            primary failed.

    Raises:
        MissingExtraError: psycopg is not installed (``pip install 'styku-crypto[postgres]'``).
        InvalidInputError: the URL is not a PostgreSQL URL.
    """

    def __init__(
        self,
        url: str,
        *,
        read_only: bool = False,
        secondary: str | None = None,
        timeouts: float | None = None,
        retry_primary_after: float = 5.0,
    ) -> None:
        if not url.startswith(("postgresql://", "postgres://")):
            raise InvalidInputError("a PostgreSQL store URL starts with postgresql://")
        self._psycopg = require("psycopg", extra="postgres")
        primary, from_query, timeouts_query = split_url(url)
        if timeouts is None:
            timeouts = _DEFAULT_TIMEOUT if timeouts_query is None else timeouts_query  # type: ignore[assignment]
        self._timeout = check_timeouts(timeouts)
        check_url(self._psycopg, primary, "store")
        self._primary_url = primary
        self._secondary_url = secondary or from_query
        if self._secondary_url:
            check_url(self._psycopg, self._secondary_url, "secondary")
        self._read_only = read_only
        self._schema_ok = False
        self._db = PgConnections(
            self._psycopg,
            primary,
            self._secondary_url,
            timeout=self._timeout,
            read_only=read_only,
            retry_after=retry_primary_after,
        )

    # -- plumbing -----------------------------------------------------------

    @property
    def read_only(self) -> bool:
        """True when writes are refused."""
        return self._read_only

    @property
    def location(self) -> str:
        """The primary's URL without password (and the secondary's, if any)."""
        loc = describe(self._primary_url)
        if self._secondary_url:
            loc += f" (secondary {describe(self._secondary_url)})"
        return loc

    def __repr__(self) -> str:
        return f"<PostgresBackend {self.location!r}{' read-only' if self._read_only else ''}>"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("PostgresBackend holds the store URL (with its password); not picklable")

    @property
    def timeouts(self) -> float:
        """The ``timeouts`` setting in seconds (see the module docstring)."""
        return self._timeout

    @property
    def connect_bound(self) -> float:
        """Seconds one connection attempt may take: max(2, timeouts)."""
        return self._db.connect_bound

    @property
    def read_bound(self) -> float:
        """Upper bound of one read call under faults: primary, then secondary."""
        return 2 * (self.connect_bound + self._timeout)

    @property
    def write_bound(self) -> float:
        """Upper bound of one write call under faults (writes never go to the secondary)."""
        return self.connect_bound + self._timeout

    @contextlib.contextmanager
    def _read(self, *, bulk: bool = False, schema: bool = True) -> Iterator[Any]:
        """A read transaction (:meth:`PgConnections.read`); checks the schema until it is known."""
        check = self._check_schema if schema and not self._schema_ok else None
        with self._db.read(bulk=bulk, before=check) as cur:
            yield cur

    @contextlib.contextmanager
    def _write(self, *, bound: float | None = None) -> Iterator[Any]:
        """A write transaction on the primary (:meth:`PgConnections.write`).

        Creates the schema first when no call has confirmed it yet (lazily, on
        the first write after an open that could not reach any server).
        """
        create = None if self._schema_ok else self._create_schema
        with self._db.write(bound=bound, before=create) as cur:
            yield cur
        if create is not None:
            self._schema_ok = True

    def _check_schema(self, cur: Any) -> None:
        self._schema_state(cur, strict=True)

    @contextlib.contextmanager
    def seal_view(self, *, write: bool = False) -> Iterator[_View]:
        """One read (or, with *write*, write) transaction as a seal view."""
        if write:
            with self._write() as cur:
                yield _View(cur)
        else:
            with self._read() as cur:
                yield _View(cur)

    @failover_read
    def read_sealed(self, fn: Callable[[SealView], _T]) -> _T:
        """``fn(view)`` in one read transaction, run again on the replica if the primary fails."""
        with self.seal_view() as view:
            return fn(view)

    # -- schema -------------------------------------------------------------

    def initialize(self) -> None:
        """Check the schema by a *read* (the secondary serves it when the primary is down).

        Creates the schema only when it is absent (idempotent, safe from
        concurrent processes; needs the primary). When no server answers, the
        check is deferred to the first call, so opening never needs the primary.

        Raises:
            KeyStoreError: the schema is absent and the store is read-only (or
                the primary is unreachable), or its version is unsupported.
        """
        try:
            present = self._probe_schema()
        except UnreachableError:
            return  # checked by the first read (or created by the first write)
        if present:
            self._schema_ok = True
            return
        if self._read_only:
            raise KeyStoreError(f"{self.location} is not an initialised key store")
        with self._write():
            pass  # _write creates the schema (self._schema_ok is False)

    @failover_read
    def _probe_schema(self) -> bool:
        with self._read(schema=False) as cur:
            return self._schema_state(cur, strict=False)

    def _schema_state(self, cur: Any, *, strict: bool) -> bool:
        """True when the schema exists at our version; False when absent (raises if *strict*)."""
        cur.execute("SELECT to_regclass('styku_schema') IS NOT NULL")
        row = cur.fetchone()
        if row and row[0]:
            cur.execute("SELECT version FROM styku_schema")
            row = cur.fetchone()
            if row is not None and row[0] != _SCHEMA_VERSION:
                raise KeyStoreError(f"unsupported key store schema version {row[0]}")
            if row is not None:
                self._schema_ok = True
                return True
        if strict:
            raise KeyStoreError(f"{self.location} is not an initialised key store")
        return False

    @staticmethod
    def _create_schema(cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
        for statement in _SCHEMA:
            cur.execute(statement)
        cur.execute("SELECT version FROM styku_schema")
        row = cur.fetchone()
        if row is None:
            cur.execute("INSERT INTO styku_schema (version) VALUES (%s)", (_SCHEMA_VERSION,))
        elif row[0] != _SCHEMA_VERSION:
            raise KeyStoreError(f"unsupported key store schema version {row[0]}")

    # -- tenants ------------------------------------------------------------

    def create_tenant(self, name: str, records: Sequence[KeyRecord]) -> TenantRecord:
        """Insert tenant *name* and its first keys in one transaction."""
        created = datetime.now(UTC)
        with self._write() as cur:
            self._seal_before(_View(cur), [name])
            cur.execute("SELECT 1 FROM styku_shredded WHERE tenant = %s", (name,))
            if cur.fetchone():
                raise KeyStoreError(f"tenant {name!r} was shredded; names are never reused")
            cur.execute(
                "INSERT INTO styku_tenants (name, created_at) VALUES (%s, %s)"
                " ON CONFLICT (name) DO NOTHING",
                (name, created),
            )
            if cur.rowcount != 1:
                raise KeyStoreError(f"tenant {name!r} already exists")
            for record in records:
                if record.tenant != name:
                    raise KeyStoreError("key record belongs to another tenant")
                self._insert_key(cur, record)
            self._seal_after(_View(cur), [name])
        return TenantRecord(name=name, created_at=created)

    @staticmethod
    def _insert_key(cur: Any, record: KeyRecord) -> None:
        if not record.wraps:
            raise KeyStoreError("a key record needs at least one wrap")
        cur.execute(
            "INSERT INTO styku_tenant_keys (tenant, purpose, version, key_id, created_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (record.tenant, record.purpose, record.version, record.key_id, record.created_at),
        )
        cur.executemany(
            "INSERT INTO styku_key_wraps"
            " (tenant, purpose, version, position, provider_id, wrapped)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (record.tenant, record.purpose, record.version, pos, provider, wrapped)
                for pos, (provider, wrapped) in enumerate(record.wraps)
            ],
        )

    @failover_read
    def get_tenant(self, name: str) -> TenantRecord:
        """Return tenant *name*; :class:`KeyNotFoundError` if unknown."""
        with self._read() as cur:
            cur.execute(
                "SELECT name, created_at, shredded_at FROM styku_tenants WHERE name = %s", (name,)
            )
            row = cur.fetchone()
        if row is None:
            raise KeyNotFoundError(f"unknown tenant {name!r}")
        return TenantRecord(row[0], row[1], row[2])

    @failover_read
    def list_tenants(self) -> list[TenantRecord]:
        """Every tenant, sorted by name."""
        with self._read() as cur:
            cur.execute(
                'SELECT name, created_at, shredded_at FROM styku_tenants ORDER BY name COLLATE "C"'
            )
            rows = cur.fetchall()
        return [TenantRecord(r[0], r[1], r[2]) for r in rows]

    # -- keys ---------------------------------------------------------------

    @staticmethod
    def _tenant_state(cur: Any, tenant: str, *, lock: bool = False) -> None:
        cur.execute(_TENANT_FOR_UPDATE if lock else _TENANT_STATE, (tenant,))
        row = cur.fetchone()
        if row is None:
            cur.execute("SELECT 1 FROM styku_shredded WHERE tenant = %s", (tenant,))
            if cur.fetchone():
                raise KeyDestroyedError(f"the keys of tenant {tenant!r} were destroyed")
            raise KeyNotFoundError(f"unknown tenant {tenant!r}")
        if row[0] is not None:
            raise KeyDestroyedError(f"the keys of tenant {tenant!r} were destroyed")

    @staticmethod
    def _load_keys(cur: Any, where: str, args: tuple[object, ...]) -> list[KeyRecord]:
        # *where* is always a constant from this module; values are bound parameters.
        cur.execute(_KEYS_SELECT + where + _KEYS_ORDER, args)
        grouped: dict[tuple[str, str, int], tuple[str, datetime, list[tuple[str, bytes]]]] = {}
        for tenant, purpose, version, key_id, created_at, provider, wrapped in cur.fetchall():
            entry = grouped.setdefault((tenant, purpose, version), (key_id, created_at, []))
            if provider is not None:
                entry[2].append((provider, bytes(wrapped)))
        return [
            KeyRecord(
                tenant=t,
                purpose=p,
                version=v,
                key_id=key_id,
                wraps=tuple(wraps),
                created_at=created_at,
            )
            for (t, p, v), (key_id, created_at, wraps) in grouped.items()
        ]

    @failover_read
    def get_key(self, tenant: str, purpose: str, version: int) -> KeyRecord:
        """Return one key version."""
        with self._read() as cur:
            self._tenant_state(cur, tenant)
            found = self._load_keys(
                cur,
                "k.tenant = %s AND k.purpose = %s AND k.version = %s",
                (tenant, purpose, version),
            )
        if not found:
            raise KeyNotFoundError(f"tenant {tenant!r} has no {purpose} key version {version}")
        return found[0]

    @failover_read
    def get_primary(self, tenant: str, purpose: str) -> KeyRecord:
        """Return the highest version of (*tenant*, *purpose*)."""
        with self._read() as cur:
            self._tenant_state(cur, tenant)
            found = self._load_keys(
                cur,
                "k.tenant = %s AND k.purpose = %s AND k.version = (SELECT MAX(version)"
                " FROM styku_tenant_keys WHERE tenant = %s AND purpose = %s)",
                (tenant, purpose, tenant, purpose),
            )
        if not found:
            raise KeyNotFoundError(f"tenant {tenant!r} has no {purpose} key")
        return found[0]

    @failover_read
    def list_keys(self, tenant: str) -> list[KeyRecord]:
        """Every key of *tenant*."""
        with self._read() as cur:
            self._tenant_state(cur, tenant)
            return self._load_keys(cur, "k.tenant = %s", (tenant,))

    def rotate(self, tenant: str, purpose: str, make: Callable[[int], KeyRecord]) -> KeyRecord:
        """Insert the next version under the tenant's row lock (``SELECT ... FOR UPDATE``)."""
        with self._write() as cur:
            self._seal_before(_View(cur), [tenant])
            self._tenant_state(cur, tenant, lock=True)
            cur.execute(
                "SELECT MAX(version) FROM styku_tenant_keys WHERE tenant = %s AND purpose = %s",
                (tenant, purpose),
            )
            row = cur.fetchone()
            record = next_version(tenant, purpose, None if row is None else row[0], make)
            self._insert_key(cur, record)
            self._seal_after(_View(cur), [tenant])
        return record

    def replace_wraps(self, records: Sequence[KeyRecord]) -> None:
        """Replace the wraps of existing key versions in one transaction."""
        with self._write() as cur:
            for tenant in sorted({r.tenant for r in records}):
                cur.execute("SELECT 1 FROM styku_tenants WHERE name = %s FOR UPDATE", (tenant,))
            for record in records:
                cur.execute(
                    "SELECT key_id FROM styku_tenant_keys"
                    " WHERE tenant = %s AND purpose = %s AND version = %s",
                    (record.tenant, record.purpose, record.version),
                )
                row = cur.fetchone()
                check_rewrap(record, None if row is None else row[0])
                cur.execute(
                    "DELETE FROM styku_key_wraps"
                    " WHERE tenant = %s AND purpose = %s AND version = %s",
                    (record.tenant, record.purpose, record.version),
                )
                cur.executemany(
                    "INSERT INTO styku_key_wraps"
                    " (tenant, purpose, version, position, provider_id, wrapped)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    [
                        (record.tenant, record.purpose, record.version, pos, provider, wrapped)
                        for pos, (provider, wrapped) in enumerate(record.wraps)
                    ],
                )

    # -- shredding ----------------------------------------------------------

    #: Upper bound (seconds) on how long a shred waits to rewrite the tables.
    shred_timeout: float = 10.0

    def shred(self, tenant: str) -> None:
        """Delete every key of *tenant*, record the shred, then rewrite the wraps table.

        Raises:
            KeyNotFoundError: unknown tenant.
            ShredIncompleteError: the rows are deleted, but the table could not be
                rewritten without them within ``shred_timeout`` (a session holds an
                older snapshot or a lock on it; named); :meth:`finish_shred` completes it.
        """
        when = datetime.now(UTC)
        with self._write() as cur:
            self._seal_before(_View(cur), [tenant])
            cur.execute("SELECT 1 FROM styku_tenants WHERE name = %s FOR UPDATE", (tenant,))
            if cur.fetchone() is None:
                raise KeyNotFoundError(f"unknown tenant {tenant!r}")
            cur.execute("SELECT wrapped FROM styku_key_wraps WHERE tenant = %s", (tenant,))
            markers = markers_of(bytes(r[0]) for r in cur.fetchall())
            cur.execute("DELETE FROM styku_key_wraps WHERE tenant = %s", (tenant,))
            cur.execute("DELETE FROM styku_tenant_keys WHERE tenant = %s", (tenant,))
            cur.execute(
                "UPDATE styku_tenants SET shredded_at = COALESCE(shredded_at, %s) WHERE name = %s",
                (when, tenant),
            )
            cur.execute(
                "INSERT INTO styku_shredded (tenant, shredded_at) VALUES (%s, %s)"
                " ON CONFLICT (tenant) DO NOTHING",
                (tenant, when),
            )
            view = _View(cur)
            previous = load_pending(view.meta_get(PENDING_PREFIX + tenant)) or []
            cur.execute("SELECT clock_timestamp()")
            since = cur.fetchone()[0].isoformat()
            view.meta_put(PENDING_PREFIX + tenant, pending_record(previous + markers, since=since))
            self._seal_after(view, [tenant])
        self.finish_shred(tenant)

    def finish_shred(self, tenant: str) -> None:
        """Rewrite the tables once no other session can still see the deleted rows.

        ``VACUUM FULL`` copies every row some snapshot may still see, so it only
        runs when no other session of this database holds a snapshot older than
        the delete, and with a ``lock_timeout`` so that it never queues forever
        behind an idle session. Idempotent.

        Raises:
            ShredIncompleteError: after ``shred_timeout`` seconds; names the sessions.
        """
        raw = self.get_meta(PENDING_PREFIX + tenant)
        if load_pending(raw) is None:
            return
        since = pending_since(raw)
        deadline = time.monotonic() + self.shred_timeout
        while True:
            blockers = self._snapshot_holders(since)
            why = "an older snapshot can still see the deleted rows"
            if not blockers:
                # Short lock waits: while VACUUM FULL queues for its exclusive lock, every
                # other reader of the table queues behind it, so never wait long at once.
                remaining = max(0.05, deadline - time.monotonic())
                locked = self._purge(lock_timeout=min(0.25, remaining))
                if not locked:
                    with self._write() as cur:
                        _View(cur).meta_put(PENDING_PREFIX + tenant, None)
                    return
                blockers = self._lock_holders()
                why = "a session holds a lock on the table"
            if time.monotonic() >= deadline:
                names = ", ".join(blockers) or "not identifiable (insufficient privileges?)"
                raise ShredIncompleteError(
                    f"tenant {tenant!r}: keys deleted, but the wrapped keys remain in the live"
                    f" table file of styku_key_wraps after {self.shred_timeout:g}s; {why}:"
                    f" {names}. Copies also remain in WAL segments and replicas until"
                    f" recycled. Run `keys shred --finish {tenant}` when it ends."
                )
            time.sleep(0.1)

    def _snapshot_holders(self, since: str | None) -> list[str]:
        """Other sessions of this database whose transaction started before *since*."""
        with self._read() as cur:
            cur.execute(
                "SELECT pid, application_name, state FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND backend_type = 'client backend' AND backend_xmin IS NOT NULL"
                " AND xact_start <= COALESCE(%s::timestamptz, now()) ORDER BY pid",
                (since,),
            )
            rows = cur.fetchall()
        return [f"pid {r[0]} ({r[1] or 'no application_name'}, {r[2]})" for r in rows]

    def _lock_holders(self) -> list[str]:
        """Other sessions holding a lock on either table a shred rewrites."""
        with self._read() as cur:
            cur.execute(_LOCK_HOLDERS, (list(_PURGED),))
            rows = cur.fetchall()
        return [f"pid {r[0]} ({r[1] or 'no application_name'}, {r[2]})" for r in rows]

    def _purge(self, *, lock_timeout: float) -> bool:
        """Rewrite the wraps and keys tables so deleted rows leave the live files.

        ``VACUUM FULL`` needs the table's exclusive lock, and every reader that
        arrives while it *waits* for that lock queues behind it. So the rewrite
        never waits in the queue: it starts only when no other session holds a
        lock on the table, with a short ``lock_timeout`` (at most *lock_timeout*
        and ``timeouts / 10``) for a reader that slips in between. Readers of
        other tenants are delayed by at most that wait plus the rewrite itself.
        :meth:`finish_shred` polls until it succeeds or its deadline passes.

        Returns:
            True when a table was held by another session (nothing was queued).
        """
        psycopg = self._psycopg
        wait_ms = max(50, int(min(lock_timeout, self._timeout / 10) * 1000))
        for table in _PURGED:
            with self._db.lock:
                try:
                    conn = self._db.primary()
                    with self._db.bounded(conn, 2 * self._timeout):
                        if conn.execute(_LOCK_HOLDERS, ([table],)).fetchall():
                            return True
                        conn.execute(f"SET lock_timeout = {wait_ms}")
                        try:
                            conn.execute(f"VACUUM (FULL) {table}")
                        except psycopg.errors.LockNotAvailable:
                            return True
                        finally:
                            conn.execute("RESET lock_timeout")
                except psycopg.Error as exc:
                    raise KeyStoreError(
                        "keys were deleted but the tables could not be rewritten"
                        f" ({type(exc).__name__})"
                    ) from None
        return False

    @failover_read
    def shred_list(self) -> list[tuple[str, datetime]]:
        """Every shredded tenant with its shred time."""
        with self._read() as cur:
            cur.execute(
                'SELECT tenant, shredded_at FROM styku_shredded ORDER BY tenant COLLATE "C"'
            )
            rows = cur.fetchall()
        return [(r[0], r[1]) for r in rows]

    # -- meta ---------------------------------------------------------------

    @failover_read
    def get_meta(self, name: str) -> bytes | None:
        """A small value by name, or ``None``."""
        with self._read() as cur:
            cur.execute("SELECT value FROM styku_meta WHERE name = %s", (name,))
            row = cur.fetchone()
        return None if row is None else bytes(row[0])

    def set_meta(self, name: str, value: bytes | None) -> None:
        """Set or delete a small value (names under ``styku/seal/`` are refused)."""
        self._check_meta_name(name)
        with self._write() as cur:
            if value is None:
                cur.execute("DELETE FROM styku_meta WHERE name = %s", (name,))
            else:
                cur.execute(
                    "INSERT INTO styku_meta (name, value) VALUES (%s, %s)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (name, bytes(value)),
                )

    # -- snapshots ----------------------------------------------------------

    @failover_read
    def export_snapshot(self) -> StoreSnapshot:
        """A consistent copy of the whole store (one repeatable-read transaction)."""
        with self._read(bulk=True) as cur:
            cur.execute(
                'SELECT name, created_at, shredded_at FROM styku_tenants ORDER BY name COLLATE "C"'
            )
            tenants = cur.fetchall()
            keys = self._load_keys(cur, "TRUE", ())
            cur.execute(
                'SELECT tenant, shredded_at FROM styku_shredded ORDER BY tenant COLLATE "C"'
            )
            shredded = cur.fetchall()
            cur.execute('SELECT name, value FROM styku_meta ORDER BY name COLLATE "C"')
            meta = cur.fetchall()
        return StoreSnapshot(
            tenants=tuple(TenantRecord(r[0], r[1], r[2]) for r in tenants),
            keys=tuple(keys),
            shredded=tuple((r[0], r[1]) for r in shredded),
            meta=tuple((r[0], bytes(r[1])) for r in meta),
        )

    def import_snapshot(self, snapshot: StoreSnapshot) -> None:
        """Load *snapshot* into this (empty) store in one transaction."""
        if snapshot.format_version != 1:
            raise KeyStoreError(f"unsupported snapshot format {snapshot.format_version}")
        with self._write(bound=BULK_FACTOR * self._timeout) as cur:
            cur.execute("LOCK TABLE styku_tenants IN EXCLUSIVE MODE")
            for table in _TABLES:
                cur.execute(f"SELECT 1 FROM {table} LIMIT 1")  # noqa: S608 - constant names
                if cur.fetchone():
                    raise KeyStoreError("import_snapshot needs an empty key store")
            cur.executemany(
                "INSERT INTO styku_tenants (name, created_at, shredded_at) VALUES (%s, %s, %s)",
                [(t.name, t.created_at, t.shredded_at) for t in snapshot.tenants],
            )
            for record in snapshot.keys:
                self._insert_key(cur, record)
            cur.executemany(
                "INSERT INTO styku_shredded (tenant, shredded_at) VALUES (%s, %s)",
                list(snapshot.shredded),
            )
            cur.executemany(
                "INSERT INTO styku_meta (name, value) VALUES (%s, %s)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [(n, v) for n, v in snapshot.meta if not is_store_seal(n)],
            )
            self._seal_after(_View(cur), [], everything=True)

    # -- health -------------------------------------------------------------

    @failover_read
    def check(self) -> list[str]:
        """Consistency problems: keyless or gapped tenants, shred-list mismatches, orphans."""
        problems: list[str] = []
        try:
            with self._read(bulk=True) as cur:
                cur.execute("SELECT name, shredded_at FROM styku_tenants")
                tenants = cur.fetchall()
                cur.execute("SELECT tenant FROM styku_shredded")
                shredded = {r[0] for r in cur.fetchall()}
                cur.execute(
                    "SELECT tenant, purpose, version FROM styku_tenant_keys"
                    " ORDER BY tenant, purpose, version"
                )
                versions: dict[str, list[tuple[str, int]]] = {}
                for tenant, purpose, version in cur.fetchall():
                    versions.setdefault(tenant, []).append((purpose, version))
                cur.execute(
                    "SELECT COUNT(*) FROM styku_tenant_keys k WHERE NOT EXISTS"
                    " (SELECT 1 FROM styku_key_wraps w WHERE w.tenant = k.tenant"
                    " AND w.purpose = k.purpose AND w.version = k.version)"
                )
                orphans = cur.fetchone()[0]
                cur.execute(
                    "SELECT COUNT(*) FROM styku_key_wraps w WHERE NOT EXISTS"
                    " (SELECT 1 FROM styku_tenant_keys k WHERE w.tenant = k.tenant"
                    " AND w.purpose = k.purpose AND w.version = k.version)"
                )
                stray = cur.fetchone()[0]
        except RetryOnSecondary:
            raise  # @failover_read runs the check again on the secondary
        except KeyStoreError as exc:
            return [str(exc)]
        for name, shredded_at in tenants:
            rows = versions.get(name, [])
            if shredded_at is not None:
                if rows:
                    problems.append(f"tenant {name!r} is shredded but still has keys")
                if name not in shredded:
                    problems.append(f"tenant {name!r} is shredded but not on the shred list")
                continue
            if name in shredded:
                problems.append(f"tenant {name!r} is on the shred list but not shredded")
            for purpose in PURPOSES:
                have = [v for p, v in rows if p == purpose]
                if not have:
                    problems.append(f"tenant {name!r} has no {purpose} key")
                elif have != list(range(1, len(have) + 1)):
                    problems.append(f"tenant {name!r} {purpose} versions have gaps")
        if orphans:
            problems.append(f"{orphans} key version(s) have no wrap")
        if stray:
            problems.append(f"{stray} wrap(s) belong to no key version")
        return problems

    def close(self) -> None:
        """Close both connections. Idempotent."""
        self._db.close()


_SCHEME = StoreScheme(make=lambda url, read_only, create: PostgresBackend(url, read_only=read_only))
register_store_scheme("postgresql", _SCHEME)
register_store_scheme("postgres", _SCHEME)

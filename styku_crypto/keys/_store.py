"""The :class:`KeyStore` facade: tenants, rotation, shredding, cached tenant keys."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import NoReturn

from styku_crypto.events import emit
from styku_crypto.exceptions import (
    DecryptionError,
    InvalidInputError,
    KeyDestroyedError,
    KeyNotFoundError,
    KeyStoreError,
    MetadataIntegrityError,
    RootKeyUnavailableError,
    ShredIncompleteError,
    TenantRootRemainsError,
)
from styku_crypto.keys import _store_upkeep as _upkeep
from styku_crypto.keys._backend import PURPOSES, KeyRecord, KeyStoreBackend, TenantRecord
from styku_crypto.keys._material import TenantKey, wrap_aad
from styku_crypto.keys._provider import TENANT_ROOT_MARK, RootKeyProvider
from styku_crypto.keys._sealing import KEY_NAME, Sealer, SealView, TenantState
from styku_crypto.keys._store_open import open_backend, providers_from
from styku_crypto.keys._tenant_roots import (
    LIVE,
    TENANT_ROOTS_POLICY,
    TENANT_ROOTS_RECORD,
    TenantRoots,
    entries_doc,
    parse_entries,
)

__all__ = [
    "RESERVED_PREFIX",
    "SHRED_HOOKS",
    "STORE_ENV",
    "KeyInfo",
    "KeyStore",
    "TenantInfo",
    "is_reserved",
]

#: Environment variable naming the default store for the CLI.
STORE_ENV = "STYKU_CRYPTO_STORE"

_monotonic = time.monotonic
_TENANT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}\Z")
_DEFAULT_TTL = 300.0
_DEFAULT_SIZE = 4096

#: Tenant names starting with this prefix (any letter case) hold the library's own
#: key material (password peppers, incident-log keys). ``create_tenant`` and
#: ``shred`` refuse them, and envelope encryption cannot use them.
RESERVED_PREFIX = "styku-internal-"

#: Run with ``(store, tenant)`` before a shred is committed. ``keys._backup`` registers
#: the hook that writes signed tombstones to every backup destination of the store
#: (a registry, so this module never imports the backup module).
SHRED_HOOKS: list[Callable[[KeyStore, str], None]] = []


@dataclass(frozen=True)
class KeyInfo:
    """Non-secret description of one tenant key version."""

    purpose: str
    version: int
    key_id: str
    created_at: datetime
    providers: tuple[str, ...]
    primary: bool


@dataclass(frozen=True)
class TenantInfo:
    """Non-secret description of a tenant and its key versions."""

    name: str
    created_at: datetime
    shredded_at: datetime | None
    keys: tuple[KeyInfo, ...]

    @property
    def shredded(self) -> bool:
        """True once the tenant's keys were destroyed."""
        return self.shredded_at is not None


def check_tenant(name: object) -> str:
    """Validate a tenant name: 1-128 of ``A-Z a-z 0-9 . _ : @ + -``, starting alphanumeric.

    Raises:
        InvalidInputError: the name is not a valid tenant name.
    """
    if not isinstance(name, str) or not _TENANT_RE.match(name):
        raise InvalidInputError(
            "tenant names are 1-128 characters of A-Z a-z 0-9 . _ : @ + -, starting alphanumeric"
        )
    return name


def is_reserved(name: str) -> bool:
    """True when *name* is in the reserved internal namespace (case-insensitive prefix)."""
    return name[: len(RESERVED_PREFIX)].lower() == RESERVED_PREFIX


def _refuse_reserved(name: str) -> None:
    if is_reserved(name):
        raise InvalidInputError(
            f"tenant names starting with {RESERVED_PREFIX!r} are reserved for the library's"
            " internal keys"
        )


def _check_purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise InvalidInputError(f"unknown key purpose {purpose!r}; expected one of {PURPOSES}")
    return purpose


class KeyStore:
    """Tenant key hierarchies under one or more root keys.

    Root key -> per-tenant, per-purpose, versioned tenant keys (stored only
    wrapped, the wrap bound to tenant, purpose, version and key id) -> per-message
    data keys (in :mod:`styku_crypto.envelope`).

    Unwrapped tenant keys are cached in memory for at most ``cache_ttl``
    seconds and at most ``cache_size`` entries, so the root key is not called
    per record. Thread-safe.

    With several root providers every tenant key is wrapped under each of them
    that is available: creating a tenant, rotating and backing up proceed while
    at least ``quorum`` roots (default 1) can wrap. A wrap that could not be made
    is *missing*: :meth:`check` reports it and :meth:`repair_wraps` (``keys
    check --repair``) adds it once the root is back. Unwrapping tries them in
    order and fails over to the next *only* on
    :class:`~styku_crypto.exceptions.RootKeyUnavailableError` (emitting
    ``key.root_failover``); an integrity failure never fails over.

    .. warning::
       A cached tenant key outlives a ``shred`` performed by *another process*
       for up to ``cache_ttl`` seconds. Shred through the same store object,
       or pick a short ``cache_ttl``, when that matters.
    """

    def __init__(
        self,
        backend: KeyStoreBackend,
        *,
        root: RootKeyProvider | Sequence[RootKeyProvider],
        cache_ttl: float = _DEFAULT_TTL,
        cache_size: int = _DEFAULT_SIZE,
        quorum: int = 1,
        tenant_roots: bool = False,
    ) -> None:
        """Use *backend* (already initialised) with the root provider(s) *root*.

        Args:
            quorum: how many roots must wrap each new secret (tenant keys, backup
                MAC keys) for the write to proceed; every available root wraps it.
                Default 1; ``len(root)`` refuses writes while any root is down.
            tenant_roots: per-tenant root mode. Every tenant created from now on
                gets its own root object in *every* root provider (a PKCS#11 key
                object, a KMS key), its key versions are wrapped **only** under
                those objects, and :meth:`shred` destroys them, so a backup taken
                before the shred can no longer be unwrapped by anyone. The choice
                is recorded in the store (authenticated) and applies to later
                tenants whatever the store is opened with.

        Raises:
            InvalidInputError: no provider, duplicate provider ids, bad cache
                limits, a quorum outside 1..number of roots, or *tenant_roots*
                with a provider that cannot hold per-tenant objects (the local
                key file).
        """
        providers = (root,) if isinstance(root, RootKeyProvider) else tuple(root)
        if not providers or not all(isinstance(p, RootKeyProvider) for p in providers):
            raise InvalidInputError(
                "root must be a RootKeyProvider or a non-empty sequence of them"
            )
        ids = [p.provider_id for p in providers]
        if len(set(ids)) != len(ids):
            raise InvalidInputError("root providers must have distinct provider ids")
        if not 0 <= cache_ttl <= 86400 or cache_size < 0:
            raise InvalidInputError("cache_ttl must be 0..86400 seconds and cache_size >= 0")
        if isinstance(quorum, bool) or not isinstance(quorum, int):
            raise InvalidInputError("quorum must be an integer")
        if not 1 <= quorum <= len(providers):
            raise InvalidInputError(f"quorum must be 1..{len(providers)} (the number of roots)")
        self._troots = TenantRoots(providers)
        if tenant_roots:
            self._troots.refuse_unless_supported()
        self._quorum = quorum
        self._backend = backend
        self._providers = providers
        self._tenant_roots = bool(tenant_roots)
        # Each tenant's wrapping providers (its own objects, or the shared roots).
        self._roots_of: dict[str, tuple[RootKeyProvider, ...]] = {}
        # Authenticated metadata: every backend write reseals, every backend read verifies.
        self._sealer = Sealer(
            providers,
            wrap=lambda secret, aad, only: self._wrap_all(secret, aad=aad, providers=only),
        )
        backend.attach_sealer(self._sealer)
        self._ttl = float(cache_ttl)
        self._size = int(cache_size)
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str, int], tuple[float, TenantKey]] = {}
        self._primary: dict[tuple[str, str], tuple[float, int]] = {}
        # Hot path: (tenant, purpose) -> (expiry, primary TenantKey), read without the
        # lock. An entry lives no longer than both the cached primary version and the
        # cached key it points to; rotate, shred, eviction and close remove it.
        self._hot: dict[tuple[str, str], tuple[float, TenantKey]] = {}
        # Bumped (under the lock) by rotate and forget, so a lookup that raced with
        # them does not re-install a stale primary version.
        self._generation = 0
        self._closed = False

    # -- opening ------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url_or_path: str | os.PathLike[str],
        *,
        root: RootKeyProvider | Sequence[RootKeyProvider] | None = None,
        roots: Sequence[str | RootKeyProvider] | None = None,
        cache_ttl: float = _DEFAULT_TTL,
        cache_size: int = _DEFAULT_SIZE,
        read_only: bool = False,
        quorum: int = 1,
        create: bool = True,
        tenant_roots: bool = False,
    ) -> KeyStore:
        """Open (creating when absent, unless *create* is false) a key store.

        Args:
            url_or_path: a file path or ``sqlite:///path`` (SQLite, the embedded
                default), ``postgresql://...`` (needs the ``postgres`` extra), or a
                scheme added with :func:`~styku_crypto.keys.register_store_scheme`.
            root: the root provider(s). Default for SQLite: a
                :class:`~styku_crypto.keys.LocalRootKey` at
                ``$STYKU_CRYPTO_ROOT_KEY_FILE`` or ``<store>.rootkey``
                (development only). Required for PostgreSQL.
            roots: the root providers as spec strings (``"aws-kms:arn:..."``, see
                :meth:`RootKeyProvider.from_spec`) or provider objects, in failover
                order; instead of *root*. Providers built from specs are closed
                with the store.
            cache_ttl: seconds an unwrapped tenant key stays cached (0 disables).
            cache_size: most tenant key versions cached at once.
            read_only: open without write access (SQLite: ``mode=ro``).
            quorum: roots that must wrap each new secret (see :class:`KeyStore`).
            create: create a missing store (SQLite file and local root key, or the
                PostgreSQL schema). With ``create=False`` a missing SQLite file, or a
                file or database that is not an initialised key store, raises
                :class:`~styku_crypto.exceptions.KeyStoreError` and nothing is
                written (the command line opens every store this way except
                ``keys init``).
            tenant_roots: per-tenant root mode (see :class:`KeyStore`).

        Raises:
            KeyStoreError: the store cannot be opened or is unsafe.
            InvalidInputError: the URL or arguments are malformed, or its scheme is
                unknown (the known ones are listed).
            MissingExtraError: a PostgreSQL URL without the ``postgres`` extra.
        """
        target = os.fspath(url_or_path)
        if roots is not None:
            if root is not None:
                raise InvalidInputError("pass root= or roots=, not both")
            root = owned = providers_from(roots)
        else:
            owned = []
        try:
            return cls._open_scheme(
                target,
                root,
                cache_ttl,
                cache_size,
                read_only=read_only,
                quorum=quorum,
                create=create,
                tenant_roots=tenant_roots,
            )
        except BaseException:
            for provider in owned:  # built here from specs: nobody else will close them
                provider.close()
            raise

    @classmethod
    def _open_scheme(
        cls,
        target: str,
        root: RootKeyProvider | Sequence[RootKeyProvider] | None,
        cache_ttl: float,
        cache_size: int,
        *,
        read_only: bool,
        quorum: int,
        create: bool,
        tenant_roots: bool = False,
    ) -> KeyStore:
        """:meth:`open` once the roots are providers: pick the backend by the URL's scheme."""
        backend, root = open_backend(target, root, read_only=read_only, create=create)
        try:
            return cls(
                backend,
                root=root,
                cache_ttl=cache_ttl,
                cache_size=cache_size,
                quorum=quorum,
                tenant_roots=tenant_roots,
            )
        except BaseException:
            backend.close()
            raise

    # -- properties ---------------------------------------------------------

    @property
    def backend(self) -> KeyStoreBackend:
        """The storage backend."""
        return self._backend

    @property
    def providers(self) -> tuple[RootKeyProvider, ...]:
        """The root providers, in failover order."""
        return self._providers

    def __repr__(self) -> str:
        ids = ",".join(p.provider_id for p in self._providers)
        return f"<KeyStore {self._backend.location!r} root={ids}>"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("KeyStore cannot be pickled")

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Drop cached keys, close the backend and the providers. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._generation += 1
            self._hot.clear()
            self._keys.clear()
            self._primary.clear()
        self._backend.close()
        self._troots.close()
        for provider in self._providers:
            provider.close()

    # -- wrapping -----------------------------------------------------------

    def _wrap_all(
        self,
        secret: bytes,
        *,
        aad: bytes,
        providers: Sequence[RootKeyProvider] | None = None,
        tenant: str | None = None,
        need: int = 0,
    ) -> tuple[tuple[str, bytes], ...]:
        """Wrap *secret* under every available provider; at least ``quorum`` must answer.

        An unavailable provider is skipped (its wrap is *missing*, reported by
        :meth:`check`, added by :meth:`repair_wraps`) and ``key.root_failover``
        is emitted with reason ``wrap_missing``. An integrity or other error is
        raised at once.

        Raises:
            RootKeyUnavailableError: fewer than ``quorum`` providers could wrap.
        """
        wraps: list[tuple[str, bytes]] = []
        missing: list[str] = []
        for provider in self._providers if providers is None else providers:
            try:
                wraps.append((provider.provider_id, provider.wrap(secret, aad=aad)))
            except RootKeyUnavailableError:
                missing.append(provider.provider_id)
                emit(
                    "key.root_failover",
                    capability="keys",
                    outcome="failure",
                    level=logging.WARNING,
                    tenant=tenant,
                    reason="wrap_missing",
                    attributes={"provider": provider.provider_id},
                )
        required = self._quorum if providers is None else need
        if len(wraps) < required:
            raise RootKeyUnavailableError(
                f"only {len(wraps)} of the {required} root provider(s) the quorum needs"
                " could wrap; unavailable: " + ", ".join(missing)
            )
        return tuple(wraps)

    def _new_record(
        self,
        tenant: str,
        purpose: str,
        version: int,
        roots: Sequence[RootKeyProvider] | None = None,
    ) -> KeyRecord:
        secret = os.urandom(32)
        key_id = "tk_" + os.urandom(8).hex()
        aad = wrap_aad(tenant, purpose, version, key_id)
        roots = self._roots_for(tenant) if roots is None else roots
        if roots is self._providers:
            wraps = self._wrap_all(secret, aad=aad, tenant=tenant)
        else:  # per-tenant objects: the quorum counts them like roots
            need = min(self._quorum, len(roots))
            wraps = self._wrap_all(secret, aad=aad, providers=roots, tenant=tenant, need=need)
        return KeyRecord(
            tenant=tenant,
            purpose=purpose,
            version=version,
            key_id=key_id,
            wraps=wraps,
            created_at=datetime.now(UTC),
        )

    def _unwrap(self, record: KeyRecord) -> bytes:
        aad = wrap_aad(record.tenant, record.purpose, record.version, record.key_id)
        tried: list[str] = []
        # A per-tenant object that was destroyed raises KeyDestroyedError: never failed over.
        for provider, wrapped in self._troots.wrap_order(record):
            tried.append(provider.provider_id)
            try:
                return provider.unwrap(wrapped, aad=aad)
            except RootKeyUnavailableError:
                emit(
                    "key.root_failover",
                    capability="keys",
                    outcome="failure",
                    level=logging.WARNING,
                    tenant=record.tenant,
                    key_id=record.key_id,
                    key_version=record.version,
                    reason="unavailable",
                    attributes={"provider": provider.provider_id},
                )
                continue
            except DecryptionError:
                raise KeyStoreError(
                    f"the stored wrap of tenant {record.tenant!r} {record.purpose} key"
                    f" v{record.version} failed its integrity check under {provider.provider_id}"
                ) from None
        if not tried:
            raise KeyStoreError(
                f"tenant {record.tenant!r} {record.purpose} key v{record.version} is not wrapped"
                " under any configured root provider"
            )
        raise RootKeyUnavailableError("no root provider available; tried " + ", ".join(tried))

    # -- per-tenant roots (keys/_tenant_roots.py) -----------------------------

    def _tenant_root_entries(self, tenant: str) -> list[list[str]] | None:
        """The sealed ``[root provider id, reference, state]`` entries of *tenant*, or ``None``."""
        raw = self._read_record(TENANT_ROOTS_RECORD + tenant)
        return None if raw is None else parse_entries(raw, tenant)

    def _roots_for(self, tenant: str) -> tuple[RootKeyProvider, ...]:
        """The providers *tenant*'s keys are wrapped under (its own objects, or the shared roots).

        Raises:
            KeyNotFoundError: unknown tenant.
            KeyStoreError: the tenant has per-tenant objects, but under none of the
                configured roots.
        """
        cached = self._roots_of.get(tenant)
        if cached is not None:
            return cached
        # The tenant first, then its record: rows and record are committed together, so a
        # tenant that exists and has no record is a shared-root tenant for good (checking
        # the other way round could cache "shared" for a tenant created in between).
        self._backend.get_tenant(tenant)
        entries = self._tenant_root_entries(tenant)
        roots = self._providers if entries is None else self._troots.roots_of(tenant, entries)
        with self._lock:
            self._roots_of[tenant] = roots
        return roots

    def enable_tenant_roots(self) -> None:
        """Record per-tenant root mode in the store, for every tenant created from now on.

        The same mode as ``tenant_roots=True`` (see :class:`KeyStore`), written
        into the store's authenticated metadata at once, so that every later
        ``create_tenant`` (from any process, whatever it passes) makes the
        tenant its own root objects. Tenants that exist keep their wraps.
        Idempotent.

        Raises:
            InvalidInputError: a configured root cannot hold per-tenant objects
                (the local key file); nothing is recorded.
            KeyStoreError: the store is read-only or its metadata does not verify.
        """
        self._troots.refuse_unless_supported()
        if self._read_record(TENANT_ROOTS_POLICY) is None:
            self._write_record(TENANT_ROOTS_POLICY, b"1")
        self._tenant_roots = True

    @property
    def tenant_roots(self) -> bool:
        """True when tenants created from now on get their own root objects."""
        return self._tenant_roots or self._read_record(TENANT_ROOTS_POLICY) is not None

    def _wants_tenant_roots(self) -> bool:
        if self._tenant_roots:
            return True
        if self._read_record(TENANT_ROOTS_POLICY) is None:
            return False
        self._troots.refuse_unless_supported()  # the recorded mode: refuse, never fall back
        return True

    def _destroy_tenant_roots(self, tenant: str) -> list[str]:
        """Destroy every live per-tenant object of the SHREDDED *tenant*; record each outcome.

        Returns:
            One line per object that could not be destroyed (empty when all are gone).
        """
        entries = self._tenant_root_entries(tenant)
        if not entries:
            return []
        changed, failed = self._troots.destroy(tenant, entries)
        if changed:
            self._write_record(TENANT_ROOTS_RECORD + tenant, entries_doc(entries))
        return failed

    def _tenant_roots_remain(self, tenant: str, failed: Sequence[str]) -> TenantRootRemainsError:
        detail = "; ".join(failed)
        emit(
            "key.shred_incomplete",
            capability="keys",
            outcome="failure",
            level=logging.ERROR,
            tenant=tenant,
            reason="tenant_root_remains",
            attributes={"detail": detail},
        )
        return TenantRootRemainsError(
            f"tenant {tenant!r} is shredded, but its per-tenant root object(s) could not be"
            f" destroyed yet: {detail}. Until they are, a backup taken before the shred still"
            f" unwraps under them; run `keys shred --finish {tenant}`"
        )

    def _destroyed_tenants(self, records: Sequence[KeyRecord]) -> dict[str, set[str]]:
        """``{tenant: destroyed provider ids}`` among *records* (a restore's backup)."""
        return self._troots.destroyed_among(records)

    def _note_destroyed(self, destroyed: dict[str, set[str]]) -> None:
        """After a restore: record the per-tenant objects found destroyed as destroyed."""
        for tenant, pids in sorted(destroyed.items()):
            entries = self._tenant_root_entries(tenant)
            if not entries:
                continue
            for entry in entries:
                if entry[2] == LIVE and entry[0] + TENANT_ROOT_MARK + entry[1] in pids:
                    entry[2] = "destroyed: found destroyed at restore"
            self._write_record(TENANT_ROOTS_RECORD + tenant, entries_doc(entries))

    # -- public operations --------------------------------------------------

    def create_tenant(self, tenant: str) -> TenantInfo:
        """Create *tenant* with version 1 of every key purpose.

        Raises:
            InvalidInputError: malformed or reserved tenant name (``styku-internal-*``).
            KeyStoreError: the tenant exists or was shredded (names are never reused).
            RootKeyUnavailableError: a root provider cannot wrap.
        """
        check_tenant(tenant)
        _refuse_reserved(tenant)
        return self._create(tenant, dedicated=self._wants_tenant_roots())

    def _create_internal_tenant(self, tenant: str) -> TenantInfo:
        """Create the tenant of a library feature (peppers, incident-log keys).

        Reserved ``styku-internal-*`` names are allowed here only: :meth:`create_tenant`
        refuses them, so no tenant name chosen by an application reaches them. Any
        other name goes through :meth:`create_tenant`.

        Raises:
            InvalidInputError: malformed name.
            KeyStoreError: it exists or was shredded.
        """
        check_tenant(tenant)
        if not is_reserved(tenant):
            return self.create_tenant(tenant)
        return self._create(tenant)

    def _create(self, tenant: str, *, dedicated: bool = False) -> TenantInfo:
        if not dedicated:
            records = [
                self._new_record(tenant, purpose, 1, self._providers) for purpose in PURPOSES
            ]
            self._backend.create_tenant(tenant, records)
        else:
            try:
                existing = self._backend.get_tenant(tenant)
            except KeyNotFoundError:
                pass
            else:  # before any object is made
                if existing.shredded_at is not None:
                    raise KeyStoreError(f"tenant {tenant!r} was shredded; names are never reused")
                raise KeyStoreError(f"tenant {tenant!r} already exists")
            entries = self._troots.create(tenant)
            try:
                roots = tuple(
                    self._troots.child(p, ref)
                    for p, (_, ref, _s) in zip(self._providers, entries, strict=True)
                )
                records = [self._new_record(tenant, purpose, 1, roots) for purpose in PURPOSES]
                pending: dict[str, bytes | None] = {
                    TENANT_ROOTS_RECORD + tenant: entries_doc(entries)
                }
                if self._read_record(TENANT_ROOTS_POLICY) is None:
                    pending[TENANT_ROOTS_POLICY] = b"1"
                # The rows and the sealed record of the tenant's objects commit together.
                with self._sealer.records_with_next_write(pending):
                    self._backend.create_tenant(tenant, records)
            except BaseException:
                self._troots.destroy_quietly(entries)
                raise
        for record in records:
            emit(
                "key.created",
                capability="keys",
                outcome="success",
                tenant=tenant,
                key_id=record.key_id,
                key_version=1,
                attributes={"purpose": record.purpose},
            )
        return self.describe(tenant)

    def rotate(self, tenant: str, *, purpose: str | None = None) -> tuple[KeyInfo, ...]:
        """Make a new primary version of one purpose (or of every purpose).

        Old versions keep decrypting; new encryptions use the new primary.

        Returns:
            The new key versions.

        Raises:
            KeyNotFoundError: unknown tenant.
            KeyDestroyedError: the tenant was shredded.
            InvalidInputError: unknown purpose.
        """
        purposes = PURPOSES if purpose is None else (_check_purpose(purpose),)
        made = []
        for p in purposes:
            # Resolved (and cached) before the backend's write transaction, which calls
            # make() inside it where no other read may start.
            self._roots_for(tenant)

            def make(version: int, purpose: str = p) -> KeyRecord:
                return self._new_record(tenant, purpose, version)

            record = self._backend.rotate(tenant, p, make)
            with self._lock:
                self._generation += 1
                self._hot.pop((tenant, p), None)
                self._primary.pop((tenant, p), None)
            emit(
                "key.rotated",
                capability="keys",
                outcome="success",
                tenant=tenant,
                key_id=record.key_id,
                key_version=record.version,
                attributes={"purpose": p},
            )
            made.append(
                KeyInfo(p, record.version, record.key_id, record.created_at, record.providers, True)
            )
        return tuple(made)

    def shred(self, tenant: str) -> None:
        """Destroy every key version of *tenant* (crypto-shredding), irreversibly.

        Afterwards every token of the tenant raises
        :class:`~styku_crypto.exceptions.KeyDestroyedError`, the wrapped keys are
        purged from the store file, and the name can never be reused.

        .. danger:: There is no undo, except restoring a backup taken before.

        Raises:
            InvalidInputError: malformed or reserved tenant name (``styku-internal-*``:
                the library's own keys cannot be shredded by tenant name).
            KeyNotFoundError: unknown tenant.
            ShredIncompleteError: the keys are destroyed (every token of the tenant
                fails), but copies of the wrapped keys remain in store files after
                the backend's bounded wait; :meth:`finish_shred` completes it.
            BackupError: the shred completed, but its tombstone could not be
                written to a backup destination (named).
        """
        check_tenant(tenant)
        _refuse_reserved(tenant)
        self._shred(tenant)

    def _shred_reserved(self, tenant: str) -> None:
        """Shred a reserved internal tenant: the deliberate off switch of peppers or incident logs.

        Not reachable through :meth:`shred`; an operator or test calls it by this name.
        """
        if not is_reserved(tenant):
            raise InvalidInputError("not a reserved internal tenant name")
        self._shred(tenant)

    def _shred(self, tenant: str) -> None:
        # Tombstones first: a crash after them and before the commit leaves the
        # tenant live in the store but shredded for every restore (shredding wins);
        # a destination that cannot be written does not stop the shred, it is
        # reported afterwards.
        self._backend.get_tenant(tenant)  # KeyNotFoundError before any side effect
        # Read before anything changes: a tampered record stops the shred here.
        has_own_roots = self._tenant_root_entries(tenant) is not None
        hook_error: KeyStoreError | None = None
        for hook in SHRED_HOOKS:
            try:
                hook(self, tenant)
            except KeyStoreError as exc:
                hook_error = exc
        incomplete: ShredIncompleteError | None = None
        try:
            self._backend.shred(tenant)
        except ShredIncompleteError as exc:
            incomplete = exc  # the keys are deleted: forget and report, then raise
        self._forget(tenant)
        emit(
            "key.shredded",
            capability="keys",
            outcome="success",
            level=logging.WARNING,
            tenant=tenant,
        )
        # Only now, with the rows deleted and the tombstones written: destroy the tenant's
        # own root objects, after which no one can unwrap any older copy of its keys.
        failed = self._destroy_tenant_roots(tenant) if has_own_roots else []
        if incomplete is not None:
            if failed:
                self._tenant_roots_remain(tenant, failed)
            self._shred_incomplete(tenant, incomplete)
        if failed:
            raise self._tenant_roots_remain(tenant, failed)
        if hook_error is not None:
            raise hook_error

    def _shred_incomplete(self, tenant: str, exc: ShredIncompleteError) -> NoReturn:
        emit(
            "key.shred_incomplete",
            capability="keys",
            outcome="failure",
            level=logging.ERROR,
            tenant=tenant,
            reason="bytes_remain",
            attributes={"detail": str(exc)},
        )
        raise exc

    def finish_shred(self, tenant: str) -> None:
        """Complete a shred that raised :class:`~styku_crypto.exceptions.ShredIncompleteError`.

        Purges again (bounded by the backend's ``shred_timeout``) and returns once
        no copy of the tenant's wrapped keys remains in the files the store
        controls. Idempotent.

        For a tenant with per-tenant root objects, also destroys those that are
        still live (a shred interrupted after deleting the rows, or a provider
        that was down), once the tenant is shredded in the store.

        Raises:
            ShredIncompleteError: copies still remain (emits ``key.shred_incomplete``).
            TenantRootRemainsError: a per-tenant root object could not be destroyed.
        """
        check_tenant(tenant)
        incomplete: ShredIncompleteError | None = None
        try:
            self._backend.finish_shred(tenant)
        except ShredIncompleteError as exc:
            incomplete = exc
        failed: list[str] = []
        if self._backend.get_tenant(tenant).shredded_at is not None:
            self._forget(tenant)
            failed = self._destroy_tenant_roots(tenant)
        if incomplete is not None:
            self._shred_incomplete(tenant, incomplete)
        if failed:
            raise self._tenant_roots_remain(tenant, failed)

    def _forget(self, tenant: str) -> None:
        with self._lock:
            self._generation += 1
            for h in [h for h in self._hot if h[0] == tenant]:
                del self._hot[h]
            for k in [k for k in self._keys if k[0] == tenant]:
                del self._keys[k]
            for p in [p for p in self._primary if p[0] == tenant]:
                del self._primary[p]
            self._roots_of.pop(tenant, None)

    def tenants(self) -> list[TenantRecord]:
        """Every tenant (shredded ones included), sorted by name."""
        return self._backend.list_tenants()

    def describe(self, tenant: str) -> TenantInfo:
        """Non-secret description of *tenant* and its key versions.

        Raises:
            KeyNotFoundError: unknown tenant.
        """
        record = self._backend.get_tenant(tenant)
        keys: tuple[KeyInfo, ...] = ()
        if record.shredded_at is None:
            rows = self._backend.list_keys(tenant)
            top: dict[str, int] = {}
            for r in rows:
                top[r.purpose] = max(top.get(r.purpose, 0), r.version)
            keys = tuple(
                KeyInfo(
                    r.purpose,
                    r.version,
                    r.key_id,
                    r.created_at,
                    r.providers,
                    r.version == top[r.purpose],
                )
                for r in rows
            )
        return TenantInfo(record.name, record.created_at, record.shredded_at, keys)

    def check(self, *, deep: bool = False) -> list[str]:
        """Consistency problems of the store (empty when healthy).

        Args:
            deep: also unwrap every live key under every configured provider
                that holds a wrap of it (calls the root once per key and provider).
        """
        return _upkeep.check(self, deep=deep)

    def repair_wraps(self) -> int:
        """Add the wraps that are missing under configured roots that are available now.

        A key version made while a root was down lacks that root's wrap; this
        unwraps it (with failover) and wraps it under each missing root that
        answers, keeping the existing wraps, in one transaction per tenant.
        Roots still down stay missing (reported by :meth:`check`). Emits
        ``key.rewrapped`` per tenant repaired.

        Returns:
            The number of wraps added.
        """
        return _upkeep.repair_wraps(self)

    def rewrap_root(self, *, tenant: str | None = None) -> int:
        """Re-wrap tenant keys under every configured root provider.

        Use after adding a provider or moving to a new root: each key is
        unwrapped (with failover) and wrapped afresh under every provider, and
        the wraps are replaced in one transaction per tenant. Emits ``key.rewrapped``.

        Returns:
            The number of key versions re-wrapped.
        """
        return _upkeep.rewrap_root(self, tenant=tenant)

    # -- authenticated records (private API for incidents and other features) ---

    def _read_record(self, name: str) -> bytes | None:
        """The authenticated record *name*, or ``None`` if it was never written.

        Verifies the whole metadata seal first (one read transaction), so a record
        that was deleted, altered or replaced by an older copy is reported, not
        mistaken for "never written".

        Raises:
            MetadataIntegrityError: the record or any seal fails verification.
        """
        return self._backend.read_sealed(lambda view: self._sealer.read_record(view, name))

    def _write_record(self, name: str, value: bytes | None, *, mirror: str | None = None) -> None:
        """Set (``None``: delete) the authenticated record *name* (at most 48 KiB).

        One write transaction: the seals are verified, the record written, the
        counter bumped and the global seal rewritten. With *mirror*, the same
        value is also written to that plain metadata name in the same
        transaction (for readers of the plain entry).
        """
        if mirror is not None:
            self._backend._check_meta_name(mirror)
        with self._backend.seal_view(write=True) as view:
            self._sealer.before_write(view)
            if mirror is not None:
                view.meta_put(mirror, value)
            self._sealer.after_write(view, records={name: value})

    def _seal_material(self) -> tuple[bytes, bytes]:
        """``(seal-key wraps blob, seal key)`` for other authenticated artefacts (tombstones)."""

        def existing(view: SealView) -> tuple[bytes, bytes] | None:
            if view.meta_get(KEY_NAME) is None:
                return None
            return self._sealer.key_material(view)

        found = self._backend.read_sealed(existing)
        if found is not None:
            return found
        with self._backend.seal_view(write=True) as view:
            self._sealer.before_write(view)
            if view.meta_get(KEY_NAME) is None:
                self._sealer.after_write(view)
            return self._sealer.key_material(view)

    def reseal(self) -> None:
        """Accept the store's current rows as authentic and seal them afresh.

        .. danger:: Run only after ``keys check`` reported a change that you
           investigated and accept (or to seal a store created before sealing
           existed). It launders any change made outside the key store.
        """
        with self._backend.seal_view(write=True) as view:
            view.lock()
            self._sealer.after_write(view, all_tenants=True)
        self._forget_all()

    def _forget_all(self) -> None:
        with self._lock:
            self._generation += 1
            self._hot.clear()
            self._keys.clear()
            self._primary.clear()

    # -- private API for envelope / fields / incidents ----------------------

    def _forget_primaries(self) -> None:
        """Re-read every tenant's primary key version at its next use.

        Unwrapped key versions stay cached (a version's key never changes); only
        the "which version is primary" answers are dropped, so a long-lived
        process (a batch worker) sees a rotation made by another process before
        its cache would expire.
        """
        with self._lock:
            self._generation += 1
            self._hot.clear()
            self._primary.clear()

    def _verified_state(self, tenant: str, *, strict: bool) -> TenantState | None:
        """The tenant's rows, checked against the authenticated metadata (one read)."""
        return self._backend.read_sealed(
            lambda view: self._sealer.verify_tenant(view, tenant, strict=strict)
        )

    def _load(self, tenant: str, purpose: str, version: int | None) -> KeyRecord:
        """Load one key record from the backend after verifying the tenant's sealed metadata.

        The primary version comes from the *authenticated* state, never from
        ``MAX(version)`` over rows, and the loaded row must carry the sealed key id.

        Raises:
            MetadataIntegrityError: the tenant's rows differ from their seal.
        """
        try:
            state = self._verified_state(tenant, strict=version is None)
            if state is None or state.shredded:
                record = (
                    self._backend.get_primary(tenant, purpose)
                    if version is None
                    else self._backend.get_key(tenant, purpose, version)
                )
            else:
                if version is None:
                    top = state.primary(purpose)
                    if top is None:
                        raise KeyNotFoundError(f"tenant {tenant!r} has no {purpose} key")
                    version = top[0]
                record = self._backend.get_key(tenant, purpose, version)
            if state is None or (purpose, record.version, record.key_id) not in state.keys:
                raise MetadataIntegrityError(
                    f"tenant {tenant!r} {purpose} v{record.version} is not in the authenticated"
                    " metadata"
                )
        except KeyDestroyedError:
            self._forget(tenant)
            emit(
                "key.shredded_access",
                capability="keys",
                outcome="failure",
                level=logging.WARNING,
                tenant=tenant,
                key_version=version,
                reason="key_destroyed",
            )
            raise
        except MetadataIntegrityError:
            emit(
                "key.metadata_tampered",
                capability="keys",
                outcome="failure",
                level=logging.ERROR,
                tenant=tenant,
                reason="metadata_mismatch",
            )
            raise
        return record

    def _tenant_key(self, tenant: str, purpose: str, version: int | None = None) -> TenantKey:
        """The unwrapped tenant key (cached), primary when *version* is ``None``.

        The cached case is two dictionary reads and a clock read, without the lock.

        Raises:
            KeyNotFoundError, KeyDestroyedError, RootKeyUnavailableError, KeyStoreError.
        """
        if version is None:
            hot = self._hot.get((tenant, purpose))
            if hot is not None and hot[0] > _monotonic():
                return hot[1]
        else:
            entry = self._keys.get((tenant, purpose, version))
            if entry is not None and entry[0] > _monotonic():
                return entry[1]
        return self._tenant_key_slow(tenant, purpose, version)

    def _tenant_key_slow(self, tenant: str, purpose: str, version: int | None) -> TenantKey:
        """:meth:`_tenant_key` when the hot path missed: cache lookups, then the backend."""
        if self._closed:
            raise KeyStoreError("key store is closed")
        if is_reserved(tenant):
            # Internal keys are reached only through _derive_key (never cached here), so no
            # application tenant name - and no envelope - can encrypt under them.
            _refuse_reserved(tenant)
        generation = self._generation
        now = _monotonic()
        if version is None:
            entry_p = self._primary.get((tenant, purpose))
            if entry_p is not None and entry_p[0] > now:
                version = entry_p[1]
                entry = self._keys.get((tenant, purpose, version))
                if entry is not None and entry[0] > now:
                    with self._lock:
                        if self._generation == generation:
                            self._hot[(tenant, purpose)] = (min(entry_p[0], entry[0]), entry[1])
                    return entry[1]
                version = None  # reload the primary record (and notice a newer primary)
        if version is not None:
            entry = self._keys.get((tenant, purpose, version))
            if entry is not None and entry[0] > now:
                return entry[1]
        record = self._load(tenant, purpose, version)
        key = TenantKey(
            tenant=tenant,
            purpose=purpose,
            version=record.version,
            key_id=record.key_id,
            secret=self._unwrap(record),
        )
        if self._ttl > 0:
            expires = _monotonic() + self._ttl
            with self._lock:
                if self._generation != generation:
                    return key  # rotated, shredded or closed meanwhile: use once, cache nothing
                if version is None:
                    self._primary[(tenant, purpose)] = (expires, record.version)
                if self._size > 0:
                    while len(self._keys) >= self._size:
                        old = next(iter(self._keys))
                        del self._keys[old]
                        hot = self._hot.get((old[0], old[1]))
                        if hot is not None and hot[1].version == old[2]:
                            del self._hot[(old[0], old[1])]
                    self._keys[(tenant, purpose, record.version)] = (expires, key)
                    if version is None:
                        self._hot[(tenant, purpose)] = (expires, key)
        return key

    def _cached_until(self, keys: Sequence[TenantKey]) -> float:
        """Until when (``time.monotonic``) this store serves *keys* as their purposes' primary keys
        from its cache, without asking the backend; ``0.0`` when any of them is not the cached
        primary. Together with :attr:`_generation` (bumped by rotate, shred and close), callers
        may remember "these are the primary keys" until then (the envelope's data-key cache does).
        """
        until = float("inf")
        for key in keys:
            hot = self._hot.get((key.tenant, key.purpose))
            if hot is None or hot[1] is not key:
                return 0.0
            until = min(until, hot[0])
        return until

    def _derive_key(
        self,
        tenant: str,
        *,
        purpose: str,
        label: bytes,
        length: int = 32,
        version: int | None = None,
    ) -> tuple[bytes, int]:
        """A labelled subkey of a tenant key version and that version (primary by default).

        HKDF-SHA256 with ``info`` = domain prefix, tenant, purpose, version and
        *label*, so labels are independent of each other and of the data-key wrap.
        Reserved ``styku-internal-*`` tenants are served here only, uncached (their
        callers cache the derived keys).
        """
        _check_purpose(purpose)
        if is_reserved(tenant):
            if self._closed:
                raise KeyStoreError("key store is closed")
            record = self._load(tenant, purpose, version)
            key = TenantKey(
                tenant=tenant,
                purpose=purpose,
                version=record.version,
                key_id=record.key_id,
                secret=self._unwrap(record),
            )
        else:
            key = self._tenant_key(tenant, purpose, version)
        return key.derive(label, length), key.version

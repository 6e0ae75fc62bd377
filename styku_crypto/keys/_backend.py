"""The key-store backend interface and its records.

A backend stores tenants and *wrapped* tenant keys; it never sees a key in the
clear. Every method is atomic. The SQLite backend is the embedded default;
PostgreSQL implements the same interface.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TypeVar

from styku_crypto.exceptions import KeyNotFoundError, KeyStoreError
from styku_crypto.keys._sealing import SEAL_PREFIX, Sealer, SealView

_T = TypeVar("_T")

__all__ = [
    "PURPOSES",
    "KeyRecord",
    "KeyStoreBackend",
    "StoreSnapshot",
    "TenantRecord",
    "check_rewrap",
    "next_version",
]

#: Independent tenant-key hierarchies every tenant has. ``customer`` protects
#: Customer Data (and derives blind-index and incident-log keys); ``sensitive``
#: is the separate hierarchy for Permitted Sensitive Data.
PURPOSES: tuple[str, ...] = ("customer", "sensitive")


@dataclass(frozen=True)
class TenantRecord:
    """A tenant. ``shredded_at`` is set once its keys were destroyed."""

    name: str
    created_at: datetime
    shredded_at: datetime | None = None


@dataclass(frozen=True)
class KeyRecord:
    """One version of one tenant key, stored only wrapped.

    ``wraps`` holds ``(provider_id, wrapped_bytes)`` pairs, one per root-key
    provider the key is wrapped under. ``version`` starts at 1; the highest
    version of a (tenant, purpose) is the primary.
    """

    tenant: str
    purpose: str
    version: int
    key_id: str
    wraps: tuple[tuple[str, bytes], ...] = field(repr=False)
    created_at: datetime

    @property
    def providers(self) -> tuple[str, ...]:
        """The provider ids this key is wrapped under, in stored order."""
        return tuple(p for p, _ in self.wraps)

    def __reduce__(self) -> str | tuple[object, ...]:
        # Wrapped key bytes stay in the store and in authenticated backups only.
        raise TypeError("KeyRecord holds wrapped key material and cannot be pickled")


@dataclass(frozen=True)
class StoreSnapshot:
    """Everything a backend holds, for backup and restore (wrapped keys only)."""

    tenants: tuple[TenantRecord, ...]
    keys: tuple[KeyRecord, ...]
    shredded: tuple[tuple[str, datetime], ...]
    meta: tuple[tuple[str, bytes], ...] = field(repr=False)
    format_version: int = 1

    def __reduce__(self) -> str | tuple[object, ...]:
        # A snapshot carries every wrapped key: only backups (authenticated) may hold it.
        raise TypeError("StoreSnapshot holds wrapped key material and cannot be pickled")


def next_version(
    tenant: str, purpose: str, current: int | None, make: Callable[[int], KeyRecord]
) -> KeyRecord:
    """The record *make* builds for the version after *current*, checked (every ``rotate``).

    Args:
        tenant: the tenant being rotated.
        purpose: the key purpose being rotated.
        current: the highest stored version (``None`` when there is none), read
            inside the backend's write transaction.
        make: the key store's record factory.

    Raises:
        KeyNotFoundError: (*tenant*, *purpose*) has no key.
        KeyStoreError: *make* built a record for another tenant, purpose or version.
    """
    if current is None:
        raise KeyNotFoundError(f"tenant {tenant!r} has no {purpose} key")
    nxt = int(current) + 1
    record = make(nxt)
    if (record.tenant, record.purpose, record.version) != (tenant, purpose, nxt):
        raise KeyStoreError("rotate: the new record does not match the next version")
    return record


def check_rewrap(record: KeyRecord, stored_key_id: object) -> None:
    """Refuse a ``replace_wraps`` record that would lose or mix up a key (every backend).

    Args:
        record: the record with its new wraps.
        stored_key_id: the key id stored for (tenant, purpose, version), or ``None``
            when that version does not exist; read inside the write transaction.

    Raises:
        KeyStoreError: the record has no wrap, or its key id is not the stored one.
        KeyNotFoundError: the version does not exist.
    """
    if not record.wraps:
        raise KeyStoreError("a key record needs at least one wrap")
    if stored_key_id is None:
        raise KeyNotFoundError(
            f"tenant {record.tenant!r} has no {record.purpose} key version {record.version}"
        )
    if stored_key_id != record.key_id:
        raise KeyStoreError("replace_wraps: key id does not match the stored key")


class KeyStoreBackend(abc.ABC):
    """Persistent storage of tenants and wrapped tenant keys.

    Every method is atomic: after a crash at any point the store holds either
    the state before or the state after the call. Implementations are
    thread-safe and safe with concurrent processes.

    Lookup failures raise :class:`~styku_crypto.exceptions.KeyNotFoundError`;
    keys of a shredded tenant raise
    :class:`~styku_crypto.exceptions.KeyDestroyedError`; anything else wrong with
    the store raises :class:`~styku_crypto.exceptions.KeyStoreError`.
    """

    @property
    @abc.abstractmethod
    def read_only(self) -> bool:
        """True when the backend refuses writes."""

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """A non-secret description of where the store lives (path or DSN without password)."""

    @abc.abstractmethod
    def initialize(self) -> None:
        """Create the schema if absent (idempotent)."""

    @abc.abstractmethod
    def create_tenant(self, name: str, records: Sequence[KeyRecord]) -> TenantRecord:
        """Insert tenant *name* with its first key *records* in one transaction.

        Raises:
            KeyStoreError: the tenant exists, or was shredded (names are never reused).
        """

    @abc.abstractmethod
    def get_tenant(self, name: str) -> TenantRecord:
        """Return tenant *name* (shredded or not); :class:`KeyNotFoundError` if unknown."""

    @abc.abstractmethod
    def list_tenants(self) -> list[TenantRecord]:
        """Every tenant, shredded ones included, sorted by name."""

    @abc.abstractmethod
    def get_key(self, tenant: str, purpose: str, version: int) -> KeyRecord:
        """Return one key version.

        Raises:
            KeyDestroyedError: the tenant was shredded.
            KeyNotFoundError: no such tenant, purpose or version.
        """

    @abc.abstractmethod
    def get_primary(self, tenant: str, purpose: str) -> KeyRecord:
        """Return the highest version of (*tenant*, *purpose*); errors as :meth:`get_key`."""

    @abc.abstractmethod
    def list_keys(self, tenant: str) -> list[KeyRecord]:
        """Every key of *tenant* sorted by (purpose, version); errors as :meth:`get_key`."""

    @abc.abstractmethod
    def rotate(self, tenant: str, purpose: str, make: Callable[[int], KeyRecord]) -> KeyRecord:
        """Atomically insert the next version of (*tenant*, *purpose*).

        Takes the store's write lock, computes ``next = primary + 1``, calls
        ``make(next)`` and inserts its result, all in one transaction, so
        concurrent rotations (threads or processes) get distinct versions.

        Raises:
            KeyDestroyedError: the tenant was shredded.
            KeyNotFoundError: no such tenant or purpose.
        """

    @abc.abstractmethod
    def replace_wraps(self, records: Sequence[KeyRecord]) -> None:
        """Atomically replace the ``wraps`` of existing key versions.

        Each record is matched by (tenant, purpose, version) and its ``key_id``
        must equal the stored one. Used to re-wrap under a new root or to add a
        provider.

        Raises:
            KeyNotFoundError: a record does not exist.
            KeyStoreError: a ``key_id`` does not match.
        """

    @abc.abstractmethod
    def shred(self, tenant: str) -> None:
        """Destroy every key of *tenant*, irreversibly.

        Deletes all key rows, marks the tenant shredded, adds it to the
        persistent shred list, and makes the deleted bytes physically gone from
        the storage (overwrite, checkpoint, vacuum) where the backend can.

        Raises:
            KeyNotFoundError: no such tenant.
            ShredIncompleteError: the rows are deleted, but copies of their bytes
                remain in files the store controls after a bounded wait;
                :meth:`finish_shred` completes it.
        """

    def finish_shred(self, tenant: str) -> None:  # noqa: B027 - optional, no-op default
        """Complete a shred that raised :class:`~styku_crypto.exceptions.ShredIncompleteError`.

        Idempotent; a backend without such a state does nothing.

        Raises:
            ShredIncompleteError: copies still remain (the message says where and why).
        """

    @abc.abstractmethod
    def shred_list(self) -> list[tuple[str, datetime]]:
        """Every shredded tenant with its shred time, sorted by name."""

    @abc.abstractmethod
    def get_meta(self, name: str) -> bytes | None:
        """A small non-secret value by name, or ``None``."""

    @abc.abstractmethod
    def set_meta(self, name: str, value: bytes | None) -> None:
        """Set (or with ``None`` delete) a small non-secret value."""

    @abc.abstractmethod
    def export_snapshot(self) -> StoreSnapshot:
        """A consistent copy of the whole store (one read transaction)."""

    @abc.abstractmethod
    def import_snapshot(self, snapshot: StoreSnapshot) -> None:
        """Load *snapshot* into this store in one transaction.

        Raises:
            KeyStoreError: the store is not empty, or the snapshot is inconsistent.
        """

    @abc.abstractmethod
    def check(self) -> list[str]:
        """Consistency problems found (empty list when healthy); never raises for them."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. Idempotent."""

    # -- authenticated metadata (see keys/_sealing.py) ---------------------------

    _sealer: Sealer | None = None

    def attach_sealer(self, sealer: Sealer) -> None:
        """Seal every later write with *sealer* (the :class:`KeyStore` attaches its own)."""
        self._sealer = sealer

    @abc.abstractmethod
    def seal_view(self, *, write: bool = False) -> contextlib.AbstractContextManager[SealView]:
        """One transaction (read, or write with *write*) seen through a :class:`SealView`."""

    def read_sealed(self, fn: Callable[[SealView], _T]) -> _T:
        """``fn(view)`` inside one read transaction; returns what *fn* returns.

        A backend with a failover replica runs *fn* again from the start on the
        replica when the primary fails in the middle (so *fn* must be a pure read).
        """
        with self.seal_view() as view:
            return fn(view)

    def _seal_before(self, view: SealView, tenants: Sequence[str]) -> None:
        """Inside a write transaction: refuse when *tenants*' seals do not verify."""
        if self._sealer is not None:
            self._sealer.before_write(view, tenants)

    def _seal_after(
        self, view: SealView, tenants: Sequence[str], *, everything: bool = False
    ) -> None:
        """Inside the same transaction: reseal *tenants* (or *everything*) and bump the counter."""
        if self._sealer is not None:
            self._sealer.after_write(view, tenants, all_tenants=everything)

    @staticmethod
    def _check_meta_name(name: str) -> None:
        if name.startswith(SEAL_PREFIX):
            raise KeyStoreError("metadata names under styku/seal/ are written by the seal only")

    def __enter__(self) -> KeyStoreBackend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

"""Per-tenant root objects: a shred destroys the only key that unwraps the tenant's keys.

With per-tenant roots (``KeyStore(..., tenant_roots=True)``) every tenant gets its
own object in every root provider (a PKCS#11 AES key object, a KMS key), and its
key versions are wrapped **only** under those objects, never under a shared
root. A shred destroys them after the rows are deleted, so every copy of the
tenant's wrapped keys anywhere (older backups, WAL, replicas, snapshots) becomes
undecryptable by construction, whoever holds the root and whatever the
tombstones at a backup destination say.

The objects' references are kept in an authenticated record of the store
(:data:`TENANT_ROOTS_RECORD` + tenant): ``{"v": 1, "roots": [[root provider
id, reference, state], ...]}``, state ``"live"`` or ``"destroyed: <note>"``. A
provider wrapping under an object has the id ``<root id>#tenant=<reference>``,
so any store configured with that root (a restore, a drill) reaches it.

This module holds the provider side (resolving, creating, destroying, probing);
the store reads and writes the record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Sequence

from styku_crypto.events import emit
from styku_crypto.exceptions import (
    DecryptionError,
    InvalidInputError,
    KeyDestroyedError,
    KeyStoreError,
    MetadataIntegrityError,
)
from styku_crypto.keys._backend import KeyRecord
from styku_crypto.keys._material import wrap_aad
from styku_crypto.keys._provider import TENANT_ROOT_MARK, RootKeyProvider

__all__ = [
    "LIVE",
    "TENANT_ROOTS_POLICY",
    "TENANT_ROOTS_RECORD",
    "TenantRoots",
    "entries_doc",
    "parse_entries",
]

#: Authenticated record (per tenant) naming its per-tenant root objects.
TENANT_ROOTS_RECORD = "tenant-roots/"
#: Authenticated record set once a store is used with ``tenant_roots=True``: from
#: then on every new tenant gets its own root objects, however the store is opened.
TENANT_ROOTS_POLICY = "policy/tenant-roots"
#: State of an object that has not been destroyed.
LIVE = "live"

Entries = list[list[str]]


def parse_entries(raw: bytes, tenant: str) -> Entries:
    """The ``[root provider id, reference, state]`` entries of a tenant's record.

    Raises:
        MetadataIntegrityError: the record is malformed.
    """
    try:
        doc = json.loads(raw)
        entries = doc["roots"]
        if doc.get("v") != 1 or not isinstance(entries, list):
            raise TypeError
        for entry in entries:
            if (
                not isinstance(entry, list)
                or len(entry) != 3
                or not all(isinstance(x, str) for x in entry)
            ):
                raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise MetadataIntegrityError(
            f"the per-tenant roots record of tenant {tenant!r} is malformed"
        ) from None
    return entries


def entries_doc(entries: Sequence[Sequence[str]]) -> bytes:
    """The record value for *entries*."""
    return json.dumps({"v": 1, "roots": [list(e) for e in entries]}, sort_keys=True).encode()


class TenantRoots:
    """The store's configured roots and the per-tenant objects reached through them.

    Thread-safe. Providers for per-tenant objects are made on first use and
    closed with :meth:`close` (the configured roots are the store's to close).
    """

    def __init__(self, providers: Sequence[RootKeyProvider]) -> None:
        self._providers = tuple(providers)
        self._by_id = {p.provider_id: p for p in self._providers}
        self._lock = threading.Lock()
        self._children: dict[str, RootKeyProvider] = {}

    def refuse_unless_supported(self) -> None:
        """Raise :class:`InvalidInputError` unless every root can hold per-tenant objects."""
        for provider in self._providers:
            if not provider.supports_tenant_roots:
                raise provider._no_tenant_roots()

    def resolve(self, pid: str) -> tuple[int, RootKeyProvider] | None:
        """``(failover rank, provider)`` for a wrap's provider id, or ``None`` if not configured.

        A per-tenant id (``<root id>#tenant=<ref>``) resolves to the object *ref*
        of that configured root; only providers that hold per-tenant objects do.
        """
        parent_id, mark, ref = pid.partition(TENANT_ROOT_MARK)
        for rank, provider in enumerate(self._providers):
            if provider.provider_id != parent_id:
                continue
            if not mark:
                return rank, provider
            if not provider.supports_tenant_roots:
                return None
            return rank, self.child(provider, ref)
        return None

    def child(self, parent: RootKeyProvider, ref: str) -> RootKeyProvider:
        """The (cached) provider wrapping under *parent*'s object *ref*."""
        pid = parent.provider_id + TENANT_ROOT_MARK + ref
        with self._lock:
            child = self._children.get(pid)
        if child is not None:
            return child
        made = parent.tenant_root(ref)
        with self._lock:
            child = self._children.setdefault(pid, made)
        if child is not made:
            made.close()
        return child

    def wrap_order(self, record: KeyRecord) -> list[tuple[RootKeyProvider, bytes]]:
        """The record's wraps that configured roots can open, in failover order."""
        found = []
        for index, (pid, wrapped) in enumerate(record.wraps):
            resolved = self.resolve(pid)
            if resolved is not None:
                found.append((resolved[0], index, resolved[1], wrapped))
        found.sort(key=lambda item: (item[0], item[1]))
        return [(provider, wrapped) for _, _, provider, wrapped in found]

    def roots_of(self, tenant: str, entries: Entries) -> tuple[RootKeyProvider, ...]:
        """The providers of *tenant*'s objects under configured roots, in failover order.

        Raises:
            KeyStoreError: none of its objects is under a configured root.
        """
        found = []
        for parent_id, ref, _state in entries:
            resolved = self.resolve(parent_id + TENANT_ROOT_MARK + ref)
            if resolved is not None:
                found.append(resolved)
        if not found:
            raise KeyStoreError(
                f"tenant {tenant!r} has per-tenant root objects only under root providers"
                " that are not configured here: " + ", ".join(sorted({e[0] for e in entries}))
            )
        return tuple(p for _, p in sorted(found, key=lambda item: item[0]))

    def create(self, tenant: str) -> Entries:
        """One new object per configured root for *tenant*; all or none (made ones destroyed).

        Raises:
            InvalidInputError: a root cannot hold per-tenant objects.
            RootKeyUnavailableError: a root cannot be reached (every root must answer).
        """
        self.refuse_unless_supported()
        entries: Entries = []
        try:
            for provider in self._providers:
                entries.append([provider.provider_id, provider.create_tenant_root(tenant), LIVE])
        except BaseException:
            self.destroy_quietly(entries)
            raise
        return entries

    def destroy_quietly(self, entries: Sequence[Sequence[str]]) -> None:
        """Undo objects that no committed row references (best effort: they hold nothing)."""
        for parent_id, ref, _state in entries:
            with contextlib.suppress(KeyStoreError, InvalidInputError, KeyError):
                self._by_id[parent_id].destroy_tenant_root(ref)

    def destroy(self, tenant: str, entries: Entries) -> tuple[bool, list[str]]:
        """Destroy every live object in *entries*, marking each destroyed one in place.

        Emits ``key.tenant_root_destroyed`` per object destroyed.

        Returns:
            ``(any entry changed, one line per object that could not be destroyed)``.
        """
        failed: list[str] = []
        changed = False
        for entry in entries:
            parent_id, ref, state = entry
            if state != LIVE:
                continue
            parent = self._by_id.get(parent_id)
            if parent is None or not parent.supports_tenant_roots:
                failed.append(f"{parent_id} {ref}: that root provider is not configured here")
                continue
            with self._lock:
                child = self._children.pop(parent_id + TENANT_ROOT_MARK + ref, None)
            if child is not None:
                child.close()  # drop pooled sessions holding the object's handle
            try:
                note = parent.destroy_tenant_root(ref)
            except (KeyStoreError, InvalidInputError) as exc:
                failed.append(f"{parent_id} {ref}: {exc}")
                continue
            entry[2] = "destroyed: " + note
            changed = True
            emit(
                "key.tenant_root_destroyed",
                capability="keys",
                outcome="success",
                level=logging.WARNING,
                tenant=tenant,
                attributes={"provider": parent_id, "detail": f"{ref}: {note}"},
            )
        return changed, failed

    def destroyed_among(self, records: Sequence[KeyRecord]) -> dict[str, set[str]]:
        """``{tenant: destroyed provider ids}`` for *records* (e.g. from a backup).

        Each per-tenant object of a tenant is tried once (one destroyed object is
        enough to count the tenant as shredded: a shred that destroyed only some
        of them is still a shred). Other failures are left to the caller's unwrap.
        """
        destroyed: dict[str, set[str]] = {}
        probed: set[tuple[str, str]] = set()
        for record in records:
            aad = wrap_aad(record.tenant, record.purpose, record.version, record.key_id)
            for provider, wrapped in self.wrap_order(record):
                pid = provider.provider_id
                if TENANT_ROOT_MARK not in pid or (record.tenant, pid) in probed:
                    continue
                probed.add((record.tenant, pid))
                try:
                    provider.unwrap(wrapped, aad=aad)
                except KeyDestroyedError:
                    destroyed.setdefault(record.tenant, set()).add(pid)
                except (KeyStoreError, DecryptionError):
                    continue
        return destroyed

    def close(self) -> None:
        """Close the per-tenant providers made so far. Idempotent."""
        with self._lock:
            children, self._children = list(self._children.values()), {}
        for child in children:
            child.close()

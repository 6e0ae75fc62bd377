"""Upkeep of a key store: consistency checks, missing-wrap repair, re-wrapping under roots.

Split from :mod:`styku_crypto.keys._store` (one job per module): these read
the whole store and fix wraps, while ``_store`` serves and changes tenant keys.
:class:`~styku_crypto.keys.KeyStore`'s ``check``, ``repair_wraps`` and
``rewrap_root`` call these functions.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from styku_crypto.events import emit
from styku_crypto.exceptions import (
    DecryptionError,
    KeyDestroyedError,
    KeyStoreError,
    RootKeyUnavailableError,
)
from styku_crypto.keys._backend import KeyRecord
from styku_crypto.keys._material import wrap_aad
from styku_crypto.keys._tenant_roots import LIVE

if TYPE_CHECKING:
    from styku_crypto.keys._store import KeyStore

__all__ = ["check", "live_keys", "repair_wraps", "rewrap_root", "undestroyed_tenant_roots"]


def check(store: KeyStore, *, deep: bool = False) -> list[str]:
    """Consistency problems of the store (empty when healthy).

    Args:
        deep: also unwrap every live key under every configured provider
            that holds a wrap of it (calls the root once per key and provider).
    """
    problems = store._backend.check()
    try:
        problems.extend(store._backend.read_sealed(store._sealer.audit))
        problems.extend(
            f"the metadata seal key has no wrap under {pid} (missing; run keys check"
            " --repair when it is back)"
            for pid in store._backend.read_sealed(store._sealer.missing_providers)
        )
    except KeyStoreError as exc:
        problems.append(f"the authenticated metadata could not be read: {exc}")
    try:
        live = live_keys(store)
    except KeyStoreError:
        live = []  # the backend's own check already reported why it cannot be read
    for record in live:
        try:
            configured = [p.provider_id for p in store._roots_for(record.tenant)]
        except KeyStoreError as exc:
            problems.append(str(exc))
            continue
        for pid in configured:
            if pid not in record.providers:
                problems.append(
                    f"tenant {record.tenant!r} {record.purpose} v{record.version} has no"
                    f" wrap under {pid} (missing; run keys check --repair when it is back)"
                )
    problems.extend(undestroyed_tenant_roots(store))
    if deep:
        for tenant in store._backend.list_tenants():
            if tenant.shredded_at is not None:
                continue
            for record in store._backend.list_keys(tenant.name):
                aad = wrap_aad(record.tenant, record.purpose, record.version, record.key_id)
                for provider, wrapped in store._troots.wrap_order(record):
                    try:
                        provider.unwrap(wrapped, aad=aad)
                    except (DecryptionError, RootKeyUnavailableError, KeyDestroyedError) as exc:
                        problems.append(
                            f"tenant {record.tenant!r} {record.purpose} v{record.version}"
                            f" does not unwrap under {provider.provider_id}"
                            f" ({type(exc).__name__})"
                        )
    return problems


def undestroyed_tenant_roots(store: KeyStore) -> list[str]:
    """A problem per shredded tenant whose own root objects are not all destroyed."""
    out = []
    try:
        tenants = store._backend.list_tenants()
    except KeyStoreError:
        return []
    for tenant in tenants:
        if tenant.shredded_at is None:
            continue
        try:
            entries = store._tenant_root_entries(tenant.name)
        except KeyStoreError as exc:
            out.append(str(exc))
            continue
        live = [f"{p} {ref}" for p, ref, state in entries or () if state == LIVE]
        if live:
            out.append(
                f"tenant {tenant.name!r} is shredded, but its per-tenant root object(s)"
                f" {', '.join(live)} are not destroyed (old backups still unwrap under"
                f" them); run keys shred --finish {tenant.name}"
            )
    return out


def live_keys(store: KeyStore) -> list[KeyRecord]:
    """Every key version of every live tenant (one consistent read)."""
    snapshot = store._backend.export_snapshot()
    shredded = {t.name for t in snapshot.tenants if t.shredded_at is not None}
    return [k for k in snapshot.keys if k.tenant not in shredded]


def repair_wraps(store: KeyStore) -> int:
    """Add the wraps that are missing under configured roots that are available now.

    A key version made while a root was down lacks that root's wrap; this
    unwraps it (with failover) and wraps it under each missing root that
    answers, keeping the existing wraps, in one transaction per tenant.
    Roots still down stay missing (reported by :func:`check`). Emits
    ``key.rewrapped`` per tenant repaired.

    Returns:
        The number of wraps added.
    """
    by_tenant: dict[str, list[KeyRecord]] = {}
    added = 0
    for record in live_keys(store):
        have = set(record.providers)
        todo = [p for p in store._roots_for(record.tenant) if p.provider_id not in have]
        if not todo:
            continue
        aad = wrap_aad(record.tenant, record.purpose, record.version, record.key_id)
        new = store._wrap_all(store._unwrap(record), aad=aad, providers=todo, tenant=record.tenant)
        if not new:
            continue
        added += len(new)
        by_tenant.setdefault(record.tenant, []).append(replace(record, wraps=record.wraps + new))
    for name, records in sorted(by_tenant.items()):
        store._backend.replace_wraps(records)
        emit(
            "key.rewrapped",
            capability="keys",
            outcome="success",
            tenant=name,
            attributes={"versions": len(records), "reason": "repair_missing_wraps"},
        )
    if store._backend.read_sealed(store._sealer.missing_providers):
        with store._backend.seal_view(write=True) as view:
            added += store._sealer.rewrap(view, missing_only=True)
    return added


def rewrap_root(store: KeyStore, *, tenant: str | None = None) -> int:
    """Re-wrap tenant keys under every configured root provider.

    Use after adding a provider or moving to a new root: each key is
    unwrapped (with failover) and wrapped afresh under every provider, and
    the wraps are replaced in one transaction per tenant. Emits ``key.rewrapped``.

    Returns:
        The number of key versions re-wrapped.
    """
    names = (
        [tenant]
        if tenant is not None
        else [t.name for t in store._backend.list_tenants() if t.shredded_at is None]
    )
    if tenant is None:
        with store._backend.seal_view(write=True) as view:
            store._sealer.rewrap(view)
    count = 0
    for name in names:
        updated = []
        for record in store._backend.list_keys(name):
            secret = store._unwrap(record)
            aad = wrap_aad(record.tenant, record.purpose, record.version, record.key_id)
            wraps = tuple((p.provider_id, p.wrap(secret, aad=aad)) for p in store._roots_for(name))
            updated.append(replace(record, wraps=wraps))
        store._backend.replace_wraps(updated)
        count += len(updated)
        emit(
            "key.rewrapped",
            capability="keys",
            outcome="success",
            tenant=name,
            attributes={
                "versions": len(updated),
                "providers": ",".join(p.provider_id for p in store._providers),
            },
        )
    return count

"""Authenticated key-store metadata: a database write without the root key is detected.

The rows of a key store (tenants, key versions, which version is primary,
shred state and tombstones) are plain database rows. Whoever can write the
database could delete the newest key version (putting new data back under a
retired key) or reset a shred. The *seal* makes such writes detectable:

* A random 32-byte **seal key**, wrapped under every root provider that answers
  (at least the store's quorum, like tenant keys; associated data
  ``styku-crypto/v1/seal-key``), lives in the metadata table
  (``styku/seal/key``). Nobody without a root provider can compute a MAC.
* Each tenant has a **tenant seal** (``styku/seal/tenant/<name>``): its
  authenticated state (every ``(purpose, version, key_id)``, shredded or not,
  tombstone or not), the seal counter of its last change, and an HMAC-SHA256
  over all of it under the seal key.
* Other features keep **authenticated records** (``styku/seal/record/<name>``,
  e.g. the incident log's head) the same way: value, counter, MAC.
* One **global seal** (``styku/seal/global``) holds a monotonic counter
  (incremented by every sealed write), the name and counter of every tenant
  seal and record, and a MAC over them, so removing, adding or replaying an
  older copy of any seal is detected.

Every write of the key store checks the seals it is about to change, then
reseals in the *same* transaction (a crash leaves both or neither). Reads of a
tenant key from the backend (every cache miss, hence every encryption that is
not served from the cache) verify, in one read transaction, the global seal,
that tenant's seal (MAC, and its counter against the global list, so an older
copy is refused) and that the tenant's rows equal the sealed state. The
primary version is taken from the sealed state, never from ``MAX(version)``.
``keys check`` compares every seal, record and row.

Residual risk: a rollback of the *whole* database to an older, consistent
state (every row and every seal from the same moment) is detected only by a
process that saw a newer counter (each process remembers the highest) and by
comparing with a backup taken later (backups record the counter).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from styku_crypto.exceptions import (
    DecryptionError,
    KeyStoreError,
    MetadataIntegrityError,
    RootKeyUnavailableError,
)
from styku_crypto.keys._provider import RootKeyProvider

__all__ = [
    "KEY_NAME",
    "SEAL_PREFIX",
    "SealView",
    "Sealer",
    "TenantState",
    "is_store_seal",
]

SEAL_PREFIX = "styku/seal/"
KEY_NAME = SEAL_PREFIX + "key"
GLOBAL_NAME = SEAL_PREFIX + "global"
TENANT_PREFIX = SEAL_PREFIX + "tenant/"
RECORD_PREFIX = SEAL_PREFIX + "record/"
_KEY_AAD = b"styku-crypto/v1/seal-key"
_DOMAIN = b"styku-crypto/v1/seal\x00"
_FORMAT = 1
_MAX_RECORD = 64 * 1024


@dataclass(frozen=True)
class TenantState:
    """The authenticated facts about one tenant, as read from the store's rows.

    ``keys`` is every ``(purpose, version, key_id)`` sorted; ``shredded`` is the
    tenant row's state; ``tombstone`` whether it is on the persistent shred list.
    """

    name: str
    shredded: bool
    tombstone: bool
    keys: tuple[tuple[str, int, str], ...]

    def primary(self, purpose: str) -> tuple[int, str] | None:
        """``(version, key_id)`` of the highest version of *purpose*, or ``None``."""
        best = None
        for p, v, k in self.keys:
            if p == purpose and (best is None or v > best[0]):
                best = (v, k)
        return best

    def to_json(self) -> list[Any]:
        """Canonical JSON form (covered by the MAC)."""
        return [self.name, self.shredded, self.tombstone, [list(k) for k in self.keys]]


class SealView(Protocol):
    """What a backend offers inside one transaction for sealing (implemented per backend)."""

    def lock(self) -> None:
        """Serialise sealed writers (PostgreSQL: an advisory lock; SQLite holds the file lock)."""

    def tenant_state(self, name: str) -> TenantState | None:
        """The tenant's rows, or ``None`` when neither a tenant row nor a tombstone exists."""

    def tenant_names(self) -> list[str]:
        """Every tenant name with a tenant row or a tombstone."""

    def meta_get(self, name: str) -> bytes | None:
        """A metadata value."""

    def meta_put(self, name: str, value: bytes | None) -> None:
        """Set (``None``: delete) a metadata value (write transactions only)."""

    def meta_scan(self, prefix: str) -> list[tuple[str, bytes]]:
        """Every metadata entry whose name starts with *prefix*."""


def is_store_seal(name: str) -> bool:
    """True for the seals a restore recomputes (global and tenant seals).

    The seal key (wrapped under the same roots a restore needs anyway) and the
    authenticated records (``styku/seal/record/...``, data of other features)
    are kept and resealed.
    """
    return name.startswith(SEAL_PREFIX) and not name.startswith(RECORD_PREFIX) and name != KEY_NAME


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _load(raw: bytes | None, what: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    if len(raw) > _MAX_RECORD * 64:
        raise MetadataIntegrityError(f"{what} is too large")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MetadataIntegrityError(f"{what} is malformed") from None
    if not isinstance(doc, dict) or doc.get("v") != _FORMAT:
        raise MetadataIntegrityError(f"{what} is malformed")
    return doc


def _int(doc: dict[str, Any], field: str, what: str) -> int:
    value = doc.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MetadataIntegrityError(f"{what} is malformed")
    return value


def _state_from_json(doc: object, name: str, what: str) -> TenantState:
    bad = MetadataIntegrityError(f"{what} is malformed")
    if not isinstance(doc, list) or len(doc) != 4:
        raise bad
    n, shredded, tomb, keys = doc
    if n != name or not isinstance(shredded, bool) or not isinstance(tomb, bool):
        raise bad
    if not isinstance(keys, list):
        raise bad
    parsed = []
    for item in keys:
        if not isinstance(item, list) or len(item) != 3:
            raise bad
        p, v, k = item
        if not isinstance(p, str) or not isinstance(v, int) or not isinstance(k, str):
            raise bad
        parsed.append((p, v, k))
    return TenantState(name, shredded, tomb, tuple(parsed))


def describe_changes(
    name: str, sealed: TenantState | None, actual: TenantState | None
) -> list[str]:
    """Human-readable differences between the authenticated and the actual state of a tenant."""
    t = repr(name)
    if sealed is None and actual is None:
        return []
    if sealed is None:
        return [
            f"tenant {t} exists in the store but was never sealed (added outside the key store)"
        ]
    if actual is None:
        return [f"tenant {t} was removed from the store (its rows are gone)"]
    out: list[str] = []
    have = {(p, v): k for p, v, k in actual.keys}
    want = {(p, v): k for p, v, k in sealed.keys}
    for (p, v), k in sorted(want.items()):
        if (p, v) not in have:
            out.append(f"tenant {t} {p} v{v} ({k}) was deleted")
        elif have[(p, v)] != k:
            out.append(f"tenant {t} {p} v{v} key id changed from {k} to {have[(p, v)]}")
    for (p, v), k in sorted(have.items()):
        if (p, v) not in want:
            out.append(f"tenant {t} {p} v{v} ({k}) was added outside the key store")
    for p in sorted({p for p, _, _ in sealed.keys} | {p for p, _, _ in actual.keys}):
        ws, hs = sealed.primary(p), actual.primary(p)
        if ws != hs:
            authentic = f"v{ws[0]}" if ws else "none"
            found = f"v{hs[0]}" if hs else "none"
            out.append(f"tenant {t} {p} primary is {found} in the store, authenticated {authentic}")
    if sealed.shredded != actual.shredded:
        out.append(
            f"tenant {t} is {'not ' if not actual.shredded else ''}shredded in the store,"
            f" authenticated {'shredded' if sealed.shredded else 'live'}"
        )
    if sealed.tombstone != actual.tombstone:
        out.append(
            f"tenant {t} shred tombstone was {'removed' if sealed.tombstone else 'added'}"
            " outside the key store"
        )
    return out


WrapFn = Callable[[bytes, bytes, "Sequence[RootKeyProvider] | None"], Sequence[tuple[str, bytes]]]


def _wrap_strict(providers: Sequence[RootKeyProvider]) -> WrapFn:
    def wrap(
        secret: bytes, aad: bytes, only: Sequence[RootKeyProvider] | None
    ) -> Sequence[tuple[str, bytes]]:
        chosen = providers if only is None else only
        return [(p.provider_id, p.wrap(secret, aad=aad)) for p in chosen]

    return wrap


class Sealer:
    """Seals and verifies key-store metadata under a root-wrapped seal key. Thread-safe.

    A :class:`~styku_crypto.keys.KeyStore` attaches one to its backend; the
    backend calls :meth:`before_write` and :meth:`after_write` inside each write
    transaction, and the store calls :meth:`verify_tenant` on backend reads.
    """

    def __init__(self, providers: Sequence[RootKeyProvider], *, wrap: WrapFn | None = None) -> None:
        """*wrap* wraps a secret (``wrap(secret, aad, providers)``; ``providers=None``: all,
        with the store's quorum and failover events); by default every provider must answer."""
        self._providers = tuple(providers)
        self._wrap = wrap if wrap is not None else _wrap_strict(self._providers)
        self._lock = threading.Lock()
        self._cached: tuple[bytes, bytes] | None = None  # (stored blob, key)
        self._seen_global = 0
        self._seen_tenant: dict[str, int] = {}
        self._global_cache: tuple[bytes, int, dict[str, int]] | None = None
        self._pending = threading.local()

    def __repr__(self) -> str:
        return f"<Sealer providers={','.join(p.provider_id for p in self._providers)}>"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("Sealer holds key material and cannot be pickled")

    @contextlib.contextmanager
    def records_with_next_write(self, records: dict[str, bytes | None]) -> Iterator[None]:
        """Write *records* in the same transaction as this thread's next sealed writes.

        Used so that a tenant's rows and an authenticated record about it (its
        per-tenant root objects) are committed together or not at all.
        """
        self._pending.records = dict(records)
        try:
            yield
        finally:
            self._pending.records = None

    # -- the seal key -----------------------------------------------------------

    def _key(self, view: SealView, *, create: bool) -> bytes | None:
        blob = view.meta_get(KEY_NAME)
        if blob is None:
            if not create:
                return None
            key = os.urandom(32)
            blob = self._blob(self._wrap(key, _KEY_AAD, None))
            view.meta_put(KEY_NAME, blob)
            with self._lock:
                self._cached = (blob, key)
            return key
        cached = self._cached
        if cached is not None and hmac.compare_digest(cached[0], blob):
            return cached[1]
        doc = _load(blob, "the seal key")
        stored = None if doc is None else doc.get("wraps")
        if not isinstance(stored, dict):
            raise MetadataIntegrityError("the seal key is malformed")
        key = self._unwrap(stored)
        with self._lock:
            self._cached = (blob, key)
        return key

    def _unwrap(self, wraps: dict[str, Any]) -> bytes:
        tried = []
        for provider in self._providers:
            wrapped = wraps.get(provider.provider_id)
            if not isinstance(wrapped, str):
                continue
            tried.append(provider.provider_id)
            try:
                return provider.unwrap(base64.b64decode(wrapped), aad=_KEY_AAD)
            except RootKeyUnavailableError:
                continue
            except (DecryptionError, ValueError):
                raise MetadataIntegrityError(
                    f"the seal key does not authenticate under {provider.provider_id}"
                ) from None
        if not tried:
            raise MetadataIntegrityError(
                "the seal key is not wrapped under any configured root provider"
            )
        raise RootKeyUnavailableError("no root provider available; tried " + ", ".join(tried))

    def key_material(self, view: SealView) -> tuple[bytes, bytes]:
        """``(stored wraps blob, seal key)``, creating the seal key if the store has none.

        Other authenticated artefacts (shred tombstones at backup destinations)
        carry the blob so that a restore can unwrap the key with the root alone.
        """
        key = self._key(view, create=True)
        blob = view.meta_get(KEY_NAME)
        if key is None or blob is None:
            raise MetadataIntegrityError("the seal key is missing")
        return blob, key

    def key_from_blob(self, blob: bytes) -> bytes:
        """Unwrap a seal-key blob (as stored, or as carried by a tombstone) with the roots.

        Raises:
            MetadataIntegrityError: malformed, or wrapped under none of the configured roots.
            RootKeyUnavailableError: no configured root reachable.
        """
        cached = self._cached
        if cached is not None and hmac.compare_digest(cached[0], blob):
            return cached[1]
        doc = _load(blob, "the seal key")
        stored = None if doc is None else doc.get("wraps")
        if not isinstance(stored, dict):
            raise MetadataIntegrityError("the seal key is malformed")
        return self._unwrap(stored)

    @staticmethod
    def _blob(wraps: Iterable[tuple[str, bytes]]) -> bytes:
        doc = {pid: base64.b64encode(w).decode("ascii") for pid, w in wraps}
        return _canonical({"v": _FORMAT, "wraps": doc})

    def _stored_wraps(self, view: SealView) -> dict[str, Any]:
        doc = _load(view.meta_get(KEY_NAME), "the seal key")
        stored = None if doc is None else doc.get("wraps")
        if doc is not None and not isinstance(stored, dict):
            raise MetadataIntegrityError("the seal key is malformed")
        return stored or {}

    def missing_providers(self, view: SealView) -> list[str]:
        """Configured providers without a wrap of the seal key (a root that was down)."""
        if view.meta_get(KEY_NAME) is None:
            return []
        stored = self._stored_wraps(view)
        return [p.provider_id for p in self._providers if p.provider_id not in stored]

    def rewrap(self, view: SealView, *, missing_only: bool = False) -> int:
        """Wrap the seal key afresh under the configured providers (``rewrap_root``).

        With *missing_only*, keep the stored wraps and add those of configured
        providers that lack one and answer now (``repair_wraps``).

        Returns:
            The number of wraps written.
        """
        key = self._key(view, create=False)
        if key is None:
            return 0
        if missing_only:
            stored = self._stored_wraps(view)
            todo = [p for p in self._providers if p.provider_id not in stored]
            if not todo:
                return 0
            new = self._wrap(key, _KEY_AAD, todo)
            if not new:
                return 0
            old = [(pid, base64.b64decode(w)) for pid, w in stored.items()]
            blob = self._blob([*old, *new])
            written = len(new)
        else:
            wraps = self._wrap(key, _KEY_AAD, None)
            blob = self._blob(wraps)
            written = len(wraps)
        view.meta_put(KEY_NAME, blob)
        with self._lock:
            self._cached = (blob, key)
        return written

    # -- MACs -------------------------------------------------------------------

    @staticmethod
    def _mac(key: bytes, kind: bytes, body: object) -> str:
        return hmac.new(
            key, _DOMAIN + kind + b"\x00" + _canonical(body), hashlib.sha256
        ).hexdigest()

    def _global(
        self, view: SealView, key: bytes, *, strict: bool = True
    ) -> tuple[int, dict[str, int]]:
        """The verified global seal: (counter, {seal name: counter}).

        With *strict*, a counter lower than this sealer has seen is a rollback
        (off for version lookups, which a lagging replica may serve).
        """
        raw = view.meta_get(GLOBAL_NAME)
        cached = self._global_cache
        if raw is not None and cached is not None and hmac.compare_digest(cached[0], raw):
            counter, table = cached[1], cached[2]
        else:
            counter, table = self._parse_global(raw, key)
            if raw is not None:
                self._global_cache = (raw, counter, table)
        if strict and counter < self._seen_global:
            raise MetadataIntegrityError(
                f"the key store metadata was rolled back (counter {counter},"
                f" this process saw {self._seen_global})"
            )
        with self._lock:
            self._seen_global = max(self._seen_global, counter)
        return counter, table

    def _parse_global(self, raw: bytes | None, key: bytes) -> tuple[int, dict[str, int]]:
        doc = _load(raw, "the global seal")
        if doc is None:
            raise MetadataIntegrityError(
                "the global seal is missing (deleted outside the key store)"
            )
        counter = _int(doc, "counter", "the global seal")
        entries = doc.get("entries")
        if not isinstance(entries, list):
            raise MetadataIntegrityError("the global seal is malformed")
        mac = doc.get("mac")
        expect = self._mac(key, b"global", [counter, entries])
        if not isinstance(mac, str) or not hmac.compare_digest(mac, expect):
            raise MetadataIntegrityError("the global seal does not authenticate")
        try:
            table = {str(n): int(c) for n, c in entries}
        except (TypeError, ValueError):
            raise MetadataIntegrityError("the global seal is malformed") from None
        return counter, table

    def _tenant_seal(self, view: SealView, key: bytes, name: str) -> tuple[TenantState, int] | None:
        what = f"the seal of tenant {name!r}"
        doc = _load(view.meta_get(TENANT_PREFIX + name), what)
        if doc is None:
            return None
        counter = _int(doc, "counter", what)
        body = doc.get("state")
        mac = doc.get("mac")
        if not isinstance(mac, str) or not hmac.compare_digest(
            mac, self._mac(key, b"tenant", [name, counter, body])
        ):
            raise MetadataIntegrityError(f"{what} does not authenticate")
        return _state_from_json(body, name, what), counter

    def _record(self, view: SealView, key: bytes, name: str) -> tuple[bytes, int] | None:
        what = f"authenticated record {name!r}"
        doc = _load(view.meta_get(RECORD_PREFIX + name), what)
        if doc is None:
            return None
        counter = _int(doc, "counter", what)
        value = doc.get("value")
        mac = doc.get("mac")
        if not isinstance(value, str) or not isinstance(mac, str):
            raise MetadataIntegrityError(f"{what} is malformed")
        if not hmac.compare_digest(mac, self._mac(key, b"record", [name, counter, value])):
            raise MetadataIntegrityError(f"{what} does not authenticate")
        try:
            return base64.b64decode(value, validate=True), counter
        except ValueError:
            raise MetadataIntegrityError(f"{what} is malformed") from None

    # -- reads ----------------------------------------------------------------------

    def verify_tenant(
        self, view: SealView, name: str, *, strict: bool = True
    ) -> TenantState | None:
        """The verified state of *name* (``None``: unknown tenant, consistently).

        *strict* (primary lookups, i.e. encryption) also refuses a seal older
        than one this sealer saw; version lookups (decryption) may be served by a
        lagging replica and skip that comparison.

        Raises:
            MetadataIntegrityError: the rows differ from the seal, a seal is missing,
                forged or older than one this process saw.
            RootKeyUnavailableError: the seal key could not be unwrapped (no root reachable).
        """
        actual = view.tenant_state(name)
        key = self._key(view, create=False)
        if key is None:
            if actual is None and not view.tenant_names():
                return None  # an empty, never-written store
            raise MetadataIntegrityError(
                "the key store metadata is not sealed (seal key missing); see `keys check`"
            )
        counter, table = self._global(view, key, strict=strict)
        sealed = self._tenant_seal(view, key, name)
        tname = TENANT_PREFIX + name
        if sealed is None:
            if actual is None and tname not in table:
                return None
            changes = describe_changes(name, None, actual) or [
                f"the seal of tenant {name!r} was deleted"
            ]
            raise MetadataIntegrityError("; ".join(changes))
        state, tcounter = sealed
        if table.get(tname) != tcounter or tcounter > counter:
            raise MetadataIntegrityError(
                f"the seal of tenant {name!r} was replaced by another copy (counter {tcounter})"
            )
        changes = describe_changes(name, state, actual)
        if changes:
            raise MetadataIntegrityError("; ".join(changes))
        with self._lock:
            if strict and tcounter < self._seen_tenant.get(name, 0):
                raise MetadataIntegrityError(f"the seal of tenant {name!r} was rolled back")
            self._seen_tenant[name] = max(tcounter, self._seen_tenant.get(name, 0))
        return state

    def read_record(self, view: SealView, name: str) -> bytes | None:
        """The authenticated record *name* (``None``: never written).

        The global seal must list the record with the record's own counter, so a
        record that was deleted or replaced by an older copy is refused, never
        mistaken for "never written".

        Raises:
            MetadataIntegrityError: the record or the global seal fails verification.
        """
        key = self._key(view, create=False)
        if key is None:
            if not view.tenant_names() and not view.meta_scan(RECORD_PREFIX):
                return None
            raise MetadataIntegrityError(
                "the key store metadata is not sealed (seal key missing); see `keys check`"
            )
        _counter, table = self._global(view, key)
        got = self._record(view, key, name)
        listed = table.get(RECORD_PREFIX + name)
        if got is None:
            if listed is None:
                return None
            raise MetadataIntegrityError(f"authenticated record {name!r} was deleted")
        if listed != got[1]:
            raise MetadataIntegrityError(
                f"authenticated record {name!r} was replaced by an older copy"
                f" (counter {got[1]}, authenticated {listed})"
            )
        return got[0]

    def _compare_all(self, view: SealView, key: bytes, table: dict[str, int]) -> list[str]:
        """Every difference between the global list, the seals and the rows."""
        problems: list[str] = []
        names = set(view.tenant_names())
        seals = dict(view.meta_scan(TENANT_PREFIX))
        records = {n for n, _ in view.meta_scan(RECORD_PREFIX)}
        listed = set(table)
        for tname in sorted(listed | set(seals) | records):
            if tname not in listed:
                problems.append(f"seal {tname[len(SEAL_PREFIX) :]!r} is not in the global seal")
            elif tname not in seals and tname not in records:
                kind = "tenant" if tname.startswith(TENANT_PREFIX) else "record"
                short = tname.split("/", 3)[-1]
                problems.append(f"the seal of {kind} {short!r} was deleted")
        sealed_names = {
            n[len(TENANT_PREFIX) :] for n in set(seals) | listed if n.startswith(TENANT_PREFIX)
        }
        for name in sorted(names | sealed_names):
            try:
                sealed = self._tenant_seal(view, key, name)
            except MetadataIntegrityError as exc:
                problems.append(str(exc))
                continue
            actual = view.tenant_state(name)
            if sealed is None:
                if actual is not None:
                    problems.extend(describe_changes(name, None, actual))
                continue
            state, tcounter = sealed
            if (TENANT_PREFIX + name) in table and table[TENANT_PREFIX + name] != tcounter:
                problems.append(
                    f"the seal of tenant {name!r} was replaced by an older copy"
                    f" (counter {tcounter}, authenticated {table[TENANT_PREFIX + name]})"
                )
            problems.extend(describe_changes(name, state, actual))
        for rname in sorted(records):
            short = rname[len(RECORD_PREFIX) :]
            try:
                got = self._record(view, key, short)
            except MetadataIntegrityError as exc:
                problems.append(str(exc))
                continue
            if got is not None and rname in table and table[rname] != got[1]:
                problems.append(f"authenticated record {short!r} was replaced by an older copy")
        return problems

    def audit(self, view: SealView) -> list[str]:
        """Everything that changed outside the key store (empty when the seal holds)."""
        try:
            key = self._key(view, create=False)
            if key is None:
                if view.tenant_names() or view.meta_scan(RECORD_PREFIX):
                    return [
                        "the key store metadata is not sealed (seal key missing): tenants"
                        " exist without authenticated metadata"
                    ]
                return []
            _counter, table = self._global(view, key)
        except MetadataIntegrityError as exc:
            return [str(exc)]
        except RootKeyUnavailableError as exc:
            return [f"the seal could not be checked: {exc}"]
        return self._compare_all(view, key, table)

    # -- writes ---------------------------------------------------------------------

    def before_write(self, view: SealView, tenants: Iterable[str] = ()) -> None:
        """Inside a write transaction, before changing *tenants*: refuse if their seals fail.

        A write never reseals over a change made outside the key store (that would
        launder it). Raises :class:`MetadataIntegrityError`.
        """
        view.lock()
        key = self._key(view, create=False)
        if key is None:
            if view.tenant_names() or view.meta_scan(RECORD_PREFIX):
                raise MetadataIntegrityError(
                    "the key store metadata is not sealed (seal key missing); see `keys check`"
                )
            return
        _counter, table = self._global(view, key)
        for name in tenants:
            sealed = self._tenant_seal(view, key, name)
            actual = view.tenant_state(name)
            tname = TENANT_PREFIX + name
            if sealed is None:
                if actual is None and tname not in table:
                    continue
                raise MetadataIntegrityError(
                    "; ".join(describe_changes(name, None, actual))
                    or f"the seal of tenant {name!r} was deleted"
                )
            if table.get(tname) != sealed[1]:
                raise MetadataIntegrityError(f"the seal of tenant {name!r} was replaced")
            changes = describe_changes(name, sealed[0], actual)
            if changes:
                raise MetadataIntegrityError("; ".join(changes))

    def after_write(
        self,
        view: SealView,
        tenants: Iterable[str] = (),
        records: dict[str, bytes | None] | None = None,
        *,
        all_tenants: bool = False,
    ) -> None:
        """Inside the same transaction, after the change: reseal and bump the counter."""
        pending = getattr(self._pending, "records", None)
        if pending:
            records = {**pending, **(records or {})}
        key = self._key(view, create=True)
        assert key is not None
        doc = _load(view.meta_get(GLOBAL_NAME), "the global seal")
        table: dict[str, int] = {}
        counter = 0
        if doc is not None and not all_tenants:
            counter, table = self._global(view, key)
        elif doc is not None:
            counter = _int(doc, "counter", "the global seal")
        counter += 1
        names = set(tenants)
        if all_tenants:
            names |= set(view.tenant_names())
            for tname, _ in view.meta_scan(TENANT_PREFIX):
                view.meta_put(tname, None)
            table = {}
            for rname, raw in view.meta_scan(RECORD_PREFIX):
                rdoc = _load(raw, "authenticated record")
                value = rdoc.get("value") if rdoc else None
                if not isinstance(value, str):
                    raise MetadataIntegrityError(f"{rname} is malformed")
                self._put_record(view, key, rname[len(RECORD_PREFIX) :], value, counter, table)
        for name in sorted(names):
            tname = TENANT_PREFIX + name
            state = view.tenant_state(name)
            if state is None:
                view.meta_put(tname, None)
                table.pop(tname, None)
                continue
            body = state.to_json()
            view.meta_put(
                tname,
                _canonical(
                    {
                        "v": _FORMAT,
                        "counter": counter,
                        "state": body,
                        "mac": self._mac(key, b"tenant", [name, counter, body]),
                    }
                ),
            )
            table[tname] = counter
        for rname, value in (records or {}).items():
            if value is None:
                view.meta_put(RECORD_PREFIX + rname, None)
                table.pop(RECORD_PREFIX + rname, None)
            else:
                encoded = base64.b64encode(value).decode("ascii")
                self._put_record(view, key, rname, encoded, counter, table)
        entries = [[n, c] for n, c in sorted(table.items())]
        view.meta_put(
            GLOBAL_NAME,
            _canonical(
                {
                    "v": _FORMAT,
                    "counter": counter,
                    "entries": entries,
                    "mac": self._mac(key, b"global", [counter, entries]),
                }
            ),
        )
        with self._lock:
            self._seen_global = max(self._seen_global, counter)
            for name in names:
                self._seen_tenant[name] = counter

    def _put_record(
        self,
        view: SealView,
        key: bytes,
        name: str,
        encoded: str,
        counter: int,
        table: dict[str, int],
    ) -> None:
        if len(encoded) > _MAX_RECORD:
            raise KeyStoreError("an authenticated record is limited to 48 KiB")
        view.meta_put(
            RECORD_PREFIX + name,
            _canonical(
                {
                    "v": _FORMAT,
                    "counter": counter,
                    "value": encoded,
                    "mac": self._mac(key, b"record", [name, counter, encoded]),
                }
            ),
        )
        table[RECORD_PREFIX + name] = counter

    def counter(self, view: SealView) -> int:
        """The verified global counter (0 for an unsealed, empty store)."""
        key = self._key(view, create=False)
        if key is None:
            return 0
        return self._global(view, key)[0]

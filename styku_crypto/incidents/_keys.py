"""The incident log's MAC key and head record, taken from a key store."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import re
import threading
from pathlib import Path
from typing import Any, NoReturn

from styku_crypto.events import emit
from styku_crypto.exceptions import KeyNotFoundError, KeyStoreError, MetadataIntegrityError
from styku_crypto.incidents._chain import ChainTamperedError

__all__ = ["INCIDENT_TENANT", "KeyStoreMacKey", "store_head", "store_path"]

#: The reserved internal tenant whose key hierarchy authenticates incident logs.
INCIDENT_TENANT = "styku-internal-incidents"
_PURPOSE = "customer"
_LABEL = b"styku-crypto/incident-log/mac/v1"
_RECORD = "incidents/"  # the head's authenticated record: styku/seal/record/incidents/<name>
_KEY_ID = re.compile(r"\Astore:incidents:v([1-9][0-9]{0,9})\Z")


class KeyStoreMacKey:
    """HMAC-SHA256 keys derived from a key store for the incident log.

    The key is HKDF-derived (``KeyStore._derive_key``) from the tenant key of
    the reserved tenant :data:`INCIDENT_TENANT` with a label used for nothing
    else; the tenant is created on first use. Each entry names the key
    version it was authenticated with (``store:incidents:v<N>``), so rotating
    the tenant keeps old entries verifiable; shredding the tenant makes the
    log unverifiable (by design: it is the off switch).

    Derived keys are cached in this object for its lifetime. ``repr`` shows
    no key material; instances cannot be pickled.
    """

    def __init__(self, store: Any, *, tenant: str = INCIDENT_TENANT) -> None:
        self._store = store
        self._tenant = tenant
        self._keys: dict[int, bytes] = {}
        self._current: int | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeyStoreMacKey(tenant={self._tenant!r}, version={self._current})"

    def __reduce__(self) -> Any:
        raise TypeError("KeyStoreMacKey cannot be pickled")

    def current_key_id(self) -> str:
        """The id of the key new entries use (the tenant's primary version)."""
        with self._lock:
            if self._current is None:
                key, version = self._derive(None)
                self._keys[version] = key
                self._current = version
            return f"store:incidents:v{self._current}"

    def mac(self, data: bytes, *, key_id: str) -> bytes:
        """HMAC-SHA256 of *data* under the key named *key_id*.

        Raises:
            KeyNotFoundError: malformed or unknown key id.
            KeyDestroyedError: the incident tenant was shredded.
        """
        match = _KEY_ID.match(key_id)
        if match is None:
            raise KeyNotFoundError("incident log entry names an unknown MAC key")
        version = int(match.group(1))
        with self._lock:
            key = self._keys.get(version)
            if key is None:
                key, got = self._derive(version)
                if got != version:
                    raise KeyNotFoundError("incident log MAC key version not found")
                self._keys[version] = key
        return hmac.new(key, data, hashlib.sha256).digest()

    def _derive(self, version: int | None) -> tuple[bytes, int]:
        store = self._store
        try:
            return store._derive_key(  # type: ignore[no-any-return]
                self._tenant, purpose=_PURPOSE, label=_LABEL, length=32, version=version
            )
        except KeyNotFoundError:
            if version is not None:
                raise
        # first use: create the reserved tenant, then derive
        with contextlib.suppress(KeyStoreError):  # created concurrently by another writer
            store._create_internal_tenant(self._tenant)
        return store._derive_key(  # type: ignore[no-any-return]
            self._tenant, purpose=_PURPOSE, label=_LABEL, length=32, version=None
        )


def _backend(store: Any) -> Any:
    for name in ("backend", "_backend"):
        backend = getattr(store, name, None)
        if backend is not None:
            return backend
    return None


class _StoreHead:
    """The key store's metadata as a head store, covered by its authenticated metadata.

    The head is written to the plain metadata entry *and*, in the same
    transaction, to an authenticated record of the key store's seal
    (``KeyStore._write_record``). Reading compares the two: a head whose record
    was deleted or replaced by an older copy, or that differs from its record
    (an older log and head put back), is refused, so erasing or rolling back
    the log and its head no longer verifies clean.
    """

    def __init__(self, store: Any) -> None:
        self._store = store

    def get_meta(self, name: str) -> bytes | None:
        plain = self._store.backend.get_meta(name)
        try:
            sealed = self._store._read_record(_RECORD + name)
        except MetadataIntegrityError as exc:
            _refuse(f"incident log head: {exc}", "head_missing")
        if sealed is None:
            return None if plain is None else bytes(plain)  # never sealed (first use)
        if plain is None:
            _refuse(
                "incident log head record is missing from the key store (its authenticated"
                " copy exists)",
                "head_missing",
            )
        if not hmac.compare_digest(bytes(plain), sealed):
            _refuse(
                "incident log head differs from its authenticated copy (altered or rolled back)",
                "head_mismatch",
            )
        return bytes(plain)

    def set_meta(self, name: str, value: bytes | None) -> None:
        self._store._write_record(_RECORD + name, value, mirror=name)


def _refuse(message: str, code: str) -> NoReturn:
    emit(
        "incident.verify_failed",
        capability="incidents",
        outcome="failure",
        level=logging.ERROR,
        reason=code,
    )
    raise ChainTamperedError(message, code)


def store_head(store: Any) -> _StoreHead | None:
    """The key store's authenticated records as a head store (``None`` when it has none)."""
    if not hasattr(store, "_read_record"):
        return None
    return _StoreHead(store)


def store_path(store: Any) -> Path | None:
    """The key store's SQLite file, or ``None`` for a server-backed store."""
    backend = _backend(store)
    path = getattr(backend, "path", None)
    return Path(path) if path is not None else None

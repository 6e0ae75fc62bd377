"""Tenant key hierarchies: root-key providers, storage backends and the key store."""

from styku_crypto.keys._backend import (
    PURPOSES,
    KeyRecord,
    KeyStoreBackend,
    StoreSnapshot,
    TenantRecord,
)
from styku_crypto.keys._local import LocalRootKey
from styku_crypto.keys._provider import RootKeyProvider
from styku_crypto.keys._sqlite import SQLiteBackend
from styku_crypto.keys._store import KeyInfo, KeyStore, TenantInfo

__all__ = [
    "PURPOSES",
    "KeyInfo",
    "KeyRecord",
    "KeyStore",
    "KeyStoreBackend",
    "LocalRootKey",
    "RootKeyProvider",
    "SQLiteBackend",
    "StoreSnapshot",
    "TenantInfo",
    "TenantRecord",
]

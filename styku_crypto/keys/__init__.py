"""Tenant key hierarchies: root-key providers, storage backends and the key store."""

from styku_crypto.keys._backend import (
    PURPOSES,
    KeyRecord,
    KeyStoreBackend,
    StoreSnapshot,
    TenantRecord,
)
from styku_crypto.keys._backup import BackupResult, backup
from styku_crypto.keys._backup_destinations import (
    BackupDestination,
    DirectoryDestination,
    S3Destination,
)
from styku_crypto.keys._drill import DrillReport, TenantDrill, drill
from styku_crypto.keys._kms import AwsKmsRootKey
from styku_crypto.keys._local import LocalRootKey
from styku_crypto.keys._pkcs11 import Pkcs11RootKey
from styku_crypto.keys._postgres import PostgresBackend
from styku_crypto.keys._provider import RootKeyProvider
from styku_crypto.keys._resilience import RetryPolicy
from styku_crypto.keys._restore import RestoreResult, restore
from styku_crypto.keys._schemes import (
    StoreScheme,
    register_destination_scheme,
    register_root_scheme,
    register_store_scheme,
)
from styku_crypto.keys._sqlite import SQLiteBackend
from styku_crypto.keys._store import KeyInfo, KeyStore, TenantInfo

__all__ = [
    "PURPOSES",
    "AwsKmsRootKey",
    "BackupDestination",
    "BackupResult",
    "DirectoryDestination",
    "DrillReport",
    "KeyInfo",
    "KeyRecord",
    "KeyStore",
    "KeyStoreBackend",
    "LocalRootKey",
    "Pkcs11RootKey",
    "PostgresBackend",
    "RestoreResult",
    "RetryPolicy",
    "RootKeyProvider",
    "S3Destination",
    "SQLiteBackend",
    "StoreScheme",
    "StoreSnapshot",
    "TenantDrill",
    "TenantInfo",
    "TenantRecord",
    "backup",
    "drill",
    "register_destination_scheme",
    "register_root_scheme",
    "register_store_scheme",
    "restore",
]

"""Wrapped keys, PINs and snapshots stay out of reprs and pickles; bad backups fail typed."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from styku_crypto.keys import KeyStore, LocalRootKey, Pkcs11RootKey, SQLiteBackend
from tests._support import leaks


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    """A SQLite store with one tenant under a local root key."""
    backend = SQLiteBackend(tmp_path / "keys.db")
    backend.initialize()
    ks = KeyStore(backend, root=LocalRootKey(tmp_path / "root.key"))
    ks.create_tenant("acme")
    return ks


def test_key_record_and_snapshot_refuse_pickling(store: KeyStore) -> None:
    """KeyRecord and StoreSnapshot (wrapped key bytes) refuse pickle and keep wraps out of repr."""
    try:
        record = store.backend.get_primary("acme", "customer")
        snapshot = store.backend.export_snapshot()
        for _, wrapped in record.wraps:
            leaks.register_secret(wrapped)
        for obj in (record, snapshot):
            leaks.assert_no_secret_in(f"repr {type(obj).__name__}", repr(obj))
            with pytest.raises(TypeError, match="cannot be pickled"):
                pickle.dumps(obj)
    finally:
        store.close()


def test_pkcs11_provider_repr_and_pickle_hide_the_pin() -> None:
    """The PKCS#11 provider's repr names token and key labels, never the PIN; pickling raises."""
    pin = "pin-7d1e55aa"
    leaks.register_secret(pin)
    provider = Pkcs11RootKey(module="/nonexistent.so", token_label="tok", pin=pin)
    leaks.assert_no_secret_in("repr Pkcs11RootKey", repr(provider))
    assert "tok" in repr(provider)
    with pytest.raises(TypeError):
        pickle.dumps(provider)


def test_authentic_backup_with_malformed_shred_list_is_backup_error(
    store: KeyStore, tmp_path: Path
) -> None:
    """A manifest that authenticates but holds a malformed shred list raises BackupError."""
    import hashlib
    import hmac
    import json

    from styku_crypto.exceptions import BackupError
    from styku_crypto.keys import DirectoryDestination, _backup, _backup_format
    from styku_crypto.keys._restore import load_backup

    try:
        backup_id, files, _ = _backup.build_backup(store)
        manifest = json.loads(files["manifest.json"])
        provider = store.providers[0]
        mac_key = provider.unwrap(
            _backup_format._unb64(manifest["mac_key_wraps"][provider.provider_id]),
            aad=_backup_format._MAC_AAD + backup_id.encode("ascii"),
        )
        leaks.register_secret(mac_key)
        manifest["shred_list"] = [["only-one-field"]]
        body = {k: v for k, v in manifest.items() if k != "mac"}
        manifest["mac"] = hmac.new(
            mac_key, _backup_format._canonical(body), hashlib.sha256
        ).hexdigest()
        files["manifest.json"] = json.dumps(manifest).encode()
        DirectoryDestination(tmp_path / "b").write_backup(backup_id, files)
        with pytest.raises(BackupError, match="malformed shred list"):
            load_backup(tmp_path / "b", store.providers)
    finally:
        store.close()


def test_s3_destination_hides_credentials() -> None:
    """An S3 destination built with credentials shows only its URL and refuses to pickle."""
    from styku_crypto.keys import S3Destination

    secret = "aws-Secret-Key-9b8c7d6e5f"
    leaks.register_secret(secret)
    dest = S3Destination(
        "bucket",
        "prefix",
        client_kwargs={"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": secret},
    )
    leaks.assert_no_secret_in("repr S3Destination", repr(dest))
    assert "s3://bucket/prefix" in repr(dest)
    with pytest.raises(TypeError):
        pickle.dumps(dest)


def test_postgres_backend_hides_the_url_password() -> None:
    """PostgresBackend's repr and location drop the URL password; pickling raises."""
    from styku_crypto.keys import PostgresBackend

    password = "pg-Secret-repr-3c2b1a"
    leaks.register_secret(password)
    backend = PostgresBackend(
        f"postgresql://app:{password}@127.0.0.1:1/keys"
        f"?secondary=postgresql://ro:{password}@127.0.0.1:2/keys"
    )
    leaks.assert_no_secret_in("repr PostgresBackend", repr(backend))
    leaks.assert_no_secret_in("PostgresBackend.location", backend.location)
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(backend)
    backend.close()

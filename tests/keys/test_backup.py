"""Backups and restores: every store and root, directories and S3 (moto), integrity, shred lists."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from styku_crypto.envelope import Envelope
from styku_crypto.exceptions import (
    BackupError,
    DecryptionError,
    KeyDestroyedError,
    KeyStoreError,
)
from styku_crypto.keys import (
    DirectoryDestination,
    KeyStore,
    KeyStoreBackend,
    LocalRootKey,
    RootKeyProvider,
    S3Destination,
    SQLiteBackend,
    backup,
    restore,
)
from styku_crypto.keys._restore import load_backup, shred_list_document
from tests._support import leaks
from tests._support.moto_server import AWS_ENV, FaultProxy, MotoServer

CTX = {"table": "scans", "id": "9"}


def _payload() -> bytes:
    data = b"body-scan-" + secrets.token_bytes(20)
    leaks.register_secret(data)
    return data


def _register_keys(store: KeyStore, tenant: str) -> None:
    for info in store.describe(tenant).keys:
        key = store._tenant_key(tenant, info.purpose, info.version)
        leaks.register_secret(key._secret)


@pytest.fixture
def bucket(moto_server: MotoServer) -> str:
    """A fresh bucket on the moto server."""
    name = f"bk-{secrets.token_hex(6)}"
    boto3.client("s3", endpoint_url=moto_server.endpoint, **AWS_ENV).create_bucket(Bucket=name)
    return name


def _s3(moto_server: MotoServer, bucket: str, prefix: str = "keys") -> S3Destination:
    return S3Destination(
        bucket, prefix, endpoint_url=moto_server.endpoint, client_kwargs=dict(AWS_ENV)
    )


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[KeyStore]:
    """A SQLite store with a local root (the quick combination for non-parametrised tests)."""
    store = KeyStore.open(tmp_path / "prod.db", root=LocalRootKey(tmp_path / "root.key"))
    yield store
    store.close()


def _empty_like(tmp_path: Path, name: str, root: RootKeyProvider) -> KeyStore:
    backend = SQLiteBackend(tmp_path / f"{name}.db")
    backend.initialize()
    return KeyStore(backend, root=root)


def test_backup_restore_roundtrip_every_store_and_root(
    backend_factory: Callable[..., KeyStoreBackend],
    root_factory: Callable[..., RootKeyProvider],
    tmp_path: Path,
    moto_server: MotoServer,
    bucket: str,
) -> None:
    """A backup to two directories and S3 restores (from each) into an empty store that decrypts."""
    store = KeyStore(backend_factory("prod"), root=root_factory("root"))
    store.create_tenant("acme")
    store.create_tenant("beta")
    store.rotate("acme")
    env = Envelope(store)
    data = _payload()
    tokens = {t: env.encrypt(data, tenant=t, context=CTX) for t in ("acme", "beta")}
    _register_keys(store, "acme")
    dests = [tmp_path / "b1", tmp_path / "b2", _s3(moto_server, bucket)]
    result = backup(store, dests)
    assert result.ok
    assert len(result.written) == 3
    assert result.tenants == 2
    assert result.key_versions == 6  # 2 tenants x 2 purposes + acme rotated (both)
    for i, source in enumerate(dests):
        target = KeyStore(backend_factory(f"restore{i}"), root=root_factory("root"))
        restored = restore(source, target)
        assert restored.backup_id == result.backup_id
        renv = Envelope(target)
        for tenant, token in tokens.items():
            assert renv.decrypt(token, tenant=tenant, context=CTX) == data
        assert target.check(deep=True) == []
        target.close()
    files = b"".join(p.read_bytes() for p in (tmp_path / "b1" / result.backup_id).iterdir())
    leaks.assert_no_secret_in("backup files", files)
    store.close()


def test_backup_files_are_identical_everywhere(
    local_store: KeyStore, tmp_path: Path, moto_server: MotoServer, bucket: str
) -> None:
    """Every destination receives byte-identical files under the same backup id."""
    local_store.create_tenant("acme")
    s3 = _s3(moto_server, bucket)
    result = backup(local_store, [tmp_path / "d", s3])
    for name in ("manifest.json", "snapshot.json", "canaries.json"):
        on_disk = (tmp_path / "d" / result.backup_id / name).read_bytes()
        assert s3.read_file(result.backup_id, name) == on_disk
    assert s3.list_backups() == [result.backup_id]
    manifest = json.loads((tmp_path / "d" / result.backup_id / "manifest.json").read_bytes())
    assert manifest["format"] == "styku-keys-backup/1"
    assert set(manifest["files"]) == {"snapshot.json", "canaries.json"}
    assert manifest["providers"] == [local_store.providers[0].provider_id]


def test_failed_destination_is_named_and_others_complete(
    local_store: KeyStore,
    tmp_path: Path,
    moto_server: MotoServer,
    fault_proxy: FaultProxy,
    bucket: str,
) -> None:
    """A file-as-directory and an erroring S3 endpoint fail by name; the good copy verifies."""
    local_store.create_tenant("acme")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    bad_s3 = S3Destination(
        bucket, "k", endpoint_url=fault_proxy.endpoint, client_kwargs=dict(AWS_ENV)
    )
    fault_proxy.set_mode("error")
    before = len([r for r in leaks.captured_records() if r.getMessage() == "key.backup"])
    with pytest.raises(BackupError) as err:
        backup(local_store, [tmp_path / "good", blocker, bad_s3])
    message = str(err.value)
    assert str(blocker) in message
    assert f"s3://{bucket}/k" in message
    assert str(tmp_path / "good") not in message
    result = err.value.result  # type: ignore[attr-defined]
    assert result.written == (str(tmp_path / "good"),)
    assert len(result.failed) == 2
    assert load_backup(tmp_path / "good", local_store.providers).backup_id == result.backup_id
    events = [r for r in leaks.captured_records() if r.getMessage() == "key.backup"][before:]
    assert events[-1].styku_event["outcome"] == "failure"  # type: ignore[attr-defined]
    assert events[-1].levelno == logging.WARNING


@pytest.mark.parametrize("name", ["manifest.json", "snapshot.json", "canaries.json"])
def test_tampered_backup_is_refused(local_store: KeyStore, tmp_path: Path, name: str) -> None:
    """One flipped byte in any file fails the MAC or a checksum; nothing is imported."""
    local_store.create_tenant("acme")
    result = backup(local_store, [tmp_path / "b"])
    path = tmp_path / "b" / result.backup_id / name
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    target = _empty_like(tmp_path, "t", LocalRootKey(tmp_path / "root.key"))
    with pytest.raises(BackupError):
        restore(tmp_path / "b", target)
    assert target.tenants() == []
    target.close()


def test_mixed_backup_files_are_refused(local_store: KeyStore, tmp_path: Path) -> None:
    """A snapshot swapped in from another (valid) backup fails the manifest checksum."""
    local_store.create_tenant("acme")
    first = backup(local_store, [tmp_path / "b"])
    local_store.create_tenant("beta")
    second = backup(local_store, [tmp_path / "b"])
    src = tmp_path / "b" / second.backup_id / "snapshot.json"
    dst = tmp_path / "b" / first.backup_id / "snapshot.json"
    dst.write_bytes(src.read_bytes())
    with pytest.raises(BackupError, match="checksum"):
        load_backup(tmp_path / "b", local_store.providers, backup_id=first.backup_id)


def test_restore_needs_same_root(local_store: KeyStore, tmp_path: Path) -> None:
    """A backup cannot be verified or restored under a different root key."""
    local_store.create_tenant("acme")
    backup(local_store, [tmp_path / "b"])
    target = _empty_like(tmp_path, "t", LocalRootKey(tmp_path / "other.key"))
    with pytest.raises(BackupError, match="other root"):
        restore(tmp_path / "b", target)
    target.close()


def test_restore_needs_empty_store(local_store: KeyStore, tmp_path: Path) -> None:
    """Restoring into a store that already has tenants is refused."""
    local_store.create_tenant("acme")
    backup(local_store, [tmp_path / "b"])
    with pytest.raises(KeyStoreError, match="empty"):
        restore(tmp_path / "b", local_store)


def test_shredded_tenant_stays_shredded_after_older_restore(
    local_store: KeyStore, tmp_path: Path
) -> None:
    """Restoring a backup taken before a shred keeps the tenant shredded (later backup's list)."""
    local_store.create_tenant("acme")
    local_store.create_tenant("gone")
    env = Envelope(local_store)
    data = _payload()
    token_gone = env.encrypt(data, tenant="gone", context=CTX)
    token_acme = env.encrypt(data, tenant="acme", context=CTX)
    old = backup(local_store, [tmp_path / "b"])
    local_store.shred("gone")
    backup(local_store, [tmp_path / "b"])
    target = _empty_like(tmp_path, "t", LocalRootKey(tmp_path / "root.key"))
    result = restore(tmp_path / "b", target, backup_id=old.backup_id)
    assert result.kept_shredded == ("gone",)
    tenv = Envelope(target)
    with pytest.raises(KeyDestroyedError):
        tenv.decrypt(token_gone, tenant="gone", context=CTX)
    assert tenv.decrypt(token_acme, tenant="acme", context=CTX) == data
    assert [n for n, _ in target.backend.shred_list()] == ["gone"]
    assert target.check() == []
    target.close()


def test_shred_list_file_and_the_documented_limit(local_store: KeyStore, tmp_path: Path) -> None:
    """Only the old backup at hand: a shred list, or the shred's tombstone, keeps it shredded."""
    local_store.create_tenant("gone")
    backup(local_store, [tmp_path / "only-old"])
    local_store.shred("gone")
    shred_file = tmp_path / "shred.json"
    shred_file.write_text(json.dumps(shred_list_document(local_store)))
    root = LocalRootKey(tmp_path / "root.key")
    with_list = _empty_like(tmp_path, "t1", root)
    restore(tmp_path / "only-old", with_list, shred_lists=[shred_file])
    with pytest.raises(KeyDestroyedError):
        with_list._tenant_key("gone", "customer")
    # The former limit (no later backup, no shred list) is closed by the tombstone
    # the shred wrote to the destination (issue 12 item 2).
    without = _empty_like(tmp_path, "t2", LocalRootKey(tmp_path / "root.key"))
    restore(tmp_path / "only-old", without)
    with pytest.raises(KeyDestroyedError):
        without._tenant_key("gone", "customer")


def test_keys_rotated_after_backup_are_not_in_it(local_store: KeyStore, tmp_path: Path) -> None:
    """A token under a version created after the backup does not decrypt after restore.

    It is DecryptionError (issue 14: a key version the tenant lacks is never reported,
    so another tenant's versions do not leak); Envelope.inspect names the version.
    """
    local_store.create_tenant("acme")
    env = Envelope(local_store)
    data = _payload()
    before = env.encrypt(data, tenant="acme", context=CTX)
    backup(local_store, [tmp_path / "b"])
    local_store.rotate("acme")
    after = env.encrypt(data, tenant="acme", context=CTX)
    target = _empty_like(tmp_path, "t", LocalRootKey(tmp_path / "root.key"))
    restore(tmp_path / "b", target)
    tenv = Envelope(target)
    assert tenv.decrypt(before, tenant="acme", context=CTX) == data
    with pytest.raises(DecryptionError):
        tenv.decrypt(after, tenant="acme", context=CTX)
    assert Envelope.inspect(after).key_versions == (("customer", 2),)


def test_incomplete_backups_are_invisible(local_store: KeyStore, tmp_path: Path) -> None:
    """A hidden temp dir or a directory without a manifest is never listed or restored."""
    local_store.create_tenant("acme")
    good = backup(local_store, [tmp_path / "b"])
    (tmp_path / "b" / ".tmp-20990101T000000000000Z-aaaa-xyz").mkdir()
    half = tmp_path / "b" / "20990101T000000000000Z-bbbbbbbb"
    half.mkdir()
    (half / "snapshot.json").write_text("{}")
    dest = DirectoryDestination(tmp_path / "b")
    assert dest.list_backups() == [good.backup_id]
    assert load_backup(tmp_path / "b", local_store.providers).backup_id == good.backup_id


def test_restore_from_one_backup_path(local_store: KeyStore, tmp_path: Path) -> None:
    """FROM may name one backup directory; the wrong explicit id for it is refused."""
    local_store.create_tenant("acme")
    first = backup(local_store, [tmp_path / "b"])
    backup(local_store, [tmp_path / "b"])
    one = tmp_path / "b" / first.backup_id
    assert load_backup(one, local_store.providers).backup_id == first.backup_id
    with pytest.raises(BackupError):
        load_backup(one, local_store.providers, backup_id="20000101T000000000000Z-00000000")
    with pytest.raises(BackupError, match="no complete backup"):
        load_backup(tmp_path / "nothing-here", local_store.providers)

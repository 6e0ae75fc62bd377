"""Scheme registries (issue 20): one seam each for root providers, stores and destinations."""

from __future__ import annotations

from pathlib import Path

import pytest

from styku_crypto.envelope import Envelope
from styku_crypto.exceptions import InvalidInputError, KeyStoreError
from styku_crypto.keys import (
    AwsKmsRootKey,
    BackupDestination,
    DirectoryDestination,
    KeyStore,
    LocalRootKey,
    RootKeyProvider,
    S3Destination,
    SQLiteBackend,
    StoreScheme,
    _schemes,
    register_destination_scheme,
    register_root_scheme,
    register_store_scheme,
)

CTX = {"table": "scans"}


def test_builtin_root_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """local, pkcs11 and aws-kms specs build their providers; a spec never creates a key."""
    made = LocalRootKey(tmp_path / "root.key")
    root = RootKeyProvider.from_spec(f"local:{tmp_path / 'root.key'}")
    assert isinstance(root, LocalRootKey)
    assert root.provider_id == made.provider_id
    with pytest.raises(KeyStoreError):
        RootKeyProvider.from_spec(f"local:{tmp_path / 'typo.key'}")
    assert not (tmp_path / "typo.key").exists()
    kms = RootKeyProvider.from_spec("aws-kms:alias/styku?region=eu-west-1")
    assert isinstance(kms, AwsKmsRootKey)
    kms.close()
    monkeypatch.delenv("STYKU_CRYPTO_PKCS11_PIN", raising=False)
    with pytest.raises(InvalidInputError, match="STYKU_CRYPTO_PKCS11_PIN"):
        RootKeyProvider.from_spec("pkcs11:/usr/lib/softhsm/libsofthsm2.so#token=t&key=k")
    monkeypatch.setenv("STYKU_CRYPTO_PKCS11_PIN", "1234")
    with pytest.raises(InvalidInputError, match="pkcs11:MODULE#token=LABEL"):
        RootKeyProvider.from_spec("pkcs11:/usr/lib/softhsm/libsofthsm2.so#key=k")  # no token


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope:x", "unknown root provider scheme 'nope' (known: aws-kms, local, pkcs11"),
        ("local", "a root spec looks like SCHEME:"),
        ("aws-kms:?region=x", "aws-kms:KEY_ID"),
        ("aws-kms:k?regoin=x", "unknown option(s) regoin"),
    ],
)
def test_bad_root_specs_are_typed_and_name_what_is_known(spec: str, message: str) -> None:
    """A typo'd scheme or option is refused, naming the known ones; nothing is guessed."""
    with pytest.raises(InvalidInputError) as info:
        RootKeyProvider.from_spec(spec)
    assert message in str(info.value)


def test_open_with_root_specs_round_trips(tmp_path: Path) -> None:
    """KeyStore.open(url, roots=[spec, ...]) opens the same store the providers open."""
    key = tmp_path / "root.key"
    LocalRootKey(key)
    with KeyStore.open(f"sqlite:///{tmp_path}/k.db", roots=[f"local:{key}"]) as store:
        store.create_tenant("acme")
        token = Envelope(store).encrypt(b"scan", tenant="acme", context=CTX)
    with KeyStore.open(tmp_path / "k.db", root=LocalRootKey(key, create=False)) as again:
        assert Envelope(again).decrypt(token, tenant="acme", context=CTX) == b"scan"
    with pytest.raises(InvalidInputError, match="root= or roots="):
        KeyStore.open(tmp_path / "k.db", root=LocalRootKey(key), roots=[f"local:{key}"])
    with pytest.raises(InvalidInputError, match="not one string"):
        KeyStore.open(tmp_path / "k.db", roots=f"local:{key}")  # type: ignore[arg-type]


def test_sqlite_urls_follow_sqlalchemy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:///rel is relative, sqlite:////abs absolute, sqlite://x refused."""
    monkeypatch.chdir(tmp_path)
    _, rel = _schemes.store_scheme("sqlite:///rel.db")
    _, absolute = _schemes.store_scheme(f"sqlite:///{tmp_path}/abs.db")
    assert (rel, absolute) == ("rel.db", f"{tmp_path}/abs.db")
    with pytest.raises(InvalidInputError, match="three slashes"):
        _schemes.store_scheme("sqlite://rel.db")
    with pytest.raises(InvalidInputError, match=r"unknown key store scheme 'mysql' \(known: "):
        KeyStore.open("mysql://db/keys", root=LocalRootKey(tmp_path / "r.key"))


def test_custom_root_scheme_is_used_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A registered scheme works in from_spec, KeyStore.open(roots=) and the CLI's --root."""
    from styku_crypto._cli import main

    calls: list[str] = []

    def factory(spec: str) -> RootKeyProvider:
        calls.append(spec)
        return LocalRootKey(Path(spec.partition(":")[2]), create=False)

    key = tmp_path / "vault.key"
    LocalRootKey(key)
    register_root_scheme("test-vault", factory)
    try:
        with pytest.raises(InvalidInputError, match="already registered"):
            register_root_scheme("test-vault", lambda spec: factory(spec))
        with KeyStore.open(tmp_path / "k.db", roots=[f"test-vault:{key}"]) as store:
            store.create_tenant("acme")
        argv = ["keys", "list", "--store", str(tmp_path / "k.db"), "--root", f"test-vault:{key}"]
        assert main(argv) == 0
        assert "acme" in capsys.readouterr().out
        assert calls == [f"test-vault:{key}"] * 2
    finally:
        _schemes._roots.pop("test-vault")
    with pytest.raises(InvalidInputError, match="a scheme is 1-32 lower-case"):
        register_root_scheme("Bad Name", factory)


def test_custom_store_and_destination_schemes(tmp_path: Path) -> None:
    """register_store_scheme / register_destination_scheme are the only places to touch."""
    seen: list[str] = []

    def make(location: str, read_only: bool, create: bool) -> SQLiteBackend:
        seen.append(location)
        return SQLiteBackend(tmp_path / location.partition("://")[2], read_only=read_only)

    register_store_scheme("test-db", StoreScheme(make=make))
    register_destination_scheme("test-dir", lambda url: DirectoryDestination(tmp_path / "b"))
    try:
        root = LocalRootKey(tmp_path / "r.key")
        with pytest.raises(InvalidInputError, match="needs an explicit root provider"):
            KeyStore.open("test-db://one.db")
        with KeyStore.open("test-db://one.db", root=root) as store:
            store.create_tenant("acme")
        assert seen == ["test-db://one.db"]
        dest = BackupDestination.from_url("test-dir://anything")
        assert isinstance(dest, DirectoryDestination)
    finally:
        _schemes._stores.pop("test-db")
        _schemes._destinations.pop("test-dir")


def test_builtin_destinations(tmp_path: Path) -> None:
    """Paths, file:/// and s3:// URLs; an unknown scheme lists the known ones."""
    assert isinstance(BackupDestination.from_url(tmp_path), DirectoryDestination)
    assert isinstance(BackupDestination.from_url(f"file://{tmp_path}"), DirectoryDestination)
    s3 = BackupDestination.from_url("s3://bucket/prefix")
    assert isinstance(s3, S3Destination)
    assert s3.describe() == "s3://bucket/prefix"
    with pytest.raises(InvalidInputError, match=r"known: file, s3"):
        BackupDestination.from_url("gs://bucket")
    with pytest.raises(InvalidInputError, match="s3://bucket"):
        BackupDestination.from_url("s3://")

"""Peppers derived from the key store: rotation, upgrade on login, shredding."""

from __future__ import annotations

from pathlib import Path

import pytest

from styku_crypto.exceptions import KeyDestroyedError, PasswordMismatchError
from styku_crypto.keys import KeyStore
from styku_crypto.passwords import CHEAPEST, PasswordHasher, PepperSet
from tests._support import leaks

PASSWORD = "correct horse battery staple"


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    """A fresh SQLite key store with a local root key."""
    leaks.register_secret(PASSWORD)
    return KeyStore.open(tmp_path / "keys.db")


def _hasher(peppers: PepperSet) -> PasswordHasher:
    return PasswordHasher(profile=CHEAPEST, insecure_test_only=True, pepper=peppers)


def test_first_use_creates_the_pepper_tenant_and_hashes_verify(store: KeyStore) -> None:
    """The reserved tenant is created on first use; its pepper id is recorded in the hash."""
    peppers = PepperSet.from_key_store(store)
    assert peppers.current.id == "ks1"
    with _hasher(peppers) as h:
        stored = h.hash(PASSWORD)
        assert "pepper=ks1" in stored
        assert h.verify(stored, PASSWORD) is True
    # Re-opening derives the very same pepper.
    with _hasher(PepperSet.from_key_store(store)) as h:
        assert h.verify(stored, PASSWORD) is True


def test_rotation_keeps_old_hashes_and_upgrades_them(store: KeyStore) -> None:
    """After store.rotate, old hashes verify and verify_and_update re-peppers them."""
    with _hasher(PepperSet.from_key_store(store)) as h:
        old = h.hash(PASSWORD)
    store.rotate("styku-internal-passwords")
    rotated = PepperSet.from_key_store(store)
    assert rotated.current.id == "ks2"
    assert rotated.get("ks1") is not None
    with _hasher(rotated) as h:
        assert h.needs_rehash(old)
        new = h.verify_and_update(old, PASSWORD)
        assert new is not None
        assert "pepper=ks2" in new
        assert h.verify_and_update(new, PASSWORD) is None
        with pytest.raises(PasswordMismatchError):
            h.verify(new, PASSWORD + "!")


def test_peppers_differ_between_stores(tmp_path: Path) -> None:
    """Two stores (two root keys) give different peppers: a hash from one fails in the other."""
    a = KeyStore.open(tmp_path / "a.db")
    b = KeyStore.open(tmp_path / "b.db")
    with _hasher(PepperSet.from_key_store(a)) as h:
        stored = h.hash(PASSWORD)
    with _hasher(PepperSet.from_key_store(b)) as h, pytest.raises(PasswordMismatchError):
        h.verify(stored, PASSWORD)


def test_shredded_pepper_tenant_is_refused(store: KeyStore) -> None:
    """Shredding the reserved tenant destroys the peppers: loading them raises KeyDestroyedError."""
    PepperSet.from_key_store(store)
    store._shred_reserved("styku-internal-passwords")
    with pytest.raises(KeyDestroyedError):
        PepperSet.from_key_store(store)


def test_repr_names_ids_only(store: KeyStore) -> None:
    """The pepper set's repr shows ids, never derived key material."""
    peppers = PepperSet.from_key_store(store)
    for p in peppers:
        leaks.register_secret(p.export_key())
    leaks.assert_no_secret_in("PepperSet repr", repr(peppers))
    assert "ks1" in repr(peppers)

"""Peppers: HMAC pre-hash, id recorded in the hash, rotation and upgrade."""

from __future__ import annotations

import copy
import hashlib
import hmac
import pickle

import argon2
import pytest

from styku_crypto.exceptions import InvalidHashError, InvalidInputError, PasswordMismatchError
from styku_crypto.passwords import CHEAPEST, PasswordHasher, Pepper, PepperSet
from tests._support import leaks
from tests.passwords.conftest import EventLog, new_password, new_pepper


def _hasher(pepper: Pepper | PepperSet | None) -> PasswordHasher:
    return PasswordHasher(profile=CHEAPEST, insecure_test_only=True, pepper=pepper)


def test_pepper_id_recorded_as_phc_parameter() -> None:
    """A peppered hash is a PHC string with ``pepper=<id>`` after ``p=``."""
    with _hasher(new_pepper("2024-a")) as h:
        stored = h.hash(new_password())
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1,pepper=2024-a$")


def test_peppered_hash_is_argon2_of_hmac() -> None:
    """The Argon2 input is HMAC-SHA256(pepper, NFKC password): checked with argon2-cffi by hand."""
    key = b"k" * 32
    pw = new_password()
    with _hasher(Pepper("p1", key)) as h:
        stored = h.hash(pw)
    plain = stored.replace(",pepper=p1", "")
    mac = hmac.new(key, pw.encode(), hashlib.sha256).digest()
    assert argon2.low_level.verify_secret(plain.encode(), mac, argon2.Type.ID)
    with pytest.raises(argon2.exceptions.VerifyMismatchError):
        argon2.PasswordHasher().verify(plain, pw)


def test_wrong_pepper_key_does_not_verify() -> None:
    """The same id with a different key fails: the pepper really keys the hash."""
    pw = new_password()
    with _hasher(new_pepper("p1")) as a, _hasher(new_pepper("p1")) as b:
        stored = a.hash(pw)
        with pytest.raises(PasswordMismatchError):
            b.verify(stored, pw)


def test_rotation_old_hashes_verify_and_upgrade(events: EventLog) -> None:
    """After rotation, hashes on the old pepper verify, need rehash, and are re-peppered."""
    old, new = new_pepper("p1"), new_pepper("p2")
    pw = new_password()
    with _hasher(old) as before:
        stored = before.hash(pw)
    with _hasher(PepperSet(new, old=[old])) as after:
        assert after.verify(stored, pw)
        assert after.needs_rehash(stored) is True
        updated = after.verify_and_update(stored, pw)
        assert updated is not None
        assert ",pepper=p2$" in updated
        assert after.needs_rehash(updated) is False
        assert events.last("password.rehashed")["reason"] == "pepper"
    with _hasher(new) as retired, pytest.raises(InvalidHashError):
        retired.verify(stored, pw)


def test_unpeppered_hashes_upgrade_to_pepper() -> None:
    """Hashes from before a pepper was introduced verify and are upgraded to the pepper."""
    pw = new_password()
    with _hasher(None) as plain:
        stored = plain.hash(pw)
    with _hasher(new_pepper("p1")) as peppered:
        assert peppered.needs_rehash(stored)
        updated = peppered.verify_and_update(stored, pw)
        assert updated is not None
        assert ",pepper=p1$" in updated


def test_pepper_never_prints_or_pickles() -> None:
    """repr/str show the id only; pickling and copying refuse; bytes() is not offered."""
    key = b"S" * 40
    leaks.register_secret(key)
    pepper = Pepper("p1", key)
    pset = PepperSet(pepper)
    for text in (repr(pepper), str(pepper), repr(pset), str(pset)):
        leaks.assert_no_secret_in("pepper repr", text)
        assert "p1" in text
    for obj in (pepper, pset):
        with pytest.raises(TypeError):
            pickle.dumps(obj)
    with pytest.raises(TypeError):
        copy.copy(pepper)
    with pytest.raises(TypeError):
        bytes(pepper)  # type: ignore[call-overload]
    assert pepper.export_key() == key


def test_pepper_validation() -> None:
    """Short keys, bad ids and duplicate ids in a set are input errors."""
    with pytest.raises(InvalidInputError):
        Pepper("p1", b"short")
    with pytest.raises(InvalidInputError):
        Pepper("bad id", b"k" * 32)
    with pytest.raises(InvalidInputError):
        Pepper("x" * 33, b"k" * 32)
    with pytest.raises(InvalidInputError):
        PepperSet(Pepper("p1", b"a" * 32), old=[Pepper("p1", b"b" * 32)])


def test_generate_and_equality() -> None:
    """generate() makes distinct 32-byte keys; equality compares id and key."""
    a, b = Pepper.generate("p1"), Pepper.generate("p1")
    leaks.register_secret(a.export_key())
    leaks.register_secret(b.export_key())
    assert len(a.export_key()) == 32
    assert a != b
    assert a == Pepper("p1", a.export_key())

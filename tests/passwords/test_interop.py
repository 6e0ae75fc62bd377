"""Interop with the real libraries: argon2-cffi, Django, passlib/libpass, bcrypt."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable

import argon2
import bcrypt
import pytest
from django.conf import settings
from hypothesis import assume, given
from hypothesis import strategies as st

from styku_crypto.exceptions import PasswordMismatchError
from styku_crypto.passwords import PasswordHasher
from tests._support import leaks
from tests.passwords.conftest import EventLog, new_password

if not settings.configured:
    settings.configure(USE_TZ=True)

from django.contrib.auth import hashers as dj
from passlib import hash as passlib_hash


class _CheapDjangoArgon2(dj.Argon2PasswordHasher):
    time_cost = 1
    memory_cost = 64
    parallelism = 2


def _django_argon2(pw: str) -> str:
    return _CheapDjangoArgon2().encode(pw, dj.get_random_string(16))


def _django_bcrypt_sha256(pw: str) -> str:
    return dj.BCryptSHA256PasswordHasher().encode(pw, bcrypt.gensalt(4))


def _django_bcrypt(pw: str) -> str:
    return dj.BCryptPasswordHasher().encode(pw, bcrypt.gensalt(4))


def _django_pbkdf2(pw: str) -> str:
    return dj.PBKDF2PasswordHasher().encode(pw, dj.get_random_string(22), iterations=1000)


def _django_pbkdf2_sha1(pw: str) -> str:
    return dj.PBKDF2SHA1PasswordHasher().encode(pw, dj.get_random_string(22), iterations=1000)


def _django_scrypt(pw: str) -> str:
    return dj.ScryptPasswordHasher().encode(pw, dj.get_random_string(22), n=2**10, r=8, p=1)


LEGACY: dict[str, Callable[[str], str]] = {
    "django_argon2": _django_argon2,
    "django_bcrypt_sha256": _django_bcrypt_sha256,
    "django_bcrypt": _django_bcrypt,
    "django_pbkdf2_sha256": _django_pbkdf2,
    "django_pbkdf2_sha1": _django_pbkdf2_sha1,
    "django_scrypt": _django_scrypt,
    "passlib_pbkdf2_sha256": lambda pw: passlib_hash.pbkdf2_sha256.using(rounds=1000).hash(pw),
    "passlib_pbkdf2_sha512": lambda pw: passlib_hash.pbkdf2_sha512.using(rounds=1000).hash(pw),
    "passlib_pbkdf2_sha1": lambda pw: passlib_hash.pbkdf2_sha1.using(rounds=1000).hash(pw),
    "passlib_sha512_crypt": lambda pw: passlib_hash.sha512_crypt.using(rounds=5000).hash(pw),
    "passlib_sha512_crypt_default_rounds": lambda pw: (
        passlib_hash.sha512_crypt.using(rounds=5000).hash(pw).replace("$rounds=5000", "")
    ),
    "bcrypt_2b": lambda pw: bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode(),
    "bcrypt_2a": lambda pw: bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4, b"2a")).decode(),
    "passlib_bcrypt_2y": lambda pw: passlib_hash.bcrypt.using(rounds=4, ident="2y").hash(pw),
    "argon2_cffi_argon2i": lambda pw: argon2.PasswordHasher(
        time_cost=1, memory_cost=8, parallelism=1, type=argon2.Type.I
    ).hash(pw),
    "argon2_cffi_argon2d": lambda pw: argon2.PasswordHasher(
        time_cost=1, memory_cost=8, parallelism=1, type=argon2.Type.D
    ).hash(pw),
    "argon2_cffi_v10": lambda pw: argon2.low_level.hash_secret(
        pw.encode(), b"saltsaltsalt", 1, 16, 2, 32, argon2.Type.ID, version=0x10
    ).decode(),
}


@pytest.mark.parametrize("name", sorted(LEGACY))
def test_legacy_hash_verifies_and_is_upgraded(
    name: str, hasher: PasswordHasher, events: EventLog
) -> None:
    """Each foreign format verifies, rejects a wrong password, and upgrades to our Argon2id."""
    pw = new_password(name)
    stored = LEGACY[name](pw)
    assert hasher.needs_rehash(stored) is True
    assert hasher.verify(stored, pw) is True
    with pytest.raises(PasswordMismatchError):
        hasher.verify(stored, pw + "!")
    new = hasher.verify_and_update(stored, pw)
    assert new is not None
    assert new.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert hasher.verify(new, pw)
    assert hasher.verify_and_update(new, pw) is None
    assert {"password.upgraded_legacy", "password.rehashed"} & set(events.names())


def test_our_hashes_verify_in_argon2_cffi(hasher: PasswordHasher) -> None:
    """Unpeppered hashes we make verify with argon2-cffi's own PasswordHasher.verify."""
    pw = new_password()
    assert argon2.PasswordHasher().verify(hasher.hash(pw), pw)


def test_argon2_cffi_hashes_verify_here(hasher: PasswordHasher) -> None:
    """Hashes argon2-cffi makes (several parameter sets) verify here, wrong ones do not."""
    pw = new_password()
    for ph in (
        argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
        argon2.PasswordHasher(time_cost=2, memory_cost=256, parallelism=4, hash_len=16),
        argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=2, salt_len=32),
    ):
        stored = ph.hash(pw)
        assert hasher.verify(stored, pw)
        with pytest.raises(PasswordMismatchError):
            hasher.verify(stored, pw[:-1])


def test_passlib_argon2_is_current_when_stronger(hasher: PasswordHasher) -> None:
    """passlib/libpass Argon2id hashes verify and, being stronger than the profile, are kept."""
    pw = new_password()
    stored = passlib_hash.argon2.using(rounds=1, memory_cost=64, parallelism=2).hash(pw)
    assert hasher.verify(stored, pw)
    assert hasher.needs_rehash(stored) is False
    assert hasher.verify_and_update(stored, pw) is None


def test_real_profile_interop_both_ways() -> None:
    """At the OWASP 19 MiB profile, pooled-buffer hashes match argon2-cffi in both directions."""
    from styku_crypto.passwords import OWASP_M19456_T2

    pw = new_password()
    ref = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    with PasswordHasher(profile=OWASP_M19456_T2, max_concurrency=1) as h:
        assert ref.verify(h.hash(pw), pw)
        assert h.verify(ref.hash(pw), pw)
        assert h.verify_and_update(ref.hash(pw), pw) is None


def test_bcrypt_never_verifies_by_prefix(hasher: PasswordHasher) -> None:
    """A >72-byte password never matches a plain bcrypt hash of its first 72 bytes."""
    long_pw = "B" * 72 + new_password()
    leaks.register_secret(long_pw)
    stored = bcrypt.hashpw(long_pw.encode()[:72], bcrypt.gensalt(4)).decode()
    assert hasher.verify(stored, long_pw[:72])
    with pytest.raises(PasswordMismatchError):
        hasher.verify(stored, long_pw)
    with pytest.raises(PasswordMismatchError):
        hasher.verify("bcrypt$" + stored, long_pw)


def test_django_bcrypt_sha256_has_no_72_byte_limit(hasher: PasswordHasher) -> None:
    """Django's bcrypt_sha256 pre-hash lets long passwords verify, and only the exact one."""
    long_pw = "C" * 100 + new_password()
    leaks.register_secret(long_pw)
    stored = _django_bcrypt_sha256(long_pw)
    assert hasher.verify(stored, long_pw)
    with pytest.raises(PasswordMismatchError):
        hasher.verify(stored, long_pw[:-1])


def test_legacy_unicode_password_matches_raw_form(hasher: PasswordHasher) -> None:
    """A legacy hash of a non-NFKC password verifies by its raw UTF-8 and upgrades to NFKC."""
    pw = "ﬁancé-" + new_password()  # the ligature changes under NFKC
    leaks.register_secret(pw)
    stored = _django_pbkdf2(pw)
    assert hasher.verify(stored, pw)
    new = hasher.verify_and_update(stored, pw)
    assert new is not None
    # The new hash is of the normalised form, so both spellings verify.
    assert hasher.verify(new, pw)
    assert hasher.verify(new, "fiancé-" + pw[6:])


def test_argon2_cffi_hash_of_non_normalised_password(hasher: PasswordHasher) -> None:
    """An argon2-cffi hash of a non-NFKC password verifies and is rehashed in normalised form."""
    pw = "Ⅻ-" + new_password()
    leaks.register_secret(pw)
    stored = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(pw)
    new = hasher.verify_and_update(stored, pw)
    assert new is not None
    assert hasher.verify(new, pw)


def test_django_pbkdf2_wire_format_parsed_by_hand(hasher: PasswordHasher) -> None:
    """A hand-built Django pbkdf2_sha256 string (hashlib only) verifies: the format is pinned."""
    pw = new_password()
    digest = hashlib.pbkdf2_hmac("sha256", pw.encode(), b"seasalt", 1200)
    stored = "pbkdf2_sha256$1200$seasalt$" + base64.b64encode(digest).decode()
    assert dj.check_password(pw, stored)
    assert hasher.verify(stored, pw)


@given(
    memory=st.integers(8, 256),
    time_cost=st.integers(1, 3),
    lanes=st.integers(1, 4),
    hash_len=st.integers(4, 64),
    salt_len=st.integers(8, 32),
    variant=st.sampled_from([argon2.Type.ID, argon2.Type.I, argon2.Type.D]),
    version=st.sampled_from([0x13, 0x10]),
)
def test_argon2_parameters_match_argon2_cffi(
    shared_hasher: PasswordHasher,
    memory: int,
    time_cost: int,
    lanes: int,
    hash_len: int,
    salt_len: int,
    variant: argon2.Type,
    version: int,
) -> None:
    """For any valid parameters, variant and version, argon2-cffi's hashes verify here."""
    assume(memory >= 8 * lanes)
    pw = new_password()
    stored = argon2.low_level.hash_secret(
        pw.encode(),
        os.urandom(salt_len),
        time_cost,
        memory,
        lanes,
        hash_len,
        variant,
        version=version,
    ).decode()
    assert shared_hasher.verify(stored, pw)
    with pytest.raises(PasswordMismatchError):
        shared_hasher.verify(stored, pw + "x")

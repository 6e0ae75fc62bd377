"""Core behaviour of PasswordHasher: hash, verify, needs_rehash, verify_and_update, dummy."""

from __future__ import annotations

import base64
import pickle
import re

import argon2
import pytest

from styku_crypto.exceptions import (
    InvalidInputError,
    PasswordMismatchError,
    PasswordPolicyError,
)
from styku_crypto.passwords import (
    CHEAPEST,
    OWASP_M7168_T5,
    OWASP_M19456_T2,
    OWASP_M47104_T1,
    RFC_9106_LOW_MEMORY,
    Argon2Profile,
    PasswordHasher,
    PasswordPolicy,
)
from tests._support import leaks
from tests.passwords.conftest import EventLog, new_password

PHC = re.compile(r"\$argon2id\$v=19\$m=8,t=1,p=1\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})")


def test_hash_is_a_phc_string_with_fresh_salt(hasher: PasswordHasher, password: str) -> None:
    """hash() emits a canonical Argon2id PHC string (16-byte salt, 32-byte tag), fresh salt."""
    first, second = hasher.hash(password), hasher.hash(password)
    m1, m2 = PHC.fullmatch(first), PHC.fullmatch(second)
    assert m1
    assert m2
    assert len(base64.b64decode(m1.group(1) + "==")) == 16
    assert len(base64.b64decode(m1.group(2) + "=")) == 32
    assert m1.group(1) != m2.group(1)


def test_verify_round_trip_and_mismatch(hasher: PasswordHasher, password: str) -> None:
    """verify returns True for the right password and raises PasswordMismatchError otherwise."""
    stored = hasher.hash(password)
    assert hasher.verify(stored, password) is True
    with pytest.raises(PasswordMismatchError) as info:
        hasher.verify(stored, password + "x")
    leaks.assert_no_secret_in("mismatch error", str(info.value) + repr(info.value))


def test_verify_never_returns_false(hasher: PasswordHasher, password: str) -> None:
    """A wrong password raises; there is no falsy return path."""
    stored = hasher.hash(password)
    with pytest.raises(PasswordMismatchError):
        assert hasher.verify(stored, new_password()) is not False


def test_hash_applies_policy_but_verify_does_not(password: str, events: EventLog) -> None:
    """Short passwords are refused by hash() (with an event) but old short ones still verify."""
    with PasswordHasher(profile=CHEAPEST, insecure_test_only=True) as h:
        with pytest.raises(PasswordPolicyError) as info:
            h.hash("short")
        assert info.value.rule == "too_short"  # type: ignore[attr-defined]
        assert events.last("password.policy_rejected")["reason"] == "too_short"
        old = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("short")
        assert h.verify(old, "short") is True


def test_profile_below_owasp_floor_refused_without_test_flag() -> None:
    """CHEAPEST and home-made weak profiles are refused unless insecure_test_only=True."""
    with pytest.raises(InvalidInputError, match="OWASP"):
        PasswordHasher(profile=CHEAPEST)
    weak = Argon2Profile("weak", 7168, 4, 1)
    with pytest.raises(InvalidInputError):
        PasswordHasher(profile=weak)
    for ok in (OWASP_M7168_T5, OWASP_M19456_T2, OWASP_M47104_T1, RFC_9106_LOW_MEMORY):
        PasswordHasher(profile=ok).close()


def test_default_profile_is_rfc_9106_low_memory() -> None:
    """The default profile is RFC 9106 low-memory (argon2-cffi's default parameters)."""
    with PasswordHasher() as h:
        assert h.profile is RFC_9106_LOW_MEMORY
        ref = argon2.PasswordHasher()
        assert (h.profile.memory_cost, h.profile.time_cost, h.profile.parallelism) == (
            ref.memory_cost,
            ref.time_cost,
            ref.parallelism,
        )


def test_invalid_profiles_and_concurrency_rejected() -> None:
    """Impossible profile parameters and a zero concurrency bound are input errors."""
    with pytest.raises(InvalidInputError):
        Argon2Profile("bad", 8, 1, 4)
    with pytest.raises(InvalidInputError):
        Argon2Profile("bad", 64, 0, 1)
    with pytest.raises(InvalidInputError):
        PasswordHasher(profile=CHEAPEST, insecure_test_only=True, max_concurrency=0)
    with pytest.raises(TypeError):
        PasswordHasher(profile="CHEAPEST", insecure_test_only=True)  # type: ignore[arg-type]


def test_needs_rehash_only_upgrades() -> None:
    """needs_rehash is True for weaker hashes and False for stronger ones (never downgrades).

    "Stronger" stays within the cost ceiling (two attempts within 4x the profile's
    verify); a hash beyond it is refused, see tests/passwords/test_ceilings.py.
    """
    with PasswordHasher(profile=OWASP_M19456_T2) as h:
        weaker_memory = argon2.PasswordHasher(time_cost=2, memory_cost=9216, parallelism=1)
        weaker_time = argon2.PasswordHasher(time_cost=1, memory_cost=19456, parallelism=1)
        stronger = argon2.PasswordHasher(time_cost=1, memory_cost=47104, parallelism=1)
        stronger_both = argon2.PasswordHasher(time_cost=1, memory_cost=65536, parallelism=4)
        short_tag = argon2.PasswordHasher(time_cost=1, memory_cost=65536, hash_len=16)
        argon2i = argon2.PasswordHasher(
            time_cost=1, memory_cost=65536, type=argon2.Type.I, parallelism=1
        )
        # needs_rehash only parses: these hashes are made once, cheaply, by faking the tag.
        for ph, expected in (
            (weaker_memory, True),
            (weaker_time, True),
            (stronger, False),
            (stronger_both, False),
            (short_tag, True),
            (argon2i, True),
        ):
            fake = (
                f"$argon2{'i' if ph.type is argon2.Type.I else 'id'}$v=19$m={ph.memory_cost},"
                f"t={ph.time_cost},p={ph.parallelism}$c2FsdHNhbHRzYWx0c2FsdA$"
                + base64.b64encode(b"t" * ph.hash_len).decode().rstrip("=")
            )
            assert h.needs_rehash(fake) is expected, fake
        assert h.needs_rehash("pbkdf2_sha256$1000$abcdefgh$" + base64.b64encode(b"x" * 32).decode())


def test_verify_and_update_returns_none_when_current(hasher: PasswordHasher, password: str) -> None:
    """A current hash verifies without producing a replacement."""
    assert hasher.verify_and_update(hasher.hash(password), password) is None


def test_verify_and_update_rehashes_weaker(password: str, events: EventLog) -> None:
    """A weaker Argon2 hash verifies and is replaced by one under the current profile."""
    old = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=16)
    stored = old.hash(password)
    with PasswordHasher(profile=OWASP_M7168_T5, max_concurrency=1) as h:
        new = h.verify_and_update(stored, password)
        assert new is not None
        assert new.startswith("$argon2id$v=19$m=7168,t=5,p=1$")
        assert h.verify_and_update(new, password) is None
        event = events.last("password.rehashed")
        assert event["reason"] == "weaker_parameters"
        assert event["scheme"] == "argon2id"


def test_verify_and_update_raises_on_mismatch(hasher: PasswordHasher, password: str) -> None:
    """verify_and_update never returns a hash for a wrong password."""
    stored = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(password)
    with pytest.raises(PasswordMismatchError):
        hasher.verify_and_update(stored, new_password())


def test_dummy_verify_always_raises_mismatch(hasher: PasswordHasher, events: EventLog) -> None:
    """dummy_verify raises PasswordMismatchError and reports an unknown user."""
    with pytest.raises(PasswordMismatchError):
        hasher.dummy_verify(new_password())
    assert events.last("password.failed")["reason"] == "unknown_user"


def test_dummy_verify_does_the_same_argon2_work(
    password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dummy_verify runs Argon2 with the same parameters and attempt count as a failed verify."""
    from styku_crypto.passwords import _hasher

    calls: list[tuple[int, int, int, int]] = []
    real = _hasher.argon2_raw

    def spy(data: bytes, **kw: object) -> bytes:
        calls.append((kw["memory_kib"], kw["time_cost"], kw["lanes"], kw["hash_len"]))  # type: ignore[arg-type]
        return real(data, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(_hasher, "argon2_raw", spy)
    with PasswordHasher(profile=CHEAPEST, insecure_test_only=True) as h:
        for candidate in (password, "ﬁ" + password):  # the ligature is not NFKC: two attempts
            stored = h.hash(password)
            calls.clear()
            with pytest.raises(PasswordMismatchError):
                h.verify(stored, candidate + "!")
            real_calls = list(calls)
            calls.clear()
            with pytest.raises(PasswordMismatchError):
                h.dummy_verify(candidate + "!")
            assert calls == real_calls


def test_password_type_and_size_checked_before_work(hasher: PasswordHasher, password: str) -> None:
    """Non-str passwords are TypeErrors; lone surrogates and >4096-byte inputs are policy errors."""
    stored = hasher.hash(password)
    with pytest.raises(TypeError):
        hasher.verify(stored, password.encode())  # type: ignore[arg-type]
    with pytest.raises(PasswordPolicyError):
        hasher.verify(stored, "\ud800" + password)
    with pytest.raises(PasswordPolicyError):
        hasher.verify(stored, "x" * 4097)
    with pytest.raises(PasswordPolicyError):
        hasher.dummy_verify("x" * 4097)


def test_long_passwords_are_not_truncated(password: str) -> None:
    """Two long passwords sharing a 1000-character prefix do not verify against each other."""
    policy = PasswordPolicy(max_length=2000, max_bytes=4096)
    with PasswordHasher(profile=CHEAPEST, insecure_test_only=True, policy=policy) as h:
        long_a = "a" * 1000 + password
        leaks.register_secret(long_a)
        stored = h.hash(long_a)
        with pytest.raises(PasswordMismatchError):
            h.verify(stored, "a" * 1000 + password[::-1])
        assert h.verify(stored, long_a)


def test_events_never_carry_password_or_hash(hasher: PasswordHasher, events: EventLog) -> None:
    """Verified/failed events hold scheme and outcome only, never the password or the hash."""
    pw = new_password()
    stored = hasher.hash(pw)
    leaks.register_secret(stored)
    hasher.verify(stored, pw, actor="alice", source="198.51.100.7")
    with pytest.raises(PasswordMismatchError):
        hasher.verify(stored, pw + "y")
    ok, bad = events.last("password.verified"), events.last("password.failed")
    assert ok["actor"] == "alice"
    assert ok["source"] == "198.51.100.7"
    assert bad["reason"] == "mismatch"
    leaks.assert_no_secret_in("password events", repr(events.events))


def test_repr_and_pickling(peppered: PasswordHasher) -> None:
    """The hasher's repr names profile and pepper id only; it refuses to pickle."""
    text = repr(peppered)
    assert "CHEAPEST" in text
    assert "p1" in text
    leaks.assert_no_secret_in("hasher repr", text)
    with pytest.raises(TypeError):
        pickle.dumps(peppered)


def test_close_is_idempotent_and_trim_unmaps(hasher: PasswordHasher, password: str) -> None:
    """After use, trim() unmaps idle buffers and close() can be called twice."""
    hasher.verify(hasher.hash(password), password)
    assert hasher.trim() >= 1
    hasher.close()
    hasher.close()


def test_without_buffer_reuse_results_are_identical(password: str) -> None:
    """reuse_buffers=False (plain malloc) and the pooled path verify each other's hashes."""
    with (
        PasswordHasher(profile=CHEAPEST, insecure_test_only=True, reuse_buffers=False) as plain,
        PasswordHasher(profile=CHEAPEST, insecure_test_only=True) as pooled,
    ):
        assert pooled.verify(plain.hash(password), password)
        assert plain.verify(pooled.hash(password), password)

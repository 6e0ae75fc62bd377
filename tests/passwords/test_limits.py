"""Stored-hash limits: planted and malformed hashes are refused before any work."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.exceptions import InvalidHashError, InvalidInputError
from styku_crypto.passwords import HashLimits, PasswordHasher
from tests.passwords.conftest import EventLog, new_password

_SALT = "c2FsdHNhbHRzYWx0c2FsdA"
_TAG = base64.b64encode(b"t" * 32).decode().rstrip("=")

PLANTED = {
    "memory_4gib": f"$argon2id$v=19$m=4194304,t=3,p=4${_SALT}${_TAG}",
    "time_1000": f"$argon2id$v=19$m=65536,t=1000,p=4${_SALT}${_TAG}",
    "lanes_255": f"$argon2id$v=19$m=65536,t=3,p=255${_SALT}${_TAG}",
    "all_three": f"$argon2id$v=19$m=4194304,t=1000,p=255${_SALT}${_TAG}",
    "work": f"$argon2id$v=19$m=262144,t=10,p=4${_SALT}${_TAG}",
    "huge_salt": f"$argon2id$v=19$m=64,t=1,p=1${'A' * 200}${_TAG}",
    "huge_tag": f"$argon2id$v=19$m=64,t=1,p=1${_SALT}${'A' * 400}",
    "django_argon2": f"argon2$argon2id$v=19$m=4194304,t=1,p=1${_SALT}${_TAG}",
    "bcrypt_cost_31": "$2b$31$" + "a" * 53,
    "django_bcrypt_cost_20": "bcrypt_sha256$$2b$20$" + "a" * 53,
    "pbkdf2_iterations": "pbkdf2_sha256$999999999$salt$" + base64.b64encode(b"x" * 32).decode(),
    "passlib_pbkdf2": "$pbkdf2-sha256$999999999$c2FsdA$" + "A" * 43,
    "sha512_crypt": "$6$rounds=999999999$salt$" + "a" * 86,
    "scrypt_n": "scrypt$1073741824$salt$8$1$" + base64.b64encode(b"x" * 64).decode(),
    "scrypt_memory": "scrypt$1048576$salt$32$1$" + base64.b64encode(b"x" * 64).decode(),
    "scrypt_p": "scrypt$16384$salt$8$1000$" + base64.b64encode(b"x" * 64).decode(),
    "too_long": "$argon2id$v=19$m=64,t=1,p=1$" + "A" * 5000,
    # Issue 13: CPU bombs inside the structural limits, refused by the cost ceiling.
    "scrypt_cpu": "scrypt$1048576$salt$2$16$" + base64.b64encode(b"x" * 64).decode(),
    "pbkdf2_dklen_128": "pbkdf2_sha256$1000000$salt$" + base64.b64encode(b"x" * 128).decode(),
    "passlib_pbkdf2_sha512_128": "$pbkdf2-sha512$1000000$c2FsdA$"
    + base64.b64encode(b"x" * 128).decode().rstrip("="),
    "bcrypt_cost_14": "$2b$14$" + "a" * 53,
    "sha512_crypt_1m_rounds": "$6$rounds=1000000$salt$" + "a" * 86,
    "argon2_work_within_old_limits": f"$argon2id$v=19$m=262144,t=4,p=1${_SALT}${_TAG}",
}


# The time and allocation of each refusal are measured in a child process: in the
# test process, tracemalloc would also count allocations made meanwhile by other
# tests' background threads (servers, worker pools), which made the bound flaky.
_MEASURE = """
import json, sys, time, tracemalloc
from styku_crypto.exceptions import InvalidHashError
from styku_crypto.passwords import CHEAPEST, PasswordHasher

planted = json.loads(sys.stdin.read())
out = {}
with PasswordHasher(profile=CHEAPEST, insecure_test_only=True, max_concurrency=2) as h:
    for name, stored in planted.items():
        pw = "a planted-hash probe password"
        try:  # warm up regex caches and imports
            h.verify(stored, pw)
        except InvalidHashError:
            pass
        tracemalloc.start()
        best, refused = float("inf"), 0
        for _ in range(5):
            start = time.perf_counter()
            try:
                h.verify(stored, pw)
            except InvalidHashError:
                refused += 1
            best = min(best, time.perf_counter() - start)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out[name] = {"best": best, "peak": peak, "refused": refused, "mapped": h.trim()}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def refusals() -> dict[str, dict[str, float]]:
    """Time, peak allocation and refusal count of every planted hash, from a quiet child."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE],
        input=json.dumps(PLANTED),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, dict[str, float]] = json.loads(proc.stdout)
    return result


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_planted_hash_refused_fast_without_allocation(
    name: str,
    hasher: PasswordHasher,
    events: EventLog,
    refusals: dict[str, dict[str, float]],
) -> None:
    """A hash over a limit raises InvalidHashError in < 1 ms, allocating < 64 KiB, with an event."""
    stored = PLANTED[name]
    measured = refusals[name]
    assert measured["refused"] == 5
    assert measured["best"] < 0.001, f"refusal took {measured['best'] * 1000:.3f} ms"
    assert measured["peak"] < 64 * 1024, f"refusal allocated {measured['peak']} bytes"
    assert measured["mapped"] == 0  # no Argon2 work buffer was ever mapped
    with pytest.raises(InvalidHashError) as info:
        hasher.verify(stored, new_password())
    assert hasher.trim() == 0
    assert events.last("password.hash_refused")["reason"] == "over_limit"
    assert stored not in str(info.value)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plaintext-password",
        "$argon2id$v=19$m=64,t=1,p=1$" + _SALT,
        f"$argon2id$v=18$m=64,t=1,p=1${_SALT}${_TAG}",
        f"$argon2id$v=19$m=064,t=1,p=1${_SALT}${_TAG}",
        f"$argon2id$v=19$m=64,t=0,p=1${_SALT}${_TAG}",
        f"$argon2id$v=19$m=4,t=1,p=1${_SALT}${_TAG}",
        f"$argon2id$v=19$m=64,t=1,p=1${_SALT}=${_TAG}",
        f"$argon2id$v=19$m=64,t=1,p=1${_SALT}${_TAG}\n",
        f"$argon2id$v=19$m=٦٤,t=1,p=1${_SALT}${_TAG}",
        f"$argon2x$v=19$m=64,t=1,p=1${_SALT}${_TAG}",
        f"$argon2id$v=19$m=64,t=1,p=1,pepper=bad_id${_SALT}${_TAG}",
        f"argon2$argon2id$v=19$m=64,t=1,p=1,pepper=p1${_SALT}${_TAG}",
        "$2b$04$tooshort",
        "$2x$04$" + "a" * 53,
        "pbkdf2_sha256$1000$salt$notbase64!",
        "pbkdf2_sha256$1000$salt$" + base64.b64encode(b"x" * 32).decode().rstrip("="),
        "scrypt$1000$salt$8$1$" + base64.b64encode(b"x" * 64).decode(),
        "$6$salt$short",
        "$1$md5crypt$abcdefghijklmnopqrstuv",
        "sha1$$" + "0" * 40,
    ],
)
def test_malformed_hashes_refused(stored: str, hasher: PasswordHasher) -> None:
    """Malformed, non-canonical and unknown formats raise InvalidHashError, never verify."""
    with pytest.raises(InvalidHashError):
        hasher.verify(stored, new_password())
    with pytest.raises(InvalidHashError):
        hasher.needs_rehash(stored)


def test_unknown_pepper_id_refused(hasher: PasswordHasher, events: EventLog) -> None:
    """A hash naming a pepper this hasher does not have is refused as invalid, not a mismatch."""
    stored = f"$argon2id$v=19$m=8,t=1,p=1,pepper=p9${_SALT}${_TAG}"
    with pytest.raises(InvalidHashError, match="p9"):
        hasher.verify(stored, new_password())
    assert events.last("password.hash_refused")["reason"] == "unknown_pepper"


def test_limits_follow_a_larger_profile() -> None:
    """A hasher whose profile exceeds the default ceilings raises them to admit its own hashes."""
    from styku_crypto.passwords import RFC_9106_HIGH_MEMORY

    h = PasswordHasher(profile=RFC_9106_HIGH_MEMORY)
    assert h.limits.argon2_max_memory_kib >= RFC_9106_HIGH_MEMORY.memory_cost
    h.close()


def test_custom_limits_tighter(hasher: PasswordHasher) -> None:
    """Configured ceilings are honoured: a hash within defaults is refused under tighter limits."""
    import argon2

    pw = new_password()
    stored = argon2.PasswordHasher(time_cost=4, memory_cost=64, parallelism=1).hash(pw)
    assert hasher.verify(stored, pw)
    from styku_crypto.passwords import CHEAPEST

    with (
        PasswordHasher(
            profile=CHEAPEST, insecure_test_only=True, limits=HashLimits(argon2_max_time_cost=3)
        ) as tight,
        pytest.raises(InvalidHashError),
    ):
        tight.verify(stored, pw)


def test_invalid_limits_rejected() -> None:
    """Non-positive limits are input errors."""
    with pytest.raises(InvalidInputError):
        HashLimits(bcrypt_max_cost=0)


@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(shared_hasher: PasswordHasher, stored: str) -> None:
    """Any string as a stored hash yields InvalidHashError or a mismatch, never another error."""
    try:
        shared_hasher.verify(stored, "fuzz-password-123456")
    except InvalidHashError:
        pass
    except Exception as exc:  # pragma: no cover - the failure case
        pytest.fail(f"unexpected {type(exc).__name__}")
    else:  # pragma: no cover - the failure case
        pytest.fail("arbitrary text verified")


@given(
    st.sampled_from(["$argon2id$v=19$m=", "pbkdf2_sha256$", "$2b$", "$6$", "scrypt$", "$pbkdf2"]),
    st.text(alphabet="0123456789$=,tmpv.+/abcABC", max_size=120),
)
def test_near_miss_formats_never_crash(
    shared_hasher: PasswordHasher, prefix: str, rest: str
) -> None:
    """Strings that look almost like a known format fail closed with typed errors."""
    from styku_crypto.exceptions import PasswordMismatchError

    with contextlib.suppress(InvalidHashError, PasswordMismatchError):
        shared_hasher.verify(prefix + rest, "fuzz-password-123456")

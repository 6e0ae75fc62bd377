"""Issue 13: one bounded cost for every stored format, whatever its parameters.

The property tests replace each primitive (Argon2, PBKDF2, scrypt, bcrypt,
SHA-512-crypt) with a spy that records the work units its *arguments* ask for
and returns a dummy tag, so the cost a verify would incur is measured from what
actually reaches the primitive, not from the parser's own estimate, and
without spending it. Refusal time and allocation are measured in a quiet child
process, as in test_limits.py.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from styku_crypto.exceptions import InvalidHashError, PasswordMismatchError
from styku_crypto.passwords import (
    CHEAPEST,
    RFC_9106_LOW_MEMORY,
    HashLimits,
    PasswordHasher,
    Pepper,
    _formats,
    _hasher,
)
from styku_crypto.passwords._argon2 import threads_for
from styku_crypto.passwords._cost import UNIT_NS, Ceiling, sha512_crypt_units_per_round

_DIGEST = {"sha1": 20, "sha256": 32, "sha512": 64}
_PEPPER = Pepper("p1", b"k" * 32)


class Meter:
    """Work units requested from the primitives, as estimated wall nanoseconds."""

    def __init__(self, profile_threads: int) -> None:
        self.nanoseconds = 0.0
        self.calls = 0
        self._profile_threads = profile_threads

    def add(self, unit: str, units: int, threads: int = 1) -> None:
        self.calls += 1
        threads = min(threads, self._profile_threads)
        self.nanoseconds += units * UNIT_NS[unit] / threads


@contextlib.contextmanager
def metered(profile_threads: int) -> Iterator[Meter]:
    """Replace every primitive with a spy feeding a Meter (no real work is done)."""
    meter = Meter(profile_threads)

    def argon2_raw(data: bytes, **kw: Any) -> bytes:
        units = kw["memory_kib"] * (4 * kw["time_cost"] - 1)
        meter.add("argon2", units, threads_for(kw["lanes"]))
        return bytes(kw["hash_len"])

    def pbkdf2_hmac(digest: str, pw: bytes, salt: bytes, iterations: int, dklen: int) -> bytes:
        blocks = -(-dklen // _DIGEST[digest])
        meter.add(f"pbkdf2_{digest}", iterations * blocks)
        return bytes(dklen)

    def scrypt(pw: bytes, *, salt: bytes, n: int, r: int, p: int, maxmem: int, dklen: int) -> bytes:
        meter.add("scrypt", n * r * p)
        return bytes(dklen)

    def sha512_crypt_digest(pw: bytes, salt: bytes, rounds: int) -> str:
        meter.add("sha512_crypt", rounds * sha512_crypt_units_per_round(len(pw)))
        return "." * 86

    def hashpw(pw: bytes, salt: bytes) -> bytes:
        meter.add("bcrypt", 2 ** int(salt[4:6]))
        return salt[:29] + b"." * 31

    import hashlib

    fake_hashlib = types.SimpleNamespace(
        pbkdf2_hmac=pbkdf2_hmac, scrypt=scrypt, sha256=hashlib.sha256
    )
    fake_bcrypt = types.SimpleNamespace(hashpw=hashpw)
    with (
        mock.patch.object(_hasher, "argon2_raw", argon2_raw),
        mock.patch.object(_formats, "hashlib", fake_hashlib),
        mock.patch.object(_formats, "sha512_crypt_digest", sha512_crypt_digest),
        mock.patch.object(_hasher, "require", return_value=fake_bcrypt),
    ):
        yield meter


# ---------------------------------------------------------------- parameter space


def _b64(n: int, *, padded: bool = False) -> str:
    text = base64.b64encode(b"\x07" * n).decode()
    return text if padded else text.rstrip("=")


def argon2_hash(m: int, t: int, p: int, *, peppered: bool, variant: str = "argon2id") -> str:
    pepper = ",pepper=p1" if peppered else ""
    return f"${variant}$v=19$m={m},t={t},p={p}{pepper}${_b64(16)}${_b64(32)}"


def scrypt_hash(log_n: int, r: int, p: int, dklen: int) -> str:
    return f"scrypt${2**log_n}$salt${r}${p}${_b64(dklen, padded=True)}"


def django_pbkdf2_hash(digest: str, iterations: int, dklen: int) -> str:
    return f"pbkdf2_{digest}${iterations}$salt${_b64(dklen, padded=True)}"


def passlib_pbkdf2_hash(digest: str, iterations: int, dklen: int) -> str:
    name = {"sha1": "pbkdf2", "sha256": "pbkdf2-sha256", "sha512": "pbkdf2-sha512"}[digest]
    return f"${name}${iterations}${_b64(8)}${_b64(dklen)}"


def bcrypt_hash(cost: int) -> str:
    return f"$2b${cost:02d}$" + "a" * 53


def sha512_crypt_hash(rounds: int | None) -> str:
    middle = "" if rounds is None else f"rounds={rounds}$"
    return f"$6${middle}saltsalt$" + "a" * 86


_BIG = st.integers(min_value=1, max_value=9_999_999_999)
_COST = st.integers(min_value=1, max_value=2**22) | _BIG
FORMATS: st.SearchStrategy[str] = st.one_of(
    st.builds(
        argon2_hash,
        _COST,
        st.integers(1, 64) | _BIG,
        st.integers(1, 300),
        peppered=st.booleans(),
        variant=st.sampled_from(["argon2id", "argon2i", "argon2d"]),
    ),
    st.builds(
        scrypt_hash,
        st.integers(1, 40),
        st.integers(1, 80),
        st.integers(1, 80),
        st.integers(4, 128),
    ),
    st.builds(django_pbkdf2_hash, st.sampled_from(["sha1", "sha256"]), _COST, st.integers(4, 128)),
    st.builds(
        passlib_pbkdf2_hash,
        st.sampled_from(["sha1", "sha256", "sha512"]),
        _COST,
        st.integers(4, 128),
    ),
    st.builds(bcrypt_hash, st.integers(0, 99)),
    st.builds(sha512_crypt_hash, st.none() | st.integers(0, 2**24) | _BIG),
)
PASSWORDS = st.sampled_from(
    [
        "an ordinary ascii password",
        "ﬁancé ligature password",  # NFKC changes it: two forms
        "x" * 1024,  # the policy's byte cap: SHA-512-crypt's costliest length
        "ﬀ" * 341,  # 1023 bytes typed, 682 after NFKC
    ]
)


def _wrapped(hasher: PasswordHasher, stored: str) -> str:
    try:
        return hasher.pepper_wrap(stored)
    except InvalidHashError:
        return stored


@pytest.fixture(scope="module")
def default_hasher() -> Iterator[PasswordHasher]:
    """The default profile with a pepper (nothing is hashed: primitives are spied on)."""
    with PasswordHasher(profile=RFC_9106_LOW_MEMORY, pepper=_PEPPER, max_concurrency=1) as h:
        yield h


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stored=FORMATS, password=PASSWORDS, wrap=st.booleans())
def test_any_parameters_refused_without_work_or_bounded_by_the_ceiling(
    default_hasher: PasswordHasher, stored: str, password: str, wrap: bool
) -> None:
    """Whatever the parameters: refused with no primitive call, or the work asked of the
    primitives (including a second Unicode form and padding) stays within the ceiling."""
    if wrap:
        stored = _wrapped(default_hasher, stored)
    ceiling = Ceiling(RFC_9106_LOW_MEMORY, default_hasher.limits.work_budget)
    refusal: str | None = None
    with metered(threads_for(RFC_9106_LOW_MEMORY.parallelism)) as meter:
        try:
            default_hasher.verify(stored, password)
        except InvalidHashError as exc:
            refusal = str(exc)
        except PasswordMismatchError:
            pass
    if refusal is not None:
        assert meter.calls == 0, "refused after doing work"
        assert stored not in refusal
        assert "refused" in refusal
        return
    assert meter.calls >= 1
    assert meter.nanoseconds <= ceiling.nanoseconds, (
        f"{meter.nanoseconds / ceiling.profile_nanoseconds:.2f}x the profile's verify"
    )


@pytest.mark.parametrize(
    ("stored", "parameter"),
    [
        (scrypt_hash(20, 2, 16, 64), "scrypt N x r x p"),
        (django_pbkdf2_hash("sha256", 1_000_000, 128), "PBKDF2 iterations x blocks"),
        (bcrypt_hash(14), "bcrypt 2^cost"),
        (sha512_crypt_hash(1_000_000), "SHA-512-crypt rounds"),
        (argon2_hash(262144, 4, 1, peppered=False), "Argon2 m x (4t - 1)"),
    ],
)
def test_refusal_names_parameter_and_limit_never_the_hash(
    default_hasher: PasswordHasher, stored: str, parameter: str
) -> None:
    """The issue's CPU bombs are refused naming the parameter and the ceiling, not the hash."""
    with pytest.raises(InvalidHashError) as info:
        default_hasher.verify(stored, "an ordinary ascii password")
    message = str(info.value)
    assert parameter in message
    assert "ceiling" in message
    assert "work_budget" in message
    assert stored not in message
    assert stored.split("$")[-1] not in message


def test_ceiling_follows_the_profile_and_the_budget() -> None:
    """The same hash is refused under a cheap profile and accepted under a costlier one or a
    larger budget: ceilings derive from the configured profile's own cost."""
    from styku_crypto.passwords import OWASP_M7168_T5

    stored = django_pbkdf2_hash("sha256", 300_000, 32)  # about 0.1 s
    with PasswordHasher(profile=OWASP_M7168_T5) as cheap, pytest.raises(InvalidHashError):
        cheap.needs_rehash(stored)
    with PasswordHasher(profile=RFC_9106_LOW_MEMORY) as default:
        assert default.needs_rehash(stored) is True
    with PasswordHasher(profile=OWASP_M7168_T5, limits=HashLimits(work_budget=16)) as migrating:
        assert migrating.needs_rehash(stored) is True


def test_profile_own_hashes_always_fit() -> None:
    """Every built-in profile's own hashes, tried in both Unicode forms, fit its ceiling."""
    from styku_crypto.passwords import profiles

    for name in profiles.__all__:
        profile = getattr(profiles, name)
        if not isinstance(profile, profiles.Argon2Profile) or profile is CHEAPEST:
            continue
        with PasswordHasher(profile=profile, max_concurrency=1) as h:
            stored = argon2_hash(
                profile.memory_cost, profile.time_cost, profile.parallelism, peppered=False
            )
            assert h.needs_rehash(stored) is False


def test_work_budget_below_two_is_refused() -> None:
    """A budget under 2 would refuse the profile's own hash tried in both forms."""
    from styku_crypto.exceptions import InvalidInputError

    with pytest.raises(InvalidInputError, match="work_budget"):
        HashLimits(work_budget=1.5)


# ------------------------------------------------------------ refusal cost, measured

_MEASURE = """
import json, sys, time, tracemalloc
from styku_crypto.exceptions import InvalidHashError
from styku_crypto.passwords import PasswordHasher, Pepper

planted = json.loads(sys.stdin.read())
worst_time, worst_peak, refused = 0.0, 0, 0
with PasswordHasher(pepper=Pepper("p1", b"k" * 32), max_concurrency=1) as h:
    pw = "x" * 1024
    for stored in planted:
        try:
            h.verify(stored, pw)
        except InvalidHashError:
            pass
    for stored in planted:
        best = float("inf")
        tracemalloc.start()
        for _ in range(3):
            start = time.perf_counter()
            try:
                h.verify(stored, pw)
            except InvalidHashError:
                refused += 1
            best = min(best, time.perf_counter() - start)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        worst_time, worst_peak = max(worst_time, best), max(worst_peak, peak)
    mapped = h.trim()
print(json.dumps({"worst": worst_time, "peak": worst_peak, "refused": refused, "mapped": mapped}))
"""


def _random_refused(count: int) -> list[str]:
    """A seeded sample of over-ceiling hashes from every format's parameter space."""
    rng = random.Random(13)
    builders: list[Callable[[], str]] = [
        lambda: argon2_hash(
            rng.randint(2**17, 2**22), rng.randint(4, 1000), rng.randint(1, 16), peppered=False
        ),
        lambda: scrypt_hash(rng.randint(16, 20), rng.randint(2, 8), rng.randint(4, 16), 64),
        lambda: django_pbkdf2_hash(
            rng.choice(["sha1", "sha256"]), rng.randint(10**6, 2 * 10**6), rng.randint(4, 128)
        ),
        lambda: passlib_pbkdf2_hash("sha512", rng.randint(10**6, 2 * 10**6), 128),
        lambda: bcrypt_hash(rng.randint(12, 31)),
        lambda: sha512_crypt_hash(rng.randint(10**5, 10**9)),
    ]
    out: list[str] = []
    with PasswordHasher(pepper=_PEPPER, max_concurrency=1) as h:
        while len(out) < count:
            stored = rng.choice(builders)()
            if rng.random() < 0.3:
                stored = _wrapped(h, stored)
            try:
                h.needs_rehash(stored)
            except InvalidHashError:
                out.append(stored)
    return out


def test_random_planted_hashes_refused_under_1ms_and_64kib() -> None:
    """300 random over-ceiling hashes of every format: each refused in < 1 ms (best of 3),
    allocating < 64 KiB, with no Argon2 buffer ever mapped (quiet child process)."""
    planted = _random_refused(300)
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE],
        input=json.dumps(planted),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["refused"] == 3 * len(planted)
    assert result["worst"] < 0.001, f"slowest refusal {result['worst'] * 1000:.3f} ms"
    assert result["peak"] < 64 * 1024
    assert result["mapped"] == 0

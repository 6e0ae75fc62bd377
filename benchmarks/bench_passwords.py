"""pytest-benchmark: password hashing against raw argon2-cffi and peers.

Run with ``pytest benchmarks/bench_passwords.py --benchmark-only``; the ratio
summary against the issue's targets is ``benchmarks/compare_passwords.py``.
"""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import Iterator

import argon2
import pytest

from styku_crypto.exceptions import PasswordMismatchError
from styku_crypto.passwords import (
    OWASP_M19456_T2,
    OWASP_M47104_T1,
    RFC_9106_LOW_MEMORY,
    Argon2Profile,
    PasswordHasher,
)

PASSWORD = "benchmark-password-0123456789"
PROFILES = [OWASP_M19456_T2, OWASP_M47104_T1, RFC_9106_LOW_MEMORY]

logging.getLogger("styku_crypto").addHandler(logging.NullHandler())


def _raw(profile: Argon2Profile) -> argon2.PasswordHasher:
    return argon2.PasswordHasher(
        time_cost=profile.time_cost,
        memory_cost=profile.memory_cost,
        parallelism=profile.parallelism,
    )


@pytest.fixture(params=PROFILES, ids=[p.name for p in PROFILES])
def profile(request: pytest.FixtureRequest) -> Argon2Profile:
    """Each benchmarked profile."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def ours(profile: Argon2Profile) -> Iterator[PasswordHasher]:
    """Our hasher for the profile."""
    with PasswordHasher(profile=profile, max_concurrency=1) as h:
        yield h


def test_hash_raw(benchmark, profile: Argon2Profile) -> None:  # type: ignore[no-untyped-def]
    """Raw argon2-cffi hash."""
    raw = _raw(profile)
    benchmark(raw.hash, PASSWORD)


def test_hash_ours(benchmark, ours: PasswordHasher) -> None:  # type: ignore[no-untyped-def]
    """PasswordHasher.hash (policy, NFKC, pooled buffers)."""
    benchmark(ours.hash, PASSWORD)


def test_verify_raw(benchmark, profile: Argon2Profile) -> None:  # type: ignore[no-untyped-def]
    """Raw argon2-cffi verify."""
    raw = _raw(profile)
    stored = raw.hash(PASSWORD)
    benchmark(raw.verify, stored, PASSWORD)


def test_verify_ours(benchmark, profile: Argon2Profile, ours: PasswordHasher) -> None:  # type: ignore[no-untyped-def]
    """PasswordHasher.verify of an argon2-cffi hash (limits checked, pooled buffers)."""
    stored = _raw(profile).hash(PASSWORD)
    benchmark(ours.verify, stored, PASSWORD)


def test_dummy_verify(benchmark, ours: PasswordHasher) -> None:  # type: ignore[no-untyped-def]
    """dummy_verify for an unknown user (should cost what a failed verify costs)."""

    def run() -> None:
        with contextlib.suppress(PasswordMismatchError):
            ours.dummy_verify(PASSWORD)

    benchmark(run)


def test_failed_verify(benchmark, profile: Argon2Profile, ours: PasswordHasher) -> None:  # type: ignore[no-untyped-def]
    """A failed real verify, to compare with dummy_verify."""
    stored = ours.hash(PASSWORD)

    def run() -> None:
        with contextlib.suppress(PasswordMismatchError):
            ours.verify(stored, PASSWORD + "x")

    benchmark(run)


def test_planted_hash_refusal(benchmark, ours: PasswordHasher) -> None:  # type: ignore[no-untyped-def]
    """Refusing a planted m=4 GiB, t=1000, p=255 hash (no hashing work at all)."""
    from styku_crypto.exceptions import InvalidHashError

    planted = "$argon2id$v=19$m=4194304,t=1000,p=255$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43

    def run() -> None:
        with contextlib.suppress(InvalidHashError):
            ours.verify(planted, PASSWORD)

    benchmark(run)


@pytest.mark.parametrize(
    "planted",
    [
        "scrypt$1048576$salt$2$16$" + base64.b64encode(bytes(64)).decode(),
        "pbkdf2_sha256$1000000$salt$" + base64.b64encode(bytes(128)).decode(),
        "$6$rounds=1000000$salt$" + "a" * 86,
    ],
    ids=["scrypt-cpu", "pbkdf2-dklen-128", "sha512-crypt-1m"],
)
def test_cpu_bomb_refusal(benchmark, planted: str) -> None:  # type: ignore[no-untyped-def]
    """Refusing a CPU bomb inside the structural limits by the cost ceiling (issue 13)."""
    from styku_crypto.exceptions import InvalidHashError

    with PasswordHasher(max_concurrency=1) as h:

        def run() -> None:
            with contextlib.suppress(InvalidHashError):
                h.verify(planted, PASSWORD)

        benchmark(run)


def test_failed_login_pre_pepper(benchmark, ours: PasswordHasher, profile: Argon2Profile) -> None:  # type: ignore[no-untyped-def]
    """A failed verify of a hash from before the pepper, on a peppered hasher (issue 13:
    should cost what dummy_verify and a failed verify cost)."""
    from styku_crypto.passwords import Pepper, PepperSet

    legacy = ours.hash(PASSWORD)
    with PasswordHasher(
        profile=profile, max_concurrency=1, pepper=PepperSet(Pepper.generate("b"))
    ) as peppered:

        def run() -> None:
            with contextlib.suppress(PasswordMismatchError):
                peppered.verify(legacy, PASSWORD + "x")

        benchmark(run)

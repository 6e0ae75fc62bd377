"""One work unit per stored-hash format, and a ceiling derived from the profile's own cost.

Security property: no stored hash, whatever parameters it carries, makes one
verify cost more than ``HashLimits.work_budget`` times a verify of the
configured profile on this host (4x by default). The cost is computed from the
*parsed* parameters (and, for SHA-512-crypt, the candidate's length) before any
allocation or hashing, so a planted CPU bomb is refused in microseconds.

Each format has one work unit, and a table gives what one unit costs on one
core (measured on the reference host, see ``docs/passwords.md``):

==============  ===============================================  ==========
format          work unit                                        ns / unit
==============  ===============================================  ==========
Argon2          ``m x (4t - 1)``: KiB x quarter-passes, since      155
                passes after the first cost about a third more
                (they read and XOR the old block); ``p`` splits
                ``m`` into lanes, it adds threads, not work
scrypt          ``N x r x p``                                    445
PBKDF2          iterations x output blocks                       400-840
                (``ceil(dklen / digest size)``)
bcrypt          ``2^cost``                                       80,000
SHA-512-crypt   rounds x (5 + password bytes // 64)              290
==============  ===============================================  ==========

Estimated wall time is ``attempts x units x ns / threads``; only Argon2 runs
threads (one per lane, at most the CPUs), and a stored hash is never credited
with more threads than the profile itself uses, so a hash with many lanes
cannot buy a larger budget on a busy host. The profile's own cost is taken at
no less than OWASP's floor profile, so a test-only profile such as
``CHEAPEST`` does not make every legacy hash unverifiable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from styku_crypto.passwords._argon2 import threads_for
from styku_crypto.passwords._formats import Argon2Hash, LegacyHash
from styku_crypto.passwords.profiles import OWASP_M7168_T5, Argon2Profile

__all__ = [
    "UNIT_NS",
    "Ceiling",
    "Work",
    "argon2_units",
    "sha512_crypt_units_per_round",
    "work_of",
]

#: Nanoseconds one work unit takes on one core of the reference host (2-core
#: x86-64 with SHA extensions, OpenSSL 3, CPython 3.11); legacy formats are
#: over-estimated by 20% against Argon2.
UNIT_NS: dict[str, float] = {
    "argon2": 155.0,
    # Legacy formats: the measured median plus 20%, so that noise and hosts a
    # little slower at SHA than the reference stay inside the budget.
    "scrypt": 445.0,
    "pbkdf2_sha1": 410.0,
    "pbkdf2_sha256": 400.0,
    "pbkdf2_sha512": 840.0,
    "bcrypt": 80_000.0,
    "sha512_crypt": 290.0,
}

_PARAMETER = {
    "argon2": "Argon2 m x (4t - 1)",
    "scrypt": "scrypt N x r x p",
    "pbkdf2_sha1": "PBKDF2 iterations x blocks",
    "pbkdf2_sha256": "PBKDF2 iterations x blocks",
    "pbkdf2_sha512": "PBKDF2 iterations x blocks",
    "bcrypt": "bcrypt 2^cost",
    "sha512_crypt": "SHA-512-crypt rounds x (5 + password bytes // 64)",
}
_DIGEST_SIZE = {"sha1": 20, "sha256": 32, "sha512": 64}


def argon2_units(memory_kib: int, time_cost: int) -> int:
    """Work units of one Argon2 run: ``m x (4t - 1)``.

    Measured: the first pass costs about 3/4 of each later one (later passes
    read the block they overwrite and XOR into it), so ``m x t`` would
    under-count a many-pass hash against a few-pass profile.
    """
    return memory_kib * (4 * time_cost - 1)


def sha512_crypt_units_per_round(password_len: int) -> int:
    """Work units of one SHA-512-crypt round for a password of *password_len* bytes.

    Each round hashes the password twice (about ``2 x len / 128`` SHA-512
    blocks) plus a fixed interpreter overhead worth about five units.
    """
    return 5 + password_len // 64


@dataclass(frozen=True, slots=True)
class Work:
    """The cost of one verify attempt: *units* of *unit*, run on *threads* threads."""

    unit: str
    units: int
    threads: int = 1

    @property
    def parameter(self) -> str:
        """What the units count, for messages."""
        return _PARAMETER[self.unit]

    def nanoseconds(self, attempts: int = 1) -> float:
        """Estimated wall time of *attempts* attempts on the reference host."""
        return attempts * self.units * UNIT_NS[self.unit] / self.threads


def work_of(parsed: Argon2Hash | LegacyHash, *, password_len: int = 0) -> Work:
    """The work of one verify attempt of *parsed* with a *password_len*-byte candidate."""
    if isinstance(parsed, Argon2Hash):
        return Work(
            "argon2", argon2_units(parsed.memory_kib, parsed.time_cost), threads_for(parsed.lanes)
        )
    scheme = parsed.scheme
    if scheme == "django_scrypt":
        return Work("scrypt", parsed.n * parsed.r * parsed.p)
    if scheme == "sha512_crypt":
        return Work("sha512_crypt", parsed.iterations * sha512_crypt_units_per_round(password_len))
    if parsed.digest:  # every PBKDF2 variant
        blocks = math.ceil(len(parsed.tag) / _DIGEST_SIZE[parsed.digest])
        return Work(f"pbkdf2_{parsed.digest}", parsed.iterations * blocks)
    return Work("bcrypt", 2**parsed.iterations)  # bcrypt: iterations holds the cost


class Ceiling:
    """The most work one verify may cost: ``budget x`` the profile's own verify.

    Args:
        profile: the configured profile (taken at no less than OWASP's floor).
        budget: the multiple of the profile's verify time allowed.
    """

    __slots__ = ("_profile_threads", "budget", "nanoseconds", "profile_nanoseconds")

    def __init__(self, profile: Argon2Profile, budget: float) -> None:
        floor = OWASP_M7168_T5
        self._profile_threads = threads_for(profile.parallelism)
        own = Work(
            "argon2", argon2_units(profile.memory_cost, profile.time_cost), self._profile_threads
        )
        floor_work = Work("argon2", argon2_units(floor.memory_cost, floor.time_cost), 1)
        self.profile_nanoseconds = max(own.nanoseconds(), floor_work.nanoseconds())
        self.budget = budget
        self.nanoseconds = budget * self.profile_nanoseconds

    def credited(self, work: Work) -> Work:
        """*work* with its threads capped at the profile's (never a larger budget)."""
        threads = min(work.threads, self._profile_threads)
        return work if threads == work.threads else Work(work.unit, work.units, threads)

    def max_units(self, unit: str, *, threads: int = 1, attempts: int = 1) -> int:
        """The most units of *unit* one verify of *attempts* attempts may cost."""
        threads = min(threads, self._profile_threads)
        return int(self.nanoseconds * threads / (UNIT_NS[unit] * attempts))

    def refusal(self, work: Work, *, attempts: int = 1) -> str | None:
        """None when *work* fits, else a message naming the parameter and the limit.

        The message carries numbers only, never the stored hash.
        """
        work = self.credited(work)
        if work.nanoseconds(attempts) <= self.nanoseconds:
            return None
        limit = self.max_units(work.unit, threads=work.threads, attempts=attempts)
        per = f" per attempt ({attempts} attempts)" if attempts > 1 else ""
        return (
            f"{work.parameter} = {work.units} is above the ceiling {limit}{per} "
            f"({self.budget:g}x the profile's verify; HashLimits.work_budget)"
        )

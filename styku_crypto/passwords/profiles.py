"""Frozen Argon2id parameter profiles.

Every profile is Argon2id, version 0x13, with a 16-byte random salt and a
32-byte tag. Memory is in KiB, as in the PHC string's ``m=`` parameter.

Which to choose:

* :data:`RFC_9106_LOW_MEMORY` (the default): RFC 9106 section 4's second
  recommended option, m=64 MiB, t=3, p=4. It is also argon2-cffi's, pwdlib's and
  Django-on-argon2-cffi's default, so hashes those libraries already stored are
  current and are not rehashed on every login.
* :data:`RFC_9106_HIGH_MEMORY`: RFC 9106's first recommendation, m=2 GiB, t=1,
  p=4. Only for hosts that can spare 2 GiB per concurrent login.
* ``OWASP_*``: the five equivalent Argon2id options of the OWASP Password
  Storage Cheat Sheet (all p=1). They are the floor below which
  :class:`~styku_crypto.passwords.PasswordHasher` refuses to create hashes.
* :data:`CHEAPEST`: for tests only. A hasher refuses it unless built with
  ``insecure_test_only=True``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CHEAPEST",
    "OWASP_M7168_T5",
    "OWASP_M9216_T4",
    "OWASP_M12288_T3",
    "OWASP_M19456_T2",
    "OWASP_M47104_T1",
    "RFC_9106_HIGH_MEMORY",
    "RFC_9106_LOW_MEMORY",
    "Argon2Profile",
    "by_name",
    "meets_owasp_floor",
]

# OWASP's weakest option (m=7 MiB, t=5) defines the floor: at least that much
# memory and at least that much memory x passes.
_FLOOR_MEMORY_KIB = 7168
_FLOOR_WORK = 7168 * 5
_FLOOR_SALT_LEN = 16
_FLOOR_HASH_LEN = 16


@dataclass(frozen=True, slots=True)
class Argon2Profile:
    """Argon2id parameters, immutable.

    Attributes:
        name: a label for logs and the calibrate command (not stored in hashes).
        memory_cost: memory in KiB (``m``).
        time_cost: passes over memory (``t``).
        parallelism: lanes and threads (``p``).
        hash_len: tag length in bytes.
        salt_len: random salt length in bytes.
    """

    name: str
    memory_cost: int
    time_cost: int
    parallelism: int
    hash_len: int = 32
    salt_len: int = 16

    def __post_init__(self) -> None:
        from styku_crypto.exceptions import InvalidInputError

        checks = (
            (1 <= self.parallelism <= 255, "parallelism must be 1..255"),
            (self.memory_cost >= 8 * self.parallelism, "memory_cost must be >= 8 x parallelism"),
            (self.memory_cost <= 2**32 - 1, "memory_cost too large"),
            (1 <= self.time_cost <= 2**32 - 1, "time_cost must be >= 1"),
            (4 <= self.hash_len <= 1024, "hash_len must be 4..1024"),
            (8 <= self.salt_len <= 1024, "salt_len must be 8..1024"),
        )
        for ok, message in checks:
            if not ok:
                raise InvalidInputError(f"invalid Argon2 profile {self.name!r}: {message}")

    @property
    def memory_bytes(self) -> int:
        """Working memory of one hash, in bytes."""
        return self.memory_cost * 1024


def meets_owasp_floor(profile: Argon2Profile) -> bool:
    """True when *profile* is at least as strong as OWASP's weakest Argon2id option."""
    return (
        profile.memory_cost >= _FLOOR_MEMORY_KIB
        and profile.memory_cost * profile.time_cost >= _FLOOR_WORK
        and profile.salt_len >= _FLOOR_SALT_LEN
        and profile.hash_len >= _FLOOR_HASH_LEN
    )


#: RFC 9106 section 4, second recommendation; the default (see module docs).
RFC_9106_LOW_MEMORY = Argon2Profile("RFC_9106_LOW_MEMORY", 65536, 3, 4)
#: RFC 9106 section 4, first recommendation: 2 GiB per hash.
RFC_9106_HIGH_MEMORY = Argon2Profile("RFC_9106_HIGH_MEMORY", 2097152, 1, 4)
#: OWASP option 1: m=46 MiB, t=1, p=1.
OWASP_M47104_T1 = Argon2Profile("OWASP_M47104_T1", 47104, 1, 1)
#: OWASP option 2: m=19 MiB, t=2, p=1.
OWASP_M19456_T2 = Argon2Profile("OWASP_M19456_T2", 19456, 2, 1)
#: OWASP option 3: m=12 MiB, t=3, p=1.
OWASP_M12288_T3 = Argon2Profile("OWASP_M12288_T3", 12288, 3, 1)
#: OWASP option 4: m=9 MiB, t=4, p=1.
OWASP_M9216_T4 = Argon2Profile("OWASP_M9216_T4", 9216, 4, 1)
#: OWASP option 5: m=7 MiB, t=5, p=1 (the floor).
OWASP_M7168_T5 = Argon2Profile("OWASP_M7168_T5", 7168, 5, 1)
#: Tests only: m=8 KiB, t=1, p=1. Refused unless ``insecure_test_only=True``.
CHEAPEST = Argon2Profile("CHEAPEST", 8, 1, 1)

_ALL = {
    p.name: p
    for p in (
        RFC_9106_LOW_MEMORY,
        RFC_9106_HIGH_MEMORY,
        OWASP_M47104_T1,
        OWASP_M19456_T2,
        OWASP_M12288_T3,
        OWASP_M9216_T4,
        OWASP_M7168_T5,
        CHEAPEST,
    )
}


def by_name(name: str) -> Argon2Profile:
    """Return the built-in profile called *name* (case-insensitive).

    Raises:
        InvalidInputError: no such profile.
    """
    from styku_crypto.exceptions import InvalidInputError

    try:
        return _ALL[name.upper()]
    except KeyError:
        raise InvalidInputError(
            f"unknown password profile {name!r}; choose one of {', '.join(sorted(_ALL))}"
        ) from None

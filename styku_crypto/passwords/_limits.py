"""Ceilings on the parameters read from stored hashes.

A stored hash is attacker-controlled input whenever the database can be
written by someone else (SQL injection, a compromised admin, a restored
backup). argon2-cffi trusts ``m``/``t``/``p`` from the string, so a planted
``m=4 GiB`` hash becomes a memory bomb on the next login. Every parameter is
checked here, from the parsed string alone, before any memory is allocated or
any hash work is done.

Two kinds of bound apply. The structural limits below cap each parameter
(memory, lengths, counts). ``work_budget`` caps the *cost*: no stored hash may
make a verify cost more than ``work_budget`` times a verify of the hasher's
profile on this host, whatever the format (see ``_cost.py`` for the one work
unit of each format).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from styku_crypto.exceptions import InvalidInputError

__all__ = ["HashLimits"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HashLimits:
    """Ceilings (and a few floors) for stored-hash parameters.

    The defaults admit every default of argon2-cffi, Django 5, passlib/libpass
    and bcrypt, and the library's own profiles up to 256 MiB; a hasher built
    with a larger profile raises the Argon2 ceilings to that profile
    automatically.

    Attributes:
        max_encoded_len: longest stored string accepted at all.
        argon2_max_memory_kib: largest ``m`` (KiB).
        argon2_max_time_cost: largest ``t``.
        argon2_max_parallelism: largest ``p``.
        argon2_max_work: largest ``m x t`` (KiB-passes), bounding CPU time.
        min_salt_len, max_salt_len: salt length bounds in bytes (Argon2, PBKDF2, scrypt).
        min_hash_len, max_hash_len: tag length bounds in bytes.
        bcrypt_max_cost: largest bcrypt cost (log2 rounds).
        pbkdf2_max_iterations: largest PBKDF2 iteration count.
        sha512_crypt_max_rounds: largest SHA-512-crypt rounds.
        scrypt_max_n, scrypt_max_r, scrypt_max_p: scrypt ceilings.
        scrypt_max_memory: largest scrypt memory (``128 x N x r`` bytes).
        work_budget: the most one verify may cost, as a multiple of a verify
            with the hasher's profile (at least 2). Every format's ceiling
            derives from it: raise it, knowingly, to accept costlier legacy
            hashes during a migration.
    """

    max_encoded_len: int = 1024
    argon2_max_memory_kib: int = 262144
    argon2_max_time_cost: int = 10
    argon2_max_parallelism: int = 16
    argon2_max_work: int = 262144 * 4
    min_salt_len: int = 8
    max_salt_len: int = 64
    min_hash_len: int = 4
    max_hash_len: int = 128
    bcrypt_max_cost: int = 14
    pbkdf2_max_iterations: int = 2_000_000
    sha512_crypt_max_rounds: int = 1_000_000
    scrypt_max_n: int = 2**20
    scrypt_max_r: int = 32
    scrypt_max_p: int = 16
    scrypt_max_memory: int = 256 * 1024 * 1024
    work_budget: float = 4.0

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 1:
                raise InvalidInputError(f"hash limit {name} must be a number >= 1")
        if self.work_budget < 2:
            # The profile's own unpeppered hash may need two attempts (both
            # Unicode forms): a budget under 2 would refuse it.
            raise InvalidInputError("hash limit work_budget must be at least 2")

    def raised_to(self, *, memory_kib: int, time_cost: int, parallelism: int) -> HashLimits:
        """Return limits whose Argon2 ceilings admit at least the given parameters."""
        return replace(
            self,
            argon2_max_memory_kib=max(self.argon2_max_memory_kib, memory_kib),
            argon2_max_time_cost=max(self.argon2_max_time_cost, time_cost),
            argon2_max_parallelism=max(self.argon2_max_parallelism, parallelism),
            argon2_max_work=max(self.argon2_max_work, memory_kib * time_cost),
        )

"""Well-known finite-field Diffie-Hellman primes, by name and size.

A server's DHE prime is either one of the published groups below or a custom
one. The distinction matters: a well-known prime of 1024 bits or less is a
precomputation target (Logjam, 2015: one number-field-sieve precomputation
per prime breaks every key exchange that uses it), while a custom prime cannot
be checked for quality by a client at all.

The primes are not pasted as hex: each published group is defined by a
formula from its RFC, ``p = 2^n - 2^(n-64) - 1 + 2^64 * (floor(2^(n-130) * c) + X)``
with ``c`` = pi (RFC 2409, RFC 3526) or e (RFC 7919), and the RFC's constant
``X``. The table holds ``(n, c, X)``; :func:`known_groups` computes the primes
once, with integer arithmetic only. ``tests/tls/audit/test_dhgroups.py``
checks every computed prime against OpenSSL's built-in copy.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = ["DHGroup", "identify", "known_groups"]


@dataclass(frozen=True)
class DHGroup:
    """A published DH group.

    Attributes:
        name: the short name (``ffdhe2048``, ``Oakley group 2``...).
        source: the defining document (``RFC 7919``...).
        bits: the size of the prime.
    """

    name: str
    source: str
    bits: int

    @property
    def label(self) -> str:
        """``"1024-bit Oakley group 2 (RFC 2409)"``."""
        return f"{self.bits}-bit {self.name} ({self.source})"


# (name, source, bits, constant, X): RFC 2409 section 6.1/6.2, RFC 3526 sections 2-7,
# RFC 7919 appendix A.1-A.5.
_TABLE = (
    ("Oakley group 1", "RFC 2409", 768, "pi", 149686),
    ("Oakley group 2", "RFC 2409", 1024, "pi", 129093),
    ("MODP group 5", "RFC 3526", 1536, "pi", 741804),
    ("MODP group 14", "RFC 3526", 2048, "pi", 124476),
    ("MODP group 15", "RFC 3526", 3072, "pi", 1690314),
    ("MODP group 16", "RFC 3526", 4096, "pi", 240904),
    ("MODP group 17", "RFC 3526", 6144, "pi", 929484),
    ("MODP group 18", "RFC 3526", 8192, "pi", 4743158),
    ("ffdhe2048", "RFC 7919", 2048, "e", 560316),
    ("ffdhe3072", "RFC 7919", 3072, "e", 2625351),
    ("ffdhe4096", "RFC 7919", 4096, "e", 5736041),
    ("ffdhe6144", "RFC 7919", 6144, "e", 15705020),
    ("ffdhe8192", "RFC 7919", 8192, "e", 10965728),
)

_GUARD = 64  # extra fixed-point bits so the truncated constants are exact


def _arctan_inverse(x: int, one: int) -> int:
    """``arctan(1/x) * one`` by its alternating series (integer arithmetic)."""
    total = term = one // x
    x2, n, sign = x * x, 1, -1
    while term:
        term //= x2
        n += 2
        total += sign * (term // n)
        sign = -sign
    return total


def _pi_scaled(bits: int) -> int:
    """``floor(pi * 2^bits)`` (Machin's formula)."""
    one = 1 << (bits + _GUARD)
    return (4 * (4 * _arctan_inverse(5, one) - _arctan_inverse(239, one))) >> _GUARD


def _e_scaled(bits: int) -> int:
    """``floor(e * 2^bits)`` (the series of 1/k!)."""
    one = 1 << (bits + _GUARD)
    total, term, k = 0, one, 0
    while term:
        total += term
        k += 1
        term //= k
    return total >> _GUARD


@functools.cache
def known_groups() -> dict[int, DHGroup]:
    """Every published prime in the table, mapped to its group."""
    top = max(n for _, _, n, _, _ in _TABLE) - 130
    # floor(c * 2^b) == floor(c * 2^top) >> (top - b): one expansion per constant.
    constants = {"pi": _pi_scaled(top), "e": _e_scaled(top)}
    out: dict[int, DHGroup] = {}
    for name, source, n, constant, x in _TABLE:
        scaled = constants[constant] >> (top - (n - 130))
        prime = 2**n - 2 ** (n - 64) - 1 + 2**64 * (scaled + x)
        out[prime] = DHGroup(name=name, source=source, bits=n)
    return out


def identify(prime: bytes) -> DHGroup | None:
    """The published group whose prime is *prime* (big-endian), or ``None`` (custom)."""
    return known_groups().get(int.from_bytes(prime, "big"))

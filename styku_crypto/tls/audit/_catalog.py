"""The code points the prober offers, from the TLS policy registry.

Names and properties of cipher suites and groups come from
:mod:`styku_crypto.tls._registry` (the IANA registries shared with the policy
code); this module adds only what probing needs: which suites to offer, the
key-share size of each group and the classical strength used for grading.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from styku_crypto.tls import _registry
from styku_crypto.tls._registry import CipherSuite

__all__ = [
    "CipherSuite",
    "Group",
    "block64",
    "group_by_code",
    "group_by_name",
    "groups",
    "kx",
    "rc4",
    "strength",
    "suite_by_code",
    "suite_by_name",
    "suites",
]


def kx(suite: CipherSuite) -> str:
    """Key exchange in lower case: ``ecdhe``, ``dhe``, ``rsa``, ``anon``, ``tls13``..."""
    if suite.tls13:
        return "tls13"
    if suite.authentication == "anon":
        return "anon"
    return suite.key_exchange.lower()


def rc4(suite: CipherSuite) -> bool:
    """RC4 stream cipher."""
    return "RC4" in suite.bulk_cipher


def block64(suite: CipherSuite) -> bool:
    """A 64-bit block cipher (3DES, DES, IDEA, RC2): Sweet32."""
    bulk = suite.bulk_cipher
    return any(c in bulk for c in ("DES", "IDEA", "RC2"))


def strength(suite: CipherSuite) -> int:
    """Effective symmetric strength in bits (0 for NULL, 40 for export)."""
    bulk = suite.bulk_cipher
    if suite.null_encryption:
        return 0
    if suite.export:
        return 40
    if "3DES" in bulk:
        return 112
    if "DES" in bulk:
        return 56
    for bits in ("256", "128"):
        if bits in bulk:
            return int(bits)
    return 256 if "CHACHA20" in bulk else 128


@dataclass(frozen=True)
class Group:
    """One key-exchange group (IANA "TLS Supported Groups").

    Attributes:
        code: the code point.
        name: the IANA name (``secp256r1``, ``x25519``, ``ffdhe2048``, ``X25519MLKEM768``).
        aliases: other spellings (OpenSSL's ``prime256v1``, ``X25519``, ``P-256``).
        kind: ``ec``, ``ffdhe``, ``hybrid`` (PQ/T hybrid) or ``pq``.
        share_size: the length of a TLS 1.3 key share for this group.
        bits: the classical security-relevant size (curve bits or DH prime bits).
    """

    code: int
    name: str
    aliases: tuple[str, ...]
    kind: str
    share_size: int
    bits: int


_GROUPS = (
    Group(0x0013, "secp192r1", ("prime192v1", "P-192"), "ec", 49, 192),
    Group(0x0015, "secp224r1", ("P-224",), "ec", 57, 224),
    Group(0x0016, "secp256k1", (), "ec", 65, 256),
    Group(0x0017, "secp256r1", ("prime256v1", "P-256"), "ec", 65, 256),
    Group(0x0018, "secp384r1", ("P-384",), "ec", 97, 384),
    Group(0x0019, "secp521r1", ("P-521",), "ec", 133, 521),
    Group(0x001A, "brainpoolP256r1", (), "ec", 65, 256),
    Group(0x001B, "brainpoolP384r1", (), "ec", 97, 384),
    Group(0x001C, "brainpoolP512r1", (), "ec", 129, 512),
    Group(0x001D, "x25519", ("X25519",), "ec", 32, 255),
    Group(0x001E, "x448", ("X448",), "ec", 56, 448),
    Group(0x001F, "brainpoolP256r1tls13", (), "ec", 65, 256),
    Group(0x0020, "brainpoolP384r1tls13", (), "ec", 97, 384),
    Group(0x0021, "brainpoolP512r1tls13", (), "ec", 129, 512),
    Group(0x0100, "ffdhe2048", (), "ffdhe", 256, 2048),
    Group(0x0101, "ffdhe3072", (), "ffdhe", 384, 3072),
    Group(0x0102, "ffdhe4096", (), "ffdhe", 512, 4096),
    Group(0x0103, "ffdhe6144", (), "ffdhe", 768, 6144),
    Group(0x0104, "ffdhe8192", (), "ffdhe", 1024, 8192),
    Group(0x0200, "MLKEM512", (), "pq", 800, 0),
    Group(0x0201, "MLKEM768", (), "pq", 1184, 0),
    Group(0x0202, "MLKEM1024", (), "pq", 1568, 0),
    Group(0x11EB, "SecP256r1MLKEM768", (), "hybrid", 65 + 1184, 256),
    Group(0x11EC, "X25519MLKEM768", (), "hybrid", 1184 + 32, 255),
    Group(0x11ED, "SecP384r1MLKEM1024", (), "hybrid", 97 + 1568, 384),
)


@functools.cache
def suites() -> tuple[CipherSuite, ...]:
    """Every real cipher suite in the registry (signalling values and NULL_NULL left out)."""
    return tuple(s for s in _registry.CIPHER_SUITES if not s.scsv and s.code != 0x0000)


def suite_by_code(code: int) -> CipherSuite:
    """The suite for *code*; an unknown code point gets a ``TLS_UNKNOWN_0x....`` name."""
    found = _registry.cipher_by_code(code)
    if found is not None:
        return found
    return CipherSuite(code, f"TLS_UNKNOWN_0x{code:04X}", None, code >> 8 == 0x13, False, False)


def suite_by_name(name: str) -> CipherSuite:
    """The suite named *name* (IANA or OpenSSL spelling).

    Raises:
        InvalidInputError: an unknown name.
    """
    return _registry.cipher_by_name(name)


def groups() -> tuple[Group, ...]:
    """Every key-exchange group the prober asks about."""
    return _GROUPS


@functools.cache
def _group_names() -> dict[str, Group]:
    out: dict[str, Group] = {}
    for g in _GROUPS:
        out[g.name.lower()] = g
        for alias in g.aliases:
            out[alias.lower()] = g
    return out


def group_by_code(code: int) -> Group:
    """The group for *code*; an unknown code point gets an ``unknown_0x....`` name."""
    for g in _GROUPS:
        if g.code == code:
            return g
    known = _registry.group_by_code(code)
    name = known.name if known is not None else f"unknown_0x{code:04X}"
    return Group(code, name, (), "unknown", 0, 0)


def group_by_name(name: str) -> Group | None:
    """The group named *name* (IANA, OpenSSL or NIST spelling, any case), or ``None``."""
    found = _group_names().get(name.lower())
    if found is not None:
        return found
    try:
        canonical = _registry.group_by_name(name).name
    except ValueError:
        return None
    return _group_names().get(canonical.lower())

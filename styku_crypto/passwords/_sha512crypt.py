"""SHA-512-crypt (``$6$``, Drepper's specification) with :mod:`hashlib`.

Only used to verify legacy hashes (glibc ``crypt``, passlib/libpass
``sha512_crypt``). Rounds are checked against the configured ceiling by the
caller before this runs.
"""

from __future__ import annotations

import hashlib

__all__ = ["ALPHABET", "sha512_crypt_digest"]

ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

_ORDER = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
    (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
    (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38),
    (18, 39, 60), (40, 61, 19), (62, 20, 41),
)  # fmt: skip


def _repeat(block: bytes, length: int) -> bytes:
    return (block * (length // len(block) + 1))[:length]


def sha512_crypt_digest(password: bytes, salt: bytes, rounds: int) -> str:
    """Return the 86-character encoded SHA-512-crypt digest of *password*.

    Args:
        password: the password bytes.
        salt: the salt (at most 16 bytes are used, as the specification says).
        rounds: the round count, already clamped to 1000..999,999,999.
    """
    salt = salt[:16]
    plen = len(password)
    alt = hashlib.sha512(password + salt + password).digest()
    ctx = hashlib.sha512(password + salt)
    ctx.update(_repeat(alt, plen) if plen else b"")
    i = plen
    while i > 0:
        ctx.update(alt if i & 1 else password)
        i >>= 1
    digest = ctx.digest()
    p_bytes = _repeat(hashlib.sha512(password * plen).digest(), plen) if plen else b""
    s_bytes = _repeat(hashlib.sha512(salt * (16 + digest[0])).digest(), len(salt))
    # Round r hashes (odd r: P, else C) + (S if r % 3) + (P if r % 7) + (C if odd r, else P).
    # Precompute the constant parts for each (r % 2, r % 3 != 0, r % 7 != 0) case.
    prefix: dict[tuple[bool, bool], bytes] = {}
    suffix: dict[tuple[bool, bool], bytes] = {}
    for s_on in (False, True):
        for p_on in (False, True):
            middle = (s_bytes if s_on else b"") + (p_bytes if p_on else b"")
            prefix[(s_on, p_on)] = p_bytes + middle
            suffix[(s_on, p_on)] = middle + p_bytes
    sha512 = hashlib.sha512
    c = digest
    for r in range(rounds):
        key = (r % 3 != 0, r % 7 != 0)
        c = sha512(prefix[key] + c).digest() if r & 1 else sha512(c + suffix[key]).digest()
    out = []
    for a, b, d in _ORDER:
        w = (c[a] << 16) | (c[b] << 8) | c[d]
        for _ in range(4):
            out.append(ALPHABET[w & 0x3F])
            w >>= 6
    w = c[63]
    for _ in range(2):
        out.append(ALPHABET[w & 0x3F])
        w >>= 6
    return "".join(out)

"""Parsing of stored password hashes, with every limit checked before any work.

Parsers are allowlists: each format is matched by an anchored ASCII regular
expression over a length-capped string, numbers are canonical decimal, base64
is decoded strictly and must re-encode to the same text. Anything else is
refused. No parser allocates more than the stored string's size.

Formats:

* Argon2 PHC strings ``$argon2id$v=19$m=..,t=..,p=..[,pepper=ID]$salt$tag``
  (also ``argon2i``/``argon2d`` and version-less 0x10 strings from
  argon2-cffi); the optional ``pepper`` parameter is this library's.
* Django: ``argon2$``, ``bcrypt$``, ``bcrypt_sha256$``, ``pbkdf2_sha256$``,
  ``pbkdf2_sha1$``, ``scrypt$``.
* passlib/libpass modular crypt: ``$pbkdf2-sha256$``, ``$pbkdf2-sha512$``,
  ``$pbkdf2$`` (SHA-1), ``$6$`` (SHA-512-crypt).
* bcrypt: ``$2a$``, ``$2b$``, ``$2y$``.
* This library's pepper-wrapped hashes (any of the above except peppered
  Argon2, with its tag replaced by zeros and
  ``HMAC-SHA256(pepper, label || hash-with-zeroed-tag || 0 || tag)`` stored
  beside it): ``$styku-wrap$v=1,pepper=ID$<mac>$<inner>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

from styku_crypto.passwords._argon2 import ARGON2D, ARGON2I, ARGON2ID
from styku_crypto.passwords._limits import HashLimits
from styku_crypto.passwords._sha512crypt import sha512_crypt_digest

__all__ = ["Argon2Hash", "LegacyHash", "RefusedHashError", "WrappedHash", "parse"]

_VARIANTS = {"argon2id": ARGON2ID, "argon2i": ARGON2I, "argon2d": ARGON2D}
_VARIANT_NAMES = {v: k for k, v in _VARIANTS.items()}
_NUM = r"(0|[1-9][0-9]{0,9})"
_B64 = r"([A-Za-z0-9+/]+)"
_ARGON2 = re.compile(
    r"\$(argon2id|argon2i|argon2d)\$(?:v=" + _NUM + r"\$)?"
    r"m=" + _NUM + r",t=" + _NUM + r",p=" + _NUM +
    r"(?:,pepper=([A-Za-z0-9.-]{1,32}))?\$" + _B64 + r"\$" + _B64,
    re.ASCII,
)  # fmt: skip
_DJANGO_PBKDF2 = re.compile(
    r"(pbkdf2_sha256|pbkdf2_sha1)\$" + _NUM + r"\$([!-#%-~]{1,128})\$([A-Za-z0-9+/]+=*)", re.ASCII
)
_DJANGO_SCRYPT = re.compile(
    r"scrypt\$" + _NUM + r"\$([!-#%-~]{1,128})\$" + _NUM + r"\$" + _NUM + r"\$([A-Za-z0-9+/]+=*)",
    re.ASCII,
)
_BCRYPT = re.compile(r"\$(2a|2b|2y)\$([0-9]{2})\$[./A-Za-z0-9]{53}", re.ASCII)
_PASSLIB_PBKDF2 = re.compile(
    r"\$(pbkdf2-sha256|pbkdf2-sha512|pbkdf2)\$" + _NUM + r"\$([./A-Za-z0-9]*)\$([./A-Za-z0-9]+)",
    re.ASCII,
)
_SHA512_CRYPT = re.compile(
    r"\$6\$(?:rounds=" + _NUM + r"\$)?([!-#%-9;-~]{0,16})\$([./0-9A-Za-z]{86})", re.ASCII
)
_WRAPPED = re.compile(
    r"\$styku-wrap\$v=1,pepper=([A-Za-z0-9.-]{1,32})\$([A-Za-z0-9+/]{43})\$(.+)",
    re.ASCII | re.DOTALL,
)
_PASSLIB_DIGEST = {"pbkdf2-sha256": "sha256", "pbkdf2-sha512": "sha512", "pbkdf2": "sha1"}


class RefusedHashError(Exception):
    """A stored hash was refused before any work (internal; mapped by the hasher).

    Attributes:
        reason: ``malformed``, ``unknown_scheme`` or ``over_limit``.
        scheme: the scheme name when known.
    """

    def __init__(self, reason: str, scheme: str = "unknown", detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.scheme = scheme
        self.detail = detail or reason


@dataclass(frozen=True, slots=True)
class Argon2Hash:
    """A parsed Argon2 hash (ours, argon2-cffi's, or Django's ``argon2$`` wrapper)."""

    variant: int
    version: int
    memory_kib: int
    time_cost: int
    lanes: int
    salt: bytes
    tag: bytes
    pepper_id: str | None
    django: bool
    encoded: str = ""
    tag_chars: int = 0

    @property
    def scheme(self) -> str:
        """``argon2id``/``argon2i``/``argon2d``, prefixed ``django_`` for Django's wrapper."""
        name = _VARIANT_NAMES[self.variant]
        return f"django_{name}" if self.django else name

    def zeroed(self) -> str:
        """The stored string with its tag replaced by zeros (the wrapped form's inner)."""
        return _zeroed(self.encoded, self.tag_chars, "b64", len(self.tag))


@dataclass(frozen=True, slots=True)
class LegacyHash:
    """A parsed non-Argon2 hash; :meth:`check` runs its verifier on one candidate."""

    scheme: str
    encoded: str
    salt: bytes = b""
    tag: bytes = b""
    iterations: int = 0
    digest: str = ""
    n: int = 0
    r: int = 0
    p: int = 0
    tag_chars: int = 0
    tag_style: str = "crypt"

    @property
    def needs_bcrypt(self) -> bool:
        """True for schemes that need the ``bcrypt`` package (``legacy`` extra)."""
        return "bcrypt" in self.scheme

    def zeroed(self) -> str:
        """The stored string with its tag replaced by zeros (the wrapped form's inner)."""
        return _zeroed(self.encoded, self.tag_chars, self.tag_style, len(self.tag))

    def check(self, candidate: bytes, bcrypt_module: object = None) -> bool:
        """True when *candidate* (password bytes) matches; constant-time compare.

        Raises:
            RefusedHashError: the verifier refused the stored parameters.
        """
        got = self.compute(candidate, bcrypt_module)
        return got is not None and hmac.compare_digest(got, self.tag)

    def compute(self, candidate: bytes, bcrypt_module: object = None) -> bytes | None:
        """The tag *candidate* yields under this hash's parameters (``None``: cannot match).

        For bcrypt, the 31-character checksum; for SHA-512-crypt, the
        86-character digest; otherwise the raw derived bytes.

        Raises:
            RefusedHashError: the verifier refused the stored parameters (its own
                ``ValueError`` never escapes).
        """
        try:
            if self.digest:  # every PBKDF2 variant
                return hashlib.pbkdf2_hmac(
                    self.digest, candidate, self.salt, self.iterations, len(self.tag)
                )
            if self.scheme == "django_scrypt":
                return hashlib.scrypt(
                    candidate,
                    salt=self.salt,
                    n=self.n,
                    r=self.r,
                    p=self.p,
                    maxmem=2 * 128 * self.n * self.r + 128 * self.r * self.p + (1 << 20),
                    dklen=len(self.tag),
                )
            if self.scheme == "sha512_crypt":
                return sha512_crypt_digest(candidate, self.salt, self.iterations).encode("ascii")
            return self._compute_bcrypt(candidate, bcrypt_module)
        except (ValueError, OverflowError, TypeError):
            raise RefusedHashError(
                "malformed", self.scheme, "the verifier refused the stored parameters"
            ) from None

    def _compute_bcrypt(self, candidate: bytes, bcrypt_module: object) -> bytes | None:
        stored = self.encoded
        if self.scheme == "django_bcrypt_sha256":
            candidate = binascii.hexlify(hashlib.sha256(candidate).digest())
            stored = stored[len("bcrypt_sha256$") :]
        elif self.scheme == "django_bcrypt":
            stored = stored[len("bcrypt$") :]
        too_long = len(candidate) > 72
        if too_long:
            # Never verify by prefix: bcrypt only sees 72 bytes, so a longer
            # password cannot be checked. Spend the same work, then fail.
            candidate = b"\x00" * 8
        hashpw = getattr(bcrypt_module, "hashpw")  # noqa: B009 - typed loosely on purpose
        got = bytes(hashpw(candidate, stored[:29].encode("ascii")))[-31:]
        return None if too_long else got


@dataclass(frozen=True, slots=True)
class WrappedHash:
    """A legacy or unpeppered hash wrapped offline under a pepper (onion style).

    The inner hash's tag is zeros; *mac* is
    ``HMAC-SHA256(pepper, WRAP_LABEL || inner.zeroed() || 0 || tag)`` of the
    tag the inner verifier computes from the password.
    """

    pepper_id: str
    mac: bytes
    inner: Argon2Hash | LegacyHash

    @property
    def scheme(self) -> str:
        """``wrapped_`` and the inner scheme."""
        return f"wrapped_{self.inner.scheme}"


#: Domain separation for the wrapping MAC (never used for password peppering).
WRAP_LABEL = b"styku-crypto/pepper-wrap/v1\x00"


def wrap_mac_input(inner_zeroed: str, tag: bytes) -> bytes:
    """The bytes the wrapping MAC covers: label, inner parameters, then the inner tag."""
    return WRAP_LABEL + inner_zeroed.encode("ascii") + b"\x00" + tag


def _zeroed(encoded: str, tag_chars: int, style: str, tag_len: int) -> str:
    if style == "crypt":
        zero = "." * tag_chars
    else:
        text = base64.b64encode(bytes(tag_len)).decode("ascii")
        zero = text if style == "b64pad" else text.rstrip("=")
    return encoded[: len(encoded) - tag_chars] + zero


def _b64(text: str, *, padded: bool = False, alt: bool = False) -> bytes:
    """Strict base64: canonical, optionally padded; ``alt`` uses passlib's ``.`` for ``+``."""
    if alt:
        text = text.replace(".", "+")
    body = text.rstrip("=") if padded else text
    if padded and len(text) % 4:
        raise RefusedHashError("malformed")
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise RefusedHashError("malformed") from None
    again = base64.b64encode(raw).decode("ascii")
    if (again if padded else again.rstrip("=")) != text:
        raise RefusedHashError("malformed")
    return raw


def _range(value: int, low: int, high: int, scheme: str, what: str) -> None:
    if value > high:
        raise RefusedHashError("over_limit", scheme, f"{what} above the configured limit")
    if value < low:
        raise RefusedHashError("malformed", scheme, f"{what} below the minimum")


def _b64_len_ok(text: str, low: int, high: int, scheme: str, what: str) -> None:
    # Check the length implied by the text before decoding anything.
    _range(len(text) * 3 // 4, low, high, scheme, what)


def parse(stored: str, limits: HashLimits) -> Argon2Hash | LegacyHash | WrappedHash:
    """Parse *stored* and check it against *limits*, doing no hash work.

    Raises:
        RefusedHashError: malformed, unknown scheme, or a parameter over a limit.
    """
    if not isinstance(stored, str):
        raise RefusedHashError("malformed", detail="stored hash must be a str")
    if len(stored) > limits.max_encoded_len:
        raise RefusedHashError("over_limit", detail="stored hash longer than the configured limit")
    if stored.startswith("$styku-wrap$"):
        return _parse_wrapped(stored, limits)
    return _parse_plain(stored, limits)


def _parse_plain(stored: str, limits: HashLimits) -> Argon2Hash | LegacyHash:
    if stored.startswith("$argon2"):
        return _parse_argon2(stored, limits, django=False)
    if stored.startswith("argon2$argon2"):
        return _parse_argon2(stored, limits, django=True)
    if stored.startswith(("pbkdf2_sha256$", "pbkdf2_sha1$")):
        return _parse_django_pbkdf2(stored, limits)
    if stored.startswith("scrypt$"):
        return _parse_django_scrypt(stored, limits)
    if stored.startswith("bcrypt_sha256$"):
        return _parse_bcrypt(
            stored, stored[len("bcrypt_sha256$") :], "django_bcrypt_sha256", limits
        )
    if stored.startswith("bcrypt$"):
        return _parse_bcrypt(stored, stored[len("bcrypt$") :], "django_bcrypt", limits)
    if stored.startswith("$2"):
        return _parse_bcrypt(stored, stored, "bcrypt", limits)
    if stored.startswith("$pbkdf2"):
        return _parse_passlib_pbkdf2(stored, limits)
    if stored.startswith("$6$"):
        return _parse_sha512_crypt(stored, limits)
    raise RefusedHashError("unknown_scheme", detail="unrecognised password hash format")


def _parse_wrapped(stored: str, limits: HashLimits) -> WrappedHash:
    match = _WRAPPED.fullmatch(stored)
    if match is None:
        raise RefusedHashError("malformed", "wrapped", "malformed pepper-wrapped hash")
    pepper_id, mac_text, inner_text = match.groups()
    inner = _parse_plain(inner_text, limits)
    scheme = f"wrapped_{inner.scheme}"
    if isinstance(inner, Argon2Hash) and inner.pepper_id is not None:
        raise RefusedHashError("malformed", scheme, "a wrapped hash cannot be peppered inside")
    if inner.zeroed() != inner_text:
        raise RefusedHashError("malformed", scheme, "a wrapped hash's inner tag must be zeros")
    return WrappedHash(pepper_id=pepper_id, mac=_b64(mac_text), inner=inner)


def _parse_argon2(stored: str, limits: HashLimits, *, django: bool) -> Argon2Hash:
    text = stored[len("argon2") :] if django else stored
    match = _ARGON2.fullmatch(text)
    if match is None:
        raise RefusedHashError("malformed", "argon2", "malformed Argon2 hash")
    name, v, m, t, p, pepper_id, salt_text, tag_text = match.groups()
    scheme = f"django_{name}" if django else name
    if django and pepper_id is not None:
        raise RefusedHashError("malformed", scheme, "malformed Argon2 hash")
    version = 0x10 if v is None else int(v)
    if version not in (0x10, 0x13):
        raise RefusedHashError("malformed", scheme, "unsupported Argon2 version")
    memory, time_cost, lanes = int(m), int(t), int(p)
    _range(lanes, 1, limits.argon2_max_parallelism, scheme, "parallelism")
    _range(memory, 8 * lanes, limits.argon2_max_memory_kib, scheme, "memory cost")
    _range(time_cost, 1, limits.argon2_max_time_cost, scheme, "time cost")
    _range(memory * time_cost, 1, limits.argon2_max_work, scheme, "memory x time")
    _b64_len_ok(salt_text, limits.min_salt_len, limits.max_salt_len, scheme, "salt length")
    _b64_len_ok(tag_text, limits.min_hash_len, limits.max_hash_len, scheme, "hash length")
    salt = _b64(salt_text)
    tag = _b64(tag_text)
    _range(len(salt), limits.min_salt_len, limits.max_salt_len, scheme, "salt length")
    _range(len(tag), limits.min_hash_len, limits.max_hash_len, scheme, "hash length")
    return Argon2Hash(
        variant=_VARIANTS[name],
        version=version,
        memory_kib=memory,
        time_cost=time_cost,
        lanes=lanes,
        salt=salt,
        tag=tag,
        pepper_id=pepper_id,
        django=django,
        encoded=stored,
        tag_chars=len(tag_text),
    )


def _parse_django_pbkdf2(stored: str, limits: HashLimits) -> LegacyHash:
    match = _DJANGO_PBKDF2.fullmatch(stored)
    scheme = "django_" + stored.split("$", 1)[0]
    if match is None:
        raise RefusedHashError("malformed", scheme, "malformed PBKDF2 hash")
    algorithm, iterations, salt, tag_text = match.groups()
    _range(int(iterations), 1, limits.pbkdf2_max_iterations, scheme, "iterations")
    _b64_len_ok(tag_text, 1, limits.max_hash_len + 2, scheme, "hash length")
    tag = _b64(tag_text, padded=True)
    _range(len(tag), limits.min_hash_len, limits.max_hash_len, scheme, "hash length")
    return LegacyHash(
        scheme=scheme,
        encoded=stored,
        salt=salt.encode("ascii"),
        tag=tag,
        iterations=int(iterations),
        digest=algorithm.removeprefix("pbkdf2_"),
        tag_chars=len(tag_text),
        tag_style="b64pad",
    )


def _parse_django_scrypt(stored: str, limits: HashLimits) -> LegacyHash:
    scheme = "django_scrypt"
    match = _DJANGO_SCRYPT.fullmatch(stored)
    if match is None:
        raise RefusedHashError("malformed", scheme, "malformed scrypt hash")
    n_text, salt, r_text, p_text, tag_text = match.groups()
    n, r, p = int(n_text), int(r_text), int(p_text)
    _range(n, 2, limits.scrypt_max_n, scheme, "scrypt N")
    if n & (n - 1):
        raise RefusedHashError("malformed", scheme, "scrypt N must be a power of two")
    _range(r, 1, limits.scrypt_max_r, scheme, "scrypt r")
    _range(p, 1, limits.scrypt_max_p, scheme, "scrypt p")
    _range(128 * n * r, 1, limits.scrypt_max_memory, scheme, "scrypt memory")
    _b64_len_ok(tag_text, 1, limits.max_hash_len + 2, scheme, "hash length")
    tag = _b64(tag_text, padded=True)
    _range(len(tag), limits.min_hash_len, limits.max_hash_len, scheme, "hash length")
    return LegacyHash(
        scheme=scheme,
        encoded=stored,
        salt=salt.encode("ascii"),
        tag=tag,
        n=n,
        r=r,
        p=p,
        tag_chars=len(tag_text),
        tag_style="b64pad",
    )


def _parse_bcrypt(stored: str, inner: str, scheme: str, limits: HashLimits) -> LegacyHash:
    match = _BCRYPT.fullmatch(inner)
    if match is None:
        raise RefusedHashError("malformed", scheme, "malformed bcrypt hash")
    _range(int(match.group(2)), 4, limits.bcrypt_max_cost, scheme, "bcrypt cost")
    return LegacyHash(
        scheme=scheme,
        encoded=stored,
        tag=inner[-31:].encode("ascii"),
        iterations=int(match.group(2)),
        tag_chars=31,
    )


def _parse_passlib_pbkdf2(stored: str, limits: HashLimits) -> LegacyHash:
    match = _PASSLIB_PBKDF2.fullmatch(stored)
    if match is None:
        raise RefusedHashError("malformed", "pbkdf2", "malformed PBKDF2 hash")
    name, iterations, salt_text, tag_text = match.groups()
    _range(int(iterations), 1, limits.pbkdf2_max_iterations, "pbkdf2", "iterations")
    _b64_len_ok(salt_text, 0, limits.max_salt_len, "pbkdf2", "salt length")
    _b64_len_ok(tag_text, limits.min_hash_len, limits.max_hash_len, "pbkdf2", "hash length")
    salt = _b64(salt_text, alt=True)
    tag = _b64(tag_text, alt=True)
    _range(len(tag), limits.min_hash_len, limits.max_hash_len, "pbkdf2", "hash length")
    return LegacyHash(
        scheme="pbkdf2",
        encoded=stored,
        salt=salt,
        tag=tag,
        iterations=int(iterations),
        digest=_PASSLIB_DIGEST[name],
        tag_chars=len(tag_text),
        tag_style="b64",
    )


def _parse_sha512_crypt(stored: str, limits: HashLimits) -> LegacyHash:
    match = _SHA512_CRYPT.fullmatch(stored)
    if match is None:
        raise RefusedHashError("malformed", "sha512_crypt", "malformed SHA-512-crypt hash")
    rounds_text, salt, digest = match.groups()
    rounds = 5000 if rounds_text is None else int(rounds_text)
    _range(rounds, 0, limits.sha512_crypt_max_rounds, "sha512_crypt", "rounds")
    rounds = max(rounds, 1000)
    return LegacyHash(
        scheme="sha512_crypt",
        encoded=stored,
        salt=salt.encode("ascii"),
        tag=digest.encode("ascii"),
        iterations=rounds,
        tag_chars=len(digest),
    )

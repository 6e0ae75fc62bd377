"""Unwrapped tenant key material, with its derived primitives cached."""

from __future__ import annotations

import hashlib
import struct
import threading

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from styku_crypto.exceptions import InvalidInputError

__all__ = ["TenantKey", "derivation_info", "wrap_aad"]

_FPR_DOMAIN = b"styku-crypto/v1/tenant-key-fingerprint\x00"
_WRAP_LABEL = b"styku-crypto/v1/envelope-wrap\x00"
_DERIVE_LABEL = b"styku-crypto/v1/derive\x00"
_ROOT_AAD = b"styku-crypto/v1/tenant-key\x00"
_MAX_DERIVED = 64


def _lp(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def wrap_aad(tenant: str, purpose: str, version: int, key_id: str) -> bytes:
    """Associated data binding a root wrap to tenant, purpose, version and key id."""
    return (
        _ROOT_AAD
        + _lp(tenant.encode("utf-8"))
        + _lp(purpose.encode("utf-8"))
        + struct.pack(">I", version)
        + _lp(key_id.encode("utf-8"))
    )


def derivation_info(
    prefix: bytes, tenant: str, purpose: str, version: int, label: bytes, length: int
) -> bytes:
    """HKDF ``info``: a fixed domain prefix, length-prefixed identity, label and output length.

    The output length is bound too, so a 64-byte subkey never shares a prefix
    with the 32-byte subkey of the same label.
    """
    return (
        prefix
        + _lp(tenant.encode("utf-8"))
        + _lp(purpose.encode("utf-8"))
        + struct.pack(">I", version)
        + _lp(label)
        + struct.pack(">H", length)
    )


def _hkdf(secret: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)


class TenantKey:
    """One unwrapped tenant key version (private API for envelope, fields, incidents).

    Holds the secret only to derive subkeys; exposes the AES-256-SIV object used
    to wrap data keys and :meth:`derive` for labelled subkeys. ``repr`` shows
    ids and a fingerprint only; pickling raises.
    """

    __slots__ = (
        "_derived",
        "_lock",
        "_secret",
        "fingerprint",
        "key_id",
        "purpose",
        "tenant",
        "version",
        "wrapper",
    )

    def __init__(self, *, tenant: str, purpose: str, version: int, key_id: str, secret: bytes):
        if len(secret) != 32:
            raise InvalidInputError("tenant keys are 32 bytes")
        self.tenant = tenant
        self.purpose = purpose
        self.version = version
        self.key_id = key_id
        self._secret = secret
        self._lock = threading.Lock()
        self._derived: dict[tuple[bytes, int], bytes] = {}
        #: Non-secret fingerprint: first 8 bytes of a domain-separated SHA-256, hex.
        self.fingerprint = hashlib.sha256(_FPR_DOMAIN + secret).digest()[:8].hex()
        #: AES-256-SIV keyed from this tenant key; wraps per-message data keys.
        self.wrapper = AESSIV(
            _hkdf(secret, derivation_info(_WRAP_LABEL, tenant, purpose, version, b"", 64), 64)
        )

    def derive(self, label: bytes, length: int = 32) -> bytes:
        """A subkey for *label* (HKDF-SHA256, domain-separated from the data-key wrap).

        The same (tenant key, label, length) always gives the same subkey;
        different labels give independent subkeys.
        """
        if not isinstance(label, bytes) or not label:
            raise InvalidInputError("label must be non-empty bytes")
        if not 16 <= length <= 64:
            raise InvalidInputError("derived keys are 16 to 64 bytes")
        cached = self._derived.get((label, length))
        if cached is not None:
            return cached
        value = _hkdf(
            self._secret,
            derivation_info(_DERIVE_LABEL, self.tenant, self.purpose, self.version, label, length),
            length,
        )
        with self._lock:
            if len(self._derived) >= _MAX_DERIVED:
                self._derived.pop(next(iter(self._derived)))
            self._derived[(label, length)] = value
        return value

    def __repr__(self) -> str:
        return (
            f"<TenantKey tenant={self.tenant!r} purpose={self.purpose} v{self.version}"
            f" id={self.key_id} fpr={self.fingerprint}>"
        )

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("TenantKey cannot be pickled")

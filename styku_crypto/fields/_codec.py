"""Type-preserving encoding of field values, and the key-source protocol fields rely on."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Protocol

from styku_crypto.exceptions import DecryptionError, InvalidInputError

__all__ = ["KeySource", "b64d", "b64e", "decode_value", "encode_value"]

_BYTES = b"b"
_JSON = b"j"
_TEXT = b"s"


class KeySource(Protocol):
    """What fields need from a key store: labelled subkeys of a tenant key version.

    :class:`styku_crypto.keys.KeyStore` implements it.
    """

    def _derive_key(
        self,
        tenant: str,
        *,
        purpose: str,
        label: bytes,
        length: int = 32,
        version: int | None = None,
    ) -> tuple[bytes, int]: ...


def encode_value(value: Any) -> bytes:
    """Encode a field value so that decryption gives back the same Python type.

    ``bytes`` and ``str`` are stored raw behind a one-byte tag; any other JSON value
    (``int``, ``float``, ``bool``, ``None``, lists, dicts with string keys) as compact,
    key-sorted JSON.

    Raises:
        InvalidInputError: the value is not bytes, str or JSON-serialisable.
    """
    if type(value) is str:
        return _TEXT + value.encode("utf-8")
    if isinstance(value, bytes | bytearray | memoryview):
        return _BYTES + bytes(value)
    if isinstance(value, str):
        return _TEXT + value.encode("utf-8")
    try:
        text = json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"field values must be bytes, str or JSON values, not {type(value).__name__}"
        ) from None
    return _JSON + text.encode("utf-8")


def decode_value(data: bytes) -> Any:
    """Inverse of :func:`encode_value`.

    Raises:
        DecryptionError: the authenticated bytes do not hold a valid encoding (only
            possible if a different writer produced them).
    """
    tag, body = data[:1], data[1:]
    try:
        if tag == _BYTES:
            return body
        if tag == _TEXT:
            return body.decode("utf-8")
        if tag == _JSON:
            return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        pass
    raise DecryptionError("decryption failed")


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64e(data: bytes) -> str:
    """URL-safe base64 without padding."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    """Inverse of :func:`b64e`; raises ``ValueError`` on malformed input."""
    if not isinstance(text, str) or "=" in text:
        raise ValueError("malformed base64")
    try:
        return base64.b64decode(
            text.encode("ascii") + b"=" * (-len(text) % 4), altchars=b"-_", validate=True
        )
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("malformed base64") from None

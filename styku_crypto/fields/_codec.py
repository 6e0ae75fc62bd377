"""Type-preserving encoding of field values, and the key-source protocol fields rely on."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Protocol

from styku_crypto.exceptions import DecryptionError, InvalidInputError

__all__ = [
    "ABSENT",
    "MISSING",
    "KeySource",
    "b64d",
    "b64e",
    "decode_field",
    "decode_value",
    "encode_value",
    "parse_versioned",
]

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


#: Encoded form of a field absent from a record (``RecordEncryptor``): one tag byte, as
#: long as an empty ``str`` or ``bytes`` value, so the token does not tell them apart.
ABSENT = b"a"
#: What :func:`decode_field` returns for :data:`ABSENT`.
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING", "__slots__": ()})()


def decode_field(data: bytes) -> Any:
    """:func:`decode_value`, plus :data:`MISSING` for the :data:`ABSENT` marker."""
    if data == ABSENT:
        return MISSING
    return decode_value(data)


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64e(data: bytes) -> str:
    """URL-safe base64 without padding."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    """Inverse of :func:`b64e`; raises ``ValueError`` on malformed or non-canonical input.

    Only the canonical encoding is accepted (no padding, no non-zero trailing bits), so
    one value has exactly one text form and equality search cannot miss a variant.
    """
    if not isinstance(text, str) or "=" in text:
        raise ValueError("malformed base64")
    try:
        raw = base64.b64decode(
            text.encode("ascii") + b"=" * (-len(text) % 4), altchars=b"-_", validate=True
        )
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("malformed base64") from None
    if b64e(raw) != text:
        raise ValueError("non-canonical base64")
    return raw


#: ``<prefix>.<version>.<base64url>``: ASCII only, the version in canonical decimal
#: (no sign, no leading zero, no superscript or Arabic-Indic digits), at most u32.
_VERSIONED_RE = re.compile(r"([a-z]+[0-9]+)\.([1-9][0-9]{0,9})\.([^.]*)\Z", re.ASCII)
_MAX_VERSION = 0xFFFFFFFF


def parse_versioned(token: object, prefix: str) -> tuple[int, str] | None:
    """``(version, base64url body)`` of a canonical ``<prefix>.<version>.<body>`` string.

    Returns ``None`` for anything else (not a str, another prefix, a non-canonical or
    out-of-range version, another number of parts). The body is checked by :func:`b64d`.
    """
    if not isinstance(token, str):
        return None
    match = _VERSIONED_RE.match(token)
    if match is None or match.group(1) != prefix:
        return None
    version = int(match.group(2))
    if version > _MAX_VERSION:
        return None
    return version, match.group(3)

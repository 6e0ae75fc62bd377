"""Deterministic field encryption (AES-SIV) for equality search, on explicit request only."""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable, Mapping
from typing import Any

from styku_crypto.exceptions import DecryptionError, InvalidInputError, UnsupportedFormatError
from styku_crypto.fields._codec import (
    KeySource,
    b64d,
    b64e,
    decode_value,
    encode_value,
    parse_versioned,
)
from styku_crypto.hazmat._siv import AesSiv

__all__ = ["DeterministicEncryptor"]

_PREFIX = "de1"
_PURPOSE = "customer"
_DOMAIN = b"styku-crypto/v1/deterministic-field"
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")


def _context_component(context: Mapping[str, str] | None) -> bytes:
    if context is None:
        return b"[]"
    if not isinstance(context, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in context.items()
    ):
        raise InvalidInputError("context must be a mapping of str to str")
    return json.dumps(sorted(context.items()), separators=(",", ":")).encode("utf-8")


class DeterministicEncryptor:
    """AES-SIV encryption whose output is the same for the same value: searchable by equality.

    Key: 64 bytes derived per tenant and per *name* from the tenant's customer key
    hierarchy; associated data binds tenant, name, key version and the optional
    context. Tokens read ``de1.<key version>.<base64url(SIV || ciphertext)>``.

    .. danger::
        Deterministic encryption leaks which rows hold equal values and how often each
        value occurs (frequency analysis), and the token length leaks the value length.
        For low-entropy values (status flags, years, small enums) this can reveal the
        values themselves. Prefer :class:`~styku_crypto.fields.RecordEncryptor`
        (randomised) plus a truncated :class:`~styku_crypto.fields.BlindIndexer`; use
        this class only when exact-match search on the ciphertext itself is required.
        Equality holds only within one key version: after a tenant key rotation search
        with :meth:`search_tokens` over the versions still present.

    Args:
        keys: the key store.
        name: the field name, e.g. ``"members.ssn"``; part of the key derivation.
    """

    __slots__ = ("_keys", "_label", "name")

    def __init__(self, keys: KeySource, *, name: str) -> None:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise InvalidInputError("field name: 1-128 of letters, digits and _ . : / -")
        self._keys = keys
        self.name = name
        self._label = f"styku.deterministic/v1/{name}".encode()

    def __repr__(self) -> str:
        return f"<DeterministicEncryptor name={self.name!r}>"

    def _siv(self, tenant: str, version: int | None) -> tuple[AesSiv, list[bytes], int]:
        key, used = self._keys._derive_key(
            tenant, purpose=_PURPOSE, label=self._label, length=64, version=version
        )
        ad = [_DOMAIN, tenant.encode("utf-8"), self.name.encode("utf-8"), struct.pack(">I", used)]
        return AesSiv(key), ad, used

    def encrypt(
        self,
        value: Any,
        *,
        tenant: str,
        context: Mapping[str, str] | None = None,
        version: int | None = None,
    ) -> str:
        """Encrypt *value* (bytes, str or a JSON value) deterministically.

        Raises:
            InvalidInputError: unsupported value type or bad context.
            KeyNotFoundError: unknown tenant or version.
            KeyDestroyedError: the tenant was shredded.
        """
        plaintext = encode_value(value)
        ctx = _context_component(context)
        siv, ad, used = self._siv(tenant, version)
        sealed = siv.encrypt(plaintext, associated_data=[*ad, ctx])
        return f"{_PREFIX}.{used}.{b64e(sealed)}"

    def decrypt(self, token: str, *, tenant: str, context: Mapping[str, str] | None = None) -> Any:
        """Decrypt a token made by :meth:`encrypt` with the same tenant, name and context.

        Raises:
            UnsupportedFormatError: not a ``de1`` token.
            DecryptionError: tampered token, or another tenant, name or context.
            KeyDestroyedError: the tenant was shredded.
        """
        parsed = parse_versioned(token, _PREFIX)
        if parsed is None:
            raise UnsupportedFormatError("not a de1 deterministic token")
        version, body = parsed
        try:
            sealed = b64d(body)
        except ValueError:
            raise DecryptionError("decryption failed") from None
        ctx = _context_component(context)
        siv, ad, _ = self._siv(tenant, version)
        return decode_value(siv.decrypt(sealed, associated_data=[*ad, ctx]))

    def search_tokens(
        self,
        value: Any,
        *,
        tenant: str,
        context: Mapping[str, str] | None = None,
        versions: Iterable[int] | None = None,
    ) -> list[str]:
        """Tokens to search *value* with, one per key version (default: current only)."""
        if versions is None:
            return [self.encrypt(value, tenant=tenant, context=context)]
        return [
            self.encrypt(value, tenant=tenant, context=context, version=v)
            for v in dict.fromkeys(versions)
        ]

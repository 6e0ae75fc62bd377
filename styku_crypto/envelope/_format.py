"""Token format v1: constants, canonical context encoding, header parsing and building.

See ``docs/format.md`` for the byte-level specification. Everything here is pure
(no keys are touched), so a header can be validated before any key is used.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import re
import struct
from collections.abc import Mapping
from typing import NamedTuple

from styku_crypto.exceptions import DecryptionError, InvalidInputError, UnsupportedFormatError

__all__ = [
    "COMMIT_DOMAIN",
    "COMMITMENT_LEN",
    "CONTEXT_COMMITMENT_LEN",
    "CONTEXT_COMMIT_DOMAIN",
    "FORMAT_VERSION",
    "LAYER",
    "LAYER_LEN",
    "PAYLOAD_DOMAIN",
    "PREFIX_LEN",
    "PURPOSE_CODES",
    "PURPOSE_NAMES",
    "SUITE_CACHED",
    "SUITE_ONESHOT",
    "SUITE_STREAM",
    "TAG_LEN",
    "TEXT_PREFIX",
    "U32",
    "WRAP_DOMAIN",
    "WRAPPED_LEN",
    "SHAPES",
    "DataClass",
    "Header",
    "Layer",
    "LayerBytes",
    "TokenShape",
    "build_layer",
    "check_class",
    "commitment",
    "context_commitment",
    "encode_context",
    "from_text",
    "lp",
    "parse_header",
    "payload_aad",
    "to_text",
    "wrap_aad",
]

FORMAT_VERSION = 1
#: One-shot AES-256-GCM under a fresh data key per message (fixed zero nonce).
SUITE_ONESHOT = 1
#: Streamed C2SP chunked encryption (Cobblestone); see ``styku_crypto.envelope`` streams.
SUITE_STREAM = 2
#: AES-256-GCM under a cached data key (opt-in ``DataKeyCache``), random 96-bit nonces.
SUITE_CACHED = 3
_SUITES = frozenset({SUITE_ONESHOT, SUITE_STREAM, SUITE_CACHED})

PREFIX_LEN = 4  # version, suite, data class, layer count
COMMITMENT_LEN = 32
WRAPPED_LEN = 48  # AES-256-SIV: 16-byte synthetic IV + 32-byte data key
LAYER_LEN = 1 + 4 + COMMITMENT_LEN + WRAPPED_LEN  # 85
TAG_LEN = 16
NONCE_LEN = 12

COMMIT_DOMAIN = b"styku-crypto/v1/dek-commitment\x00"
CONTEXT_COMMIT_DOMAIN = b"styku-crypto/v1/context-commitment\x00"
#: Suite 3 only: the per-message context commitment after the nonces.
CONTEXT_COMMITMENT_LEN = 32
WRAP_DOMAIN = b"styku-crypto/v1/dek-wrap\x00"
PAYLOAD_DOMAIN = b"styku-crypto/v1/payload\x00"

#: Text form: this prefix, then the binary token in unpadded base64url.
TEXT_PREFIX = "stk1."
_TEXT_RE = re.compile(r"stk1\.[A-Za-z0-9_-]*\Z")
_OTHER_TEXT_RE = re.compile(r"stk[0-9]+\.")

PURPOSE_CODES = {"customer": 1, "sensitive": 2}
PURPOSE_NAMES = {1: "customer", 2: "sensitive"}

#: ``u32`` big-endian, and one header layer (purpose, key version, commitment, wrapped key).
U32 = struct.Struct(">I")
LAYER = struct.Struct(">BI32s48s")
_MAX_CONTEXT = 1 << 16


class DataClass(enum.IntEnum):
    """What kind of data a token protects; decides the envelope layers.

    ``CUSTOMER``: one layer under the tenant's customer key.
    ``SENSITIVE`` (Permitted Sensitive Data): an outer customer layer around an
    inner layer under the tenant's separate sensitive key; reading needs both.
    """

    CUSTOMER = 1
    SENSITIVE = 2

    @property
    def purposes(self) -> tuple[str, ...]:
        """Key purposes of the layers, outermost first."""
        return ("customer",) if self is DataClass.CUSTOMER else ("customer", "sensitive")


class Layer(NamedTuple):
    """One parsed header layer (non-secret)."""

    purpose: int
    key_version: int
    commitment: bytes
    wrapped: bytes


class Header(NamedTuple):
    """A parsed token header. ``length`` counts every byte before the payload."""

    version: int
    suite: int
    data_class: DataClass
    layers: tuple[Layer, ...]
    nonces: tuple[bytes, ...]
    length: int
    #: Suite 3: the 32-byte per-message context commitment; empty otherwise.
    context_commitment: bytes = b""

    @property
    def commitments(self) -> bytes:
        """Every layer's commitment, concatenated in layer order."""
        return b"".join(layer.commitment for layer in self.layers)


def lp(value: bytes) -> bytes:
    """``u32 big-endian length || value``."""
    return U32.pack(len(value)) + value


#: ``u32(i)`` as a 4-character ASCII str, for i < 128 (the fast encoder's length prefixes).
_SMALL_LEN = tuple(f"\x00\x00\x00{chr(i)}" for i in range(128))


def encode_context(context: Mapping[str, str]) -> bytes:
    """Canonical, injective encoding of an encryption context.

    ``u32 count`` then, for each entry sorted by the UTF-8 bytes of its key,
    ``u32 len(key) || key || u32 len(value) || value`` (UTF-8, big-endian
    lengths). Distinct mappings always encode differently.

    Raises:
        InvalidInputError: not a mapping of str to str, a lone surrogate, or
            larger than 64 KiB encoded.
    """
    # Fast path for the common case: a plain dict of short ASCII strings. The whole
    # encoding is built as one str whose length prefixes are ASCII characters
    # (lengths < 128) and encoded once; it is the exact UTF-8 encoding of the parts
    # only if no character needed more than one byte, which the length comparison
    # checks (every non-ASCII character takes at least two UTF-8 bytes). Anything
    # else (other types, long or non-ASCII strings) takes the general path below.
    if type(context) is dict and len(context) < 128:
        lens = _SMALL_LEN
        try:
            if not context:
                return b"\x00\x00\x00\x00"
            if len(context) == 1:
                ((k1, v1),) = context.items()
                if type(k1) is str and type(v1) is str:
                    text = f"\x00\x00\x00\x01{lens[len(k1)]}{k1}{lens[len(v1)]}{v1}"
                    out = text.encode("utf-8")
                    if len(out) == len(text):
                        return out
            elif len(context) == 2:
                (k1, v1), (k2, v2) = context.items()
                if type(k1) is str and type(v1) is str and type(k2) is str and type(v2) is str:
                    if k2 < k1:  # code-point order == UTF-8 byte order
                        k1, v1, k2, v2 = k2, v2, k1, v1
                    text = (
                        f"\x00\x00\x00\x02{lens[len(k1)]}{k1}{lens[len(v1)]}{v1}"
                        f"{lens[len(k2)]}{k2}{lens[len(v2)]}{v2}"
                    )
                    out = text.encode("utf-8")
                    if len(out) == len(text):
                        return out
            else:
                parts = [lens[len(context)]]
                append = parts.append
                for key in sorted(context):
                    value = context[key]
                    if type(key) is not str or type(value) is not str:
                        break
                    append(lens[len(key)])
                    append(key)
                    append(lens[len(value)])
                    append(value)
                else:
                    text = "".join(parts)
                    out = text.encode("utf-8")
                    if len(out) == len(text):
                        return out
        except (IndexError, TypeError, UnicodeEncodeError):
            pass  # long strings, unorderable keys, lone surrogates: the general path decides
    return _encode_context(context)


def _encode_context(context: Mapping[str, str]) -> bytes:
    """The general (reference) implementation of :func:`encode_context`."""
    if type(context) is not dict and not isinstance(context, Mapping):
        raise InvalidInputError("context must be a mapping of str to str")
    parts = [U32.pack(len(context))]
    append = parts.append
    pack = U32.pack
    try:
        # Code-point order of str equals the byte order of their UTF-8 encodings.
        for key in sorted(context):
            value = context[key]
            if type(key) is not str or type(value) is not str:
                raise InvalidInputError("context keys and values must be str")
            kb = key.encode("utf-8")
            vb = value.encode("utf-8")
            append(pack(len(kb)) + kb + pack(len(vb)) + vb)
    except (TypeError, UnicodeEncodeError):
        raise InvalidInputError("context keys and values must be encodable str") from None
    out = b"".join(parts)
    if len(out) > _MAX_CONTEXT:
        raise InvalidInputError("context is larger than 64 KiB encoded")
    return out


def prefix(suite: int, data_class: DataClass) -> bytes:
    """The four prefix bytes of a token."""
    return bytes((FORMAT_VERSION, suite, data_class, len(data_class.purposes)))


def commitment(pre: bytes, index: int, dek: bytes, tenant_lp: bytes, layer_ctx: bytes) -> bytes:
    """Layer *index*'s commitment: to its data key, the prefix, the tenant and the context.

    ``SHA-256(COMMIT_DOMAIN || prefix || u8(index) || DEK || lp(tenant) || layer_ctx)``,
    where *layer_ctx* is the encoded context in suites 1 and 2 (one message per data
    key) and empty in suite 3 (the data key serves many contexts; its per-message
    :func:`context_commitment` binds the context instead).
    """
    return hashlib.sha256(
        COMMIT_DOMAIN + pre + bytes((index,)) + dek + tenant_lp + layer_ctx
    ).digest()


def context_commitment(
    pre: bytes, deks: bytes, nonces: bytes, tenant_lp: bytes, context: bytes
) -> bytes:
    """Suite 3's per-message commitment to every data key, nonce, the tenant and the context.

    ``SHA-256(CONTEXT_COMMIT_DOMAIN || prefix || DEK_0 || ... || nonces || lp(tenant) || ctx)``
    (*deks*: the data keys concatenated in layer order).
    """
    return hashlib.sha256(
        CONTEXT_COMMIT_DOMAIN + pre + deks + nonces + tenant_lp + context
    ).digest()


def wrap_aad(
    pre: bytes, index: int, purpose: int, key_version: int, commitment: bytes, tenant_lp: bytes
) -> bytes:
    """Associated data of a layer's AES-SIV data-key wrap."""
    return (
        WRAP_DOMAIN + pre + bytes((index, purpose)) + U32.pack(key_version) + commitment + tenant_lp
    )


def payload_aad(
    pre: bytes, index: int, commitments: bytes, tenant_lp: bytes, context: bytes
) -> bytes:
    """Associated data of layer *index*'s payload AES-GCM (what rewrap does not change)."""
    return PAYLOAD_DOMAIN + pre + bytes((index,)) + commitments + tenant_lp + context


def build_layer(purpose: int, key_version: int, commitment: bytes, wrapped: bytes) -> bytes:
    """The 85 bytes of one header layer."""
    return LAYER.pack(purpose, key_version, commitment, wrapped)


def parse_header(token: bytes | bytearray | memoryview) -> Header:
    """Parse and validate a token header without touching any key.

    Raises:
        UnsupportedFormatError: unknown format version, suite or data class.
        DecryptionError: truncated or structurally invalid (opaque on purpose).
    """
    n = len(token)
    if n < PREFIX_LEN:
        raise DecryptionError()
    version, suite, cls, count = token[0], token[1], token[2], token[3]
    if version != FORMAT_VERSION:
        raise UnsupportedFormatError(f"unsupported token format version {version}")
    if suite not in _SUITES:
        raise UnsupportedFormatError(f"unsupported token suite {suite}")
    if cls == 1:
        data_class = DataClass.CUSTOMER
    elif cls == 2:
        data_class = DataClass.SENSITIVE
    else:
        raise UnsupportedFormatError(f"unsupported data class {cls}")
    if count != len(data_class.purposes):
        raise DecryptionError()
    end = PREFIX_LEN + LAYER_LEN * count
    nonce_end = end + (NONCE_LEN * count if suite == SUITE_CACHED else 0)
    header_end = nonce_end + (CONTEXT_COMMITMENT_LEN if suite == SUITE_CACHED else 0)
    if n < header_end:
        raise DecryptionError()
    layers = []
    for i, expected in enumerate(data_class.purposes):
        purpose, key_version, commitment, wrapped = LAYER.unpack_from(
            token, PREFIX_LEN + LAYER_LEN * i
        )
        if purpose != PURPOSE_CODES[expected]:
            raise DecryptionError()
        layers.append(Layer(purpose, key_version, commitment, wrapped))
    nonces: tuple[bytes, ...] = ()
    ctx_commitment = b""
    if suite == SUITE_CACHED:
        nonces = tuple(
            bytes(token[end + NONCE_LEN * i : end + NONCE_LEN * (i + 1)]) for i in range(count)
        )
        ctx_commitment = bytes(token[nonce_end:header_end])
    return Header(
        FORMAT_VERSION, suite, data_class, tuple(layers), nonces, header_end, ctx_commitment
    )


class LayerBytes(NamedTuple):
    """Constant leading bytes of one layer's inputs, for one token shape (format.md)."""

    #: ``WRAP_DOMAIN || prefix || u8(index) || u8(purpose)``: the data-key wrap's
    #: associated data up to the key version.
    wrap_aad: bytes
    #: ``COMMIT_DOMAIN || prefix || u8(index)``: the commitment's input up to the data key.
    commitment: bytes
    #: ``PAYLOAD_DOMAIN || prefix || u8(index)``: the payload AAD up to the commitments.
    payload_aad: bytes


class TokenShape(NamedTuple):
    """The constant bytes of every token of one (suite, data class), built once."""

    prefix: bytes
    #: The prefix and layer 0's purpose: the first five bytes of every such token.
    lead: bytes
    #: Prefix and layers (without suite 3's nonces and context commitment).
    layers_end: int
    #: Every byte before the payload.
    header_len: int
    #: One entry per layer, outermost first.
    layers: tuple[LayerBytes, ...]
    #: ``CONTEXT_COMMIT_DOMAIN || prefix``: suite 3's context commitment input so far.
    context_commitment: bytes


def _shape(suite: int, data_class: DataClass) -> TokenShape:
    pre = prefix(suite, data_class)
    count = len(data_class.purposes)
    layers = tuple(
        LayerBytes(
            wrap_aad=WRAP_DOMAIN + pre + bytes((i, PURPOSE_CODES[purpose])),
            commitment=COMMIT_DOMAIN + pre + bytes((i,)),
            payload_aad=PAYLOAD_DOMAIN + pre + bytes((i,)),
        )
        for i, purpose in enumerate(data_class.purposes)
    )
    layers_end = PREFIX_LEN + LAYER_LEN * count
    extra = (NONCE_LEN * count + CONTEXT_COMMITMENT_LEN) if suite == SUITE_CACHED else 0
    return TokenShape(
        prefix=pre,
        lead=pre + bytes((PURPOSE_CODES["customer"],)),
        layers_end=layers_end,
        header_len=layers_end + extra,
        layers=layers,
        context_commitment=CONTEXT_COMMIT_DOMAIN + pre,
    )


#: The constant bytes of every token shape, keyed by (suite, data class).
SHAPES: dict[tuple[int, DataClass], TokenShape] = {
    (suite, data_class): _shape(suite, data_class)
    for suite in sorted(_SUITES)
    for data_class in DataClass
}


def check_class(header: Header, wanted: DataClass | None) -> None:
    """Refuse a token whose data class is not the one the reader requires.

    Raises:
        DecryptionError: *wanted* is given and differs from the token's class.
    """
    if wanted is not None and header.data_class is not wanted:
        raise DecryptionError()


#: base64 -> base64url, and the standard alphabet's ``+`` and ``/`` made invalid (``*``).
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_+/", b"+/**")
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: Value (0-63) of each base64url character, for the canonical trailing-bits check.
_VALUE = {c: i for i, c in enumerate(_ALPHABET)}


def to_text(token: bytes | bytearray | memoryview) -> str:
    """The text form of a binary token: ``stk1.`` + unpadded base64url."""
    encoded = binascii.b2a_base64(token, newline=False).translate(_TO_URLSAFE)
    end = len(encoded)
    while end and encoded[end - 1] == 0x3D:  # "=" padding
        end -= 1
    return TEXT_PREFIX + str(memoryview(encoded)[:end], "ascii")


def from_text(text: str) -> bytes:
    """The binary token of a text form.

    Raises:
        UnsupportedFormatError: another text-form version (``stkN.``) or not a token.
        DecryptionError: malformed base64url after a valid prefix.
    """
    if not isinstance(text, str):
        raise InvalidInputError("a text token must be str")
    if not text.startswith(TEXT_PREFIX):
        if _OTHER_TEXT_RE.match(text):
            raise UnsupportedFormatError("unsupported text token version")
        raise UnsupportedFormatError("not a styku-crypto text token (expected the 'stk1.' prefix)")
    return _decode_body(text)


def _decode_body(text: str) -> bytes:
    """Strict, canonical base64url decoding of everything after ``stk1.``.

    Why not ``base64.urlsafe_b64decode`` plus a regex and a re-encoding check (the
    reference, :func:`_decode_body_reference`): that reads the text about seven times
    and made ``decrypt_text`` several times slower than base64 itself (issue 15). Here:
    one ASCII encode, one translation (which also turns the standard alphabet's ``+``
    and ``/`` into invalid characters), one strict ``a2b_base64`` (rejects anything
    outside the alphabet), and a constant-time look at the last character for
    non-canonical trailing bits. A hypothesis test proves both accept and refuse the
    same strings and return the same bytes.
    """
    rest = (len(text) - len(TEXT_PREFIX)) % 4
    if rest == 1 or "=" in text:  # the text form never carries padding
        raise DecryptionError()
    try:
        data = (text + "==" if rest == 2 else text + "=" if rest == 3 else text).encode("ascii")
    except UnicodeEncodeError:
        raise DecryptionError() from None
    if rest:
        # The unused low bits of the last character must be zero (canonical form).
        last = _VALUE.get(data[-1 - (4 - rest)])
        if last is None or last & (0x0F if rest == 2 else 0x03):
            raise DecryptionError()
    try:
        return binascii.a2b_base64(
            memoryview(data.translate(_FROM_URLSAFE))[len(TEXT_PREFIX) :], strict_mode=True
        )
    except (binascii.Error, ValueError):
        raise DecryptionError() from None


def _decode_body_reference(text: str) -> bytes:
    """The general (reference) implementation of :func:`_decode_body`."""
    body = text[len(TEXT_PREFIX) :]
    if not _TEXT_RE.match(text) or len(body) % 4 == 1:
        raise DecryptionError()
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise DecryptionError() from None
    if TEXT_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:
        raise DecryptionError()
    return raw

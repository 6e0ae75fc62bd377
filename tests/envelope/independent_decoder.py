"""An envelope-token decoder written from docs/format.md alone.

It imports nothing from ``styku_crypto`` (a test checks that): only ``cryptography``
primitives and the standard library. It reads the golden vector file's key material
(root key, root-wrapped tenant keys) and decodes every token kind (suites 1, 2 and 3,
both data classes, binary and text form), raising its own exceptions named like the
library's so that expected-failure vectors can be checked against both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand


class DecodeError(Exception):
    """Base of this decoder's errors."""


class UnsupportedFormatError(DecodeError):
    """Unknown version, suite, data class or text prefix (before any key use)."""


class DecryptionError(DecodeError):
    """Anything else that does not authenticate (opaque)."""


class KeyNotFoundError(DecodeError):
    """The tenant, or the tenant's hierarchy for a purpose, is unknown."""


PURPOSES = {1: "customer", 2: "sensitive"}
CHUNK = 16384


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def lp(b: bytes) -> bytes:
    return u32(len(b)) + b


def encode_context(context: Mapping[str, str]) -> bytes:
    items = sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in context.items())
    return u32(len(items)) + b"".join(lp(k) + lp(v) for k, v in items)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class Keys:
    """Tenant keys of a golden file, each unwrapped from its root wrap."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        root = AESGCM(bytes.fromhex(spec["root_key"]["secret"]))
        self.secrets: dict[tuple[str, str, int], bytes] = {}
        for k in spec["tenant_keys"]:
            wrap = bytes.fromhex(k["root_wrap"])
            assert wrap[0] == 1, "local root wrap format version"
            aad = (
                b"styku-crypto/local-root/v1\x00"
                + b"styku-crypto/v1/tenant-key\x00"
                + lp(k["tenant"].encode())
                + lp(k["purpose"].encode())
                + u32(k["version"])
                + lp(k["key_id"].encode())
            )
            assert re.fullmatch(r"tk_[0-9a-f]{16}", k["key_id"]), "key_id rule"
            secret = root.decrypt(wrap[1:13], wrap[13:], aad)
            self.secrets[(k["tenant"], k["purpose"], k["version"])] = secret

    def wrapper(self, tenant: str, purpose: str, version: int) -> AESSIV:
        secret = self.secrets.get((tenant, purpose, version))
        if secret is None:
            if not any(t == tenant and p == purpose for t, p, _ in self.secrets):
                raise KeyNotFoundError(f"no {purpose} keys for this tenant")
            raise DecryptionError()  # no such version: never tells which versions exist
        info = (
            b"styku-crypto/v1/envelope-wrap\x00"
            + lp(tenant.encode())
            + lp(purpose.encode())
            + u32(version)
            + lp(b"")
            + struct.pack(">H", 64)
        )
        return AESSIV(HKDF(hashes.SHA256(), 64, None, info).derive(secret))


def from_text(text: str) -> bytes:
    if not text.startswith("stk1."):
        raise UnsupportedFormatError("not an stk1. text token")
    body = text[5:]
    if not re.fullmatch(r"[A-Za-z0-9_-]*", body) or len(body) % 4 == 1:
        raise DecryptionError()
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != body:
        raise DecryptionError()  # non-canonical trailing bits
    return raw


def decode(
    token: bytes,
    *,
    tenant: str,
    context: Mapping[str, str],
    keys: Keys,
    data_class: int | None = None,
) -> bytes:
    """Decrypt *token* exactly as docs/format.md describes."""
    if len(token) < 4:
        raise DecryptionError()
    version, suite, cls, n = token[0], token[1], token[2], token[3]
    if version != 1 or suite not in (1, 2, 3) or cls not in (1, 2):
        raise UnsupportedFormatError()
    if n != cls:  # CUSTOMER: one layer, SENSITIVE: two
        raise DecryptionError()
    if data_class is not None and cls != data_class:
        raise DecryptionError()
    prefix = token[:4]
    pos = 4
    layers = []
    for i in range(n):
        if len(token) < pos + 85:
            raise DecryptionError()
        purpose = token[pos]
        if purpose != i + 1:
            raise DecryptionError()
        (key_version,) = struct.unpack(">I", token[pos + 1 : pos + 5])
        layers.append((purpose, key_version, token[pos + 5 : pos + 37], token[pos + 37 : pos + 85]))
        pos += 85
    nonces = b""
    ctx_commitment = b""
    if suite == 3:
        nonces = token[pos : pos + 12 * n]
        ctx_commitment = token[pos + 12 * n : pos + 12 * n + 32]
        pos += 12 * n + 32
        if len(token) < pos:
            raise DecryptionError()
    tlp = lp(tenant.encode())
    ctx = encode_context(context)
    layer_ctx = b"" if suite == 3 else ctx
    deks = []
    for i, (purpose, key_version, commitment, wrapped) in enumerate(layers):
        siv = keys.wrapper(tenant, PURPOSES[purpose], key_version)
        aad = (
            b"styku-crypto/v1/dek-wrap\x00"
            + prefix
            + bytes([i, purpose])
            + u32(key_version)
            + commitment
            + tlp
        )
        try:
            dek = siv.decrypt(wrapped, [aad])
        except InvalidTag:
            raise DecryptionError() from None
        expected = _sha256(
            b"styku-crypto/v1/dek-commitment\x00" + prefix + bytes([i]) + dek + tlp + layer_ctx
        )
        if not hmac.compare_digest(expected, commitment):
            raise DecryptionError()
        deks.append(dek)
    commitments = b"".join(layer[2] for layer in layers)
    if suite == 3:
        expected = _sha256(
            b"styku-crypto/v1/context-commitment\x00" + prefix + b"".join(deks) + nonces + tlp + ctx
        )
        if not hmac.compare_digest(expected, ctx_commitment):
            raise DecryptionError()
    payload = token[pos:]
    if suite == 2:
        return _decode_stream(payload, prefix, deks, commitments, tlp, ctx)
    for i in range(n):
        nonce = nonces[12 * i : 12 * (i + 1)] if suite == 3 else bytes(12)
        aad = b"styku-crypto/v1/payload\x00" + prefix + bytes([i]) + commitments + tlp + ctx
        try:
            payload = AESGCM(deks[i]).decrypt(nonce, payload, aad)
        except InvalidTag:
            raise DecryptionError() from None
    return payload


def _decode_stream(
    payload: bytes, prefix: bytes, deks: list[bytes], commitments: bytes, tlp: bytes, ctx: bytes
) -> bytes:
    key = HKDF(hashes.SHA256(), 32, None, b"styku-crypto/v1/stream-key\x00" + prefix).derive(
        b"".join(deks)
    )
    c = b"styku-crypto/v1/stream-context\x00" + prefix + commitments + tlp + ctx
    if len(payload) < 56 + 16:
        raise DecryptionError()
    salt, commitment = payload[:24], payload[24:56]
    okm = HKDFExpand(
        hashes.SHA512(), 76, b"c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM\x00" + salt + c
    ).derive(key)
    aead_key, base_nonce, expected = okm[:32], okm[32:44], okm[44:]
    if not hmac.compare_digest(expected, commitment):
        raise DecryptionError()
    body = payload[56:]
    out = []
    aead = AESGCM(aead_key)
    index = 0
    while True:
        piece = body[: CHUNK + 16]
        body = body[CHUNK + 16 :]
        final = len(piece) < CHUNK + 16
        if final and (body or len(piece) < 16):
            raise DecryptionError()
        nonce = (int.from_bytes(base_nonce, "big") ^ index).to_bytes(12, "big")
        try:
            out.append(aead.decrypt(nonce, piece, None))
        except InvalidTag:
            raise DecryptionError() from None
        if final:
            return b"".join(out)
        index += 1

"""Key commitment: an "invisible salamander" AES-GCM ciphertext is rejected by the envelope.

We build, with GHASH algebra, one AES-GCM ciphertext+tag that authenticates under two
different keys (so raw AESGCM accepts it under both, giving two different plaintexts),
then put it behind an envelope header: a token decrypts under exactly one data key,
the one its SHA-256 commitment names, so swapping in a wrap of the second key fails.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from styku_crypto.envelope import DataClass, Envelope
from styku_crypto.envelope._format import (
    COMMIT_DOMAIN,
    PURPOSE_CODES,
    build_layer,
    encode_context,
    lp,
    payload_aad,
    prefix,
    wrap_aad,
)
from styku_crypto.exceptions import DecryptionError
from styku_crypto.keys import KeyStore
from tests._support import leaks

_R = 0xE1 << 120


def _mul(x: int, y: int) -> int:
    """Multiplication in GF(2^128) with GCM's bit order (NIST SP 800-38D, Algorithm 1)."""
    z, v = 0, y
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= v
        v = (v >> 1) ^ _R if v & 1 else v >> 1
    return z


def _pow(x: int, e: int) -> int:
    result = 1 << 127  # the field's one
    while e:
        if e & 1:
            result = _mul(result, x)
        x = _mul(x, x)
        e >>= 1
    return result


def _inv(x: int) -> int:
    return _pow(x, (1 << 128) - 2)


def _aes_block(key: bytes, block: bytes) -> int:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return int.from_bytes(enc.update(block) + enc.finalize(), "big")


def _blocks(data: bytes) -> list[int]:
    data += b"\x00" * (-len(data) % 16)
    return [int.from_bytes(data[i : i + 16], "big") for i in range(0, len(data), 16)]


def _ghash(h: int, aad: bytes, ct: bytes) -> int:
    y = 0
    lens = ((len(aad) * 8) << 64) | (len(ct) * 8)
    for x in [*_blocks(aad), *_blocks(ct), lens]:
        y = _mul(y ^ x, h)
    return y


def salamander(k1: bytes, k2: bytes, nonce: bytes, aad: bytes, nblocks: int = 4) -> bytes:
    """One ciphertext+tag valid under both *k1* and *k2* (same nonce and AAD)."""
    h1, h2 = _aes_block(k1, b"\x00" * 16), _aes_block(k2, b"\x00" * 16)
    j0 = nonce + b"\x00\x00\x00\x01"
    e1, e2 = _aes_block(k1, j0), _aes_block(k2, j0)
    ct = bytearray(os.urandom(16 * nblocks))
    free = 0  # first ciphertext block is solved for
    ct[:16] = bytes(16)
    s1, s2 = _ghash(h1, aad, bytes(ct)), _ghash(h2, aad, bytes(ct))
    # The free block is followed by nblocks-1 ciphertext blocks and the length block.
    exponent = nblocks - free + 1
    coefficient = _pow(h1, exponent) ^ _pow(h2, exponent)
    value = _mul(e1 ^ s1 ^ e2 ^ s2, _inv(coefficient))
    ct[:16] = value.to_bytes(16, "big")
    tag = e1 ^ _ghash(h1, aad, bytes(ct))
    assert tag == e2 ^ _ghash(h2, aad, bytes(ct))
    return bytes(ct) + tag.to_bytes(16, "big")


def test_gf_arithmetic_matches_aesgcm() -> None:
    """Our GHASH reproduces AESGCM's tag, so the construction below is sound."""
    key, nonce, aad, pt = os.urandom(32), os.urandom(12), b"aad bytes", os.urandom(48)
    sealed = AESGCM(key).encrypt(nonce, pt, aad)
    ct, tag = sealed[:-16], sealed[-16:]
    h = _aes_block(key, b"\x00" * 16)
    expect = _aes_block(key, nonce + b"\x00\x00\x00\x01") ^ _ghash(h, aad, ct)
    assert expect.to_bytes(16, "big") == tag
    x = int.from_bytes(os.urandom(16), "big") | 1
    assert _mul(x, _inv(x)) == 1 << 127


def test_envelope_rejects_invisible_salamander(keystore: KeyStore) -> None:
    """Raw AES-GCM accepts one ciphertext under two keys; the envelope only the committed one."""
    env = Envelope(keystore)
    tenant, ctx = "acme", {"id": "1"}
    k1, k2 = os.urandom(32), os.urandom(32)
    leaks.register_secret(k1)
    leaks.register_secret(k2)
    pre = prefix(1, DataClass.CUSTOMER)
    tlp = lp(tenant.encode())
    c1 = hashlib.sha256(COMMIT_DOMAIN + k1).digest()
    aad = payload_aad(pre, 0, c1, tlp, encode_context(ctx))
    nonce = bytes(12)
    payload = salamander(k1, k2, nonce, aad)

    # Raw AES-GCM: both keys authenticate, with two different plaintexts.
    m1 = AESGCM(k1).decrypt(nonce, payload, aad)
    m2 = AESGCM(k2).decrypt(nonce, payload, aad)
    assert m1 != m2

    # Honest token: header commits to k1, wraps k1.
    tk = keystore._tenant_key(tenant, "customer")
    code = PURPOSE_CODES["customer"]
    w_aad = wrap_aad(pre, 0, code, tk.version, c1, tlp)
    good = pre + build_layer(code, tk.version, c1, tk.wrapper.encrypt(k1, [w_aad])) + payload
    assert env.decrypt(good, tenant=tenant, context=ctx) == m1

    # Malicious token: same commitment and payload, but the wrap now yields k2
    # (an insider with the tenant key can produce that wrap). Without key
    # commitment this would decrypt to m2; the envelope refuses it.
    evil = pre + build_layer(code, tk.version, c1, tk.wrapper.encrypt(k2, [w_aad])) + payload
    with pytest.raises(DecryptionError):
        env.decrypt(evil, tenant=tenant, context=ctx)

"""Key commitment: an "invisible salamander" AES-GCM ciphertext is rejected by the envelope.

We build, with GHASH algebra, one AES-GCM ciphertext+tag that authenticates under two
different keys (so raw AESGCM accepts it under both, giving two different plaintexts),
then put it behind an envelope header: a token decrypts under exactly one data key,
the one its SHA-256 commitment names, so swapping in a wrap of the second key fails.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from styku_crypto.envelope import DataClass, Envelope
from styku_crypto.envelope._format import (
    COMMIT_DOMAIN,
    PURPOSE_CODES,
    build_layer,
    commitment,
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
    c1 = commitment(pre, 0, k1, tlp, encode_context(ctx))
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


# --- one data key, two contexts (issue 12, item 5) ------------------------------------


def _solve_gf2(vectors: list[int], target: int) -> int:
    """A subset (bit mask over *vectors*) whose XOR is *target*, by Gaussian elimination."""
    pivots: dict[int, tuple[int, int]] = {}  # pivot bit -> (vector, subset mask)
    for index, vec in enumerate(vectors):
        mask = 1 << index
        for bit, (pv, pm) in pivots.items():
            if vec >> bit & 1:
                vec, mask = vec ^ pv, mask ^ pm
        if vec:
            bit = vec.bit_length() - 1
            for other, (ov, om) in list(pivots.items()):
                if ov >> bit & 1:
                    pivots[other] = (ov ^ vec, om ^ mask)
            pivots[bit] = (vec, mask)
    chosen = 0
    for bit, (pv, pm) in pivots.items():
        if target >> bit & 1:
            target, chosen = target ^ pv, chosen ^ pm
    assert target == 0, "no solution (rank too low)"
    return chosen


def two_context_payload(
    key: bytes, aad_of: Any, ctx1: dict[str, str], field: str, length: int
) -> tuple[dict[str, str], bytes]:
    """A second context (ASCII value of *field*) under which GCM accepts *key*'s ciphertext.

    GHASH is linear: ``GHASH_H(A2, C) = GHASH_H(A1, C)`` for every ciphertext ``C`` as
    soon as the AAD difference vanishes, and with the key known (so ``H``) the low seven
    bits of each character of an attacker-chosen context value are enough unknowns to
    solve for it over GF(2). No key search: one linear solve.
    """
    h = _aes_block(key, bytes(16))
    base = dict(ctx1)
    base[field] = "".join(chr(ord(ch) ^ 0x20) for ch in ctx1[field])  # start elsewhere
    target = _ghash(h, aad_of(ctx1), b"") ^ _ghash(h, aad_of(base), b"")
    effects = []
    for pos in range(length):
        for bit in range(7):
            probe = dict(base)
            value = list(base[field])
            value[pos] = chr(ord(value[pos]) ^ (1 << bit))
            probe[field] = "".join(value)
            effects.append(_ghash(h, aad_of(base), b"") ^ _ghash(h, aad_of(probe), b""))
    chosen = _solve_gf2(effects, target)
    value = [ord(ch) for ch in base[field]]
    for k in range(len(effects)):
        if chosen >> k & 1:
            value[k // 7] ^= 1 << (k % 7)
    ctx2 = dict(base)
    ctx2[field] = "".join(chr(v) for v in value)
    assert ctx2 != ctx1
    return ctx2, h.to_bytes(16, "big")


def test_one_gcm_payload_two_contexts_is_refused(keystore: KeyStore) -> None:
    """Attack: a key holder crafts a token valid under two contexts; the commitment refuses it.

    The insider picks the data key, so GCM's associated data alone does not bind the
    context: solving GHASH gives a second context (here an ASCII ``note``) under which
    the same payload authenticates. Under the old commitment (data key only) the whole
    token decrypted under both contexts; the commitment now also covers the prefix,
    tenant and canonical context, so the second context fails.
    """
    env = Envelope(keystore)
    tenant = "acme"
    ctx1 = {"id": "1", "note": "a" * 40}
    key = os.urandom(32)
    leaks.register_secret(key)
    pre = prefix(1, DataClass.CUSTOMER)
    tlp = lp(tenant.encode())
    tk = keystore._tenant_key(tenant, "customer")
    code = PURPOSE_CODES["customer"]

    def build(c: bytes, aad_of: Any) -> tuple[dict[str, str], bytes]:
        ctx2, _ = two_context_payload(key, aad_of, ctx1, "note", 40)
        payload = AESGCM(key).encrypt(bytes(12), b"transfer 10 EUR", aad_of(ctx1))
        assert AESGCM(key).decrypt(bytes(12), payload, aad_of(ctx2)) == b"transfer 10 EUR"
        w_aad = wrap_aad(pre, 0, code, tk.version, c, tlp)
        layer = build_layer(code, tk.version, c, tk.wrapper.encrypt(key, [w_aad]))
        return ctx2, pre + layer + payload

    # Before: commitment over the data key alone. GCM accepts both contexts and nothing
    # else in the token depends on the context, so a decoder of the old format would
    # return the plaintext under both (shown here with the primitives themselves).
    old_c = hashlib.sha256(COMMIT_DOMAIN + key).digest()
    ctx2, old_token = build(old_c, lambda ctx: payload_aad(pre, 0, old_c, tlp, encode_context(ctx)))
    assert ctx2 != ctx1
    assert all(ord(ch) < 128 for ch in ctx2["note"])

    # Now: the honest encoder commits to ctx1; the payload still authenticates under
    # ctx2 at the GCM level, but the envelope refuses the token under ctx2.
    new_c = commitment(pre, 0, key, tlp, encode_context(ctx1))
    ctx2, token = build(new_c, lambda ctx: payload_aad(pre, 0, new_c, tlp, encode_context(ctx)))
    assert env.decrypt(token, tenant=tenant, context=ctx1) == b"transfer 10 EUR"
    with pytest.raises(DecryptionError):
        env.decrypt(token, tenant=tenant, context=ctx2)
    # The old-format token is refused too (its commitment does not bind ctx1 either).
    with pytest.raises(DecryptionError):
        env.decrypt(old_token, tenant=tenant, context=ctx1)


def test_cached_suite_payload_two_contexts_is_refused(keystore: KeyStore) -> None:
    """Suite 3: the per-message context commitment refuses a payload solved for two contexts."""
    from styku_crypto.envelope._format import CONTEXT_COMMIT_DOMAIN, SUITE_CACHED

    env = Envelope(keystore)
    tenant = "acme"
    ctx1 = {"id": "1", "note": "a" * 40}
    key = os.urandom(32)
    pre = prefix(SUITE_CACHED, DataClass.CUSTOMER)
    tlp = lp(tenant.encode())
    c = commitment(pre, 0, key, tlp, b"")
    nonce = os.urandom(12)

    def aad_of(ctx: dict[str, str]) -> bytes:
        return payload_aad(pre, 0, c, tlp, encode_context(ctx))

    ctx2, _ = two_context_payload(key, aad_of, ctx1, "note", 40)
    payload = AESGCM(key).encrypt(nonce, b"cached record", aad_of(ctx1))
    assert AESGCM(key).decrypt(nonce, payload, aad_of(ctx2)) == b"cached record"
    tk = keystore._tenant_key(tenant, "customer")
    code = PURPOSE_CODES["customer"]
    wrapped = tk.wrapper.encrypt(key, [wrap_aad(pre, 0, code, tk.version, c, tlp)])
    committed = hashlib.sha256(
        CONTEXT_COMMIT_DOMAIN + pre + key + nonce + tlp + encode_context(ctx1)
    ).digest()
    token = pre + build_layer(code, tk.version, c, wrapped) + nonce + committed + payload
    assert env.decrypt(token, tenant=tenant, context=ctx1) == b"cached record"
    with pytest.raises(DecryptionError):
        env.decrypt(token, tenant=tenant, context=ctx2)

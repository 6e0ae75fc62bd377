"""Pins the streamed-token wire format by decoding one by hand, as docs/format.md specifies."""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import struct
from pathlib import Path

import pytest
from cryptography.cobblestone import Cobblestone256Decryptor
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from styku_crypto.envelope import DataClass, Envelope
from styku_crypto.keys import KeyStore


def _lp(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _encode_context(ctx: dict[str, str]) -> bytes:
    out = struct.pack(">I", len(ctx))
    for k, v in sorted(ctx.items(), key=lambda kv: kv[0].encode()):
        out += _lp(k.encode()) + _lp(v.encode())
    return out


@pytest.mark.parametrize("data_class", [DataClass.CUSTOMER, DataClass.SENSITIVE])
@pytest.mark.parametrize("size", [0, 100, 16384, 40000])
def test_hand_decoder(tmp_path: Path, data_class: DataClass, size: int) -> None:
    """A decoder written from docs/format.md alone (plus the tenant keys) reads the token."""
    store = KeyStore.open(tmp_path / "keys.db")
    store.create_tenant("acme")
    env = Envelope(store)
    ctx = {"table": "scans", "id": "42", "é": "ü"}
    data = os.urandom(size)
    sink = io.BytesIO()
    with env.encrypt_stream(sink, tenant="acme", context=ctx, data_class=data_class) as w:
        w.write(data)
    token = sink.getvalue()

    n = 1 if data_class is DataClass.CUSTOMER else 2
    prefix = token[:4]
    assert prefix == bytes((1, 2, int(data_class), n))
    deks, commitments = [], b""
    for i in range(n):
        layer = token[4 + 85 * i : 4 + 85 * (i + 1)]
        purpose, version = layer[0], struct.unpack(">I", layer[1:5])[0]
        commitment, wrapped = layer[5:37], layer[37:85]
        assert purpose == i + 1
        tk = store._tenant_key("acme", "customer" if purpose == 1 else "sensitive", version)
        aad = (
            b"styku-crypto/v1/dek-wrap\x00" + prefix + bytes((i, purpose))
            + struct.pack(">I", version) + commitment + _lp(b"acme")
        )  # fmt: skip
        dek = tk.wrapper.decrypt(wrapped, [aad])
        assert hmac.compare_digest(
            hashlib.sha256(
                b"styku-crypto/v1/dek-commitment\x00"
                + prefix
                + bytes((i,))
                + dek
                + _lp(b"acme")
                + _encode_context(ctx)
            ).digest(),
            commitment,
        )
        deks.append(dek)
        commitments += commitment
    header_len = 4 + 85 * n
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"styku-crypto/v1/stream-key\x00" + prefix,
    ).derive(b"".join(deks))
    c = (
        b"styku-crypto/v1/stream-context\x00" + prefix + commitments + _lp(b"acme")
        + _encode_context(ctx)
    )  # fmt: skip
    payload = token[header_len:]
    assert len(payload) == 56 + size + 16 * (size // 16384 + 1)

    dec = Cobblestone256Decryptor(key, c)
    assert dec.update(payload) + dec.finalize() == data

    salt, commit = payload[:24], payload[24:56]
    okm = HKDFExpand(
        algorithm=hashes.SHA512(),
        length=76,
        info=b"c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM\x00" + salt + c,
    ).derive(key)
    assert hmac.compare_digest(okm[44:], commit)
    aead, base = AESGCM(okm[:32]), int.from_bytes(okm[32:44], "big")
    out, body = b"", payload[56:]
    for i, off in enumerate(range(0, len(body), 16400)):
        nonce = (base ^ i).to_bytes(12, "big")
        out += aead.decrypt(nonce, body[off : off + 16400], None)
    assert out == data
    store.close()

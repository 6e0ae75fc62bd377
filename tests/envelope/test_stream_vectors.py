"""Wycheproof C2SP chunked-encryption vectors against the streaming and random-access layers."""

from __future__ import annotations

import hashlib
import io
import zlib
from typing import Any

import pytest

from styku_crypto.envelope import _stream
from styku_crypto.exceptions import DecryptionError, InvalidInputError
from tests._support.vectors import wycheproof_cases

FILES = [
    "c2sp_chunked_encryption_aes_128_gcm_test.json",
    "c2sp_chunked_encryption_aes_256_gcm_test.json",
]


def _cases() -> list[Any]:
    out = []
    for name in FILES:
        for group, test in wycheproof_cases(name):
            out.append(pytest.param(group, test, id=f"{group['aead'][-7:-4]}-{test['tcId']}"))
    return out


CASES = _cases()


def _stream_decrypt(key: bytes, ctx: bytes, ct: bytes, piece: int) -> tuple[bytes, bool]:
    """Decrypt in *piece*-sized updates; return (released plaintext, succeeded)."""
    out = bytearray()
    try:
        dec = _stream.ChunkedDecryptor(key, ctx)
        for i in range(0, len(ct), piece):
            out += dec.update(ct[i : i + piece])
        out += dec.finalize()
    except (DecryptionError, InvalidInputError):
        return bytes(out), False
    return bytes(out), True


@pytest.mark.parametrize(("group", "test"), CASES)
def test_cobblestone_streaming_vectors(group: dict[str, Any], test: dict[str, Any]) -> None:
    """Streaming decryption: valid vectors decrypt, invalid ones fail, only a valid prefix leaks."""
    key, ctx = bytes.fromhex(test["key"]), bytes.fromhex(test["ctx"])
    ct = zlib.decompress(bytes.fromhex(test["ct"]))
    for piece in (_stream.IO_BLOCK, 7919, _stream.SEALED_CHUNK):
        pt, ok = _stream_decrypt(key, ctx, ct, piece)
        if test["result"] == "valid":
            assert ok
            assert len(pt) == test["msgLength"]
            assert hashlib.sha512(pt).hexdigest() == test["msgSha512"]
        else:
            assert not ok
            if "PartialPlaintext" in test["flags"]:
                # Released bytes are whole authenticated chunks of the valid prefix, never more.
                assert len(pt) <= test["msgLength"]
                assert len(pt) % _stream.CHUNK_SIZE == 0
                if len(pt) == test["msgLength"]:
                    assert hashlib.sha512(pt).hexdigest() == test["msgSha512"]
            else:
                assert pt == b""


@pytest.mark.parametrize(("group", "test"), CASES)
def test_range_reader_vectors(group: dict[str, Any], test: dict[str, Any]) -> None:
    """Random access reads the whole message of valid vectors and rejects every invalid one."""
    key, ctx = bytes.fromhex(test["key"]), bytes.fromhex(test["ctx"])
    ct = zlib.decompress(bytes.fromhex(test["ct"]))
    src = io.BytesIO(b"HEADER" + ct)
    if test["result"] == "valid":
        reader = _stream.RangeReader(src, base=6, key=key, context=ctx)
        assert reader.length == test["msgLength"]
        pt = reader.read(0, reader.length + 10)
        assert hashlib.sha512(pt).hexdigest() == test["msgSha512"]
        return
    with pytest.raises((DecryptionError, InvalidInputError)):
        _stream.RangeReader(src, base=6, key=key, context=ctx).read(0, 1 << 40)
    if "ValidFinalChunk" not in test["flags"] and "InvalidKeySize" not in test["flags"]:
        with pytest.raises(DecryptionError):
            _stream.RangeReader(io.BytesIO(ct), base=0, key=key, context=ctx)


@pytest.mark.parametrize(("group", "test"), CASES)
def test_key_schedule_matches_vectors(group: dict[str, Any], test: dict[str, Any]) -> None:
    """Our HKDF-Expand derivation reproduces the vectors' AEAD key and base nonce."""
    if "aeadKey" not in test:
        assert "HeaderFailure" in test["flags"]
        return
    key, ctx = bytes.fromhex(test["key"]), bytes.fromhex(test["ctx"])
    ct = zlib.decompress(bytes.fromhex(test["ct"]))
    aead_key, nonce, _ = _stream.derive(key, ct[: _stream.SALT_SIZE], ctx)
    assert aead_key.hex() == test["aeadKey"]
    assert nonce.hex() == test["baseNonce"]


def test_vector_files_cover_both_key_sizes() -> None:
    """Both Cobblestone instantiations are exercised, with every documented failure class."""
    flags = {f for _, t in (c.values for c in CASES) for f in t["flags"]}
    assert {"Truncation", "TrailingData", "ChunkReordering", "WrongKey", "WrongContext"} <= flags
    assert len(CASES) >= 70

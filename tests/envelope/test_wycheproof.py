"""Wycheproof vectors against the primitives the envelope builds on.

AES-GCM (payload layer), AES-SIV-CMAC (data-key wrap) and HKDF-SHA256 (tenant
subkeys), from ``../shared/vectors/wycheproof/``; a missing file fails the test.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tests._support.vectors import wycheproof_cases


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def test_aes_gcm_vectors() -> None:
    """Every usable AES-GCM vector: valid ones round-trip exactly, invalid ones are refused."""
    checked = 0
    for group, case in wycheproof_cases("aes_gcm_test.json"):
        key, iv = _h(case["key"]), _h(case["iv"])
        if len(iv) < 8 or len(iv) > 128 or group["tagSize"] != 128:
            continue  # lengths AESGCM refuses at the API level
        aead = AESGCM(key)
        sealed = _h(case["ct"]) + _h(case["tag"])
        aad, msg = _h(case["aad"]), _h(case["msg"])
        if case["result"] == "invalid":
            with pytest.raises((InvalidTag, ValueError)):
                aead.decrypt(iv, sealed, aad)
        else:
            assert aead.decrypt(iv, sealed, aad) == msg, case["tcId"]
            assert aead.encrypt(iv, msg, aad) == sealed, case["tcId"]
        checked += 1
    assert checked > 150


def _siv_cases(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return list(wycheproof_cases(name))


def test_aes_siv_cmac_vectors() -> None:
    """Deterministic AES-SIV (the data-key wrap) matches every vector with keys AESSIV accepts."""
    checked = 0
    for _group, case in _siv_cases("aes_siv_cmac_test.json"):
        key = _h(case["key"])
        if len(key) not in (32, 48, 64):
            continue
        siv = AESSIV(key)
        aad, msg, ct = _h(case["aad"]), _h(case["msg"]), _h(case["ct"])
        if case["result"] == "invalid":
            with pytest.raises((InvalidTag, ValueError)):
                siv.decrypt(ct, [aad])
        else:
            assert siv.encrypt(msg, [aad]) == ct, case["tcId"]
            assert siv.decrypt(ct, [aad]) == msg, case["tcId"]
        checked += 1
    assert checked > 50


def test_aead_aes_siv_cmac_vectors() -> None:
    """AEAD AES-SIV vectors (nonce as an extra associated-data element) pass too."""
    checked = 0
    for _group, case in _siv_cases("aead_aes_siv_cmac_test.json"):
        key = _h(case["key"])
        if len(key) not in (32, 48, 64):
            continue
        siv = AESSIV(key)
        # RFC 5297 nonce-based use: the nonce is the last associated-data element,
        # and the synthetic IV (Wycheproof's "tag") precedes the ciphertext.
        parts = [_h(case["aad"]), _h(case["iv"])]
        sealed = _h(case["tag"]) + _h(case["ct"])
        if case["result"] == "invalid":
            with pytest.raises((InvalidTag, ValueError)):
                siv.decrypt(sealed, parts)
        else:
            assert siv.decrypt(sealed, parts) == _h(case["msg"]), case["tcId"]
        checked += 1
    assert checked > 50


def test_hkdf_sha256_vectors() -> None:
    """HKDF-SHA256 (tenant wrap and derived keys) matches every valid vector."""
    checked = 0
    for _group, case in wycheproof_cases("hkdf_sha256_test.json"):
        size = case["size"]
        if case["result"] == "invalid" or size > 255 * 32:
            continue
        salt = _h(case["salt"]) or None
        okm = HKDF(hashes.SHA256(), size, salt, _h(case["info"])).derive(_h(case["ikm"]))
        assert okm == _h(case["okm"]), case["tcId"]
        checked += 1
    assert checked > 50

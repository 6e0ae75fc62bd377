"""AES-SIV hazmat wrapper: Wycheproof deterministic and nonce-based AEAD vectors, misuse guards."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.exceptions import DecryptionError, InvalidInputError
from styku_crypto.hazmat import AesSiv
from tests._support import leaks
from tests._support.vectors import wycheproof_cases

DAEAD = list(wycheproof_cases("aes_siv_cmac_test.json"))
AEAD = list(wycheproof_cases("aead_aes_siv_cmac_test.json"))


@pytest.mark.parametrize(("group", "test"), DAEAD, ids=[str(t["tcId"]) for _, t in DAEAD])
def test_wycheproof_daead(group: dict[str, Any], test: dict[str, Any]) -> None:
    """Deterministic AES-SIV matches Wycheproof: valid vectors encrypt exactly, invalid fail."""
    key = bytes.fromhex(test["key"])
    aad, msg, ct = (bytes.fromhex(test[k]) for k in ("aad", "msg", "ct"))
    if len(key) not in (32, 48, 64):
        with pytest.raises(InvalidInputError):
            AesSiv(key)
        return
    siv = AesSiv(key)
    if test["result"] == "valid":
        assert siv.encrypt(msg, associated_data=[aad]) == ct
        assert siv.decrypt(ct, associated_data=[aad]) == msg
    else:
        with pytest.raises(DecryptionError):
            siv.decrypt(ct, associated_data=[aad])


@pytest.mark.parametrize(("group", "test"), AEAD, ids=[str(t["tcId"]) for _, t in AEAD])
def test_wycheproof_nonce_aead(group: dict[str, Any], test: dict[str, Any]) -> None:
    """Nonce-based AES-SIV (RFC 5297 section 5) matches Wycheproof, including tag edge cases."""
    key = bytes.fromhex(test["key"])
    nonce, aad, msg = (bytes.fromhex(test[k]) for k in ("iv", "aad", "msg"))
    sealed = bytes.fromhex(test["tag"]) + bytes.fromhex(test["ct"])
    if len(key) not in (32, 48, 64):
        with pytest.raises(InvalidInputError):
            AesSiv(key)
        return
    siv = AesSiv(key)
    if test["result"] == "valid":
        assert siv.encrypt(msg, associated_data=[aad], nonce=nonce) == sealed
        assert siv.decrypt(sealed, associated_data=[aad], nonce=nonce) == msg
    else:
        with pytest.raises(DecryptionError):
            siv.decrypt(sealed, associated_data=[aad], nonce=nonce)


@given(
    key=st.binary(min_size=64, max_size=64),
    msg=st.binary(max_size=200),
    ad=st.lists(st.binary(max_size=20), max_size=4),
)
def test_deterministic_roundtrip_and_ad_binding(key: bytes, msg: bytes, ad: list[bytes]) -> None:
    """Same input gives the same output; any change of associated data is rejected."""
    siv = AesSiv(key)
    sealed = siv.encrypt(msg, associated_data=ad)
    assert sealed == siv.encrypt(msg, associated_data=ad)
    assert siv.decrypt(sealed, associated_data=ad) == msg
    with pytest.raises(DecryptionError):
        siv.decrypt(sealed, associated_data=[*ad, b""])
    if ad:
        with pytest.raises(DecryptionError):
            siv.decrypt(sealed, associated_data=[b"".join(ad) + b"x"])


def test_short_ciphertext_and_bad_inputs_fail_closed() -> None:
    """Inputs shorter than a SIV, bytes passed as associated_data and bad key sizes are refused."""
    siv = AesSiv(bytes(32))
    with pytest.raises(DecryptionError):
        siv.decrypt(b"short")
    with pytest.raises(InvalidInputError):
        siv.encrypt(b"x", associated_data=b"not-a-list")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        AesSiv(bytes(16))
    with pytest.raises(InvalidInputError):
        AesSiv("k" * 32)  # type: ignore[arg-type]


def test_key_never_in_repr_or_pickle() -> None:
    """The key is not in repr and the object refuses to pickle."""
    key = bytes(range(64))
    leaks.register_secret(key)
    siv = AesSiv(key)
    leaks.assert_no_secret_in("AesSiv repr", repr(siv))
    assert "512" in repr(siv)
    with pytest.raises(TypeError):
        pickle.dumps(siv)

"""Deterministic (AES-SIV) field encryption: equality, binding, rotation, tampering."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.exceptions import (
    DecryptionError,
    InvalidInputError,
    KeyDestroyedError,
    UnsupportedFormatError,
)
from styku_crypto.fields import DeterministicEncryptor
from styku_crypto.keys import KeyStore
from tests._support import leaks

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(value=st.binary(max_size=64) | st.text(max_size=64) | json_values)
def test_roundtrip_and_determinism(det_store: KeyStore, value: Any) -> None:
    """Any bytes/str/JSON value round-trips and encrypts to the same token twice."""
    det = DeterministicEncryptor(det_store, name="members.ssn")
    token = det.encrypt(value, tenant="acme")
    assert token == det.encrypt(value, tenant="acme")
    assert det.decrypt(token, tenant="acme") == value
    assert type(det.decrypt(token, tenant="acme")) is type(value)


@pytest.fixture(scope="module")
def det_store(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    """A module-wide store for property tests."""
    ks = KeyStore.open(tmp_path_factory.mktemp("det") / "keys.db")
    ks.create_tenant("acme")
    ks.create_tenant("globex")
    return ks


def test_binding_to_tenant_name_and_context(store: KeyStore) -> None:
    """A token does not decrypt under another tenant, field name or context."""
    ssn = DeterministicEncryptor(store, name="members.ssn")
    other = DeterministicEncryptor(store, name="members.passport")
    secret = "078-05-1120-secret"
    leaks.register_secret(secret)
    token = ssn.encrypt(secret, tenant="acme", context={"table": "members"})
    assert token != ssn.encrypt(secret, tenant="globex", context={"table": "members"})
    for call in (
        lambda: ssn.decrypt(token, tenant="globex", context={"table": "members"}),
        lambda: other.decrypt(token, tenant="acme", context={"table": "members"}),
        lambda: ssn.decrypt(token, tenant="acme", context={"table": "staff"}),
        lambda: ssn.decrypt(token, tenant="acme"),
    ):
        with pytest.raises(DecryptionError) as info:
            call()
        leaks.assert_no_secret_in("deterministic error", str(info.value))


def test_every_bit_flip_rejected(store: KeyStore) -> None:
    """Flipping any bit of the sealed bytes is detected."""
    from styku_crypto.fields._codec import b64d, b64e

    det = DeterministicEncryptor(store, name="f")
    token = det.encrypt(b"payload", tenant="acme")
    prefix, body = token.rsplit(".", 1)
    raw = b64d(body)
    for i in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(DecryptionError):
            det.decrypt(f"{prefix}.{b64e(bytes(flipped))}", tenant="acme")


def test_malformed_tokens(store: KeyStore) -> None:
    """Foreign prefixes are UnsupportedFormatError; broken bodies are DecryptionError."""
    det = DeterministicEncryptor(store, name="f")
    for bad in ("", "de2.1.AAAA", "de1.x.AAAA", "de1.1"):
        with pytest.raises(UnsupportedFormatError):
            det.decrypt(bad, tenant="acme")
    for bad in ("de1.1.!!!", "de1.1.AAAA", "de1.1."):
        with pytest.raises(DecryptionError):
            det.decrypt(bad, tenant="acme")
    with pytest.raises(InvalidInputError):
        det.encrypt(object(), tenant="acme")
    with pytest.raises(InvalidInputError):
        det.encrypt("x", tenant="acme", context={"a": 1})  # type: ignore[dict-item]
    with pytest.raises(InvalidInputError):
        DeterministicEncryptor(store, name="")


def test_rotation_and_shred(store: KeyStore) -> None:
    """Old-version tokens keep decrypting after rotation; search covers both; shred destroys."""
    det = DeterministicEncryptor(store, name="f")
    old = det.encrypt("v", tenant="acme")
    store.rotate("acme")
    new = det.encrypt("v", tenant="acme")
    assert old != new
    assert det.decrypt(old, tenant="acme") == det.decrypt(new, tenant="acme") == "v"
    assert set(det.search_tokens("v", tenant="acme", versions=[1, 2])) == {old, new}
    assert det.search_tokens("v", tenant="acme") == [new]
    store.shred("acme")
    with pytest.raises(KeyDestroyedError):
        det.decrypt(old, tenant="acme")

"""The one-shot fast paths produce exactly the bytes of the general path (issue 15).

``seal_in_one_allocation`` builds a token in one buffer (no cliff from 128 KiB on);
``Envelope.encrypt`` uses it for large payloads and ``decrypt`` reads large tokens
through a memoryview. Each is checked against the plain construction.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import example, given, settings
from hypothesis import strategies as st

from styku_crypto.envelope import DataClass, DataKeyCache, Envelope
from styku_crypto.envelope import _envelope as envelope_module
from styku_crypto.envelope._format import (
    _decode_body,
    _decode_body_reference,
    from_text,
    to_text,
)
from styku_crypto.envelope._layers import ONE_ALLOCATION_FROM, seal, seal_in_one_allocation
from styku_crypto.exceptions import DecryptionError
from styku_crypto.keys import KeyStore

KEY = AESGCM(bytes(range(32)))
CTX = {"table": "scans", "id": "7"}

_BUFFERS: list[Callable[[bytes], bytes | bytearray | memoryview]] = [
    bytes,
    bytearray,
    memoryview,
]


@settings(max_examples=200, deadline=None)
@given(
    head=st.binary(max_size=300),
    data=st.binary(max_size=5000),
    aad=st.binary(max_size=200),
    nonce=st.binary(min_size=12, max_size=12),
    kind=st.sampled_from(_BUFFERS),
)
def test_seal_in_one_allocation_equals_concatenation(
    head: bytes,
    data: bytes,
    aad: bytes,
    nonce: bytes,
    kind: Callable[[bytes], bytes | bytearray | memoryview],
) -> None:
    """The one-allocation token equals header + AESGCM.encrypt, byte for byte, as bytes."""
    sealed = seal_in_one_allocation(KEY, nonce, head, kind(data), aad)
    assert type(sealed) is bytes
    assert sealed == head + KEY.encrypt(nonce, data, aad)


@pytest.mark.parametrize("size", [ONE_ALLOCATION_FROM - 1, ONE_ALLOCATION_FROM, 3 << 18])
def test_seal_switches_paths_with_the_same_bytes(size: int) -> None:
    """seal() gives the same bytes on both sides of its size switch."""
    data = os.urandom(size)
    assert seal(KEY, bytes(12), b"head", data, b"aad") == b"head" + KEY.encrypt(
        bytes(12), data, b"aad"
    )


@pytest.mark.parametrize("dc", list(DataClass))
@pytest.mark.parametrize("size", [1000, 20_000, ONE_ALLOCATION_FROM + 5])
def test_encrypt_fast_paths_equal_the_general_path(
    env: Envelope, monkeypatch: pytest.MonkeyPatch, dc: DataClass, size: int
) -> None:
    """Envelope.encrypt (fast paths, any size) equals _encrypt_from_parts with the same keys."""
    seed = bytes(range(64))
    monkeypatch.setattr(envelope_module, "_urandom", lambda n: seed[:n])
    data = os.urandom(size)
    token = env.encrypt(data, tenant="acme", context=CTX, data_class=dc)
    deks = [seed[:32]] if dc is DataClass.CUSTOMER else [seed[:32], seed[32:64]]
    general = env._encrypt_from_parts(data, tenant="acme", context=CTX, data_class=dc, deks=deks)
    assert token == general
    assert env.decrypt(token, tenant="acme", context=CTX, data_class=dc) == data
    assert env.decrypt(bytearray(token), tenant="acme", context=CTX) == data


@pytest.mark.parametrize("dc", list(DataClass))
def test_cached_large_payloads_round_trip(keystore: KeyStore, dc: DataClass) -> None:
    """Suite-3 tokens above the switch decrypt (cache path uses seal); tampering fails."""
    env = Envelope(keystore, data_key_cache=DataKeyCache())
    data = os.urandom(ONE_ALLOCATION_FROM + 100)
    token = env.encrypt(data, tenant="acme", context=CTX, data_class=dc)
    assert Envelope.inspect(token).suite == 3
    assert env.decrypt(token, tenant="acme", context=CTX) == data
    tampered = bytearray(token)
    tampered[-1] ^= 1
    with pytest.raises(DecryptionError):
        env.decrypt(bytes(tampered), tenant="acme", context=CTX)


_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _outcome(fn: Callable[[str], bytes], text: str) -> bytes | str:
    try:
        return fn(text)
    except DecryptionError:
        return "DecryptionError"


@settings(max_examples=500, deadline=None)
@example(body="000=")
@example(body="AA==")
@example(body="AB")
@example(body="A+/A")
@given(
    body=st.one_of(
        st.text(alphabet=_B64URL, max_size=40),
        st.text(alphabet=_B64URL + "+/=. \n\u00e9", max_size=40),
        st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    )
)
def test_fast_text_decoder_equals_reference(body: str) -> None:
    """_decode_body accepts, refuses and returns exactly what the reference decoder does."""
    text = "stk1." + body
    assert _outcome(_decode_body, text) == _outcome(_decode_body_reference, text)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=300))
def test_fast_text_encoder_equals_reference(raw: bytes) -> None:
    """to_text equals prefix + urlsafe_b64encode without padding, and round-trips."""
    text = to_text(raw)
    assert text == "stk1." + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert from_text(text) == raw

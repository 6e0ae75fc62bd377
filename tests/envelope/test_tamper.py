"""Every tampering, truncation and swap of a token is rejected with a typed error."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.envelope import DataClass, DataKeyCache, Envelope
from styku_crypto.envelope._format import to_text
from styku_crypto.exceptions import (
    DecryptionError,
    KeyNotFoundError,
    UnsupportedFormatError,
)
from styku_crypto.keys import KeyStore
from tests._support import leaks

REJECTED = (DecryptionError, UnsupportedFormatError, KeyNotFoundError)
CTX = {"table": "scans", "id": "42"}


def _tokens(keystore: KeyStore) -> dict[str, bytes]:
    env = Envelope(keystore)
    cached = Envelope(keystore, data_key_cache=DataKeyCache())
    data = b"tamper target!"
    leaks.register_secret(data)
    return {
        "customer": env.encrypt(data, tenant="acme", context=CTX),
        "sensitive": env.encrypt(data, tenant="acme", context=CTX, data_class=DataClass.SENSITIVE),
        "cached": cached.encrypt(data, tenant="acme", context=CTX),
        "cached-sensitive": cached.encrypt(
            data, tenant="acme", context=CTX, data_class=DataClass.SENSITIVE
        ),
    }


@pytest.mark.parametrize("kind", ["customer", "sensitive", "cached", "cached-sensitive"])
def test_every_bit_flip_rejected(keystore: KeyStore, kind: str) -> None:
    """Flipping any single bit of a token makes decrypt raise a typed error."""
    env = Envelope(keystore)
    token = _tokens(keystore)[kind]
    for i in range(len(token) * 8):
        bad = bytearray(token)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(REJECTED):
            env.decrypt(bytes(bad), tenant="acme", context=CTX)


@pytest.mark.parametrize("kind", ["customer", "sensitive", "cached", "cached-sensitive"])
def test_every_truncation_rejected(keystore: KeyStore, kind: str) -> None:
    """Every proper prefix of a token, and any appended byte, is rejected as tampering."""
    env = Envelope(keystore)
    token = _tokens(keystore)[kind]
    for n in range(len(token)):
        with pytest.raises((DecryptionError, UnsupportedFormatError)):
            env.decrypt(token[:n], tenant="acme", context=CTX)
    with pytest.raises(DecryptionError):
        env.decrypt(token + b"\x00", tenant="acme", context=CTX)


@given(
    ctx=st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3),
    other=st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3),
)
def test_context_swap_rejected(
    shared_env: Envelope, ctx: dict[str, str], other: dict[str, str]
) -> None:
    """A token presented with any other context fails with DecryptionError."""
    token = shared_env.encrypt(b"bound to ctx", tenant="acme", context=ctx)
    if other == ctx:
        assert shared_env.decrypt(token, tenant="acme", context=other) == b"bound to ctx"
    else:
        with pytest.raises(DecryptionError):
            shared_env.decrypt(token, tenant="acme", context=other)


@pytest.mark.parametrize("data_class", list(DataClass))
def test_tenant_swap_rejected(env: Envelope, data_class: DataClass) -> None:
    """A token of one tenant fails with DecryptionError for another tenant on the same versions."""
    token = env.encrypt(b"acme's", tenant="acme", context=CTX, data_class=data_class)
    with pytest.raises(DecryptionError):
        env.decrypt(token, tenant="beta", context=CTX)
    with pytest.raises(KeyNotFoundError):
        env.decrypt(token, tenant="nobody", context=CTX)


def test_data_class_swap_rejected(env: Envelope) -> None:
    """Relabelling a token's data class (and layer count) is rejected."""
    c = env.encrypt(b"customer", tenant="acme", context=CTX)
    s = env.encrypt(b"sensitive", tenant="acme", context=CTX, data_class=DataClass.SENSITIVE)
    as_sensitive = c[:2] + bytes([2, 2]) + c[4:]
    as_customer = s[:2] + bytes([1, 1]) + s[4:]
    inner_only = s[:2] + bytes([1, 1]) + s[4:5] + s[89 + 1 : 174] + s[174:]
    for bad in (as_sensitive, as_customer, c[:2] + b"\x02" + c[3:], inner_only):
        with pytest.raises(REJECTED):
            env.decrypt(bad, tenant="acme", context=CTX)


@pytest.mark.parametrize(
    ("offset", "value"),
    [(0, 0), (0, 2), (0, 255), (1, 0), (1, 4), (1, 255), (2, 0), (2, 3), (2, 255)],
)
def test_unknown_version_suite_class(env: Envelope, offset: int, value: int) -> None:
    """Unknown format version, suite or data class raise UnsupportedFormatError."""
    token = bytearray(env.encrypt(b"x", tenant="acme", context=CTX))
    token[offset] = value
    with pytest.raises(UnsupportedFormatError):
        env.decrypt(bytes(token), tenant="acme", context=CTX)


def test_one_shot_token_relabelled_as_streamed_rejected(env: Envelope) -> None:
    """A one-shot token whose suite byte claims "streamed" (2) fails as tampering."""
    token = bytearray(env.encrypt(b"x" * 40, tenant="acme", context=CTX))
    token[1] = 2
    with pytest.raises(DecryptionError):
        env.decrypt(bytes(token), tenant="acme", context=CTX)


def test_text_form_tampering(env: Envelope) -> None:
    """Malformed or foreign text tokens are rejected; other versions are unsupported."""
    text = env.encrypt_text(b"text", tenant="acme", context=CTX)
    for bad in (
        text[:-1],
        text + "A",
        text.replace("stk1.", "stk1.!"),
        text[:-2] + "==",
        text + "AA",
    ):
        with pytest.raises(DecryptionError):
            env.decrypt_text(bad, tenant="acme", context=CTX)
    for foreign in ("stk2." + text[5:], "hello", "gAAAAA"):
        with pytest.raises(UnsupportedFormatError):
            env.decrypt_text(foreign, tenant="acme", context=CTX)
    token = env.encrypt(b"\xff\xfe", tenant="acme", context=CTX)
    assert env.decrypt_text(to_text(token), tenant="acme", context=CTX) == b"\xff\xfe"


def test_failures_emit_reasoned_events(env: Envelope) -> None:
    """Each refused decrypt emits envelope.decrypt.failed with its reason class."""
    token = env.encrypt(b"evented", tenant="acme", context=CTX)
    bad = bytearray(token)
    bad[-1] ^= 1
    cases = [
        (bytes(bad), "acme", "tamper"),
        (b"\x09" + token[1:], "acme", "unsupported_format"),
        (token, "nobody", "unknown_key"),
    ]
    for tok, tenant, reason in cases:
        before = len(leaks.captured_records())
        with pytest.raises(REJECTED):
            env.decrypt(tok, tenant=tenant, context=CTX)
        new = [
            r
            for r in leaks.captured_records()[before:]
            if r.getMessage() == "envelope.decrypt.failed"
        ]
        assert new, reason
        assert new[-1].levelno == logging.WARNING
        assert new[-1].styku_event["reason"] == reason  # type: ignore[attr-defined]

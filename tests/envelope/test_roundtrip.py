"""Round trips of Envelope.encrypt/decrypt over payloads, contexts and data classes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.envelope import DataClass, DataKeyCache, Envelope
from styku_crypto.envelope._format import TEXT_PREFIX
from styku_crypto.exceptions import DecryptionError, InvalidInputError
from styku_crypto.keys import KeyStore
from tests._support import leaks

contexts = st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=4)
classes = st.sampled_from(list(DataClass))


@given(data=st.binary(max_size=2048), context=contexts, data_class=classes)
def test_roundtrip_any_payload_and_context(
    shared_env: Envelope, data: bytes, context: dict[str, str], data_class: DataClass
) -> None:
    """Any payload under any context decrypts back to itself, for both data classes."""
    leaks.register_secret(data)
    token = shared_env.encrypt(data, tenant="acme", context=context, data_class=data_class)
    assert shared_env.decrypt(token, tenant="acme", context=dict(context)) == data
    text = shared_env.encrypt_text(data, tenant="acme", context=context, data_class=data_class)
    assert text.startswith(TEXT_PREFIX)
    assert shared_env.decrypt_text(text, tenant="acme", context=context) == data


@given(data=st.binary(max_size=512), context=contexts, data_class=classes)
def test_roundtrip_with_data_key_cache(
    shared_keystore: KeyStore, data: bytes, context: dict[str, str], data_class: DataClass
) -> None:
    """Tokens made with a data-key cache (suite 3) decrypt with a plain Envelope."""
    leaks.register_secret(data)
    cached = Envelope(shared_keystore, data_key_cache=DataKeyCache())
    token = cached.encrypt(data, tenant="acme", context=context, data_class=data_class)
    assert token[1] == 3
    assert Envelope(shared_keystore).decrypt(token, tenant="acme", context=context) == data


def test_sizes_and_fresh_keys(env: Envelope) -> None:
    """Customer tokens add 105 bytes, sensitive 206, and two encryptions never share a data key."""
    data = b"record payload 0123456789"
    leaks.register_secret(data)
    a = env.encrypt(data, tenant="acme", context={"id": "1"})
    b = env.encrypt(data, tenant="acme", context={"id": "1"})
    s = env.encrypt(data, tenant="acme", context={"id": "1"}, data_class=DataClass.SENSITIVE)
    assert len(a) - len(data) == 105 == env.ciphertext_length(0)
    assert len(s) - len(data) == 206 == env.ciphertext_length(0, data_class=DataClass.SENSITIVE)
    assert a[5:37] != b[5:37]  # commitments differ: fresh data keys
    assert a[89:] != b[89:]
    assert env.plaintext_length(a) == len(data)
    assert env.plaintext_length(s) == len(data)


def test_buffer_inputs_and_large_payload(env: Envelope) -> None:
    """bytearray/memoryview inputs work and a 3 MiB payload takes the buffer path."""
    big = bytes(range(256)) * (3 * 4096)
    for data in (bytearray(b"abcdefghij"), memoryview(b"klmnopqrstu"), big):
        token = env.encrypt(data, tenant="acme", context={})
        assert isinstance(token, bytes)
        assert env.decrypt(token, tenant="acme", context={}) == bytes(data)
        assert env.decrypt(bytearray(token), tenant="acme", context={}) == bytes(data)
        assert env.decrypt(memoryview(token), tenant="acme", context={}) == bytes(data)


@pytest.mark.parametrize("data_class", list(DataClass))
def test_encrypt_into(env: Envelope, data_class: DataClass) -> None:
    """encrypt_into writes a valid token into a caller buffer and refuses a short one."""
    data = b"into the buffer, please" * 10
    leaks.register_secret(data)
    need = env.ciphertext_length(len(data), data_class=data_class)
    out = bytearray(need + 7)
    n = env.encrypt_into(data, out, tenant="acme", context={"k": "v"}, data_class=data_class)
    assert n == need
    assert env.decrypt(bytes(out[:n]), tenant="acme", context={"k": "v"}) == data
    with pytest.raises(InvalidInputError):
        env.encrypt_into(
            data, bytearray(need - 1), tenant="acme", context={}, data_class=data_class
        )
    with pytest.raises(InvalidInputError):
        env.encrypt_into(data, memoryview(bytes(need)), tenant="acme", context={})


def test_context_is_required_keyword(env: Envelope) -> None:
    """Forgetting the context is a TypeError, never a silent empty context."""
    with pytest.raises(TypeError):
        env.encrypt(b"x", tenant="acme")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        env.decrypt(b"x", tenant="acme")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        env.encrypt(b"x", "acme", {})  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad",
    [None, ["a", "b"], {"a": 1}, {1: "a"}, {"a": b"b"}, {"\ud800": "x"}, {"a": "x" * 70000}],
)
def test_bad_contexts_refused(env: Envelope, bad: object) -> None:
    """Contexts that are not str-to-str mappings are refused with InvalidInputError."""
    with pytest.raises(InvalidInputError):
        env.encrypt(b"x", tenant="acme", context=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [1, "CUSTOMER", None])
def test_bad_data_class_refused(env: Envelope, bad: object) -> None:
    """Only DataClass members are accepted as data_class."""
    with pytest.raises(InvalidInputError):
        env.encrypt(b"x", tenant="acme", context={}, data_class=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", 5, None])
def test_bad_tenant_refused(env: Envelope, bad: object) -> None:
    """Empty or non-str tenants are refused with InvalidInputError."""
    with pytest.raises(InvalidInputError):
        env.encrypt(b"x", tenant=bad, context={})  # type: ignore[arg-type]


def test_text_token_given_to_binary_decrypt(env: Envelope) -> None:
    """Passing a text token to decrypt() is an input error that points at decrypt_text()."""
    text = env.encrypt_text(b"t", tenant="acme", context={})
    with pytest.raises(InvalidInputError, match="decrypt_text"):
        env.decrypt(text, tenant="acme", context={})  # type: ignore[arg-type]


@pytest.mark.parametrize("data_class", list(DataClass))
def test_decrypt_into(env: Envelope, data_class: DataClass) -> None:
    """decrypt_into fills a caller buffer, refuses a short one, and zeroes it on tampering."""
    data = b"decrypt me into a buffer" * 20
    leaks.register_secret(data)
    token = env.encrypt(data, tenant="acme", context={"k": "v"}, data_class=data_class)
    out = bytearray(len(data) + 5)
    assert env.decrypt_into(token, out, tenant="acme", context={"k": "v"}) == len(data)
    assert bytes(out[: len(data)]) == data
    with pytest.raises(InvalidInputError):
        env.decrypt_into(token, bytearray(len(data) - 1), tenant="acme", context={"k": "v"})
    bad = bytearray(token)
    bad[-1] ^= 1
    out = bytearray(len(data))
    with pytest.raises(DecryptionError):
        env.decrypt_into(bytes(bad), out, tenant="acme", context={"k": "v"})
    assert out == bytearray(len(data))  # no unauthenticated plaintext left behind

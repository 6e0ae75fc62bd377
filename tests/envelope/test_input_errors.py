"""Wrong tenants and malformed arguments fail as docs/envelope.md's error table says (issue 14)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from styku_crypto.envelope import DataClass, Envelope
from styku_crypto.exceptions import (
    DecryptionError,
    InvalidInputError,
    InvalidInputTypeError,
    KeyNotFoundError,
)
from styku_crypto.keys import KeyStore

CTX = {"table": "scans", "id": "1"}


@pytest.mark.parametrize("dc", list(DataClass))
def test_wrong_tenant_is_always_decryption_error(keystore: KeyStore, dc: DataClass) -> None:
    """Another tenant's token is DecryptionError whether or not this tenant has its version."""
    keystore.rotate("acme")  # acme: customer v2 (and sensitive v2); beta: v1 only
    env = Envelope(keystore)
    v2 = env.encrypt(b"x", tenant="acme", context=CTX, data_class=dc)
    assert Envelope.inspect(v2).key_versions[0] == ("customer", 2)
    beta = env.encrypt(b"y", tenant="beta", context=CTX, data_class=dc)
    for token, reader in ((v2, "beta"), (beta, "acme")):
        with pytest.raises(DecryptionError) as caught:
            env.decrypt(token, tenant=reader, context=CTX)
        assert type(caught.value) is DecryptionError
        assert "version" not in str(caught.value)
        with pytest.raises(DecryptionError):
            env.rewrap(token, tenant=reader)
        sink = io.BytesIO()
        with env.encrypt_stream(sink, tenant="acme", context=CTX, data_class=dc) as w:
            w.write(b"z")
    with pytest.raises(DecryptionError):
        env.decrypt(sink.getvalue(), tenant="beta", context=CTX)


def test_unknown_tenant_is_still_key_not_found(env: Envelope) -> None:
    """A tenant the store does not know is KeyNotFoundError (a fact about the store)."""
    token = env.encrypt(b"x", tenant="acme", context=CTX)
    with pytest.raises(KeyNotFoundError):
        env.decrypt(token, tenant="nobody", context=CTX)
    with pytest.raises(KeyNotFoundError):
        env.encrypt(b"x", tenant="nobody", context=CTX)


@pytest.mark.parametrize("data", ["a str", 42, None, [1, 2], object()])
def test_non_buffer_data_is_invalid_input_type(env: Envelope, data: Any) -> None:
    """Data that is not bytes-like is InvalidInputTypeError (also TypeError and ValueError)."""
    for call in (
        lambda: env.encrypt(data, tenant="acme", context=CTX),
        lambda: env.encrypt_text(data, tenant="acme", context=CTX),
        lambda: env.encrypt_into(data, bytearray(400), tenant="acme", context=CTX),
        lambda: env.decrypt(data, tenant="acme", context=CTX),
        lambda: env.decrypt_into(data, bytearray(400), tenant="acme", context=CTX),
    ):
        with pytest.raises(InvalidInputTypeError) as caught:
            call()
        assert isinstance(caught.value, TypeError)
        assert isinstance(caught.value, InvalidInputError)


def test_other_buffers_still_work(env: Envelope) -> None:
    """bytearray, memoryview and array buffers remain valid data."""
    import array

    for data in (bytearray(b"abc"), memoryview(b"abc"), array.array("B", b"abc")):
        token = env.encrypt(data, tenant="acme", context=CTX)
        assert env.decrypt(memoryview(token), tenant="acme", context=CTX) == b"abc"


@pytest.mark.parametrize("tenant", ["-bad", "", " acme", "a" * 129, "acme\n", "ac/me", "é"])
def test_malformed_tenant_is_invalid_input(env: Envelope, tenant: str) -> None:
    """A tenant that is not a valid tenant name is InvalidInputError, before any lookup."""
    token = env.encrypt(b"x", tenant="acme", context=CTX)
    with pytest.raises(InvalidInputError) as caught:
        env.encrypt(b"x", tenant=tenant, context=CTX)
    assert not isinstance(caught.value, KeyNotFoundError)
    with pytest.raises(InvalidInputError):
        env.decrypt(token, tenant=tenant, context=CTX)


def test_non_str_tenant_is_invalid_input_type(env: Envelope) -> None:
    """A tenant that is not a str is InvalidInputTypeError."""
    with pytest.raises(InvalidInputTypeError):
        env.encrypt(b"x", tenant=b"acme", context=CTX)  # type: ignore[arg-type]

"""Readers that name a data class refuse tokens of any other class (issue 12, item 1)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from styku_crypto.envelope import DataClass, DataKeyCache, Envelope, TokenInfo
from styku_crypto.exceptions import DecryptionError, InvalidInputError, UnsupportedFormatError
from styku_crypto.keys import KeyStore

CTX = {"table": "people", "field": "dob"}
C, S = DataClass.CUSTOMER, DataClass.SENSITIVE


def _oneshot(env: Envelope, dc: DataClass) -> bytes:
    return env.encrypt(b"1970-01-01", tenant="acme", context=CTX, data_class=dc)


def _stream(env: Envelope, dc: DataClass, size: int = 40_000) -> bytes:
    buf = io.BytesIO()
    with env.encrypt_stream(buf, tenant="acme", context=CTX, data_class=dc) as w:
        w.write(b"s" * size)
    return buf.getvalue()


@pytest.mark.parametrize("dc", list(DataClass))
@pytest.mark.parametrize("cached", [False, True])
def test_decrypt_refuses_other_class_one_shot(
    keystore: KeyStore, dc: DataClass, cached: bool
) -> None:
    """decrypt, decrypt_into and decrypt_text refuse a suite 1/3 token of the other class."""
    env = Envelope(keystore, data_key_cache=DataKeyCache() if cached else None)
    token = _oneshot(env, dc)
    other = S if dc is C else C
    text = env.encrypt_text(b"1970-01-01", tenant="acme", context=CTX, data_class=dc)
    assert env.decrypt(token, tenant="acme", context=CTX, data_class=dc) == b"1970-01-01"
    assert env.decrypt(token, tenant="acme", context=CTX) == b"1970-01-01"
    with pytest.raises(DecryptionError):
        env.decrypt(token, tenant="acme", context=CTX, data_class=other)
    with pytest.raises(DecryptionError):
        env.decrypt_text(text, tenant="acme", context=CTX, data_class=other)
    out = bytearray(64)
    with pytest.raises(DecryptionError):
        env.decrypt_into(token, out, tenant="acme", context=CTX, data_class=other)
    assert out == bytearray(64)
    n = env.decrypt_into(token, out, tenant="acme", context=CTX, data_class=dc)
    assert bytes(out[:n]) == b"1970-01-01"


@pytest.mark.parametrize("dc", list(DataClass))
def test_stream_readers_refuse_other_class(env: Envelope, dc: DataClass, tmp_path: Path) -> None:
    """Every streamed-token reader refuses a stream of the other class."""
    token = _stream(env, dc)
    other = S if dc is C else C
    src = tmp_path / "in.stk"
    src.write_bytes(token)
    dst = tmp_path / "out.bin"
    with pytest.raises(DecryptionError):
        env.decrypt_stream(io.BytesIO(token), tenant="acme", context=CTX, data_class=other)
    with pytest.raises(DecryptionError):
        env.decrypt_file(src, dst, tenant="acme", context=CTX, data_class=other)
    assert not dst.exists()
    with pytest.raises(DecryptionError):
        env.decrypt_range(src, 0, 10, tenant="acme", context=CTX, data_class=other)
    with pytest.raises(DecryptionError):
        env.decrypt(token, tenant="acme", context=CTX, data_class=other)
    reader = env.decrypt_stream(io.BytesIO(token), tenant="acme", context=CTX, data_class=dc)
    assert reader.read() == b"s" * 40_000
    assert env.decrypt_file(src, dst, tenant="acme", context=CTX, data_class=dc) == 40_000
    assert env.decrypt_range(src, 5, 3, tenant="acme", context=CTX, data_class=dc) == b"sss"


@pytest.mark.parametrize("bad", [1, "customer", 3, object()])
def test_bad_data_class_argument_is_input_error(env: Envelope, bad: Any) -> None:
    """A data_class that is not a DataClass (or None) is InvalidInputError on every reader."""
    token = _oneshot(env, C)
    calls: list[Callable[[], object]] = [
        lambda: env.decrypt(token, tenant="acme", context=CTX, data_class=bad),
        lambda: env.decrypt_into(token, bytearray(64), tenant="acme", context=CTX, data_class=bad),
        lambda: env.decrypt_stream(io.BytesIO(), tenant="acme", context=CTX, data_class=bad),
    ]
    for call in calls:
        with pytest.raises(InvalidInputError):
            call()


@pytest.mark.parametrize("dc", list(DataClass))
@pytest.mark.parametrize("kind", ["one-shot", "cached-data-key", "streamed"])
def test_inspect_reads_the_header_only(keystore: KeyStore, dc: DataClass, kind: str) -> None:
    """inspect() gives suite, class, key versions and sizes of every token kind, without keys."""
    keystore.rotate("acme", purpose="customer")
    cache = DataKeyCache() if kind == "cached-data-key" else None
    env = Envelope(keystore, data_key_cache=cache)
    if kind == "streamed":
        token = _stream(env, dc, 40_000)
        size = 40_000
    else:
        token = _oneshot(env, dc)
        size = 10
    keystore.close()  # no key may be needed from here on
    info = Envelope.inspect(token)
    assert isinstance(info, TokenInfo)
    assert info.suite_name == kind
    assert info.format_version == 1
    assert info.data_class is dc
    expected = (("customer", 2),) if dc is C else (("customer", 2), ("sensitive", 1))
    assert info.key_versions == expected
    assert info.token_length == len(token)
    assert info.plaintext_length == size
    layers_end = 89 if dc is C else 174
    extra = (12 * len(expected) + 32) if kind == "cached-data-key" else 0  # nonces, ctx commitment
    assert info.header_length == layers_end + extra
    from styku_crypto.envelope._format import to_text

    assert Envelope.inspect(to_text(token)) == info


@pytest.mark.parametrize(
    ("token", "error"),
    [
        (b"\x02\x01\x01\x01" + bytes(200), UnsupportedFormatError),
        (b"\x01\x09\x01\x01" + bytes(200), UnsupportedFormatError),
        (b"\x01\x01\x01\x01" + bytes(10), DecryptionError),
        ("stk9.AAAA", UnsupportedFormatError),
        (12, InvalidInputError),
    ],
)
def test_inspect_refuses_malformed_headers(token: Any, error: type[Exception]) -> None:
    """inspect() fails closed with the documented error on unknown or truncated headers."""
    with pytest.raises(error):
        Envelope.inspect(token)

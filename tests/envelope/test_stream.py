"""Streamed tokens through the Envelope: same key hierarchy, header, commitment, rewrap, shred."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.envelope import DataClass, Envelope, _stream
from styku_crypto.envelope._format import LAYER_LEN, PREFIX_LEN, SUITE_STREAM, parse_header
from styku_crypto.exceptions import (
    DecryptionError,
    InvalidInputError,
    KeyDestroyedError,
    KeyNotFoundError,
    UnsupportedFormatError,
)
from styku_crypto.keys import KeyStore
from tests._support import leaks

C = _stream.CHUNK_SIZE
CTX = {"table": "scans", "id": "42"}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Envelope]:
    """An envelope over a real SQLite key store with tenants acme and globex."""
    store = KeyStore.open(tmp_path_factory.mktemp("stream") / "keys.db")
    store.create_tenant("acme")
    store.create_tenant("globex")
    try:
        yield Envelope(store)
    finally:
        store.close()


@pytest.fixture
def fresh_env(tmp_path: Path) -> Iterator[Envelope]:
    """A per-test envelope (for rotation and shredding)."""
    store = KeyStore.open(tmp_path / "keys.db")
    store.create_tenant("acme")
    try:
        yield Envelope(store)
    finally:
        store.close()


def seal(
    env: Envelope,
    data: bytes,
    *,
    tenant: str = "acme",
    context: dict[str, str] | None = None,
    data_class: DataClass = DataClass.CUSTOMER,
) -> bytes:
    sink = io.BytesIO()
    with env.encrypt_stream(
        sink, tenant=tenant, context=context or CTX, data_class=data_class
    ) as writer:
        writer.write(data)
    return sink.getvalue()


def unseal(
    env: Envelope, token: bytes, *, tenant: str = "acme", context: dict[str, str] | None = None
) -> bytes:
    reader = env.decrypt_stream(io.BytesIO(token), tenant=tenant, context=context or CTX)
    data = reader.read()
    assert reader.complete
    return data


@given(
    size=st.sampled_from([0, 1, C - 1, C, C + 1, 3 * C]) | st.integers(0, 4 * C),
    data_class=st.sampled_from([DataClass.CUSTOMER, DataClass.SENSITIVE]),
)
def test_round_trip_both_data_classes(env: Envelope, size: int, data_class: DataClass) -> None:
    """Any size round-trips through streams, and Envelope.decrypt reads the same token."""
    data = os.urandom(size)
    token = seal(env, data, data_class=data_class)
    assert unseal(env, token) == data
    assert env.decrypt(token, tenant="acme", context=CTX) == data
    assert env.decrypt_text(env_text(token), tenant="acme", context=CTX) == data


def env_text(token: bytes) -> str:
    from styku_crypto.envelope._format import to_text

    return to_text(token)


def test_streamed_token_header_is_a_v1_token(env: Envelope) -> None:
    """The header is the token format v1 header with suite 2 and one layer per key purpose."""
    token = seal(env, b"x" * 100, data_class=DataClass.SENSITIVE)
    assert token[:4] == bytes((1, SUITE_STREAM, 2, 2))
    header = parse_header(token)
    assert header.suite == SUITE_STREAM
    assert header.length == PREFIX_LEN + 2 * LAYER_LEN
    assert len(token) == header.length + _stream.sealed_length(100)


@pytest.mark.parametrize(
    ("tenant", "context"),
    [("globex", CTX), ("acme", {"table": "scans", "id": "43"}), ("acme", {})],
)
def test_wrong_tenant_or_context_rejected(
    env: Envelope, tenant: str, context: dict[str, str]
) -> None:
    """Another tenant or context fails before any plaintext, with DecryptionError."""
    token = seal(env, os.urandom(3 * C))
    with pytest.raises(DecryptionError):
        env.decrypt_stream(io.BytesIO(token), tenant=tenant, context=context).read(1)
    with pytest.raises(DecryptionError):
        env.decrypt(token, tenant=tenant, context=context)


def test_data_class_swap_rejected(env: Envelope) -> None:
    """Rewriting the data-class byte (sensitive -> customer) is detected."""
    token = bytearray(seal(env, b"payload" * 100, data_class=DataClass.SENSITIVE))
    token[2] = 1
    with pytest.raises(DecryptionError):
        env.decrypt(bytes(token), tenant="acme", context=CTX)


@given(data=st.data())
def test_any_bit_flip_in_token_rejected(env: Envelope, data: st.DataObject) -> None:
    """Flipping any bit anywhere in a streamed token is rejected (header or payload).

    A flipped key-version field routes to a version that does not exist
    (KeyNotFoundError); every other flip is a format or authentication failure.
    """
    token = bytearray(seal(env, os.urandom(data.draw(st.sampled_from([0, 10, C + 5])))))
    bit = data.draw(st.integers(0, len(token) * 8 - 1))
    token[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises((DecryptionError, UnsupportedFormatError, KeyNotFoundError)):
        unseal(env, bytes(token))


def test_every_truncation_rejected(env: Envelope) -> None:
    """Every truncation of a two-chunk token fails (header, salt, chunk, tag, final chunk)."""
    token = seal(env, os.urandom(C + 100))
    for cut in [*range(200), *range(len(token) - 200, len(token))]:
        with pytest.raises((DecryptionError, UnsupportedFormatError)):
            unseal(env, token[:cut])


def test_unknown_suite_and_version_rejected(env: Envelope) -> None:
    """Unknown versions/suites are UnsupportedFormatError; streams refuse one-shot tokens."""
    token = bytearray(seal(env, b"abc"))
    for index, value in ((0, 2), (1, 9)):
        bad = bytearray(token)
        bad[index] = value
        with pytest.raises(UnsupportedFormatError):
            unseal(env, bytes(bad))
    oneshot = env.encrypt(b"abc", tenant="acme", context=CTX)
    with pytest.raises(UnsupportedFormatError):
        env.decrypt_stream(io.BytesIO(oneshot), tenant="acme", context=CTX)


def test_rewrap_keeps_streamed_tokens_readable(fresh_env: Envelope) -> None:
    """After rotation, rewrap changes only the header of a streamed token; it still decrypts."""
    data = os.urandom(2 * C + 1)
    token = seal(fresh_env, data, data_class=DataClass.SENSITIVE)
    fresh_env.store.rotate("acme")
    assert fresh_env.needs_rewrap(token, tenant="acme")
    new = fresh_env.rewrap(token, tenant="acme")
    hlen = parse_header(token).length
    assert new[hlen:] == token[hlen:]
    assert new[:hlen] != token[:hlen]
    assert not fresh_env.needs_rewrap(new, tenant="acme")
    assert unseal(fresh_env, new) == data
    assert unseal(fresh_env, token) == data


def test_shredded_tenant_streams_fail_with_key_destroyed(
    fresh_env: Envelope, tmp_path: Path
) -> None:
    """After shred, streams, files and ranges raise KeyDestroyedError, not tamper errors."""
    token = seal(fresh_env, os.urandom(1000))
    path = tmp_path / "obj.stk"
    path.write_bytes(token)
    fresh_env.store.shred("acme")
    with pytest.raises(KeyDestroyedError):
        fresh_env.decrypt_stream(io.BytesIO(token), tenant="acme", context=CTX)
    with pytest.raises(KeyDestroyedError):
        fresh_env.decrypt_range(path, 0, 10, tenant="acme", context=CTX)
    with pytest.raises(KeyDestroyedError):
        fresh_env.decrypt_file(path, tmp_path / "out", tenant="acme", context=CTX)
    assert not (tmp_path / "out").exists()


def test_files_round_trip_atomically(env: Envelope, tmp_path: Path) -> None:
    """encrypt_file/decrypt_file round-trip and leave no temporary files behind."""
    data = os.urandom(5 * C + 17)
    (tmp_path / "in.bin").write_bytes(data)
    assert env.encrypt_file(
        tmp_path / "in.bin", tmp_path / "in.stk", tenant="acme", context=CTX
    ) == len(data)
    assert env.decrypt_file(
        tmp_path / "in.stk", tmp_path / "out.bin", tenant="acme", context=CTX
    ) == len(data)
    assert (tmp_path / "out.bin").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin", "in.stk", "out.bin"]


@pytest.mark.parametrize("damage", ["truncate", "flip_last", "append"])
def test_failed_decrypt_file_leaves_no_output(env: Envelope, tmp_path: Path, damage: str) -> None:
    """A tampered file never produces output (no partial or temp file); old output survives."""
    data = os.urandom(4 * C)
    src = tmp_path / "obj.stk"
    src.write_bytes(seal(env, data))
    raw = bytearray(src.read_bytes())
    if damage == "truncate":
        raw = raw[:-1]
    elif damage == "flip_last":
        raw[-1] ^= 1
    else:
        raw += b"\x00"
    src.write_bytes(bytes(raw))
    out = tmp_path / "out.bin"
    with pytest.raises(DecryptionError):
        env.decrypt_file(src, out, tenant="acme", context=CTX)
    assert not out.exists()
    out.write_bytes(b"previous good output")
    with pytest.raises(DecryptionError):
        env.decrypt_file(src, out, tenant="acme", context=CTX)
    assert out.read_bytes() == b"previous good output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obj.stk", "out.bin"]


@given(
    size=st.integers(0, 6 * C),
    offset=st.integers(0, 7 * C),
    length=st.integers(0, 3 * C),
)
def test_decrypt_range_matches_slice(env: Envelope, size: int, offset: int, length: int) -> None:
    """decrypt_range returns exactly data[offset:offset+length] from a seekable object."""
    data = os.urandom(size)
    src = io.BytesIO(b"prefix-bytes" + seal(env, data))
    src.seek(12)
    assert (
        env.decrypt_range(src, offset, length, tenant="acme", context=CTX)
        == data[offset : offset + length]
    )


def test_decrypt_range_checks(env: Envelope, tmp_path: Path) -> None:
    """Ranges refuse negative values, wrong contexts and tampered chunks inside the range."""
    data = os.urandom(4 * C)
    token = bytearray(seal(env, data))
    path = tmp_path / "o.stk"
    path.write_bytes(bytes(token))
    assert (
        env.decrypt_range(str(path), C - 5, 10, tenant="acme", context=CTX) == data[C - 5 : C + 5]
    )
    with pytest.raises(InvalidInputError):
        env.decrypt_range(path, -1, 10, tenant="acme", context=CTX)
    with pytest.raises(DecryptionError):
        env.decrypt_range(path, 0, 10, tenant="acme", context={"other": "ctx"})
    hlen = parse_header(token).length
    token[hlen + _stream.C2SP_HEADER_SIZE + _stream.SEALED_CHUNK + 7] ^= 1  # chunk 1
    path.write_bytes(bytes(token))
    assert env.decrypt_range(path, 0, 100, tenant="acme", context=CTX) == data[:100]
    with pytest.raises(DecryptionError):
        env.decrypt_range(path, C + 1, 10, tenant="acme", context=CTX)


def test_events_and_no_secrets(env: Envelope, caplog: pytest.LogCaptureFixture) -> None:
    """Streams emit envelope.encrypt and envelope.decrypt.failed without payload or keys."""
    secret = os.urandom(64)
    leaks.register_secret(secret)
    with caplog.at_level(logging.DEBUG, logger="styku_crypto"):
        token = seal(env, secret)
        with pytest.raises(DecryptionError) as info:
            unseal(env, token[:-1])
    events = [getattr(r, "styku_event", {}).get("event") for r in caplog.records]
    assert "envelope.encrypt" in events
    assert "envelope.decrypt.failed" in events
    failed = [
        r.styku_event
        for r in caplog.records
        if r.styku_event.get("event") == "envelope.decrypt.failed"
    ]  # type: ignore[attr-defined]
    assert failed[-1]["reason"] == "tamper"
    leaks.assert_no_secret_in("stream error", str(info.value) + repr(info.value))
    writer = env.encrypt_stream(io.BytesIO(), tenant="acme", context=CTX)
    leaks.assert_no_secret_in("writer repr", repr(writer))
    writer.close()


def test_multi_block_token_one_shot_and_sensitive_range(env: Envelope) -> None:
    """Envelope.decrypt reads a multi-MiB streamed token; ranges work on sensitive tokens."""
    data = os.urandom(3 * _stream.IO_BLOCK + 777)
    token = seal(env, data, data_class=DataClass.SENSITIVE)
    assert env.decrypt(token, tenant="acme", context=CTX) == data
    src = io.BytesIO(token)
    got = env.decrypt_range(src, 2 * _stream.IO_BLOCK - 3, 100, tenant="acme", context=CTX)
    assert got == data[2 * _stream.IO_BLOCK - 3 : 2 * _stream.IO_BLOCK + 97]
    with pytest.raises(DecryptionError):
        env.decrypt(token[:-1], tenant="acme", context=CTX)

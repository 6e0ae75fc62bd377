"""Secrets never leak; concurrency is safe; the data-key cache respects its limits."""

from __future__ import annotations

import os
import pickle
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

import styku_crypto.envelope as envelope_pkg
from styku_crypto.envelope import DataClass, DataKeyCache, Envelope
from styku_crypto.exceptions import (
    DecryptionError,
    InvalidInputError,
    KeyDestroyedError,
    KeyNotFoundError,
    UnsupportedFormatError,
)
from styku_crypto.keys import KeyStore
from tests._support import leaks

CTX = {"table": "t", "id": "1"}


def test_public_api_is_exactly_documented() -> None:
    """The envelope package exports exactly the documented names, sorted."""
    assert envelope_pkg.__all__ == sorted(envelope_pkg.__all__)
    for name in ("DataClass", "DataKeyCache", "Envelope", "RewrapProgress", "TEXT_PREFIX"):
        assert name in envelope_pkg.__all__


def test_no_secret_in_reprs_errors_or_events(keystore: KeyStore) -> None:
    """Plaintexts, data keys and tenant keys never appear in reprs, exceptions or log records."""
    first_record = len(leaks.captured_records())
    plaintext = b"SECRET-PLAINTEXT-" + os.urandom(16).hex().encode()
    leaks.register_secret(plaintext)
    dek = os.urandom(32)
    leaks.register_secret(dek)
    tk = keystore._tenant_key("acme", "customer")
    leaks.register_secret(tk._secret)
    cache = DataKeyCache()
    env = Envelope(keystore, data_key_cache=cache)
    token = env._encrypt_from_parts(
        plaintext, tenant="acme", context=CTX, data_class=DataClass.CUSTOMER, deks=[dek]
    )
    env.encrypt(plaintext, tenant="acme", context=CTX)
    for obj in (env, cache, keystore, tk):
        leaks.assert_no_secret_in(f"repr({type(obj).__name__})", repr(obj))
    bad = bytearray(token)
    bad[-1] ^= 1
    with pytest.raises(DecryptionError) as err:
        env.decrypt(bytes(bad), tenant="acme", context=CTX)
    leaks.assert_no_secret_in("DecryptionError", str(err.value) + repr(err.value))
    assert str(err.value) == "decryption failed"
    for record in leaks.captured_records()[first_record:]:
        leaks.assert_no_secret_in(f"log {record.name}", leaks.record_text(record))


def test_objects_refuse_pickling(keystore: KeyStore) -> None:
    """Envelope, DataKeyCache and tenant keys cannot be pickled."""
    for obj in (Envelope(keystore), DataKeyCache(), keystore._tenant_key("acme", "customer")):
        with pytest.raises(TypeError):
            pickle.dumps(obj)


def test_threads_encrypt_while_rotating(keystore: KeyStore) -> None:
    """Threads encrypting and decrypting while another thread rotates never fail or mix keys."""
    env = Envelope(keystore)
    errors: list[BaseException] = []
    tokens: list[tuple[bytes, bytes]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(n: int) -> None:
        try:
            i = 0
            while not stop.is_set() or i < 20:
                data = f"{n}-{i}".encode()
                dc = DataClass.SENSITIVE if i % 3 == 0 else DataClass.CUSTOMER
                token = env.encrypt(data, tenant="acme", context={"n": str(n)}, data_class=dc)
                assert env.decrypt(token, tenant="acme", context={"n": str(n)}) == data
                with lock:
                    tokens.append((token, data))
                i += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for _ in range(8):
        keystore.rotate("acme")
    stop.set()
    for t in threads:
        t.join(60)
    assert errors == []
    versions = {int.from_bytes(t[5:9], "big") for t, _ in tokens}
    assert len(versions) > 1
    for token, data in tokens:
        n = data.split(b"-")[0].decode()
        assert (
            env.decrypt(env.rewrap(token, tenant="acme"), tenant="acme", context={"n": n}) == data
        )


def test_cache_reuses_then_retires_keys(keystore: KeyStore) -> None:
    """The cache reuses a data key up to max_messages, then starts a fresh one."""
    env = Envelope(keystore, data_key_cache=DataKeyCache(max_messages=3))
    headers = [env.encrypt(b"m", tenant="acme", context=CTX)[4:89] for _ in range(7)]
    assert headers[0] == headers[1] == headers[2]
    assert headers[3] == headers[4] == headers[5] != headers[2]
    assert headers[6] != headers[5]


def test_cache_respects_bytes_age_rotation_and_shred(keystore: KeyStore) -> None:
    """max_bytes, rotation and shredding all retire a cached data key."""
    cache = DataKeyCache(max_bytes=100)
    env = Envelope(keystore, data_key_cache=cache)
    a = env.encrypt(b"x" * 60, tenant="acme", context=CTX)
    b = env.encrypt(b"x" * 60, tenant="acme", context=CTX)
    assert a[4:89] != b[4:89]  # 120 bytes would exceed max_bytes
    c = env.encrypt(b"x" * 10, tenant="acme", context=CTX)
    assert c[4:89] == b[4:89]
    keystore.rotate("acme")
    d = env.encrypt(b"x", tenant="acme", context=CTX)
    assert int.from_bytes(d[5:9], "big") == 2
    keystore.shred("acme")
    with pytest.raises(KeyDestroyedError):
        env.encrypt(b"x", tenant="acme", context=CTX)
    cache.clear()


def test_cache_nonces_are_fresh(keystore: KeyStore) -> None:
    """Messages under one cached data key always carry distinct nonces."""
    env = Envelope(keystore, data_key_cache=DataKeyCache())
    nonces = {env.encrypt(b"n", tenant="acme", context=CTX)[89:101] for _ in range(200)}
    assert len(nonces) == 200


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_age": 0},
        {"max_age": 10**6},
        {"max_messages": 0},
        {"max_messages": 2**32 + 1},
        {"max_bytes": 0},
        {"max_bytes": 2**41},
        {"max_entries": 0},
    ],
)
def test_cache_hard_limits(kwargs: dict[str, float]) -> None:
    """Cache limits outside the hard bounds are refused."""
    with pytest.raises(InvalidInputError):
        DataKeyCache(**kwargs)  # type: ignore[arg-type]


def test_cache_cleared_in_forked_child(keystore: KeyStore) -> None:
    """A forked child never reuses the parent's cached data key."""
    cache = DataKeyCache()
    env = Envelope(keystore, data_key_cache=cache)
    env.encrypt(b"parent", tenant="acme", context=CTX)
    assert cache._entries
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(read)
        os.write(write, b"1" if not cache._entries else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.close(read)
    os.waitpid(pid, 0)


def test_public_names_are_documented() -> None:
    """Every public name of styku_crypto.envelope appears in docs/envelope.md."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "envelope.md").read_text()
    missing = [n for n in envelope_pkg.__all__ if n != "TEXT_PREFIX" and n not in text]
    assert missing == []
    assert "stk1." in text  # TEXT_PREFIX's value


@given(raw=st.binary(max_size=300))
def test_garbage_tokens_raise_typed_errors(shared_env: Envelope, raw: bytes) -> None:
    """Arbitrary bytes never crash decrypt, rewrap or needs_rewrap: only typed errors."""
    for call in (
        lambda: shared_env.decrypt(raw, tenant="acme", context=CTX),
        lambda: shared_env.rewrap(raw, tenant="acme"),
        lambda: shared_env.needs_rewrap(raw, tenant="acme"),
    ):
        try:
            outcome: object = call()
        except (DecryptionError, UnsupportedFormatError, KeyNotFoundError) as exc:
            outcome = exc
        # Typed errors only; the one call that may succeed on garbage is needs_rewrap.
        assert isinstance(
            outcome, (DecryptionError, UnsupportedFormatError, KeyNotFoundError, bool)
        )


@given(raw=st.binary(min_size=4, max_size=300))
def test_garbage_behind_a_valid_prefix(shared_env: Envelope, raw: bytes) -> None:
    """Random bodies behind every valid prefix are rejected with typed errors."""
    for pre in (b"\x01\x01\x01\x01", b"\x01\x01\x02\x02", b"\x01\x03\x01\x01", b"\x01\x03\x02\x02"):
        with pytest.raises((DecryptionError, KeyNotFoundError)):
            shared_env.decrypt(pre + raw, tenant="acme", context=CTX)

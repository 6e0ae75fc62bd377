"""pytest-benchmark cases for the one-shot envelope (the ratios live in compare_envelope.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from styku_crypto.envelope import DataClass, DataKeyCache, Envelope
from styku_crypto.keys import KeyStore

KIB, MIB = 1 << 10, 1 << 20
SIZES = {"64B": 64, "1KiB": KIB, "64KiB": 64 * KIB, "1MiB": MIB, "64MiB": 64 * MIB}
CTX = {"table": "scans", "id": "42"}
_DATA = {name: os.urandom(n) for name, n in SIZES.items()}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyStore]:
    ks = KeyStore.open(tmp_path_factory.mktemp("bench") / "keys.db")
    ks.create_tenant("acme")
    yield ks
    ks.close()


@pytest.fixture(scope="module")
def env(store: KeyStore) -> Envelope:
    return Envelope(store)


@pytest.mark.parametrize("size", list(SIZES))
def test_raw_aesgcm_encrypt(benchmark: Any, size: str) -> None:
    aead = AESGCM(os.urandom(32))
    data = _DATA[size]
    benchmark(lambda: aead.encrypt(os.urandom(12), data, None))


@pytest.mark.parametrize("size", ["64B", "1KiB"])
def test_raw_aesgcm_new_key_encrypt(benchmark: Any, size: str) -> None:
    key = os.urandom(32)
    data = _DATA[size]
    benchmark(lambda: AESGCM(key).encrypt(os.urandom(12), data, None))


@pytest.mark.parametrize("size", ["64B", "1KiB"])
def test_raw_aesgcm_decrypt(benchmark: Any, size: str) -> None:
    key = os.urandom(32)
    aead = AESGCM(key)
    sealed = aead.encrypt(bytes(12), _DATA[size], None)
    benchmark(lambda: aead.decrypt(bytes(12), sealed, None))


@pytest.mark.parametrize("size", ["64B", "1KiB"])
def test_raw_aesgcm_new_key_decrypt(benchmark: Any, size: str) -> None:
    key = os.urandom(32)
    sealed = AESGCM(key).encrypt(bytes(12), _DATA[size], None)
    benchmark(lambda: AESGCM(key).decrypt(bytes(12), sealed, None))


@pytest.mark.parametrize("size", list(SIZES))
def test_envelope_encrypt(benchmark: Any, env: Envelope, size: str) -> None:
    data = _DATA[size]
    benchmark(lambda: env.encrypt(data, tenant="acme", context=CTX))


@pytest.mark.parametrize("size", list(SIZES))
def test_envelope_decrypt(benchmark: Any, env: Envelope, size: str) -> None:
    token = env.encrypt(_DATA[size], tenant="acme", context=CTX)
    benchmark(lambda: env.decrypt(token, tenant="acme", context=CTX))


@pytest.mark.parametrize("size", ["1KiB", "1MiB"])
def test_envelope_sensitive_encrypt(benchmark: Any, env: Envelope, size: str) -> None:
    data = _DATA[size]
    benchmark(lambda: env.encrypt(data, tenant="acme", context=CTX, data_class=DataClass.SENSITIVE))


@pytest.mark.parametrize("size", ["1KiB", "1MiB"])
def test_envelope_sensitive_decrypt(benchmark: Any, env: Envelope, size: str) -> None:
    token = env.encrypt(_DATA[size], tenant="acme", context=CTX, data_class=DataClass.SENSITIVE)
    benchmark(lambda: env.decrypt(token, tenant="acme", context=CTX))


def test_envelope_cached_key_encrypt_1kib(benchmark: Any, store: KeyStore) -> None:
    cached = Envelope(store, data_key_cache=DataKeyCache())
    data = _DATA["1KiB"]
    benchmark(lambda: cached.encrypt(data, tenant="acme", context=CTX))


def test_envelope_cached_key_decrypt_1kib(benchmark: Any, env: Envelope, store: KeyStore) -> None:
    token = Envelope(store, data_key_cache=DataKeyCache()).encrypt(
        _DATA["1KiB"], tenant="acme", context=CTX
    )
    benchmark(lambda: env.decrypt(token, tenant="acme", context=CTX))


def test_raw_aesgcm_encrypt_into_64mib(benchmark: Any) -> None:
    aead = AESGCM(os.urandom(32))
    buf = bytearray(64 * MIB + 16)
    data = _DATA["64MiB"]
    benchmark(lambda: aead.encrypt_into(bytes(12), data, None, buf))


def test_envelope_encrypt_into_64mib(benchmark: Any, env: Envelope) -> None:
    data = _DATA["64MiB"]
    buf = bytearray(env.ciphertext_length(len(data)))
    benchmark(lambda: env.encrypt_into(data, buf, tenant="acme", context=CTX))


@pytest.mark.parametrize("size", ["64B", "64MiB"])
def test_envelope_rewrap(benchmark: Any, env: Envelope, store: KeyStore, size: str) -> None:
    token = env.encrypt(_DATA[size], tenant="acme", context=CTX)
    store.rotate("acme", purpose="customer")
    env.needs_rewrap(token, tenant="acme")
    buf = bytearray(token)
    old = token[:89]

    def once() -> None:
        buf[:89] = old  # back on the old version, so every round re-wraps for real
        env.rewrap(buf, tenant="acme")

    benchmark(once)


def test_envelope_decrypt_into_64mib(benchmark: Any, env: Envelope) -> None:
    data = _DATA["64MiB"]
    token = env.encrypt(data, tenant="acme", context=CTX)
    out = bytearray(len(data))
    benchmark(lambda: env.decrypt_into(token, out, tenant="acme", context=CTX))

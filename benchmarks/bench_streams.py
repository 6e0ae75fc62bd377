"""pytest-benchmark cases for streamed tokens (the ratios live in compare_streams.py)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from styku_crypto.envelope import Envelope
from styku_crypto.keys import KeyStore

MIB = 1 << 20
SIZE = 64 * MIB
CTX = {"object": "bench"}
BLOCK = os.urandom(MIB)


class Sink(io.RawIOBase):
    """Discards what is written."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return memoryview(data).nbytes


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Envelope]:
    store = KeyStore.open(tmp_path_factory.mktemp("bench") / "keys.db")
    store.create_tenant("acme")
    yield Envelope(store)
    store.close()


@pytest.fixture(scope="module")
def token(env: Envelope) -> io.BytesIO:
    out = io.BytesIO()
    with env.encrypt_stream(out, tenant="acme", context=CTX) as w:
        for _ in range(SIZE // MIB):
            w.write(BLOCK)
    return out


def test_aesgcm_encrypt_into_64mib(benchmark: Any) -> None:
    aes = AESGCM(AESGCM.generate_key(bit_length=256))
    out = bytearray(MIB + 16)

    def run() -> None:
        for _ in range(SIZE // MIB):
            aes.encrypt_into(bytes(12), BLOCK, None, out)

    benchmark(run)


def test_encrypt_stream_64mib(benchmark: Any, env: Envelope) -> None:
    def run() -> None:
        with env.encrypt_stream(Sink(), tenant="acme", context=CTX) as w:  # type: ignore[arg-type]
            for _ in range(SIZE // MIB):
                w.write(BLOCK)

    benchmark(run)


def test_decrypt_stream_64mib(benchmark: Any, env: Envelope, token: io.BytesIO) -> None:
    buf = bytearray(MIB)

    def run() -> None:
        token.seek(0)
        r = env.decrypt_stream(token, tenant="acme", context=CTX)
        while r.readinto(buf):
            pass

    benchmark(run)


def test_decrypt_range_1mib_middle(
    benchmark: Any, env: Envelope, token: io.BytesIO, tmp_path: Path
) -> None:
    path = tmp_path / "obj.stk"
    path.write_bytes(token.getvalue())
    benchmark(lambda: env.decrypt_range(path, SIZE // 2 + 7, MIB, tenant="acme", context=CTX))


def test_small_streamed_token_one_shot_decrypt(benchmark: Any, env: Envelope) -> None:
    out = io.BytesIO()
    with env.encrypt_stream(out, tenant="acme", context=CTX) as w:
        w.write(BLOCK[:1024])
    data = out.getvalue()
    benchmark(lambda: env.decrypt(data, tenant="acme", context=CTX))

"""pytest-benchmark: envelope rates per key store and root provider, cached and uncached.

Starts the same real servers as the tests (PostgreSQL 15, SoftHSM2, moto KMS).
Run with ``pytest benchmarks/bench_keys.py --benchmark-only``; the ratio summary
against the issue's targets is ``benchmarks/compare_keys.py``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from styku_crypto.envelope import Envelope
from styku_crypto.keys import (
    AwsKmsRootKey,
    KeyStore,
    LocalRootKey,
    Pkcs11RootKey,
    PostgresBackend,
    RootKeyProvider,
    SQLiteBackend,
)
from tests._support.moto_server import AWS_ENV, MotoServer, kms_client
from tests._support.postgres import PostgresServer
from tests._support.softhsm import init_token

CTX = {"table": "scans", "id": "42"}
PAYLOAD = os.urandom(1024)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Any]]:
    """PostgreSQL, a SoftHSM2 token with a root key and a moto KMS key, for the module."""
    pg = PostgresServer.create()
    moto = MotoServer()
    token = init_token()
    Pkcs11RootKey.create_key(module=token.module, token_label=token.label, pin=token.pin)
    arn = kms_client(moto.endpoint).create_key()["KeyMetadata"]["Arn"]
    tmp = Path(tempfile.mkdtemp(prefix="styku-bench-"))
    yield {"pg": pg, "moto": moto, "token": token, "arn": arn, "tmp": tmp}
    moto.stop()
    pg.destroy()


def _root(kind: str, s: dict[str, Any]) -> RootKeyProvider:
    if kind == "local":
        return LocalRootKey(s["tmp"] / "root.key")
    if kind == "softhsm":
        t = s["token"]
        return Pkcs11RootKey(module=t.module, token_label=t.label, pin=t.pin)
    return AwsKmsRootKey(
        key_id=s["arn"], endpoint_url=s["moto"].endpoint, client_kwargs=dict(AWS_ENV)
    )


def _backend(kind: str, s: dict[str, Any], name: str) -> Any:
    if kind == "postgres":
        backend: Any = PostgresBackend(s["pg"].create_database())
    else:
        backend = SQLiteBackend(s["tmp"] / f"{name}.db")
    backend.initialize()
    return backend


COMBOS = [
    ("sqlite", "local"),
    ("postgres", "local"),
    ("sqlite", "softhsm"),
    ("sqlite", "kms"),
]


@pytest.fixture(params=COMBOS, ids=lambda c: f"{c[0]}-{c[1]}")
def env(request: pytest.FixtureRequest, servers: dict[str, Any]) -> Iterator[Envelope]:
    """An Envelope over one store/root combination, tenant keys cached."""
    backend_kind, root_kind = request.param
    store = KeyStore(
        _backend(backend_kind, servers, f"{backend_kind}-{root_kind}-{os.urandom(4).hex()}"),
        root=_root(root_kind, servers),
    )
    store.create_tenant("acme")
    yield Envelope(store)
    store.close()


def test_encrypt_1k_cached(benchmark: Callable[..., Any], env: Envelope) -> None:
    """1 KiB encrypt with the tenant key cached."""
    benchmark(env.encrypt, PAYLOAD, tenant="acme", context=CTX)


def test_decrypt_1k_cached(benchmark: Callable[..., Any], env: Envelope) -> None:
    """1 KiB decrypt with the tenant key cached."""
    token = env.encrypt(PAYLOAD, tenant="acme", context=CTX)
    benchmark(env.decrypt, token, tenant="acme", context=CTX)


@pytest.mark.parametrize("root_kind", ["local", "softhsm", "kms"])
def test_root_unwrap(
    benchmark: Callable[..., Any], servers: dict[str, Any], root_kind: str
) -> None:
    """One root unwrap (what a cache miss costs) per provider."""
    root = _root(root_kind, servers)
    wrapped = root.wrap(os.urandom(32), aad=b"bench")
    benchmark(root.unwrap, wrapped, aad=b"bench")
    root.close()

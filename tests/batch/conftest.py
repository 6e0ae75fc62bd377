"""Fixtures for batch tests: a real ``distributed.LocalCluster`` (2 worker processes),
the suite's PostgreSQL server, moto's S3 server, and a key store with tokens in a table."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from styku_crypto.envelope import Envelope, EnvelopeSpec
from styku_crypto.keys import KeyStore, LocalRootKey
from tests._support.moto_server import AWS_ENV, fault_proxy, moto_server  # noqa: F401
from tests._support.postgres import postgres_server, postgres_url  # noqa: F401

# Workers read cloud credentials from their own environment, as in production.
_ENV = {
    "AWS_ACCESS_KEY_ID": AWS_ENV["aws_access_key_id"],
    "AWS_SECRET_ACCESS_KEY": AWS_ENV["aws_secret_access_key"],
    "AWS_DEFAULT_REGION": AWS_ENV["region_name"],
}


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """A local Dask cluster of two worker processes (one thread each)."""
    from distributed import LocalCluster

    saved = {k: os.environ.get(k) for k in _ENV}
    os.environ.update(_ENV)
    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    try:
        yield c
    finally:
        c.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def client(cluster: Any) -> Iterator[Any]:
    """A client of the shared cluster, with both workers up."""
    from distributed import Client

    with Client(cluster) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


@dataclass
class Keys:
    """A SQLite key store with a local root, its spec, and an envelope on it."""

    spec: EnvelopeSpec
    env: Envelope
    store: KeyStore


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[Keys]:
    """A fresh key store with tenants ``acme`` and ``globex`` (each test its own, so
    workers never reuse another test's cached keys)."""
    root = tmp_path / "root.key"
    LocalRootKey(root, create=True).close()
    spec = EnvelopeSpec(f"sqlite:///{tmp_path}/keys.db", roots=(f"local:{root}",))
    store = KeyStore.open(spec.store, roots=list(spec.roots))
    store.create_tenant("acme")
    store.create_tenant("globex")
    yield Keys(spec, Envelope(store), store)
    store.close()

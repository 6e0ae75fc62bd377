"""Fixtures for envelope tests: a real SQLite key store with a local root key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from styku_crypto.envelope import Envelope
from styku_crypto.keys import KeyStore


@pytest.fixture
def keystore(tmp_path: Path) -> Iterator[KeyStore]:
    """A fresh SQLite key store with tenants ``acme`` and ``beta``."""
    ks = KeyStore.open(tmp_path / "keys.db")
    ks.create_tenant("acme")
    ks.create_tenant("beta")
    yield ks
    ks.close()


@pytest.fixture
def env(keystore: KeyStore) -> Envelope:
    """An Envelope over the fresh store (no data-key cache)."""
    return Envelope(keystore)


@pytest.fixture(scope="module")
def shared_keystore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyStore]:
    """A module-wide store (for hypothesis tests, which must not use per-test fixtures)."""
    ks = KeyStore.open(tmp_path_factory.mktemp("shared") / "keys.db")
    ks.create_tenant("acme")
    ks.create_tenant("beta")
    yield ks
    ks.close()


@pytest.fixture(scope="module")
def shared_env(shared_keystore: KeyStore) -> Envelope:
    """An Envelope over the module-wide store."""
    return Envelope(shared_keystore)

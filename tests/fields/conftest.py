"""Fixtures for field-level encryption tests: a real SQLite key store with two tenants."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from styku_crypto.envelope import Envelope
from styku_crypto.keys import KeyStore
from tests._support.postgres import postgres_server, postgres_url  # noqa: F401


@pytest.fixture
def store(tmp_path: Path) -> Iterator[KeyStore]:
    """A fresh embedded key store with tenants ``acme`` and ``globex``."""
    ks = KeyStore.open(tmp_path / "keys.db")
    ks.create_tenant("acme")
    ks.create_tenant("globex")
    try:
        yield ks
    finally:
        ks.close()


@pytest.fixture
def env(store: KeyStore) -> Envelope:
    """An envelope over the fresh store."""
    return Envelope(store)

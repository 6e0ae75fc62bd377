"""Fixtures for field-level encryption tests: a real SQLite key store with two tenants."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from styku_crypto.keys import KeyStore


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

"""Fixtures for incident-log tests: a real SQLite key store and logs on it."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from styku_crypto.exceptions import KeyNotFoundError
from styku_crypto.incidents import IncidentLog
from styku_crypto.keys import KeyStore, LocalRootKey
from tests._support import leaks


class FixedClock:
    """A UTC clock that advances one second per call."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class DictHead:
    """An in-memory head store (``get_meta``/``set_meta``)."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def get_meta(self, name: str) -> bytes | None:
        return self.values.get(name)

    def set_meta(self, name: str, value: bytes | None) -> None:
        if value is None:
            self.values.pop(name, None)
        else:
            self.values[name] = value


class RawMacKey:
    """A MacKey over explicit random keys, one per key id (for tests without a store)."""

    def __init__(self, *ids: str) -> None:
        self.keys = {kid: os.urandom(32) for kid in (ids or ("test:v1",))}
        for key in self.keys.values():
            leaks.register_secret(key)
        self.current = next(iter(self.keys))

    def current_key_id(self) -> str:
        return self.current

    def mac(self, data: bytes, *, key_id: str) -> bytes:
        if key_id not in self.keys:
            raise KeyNotFoundError("unknown test key")
        return hmac.new(self.keys[key_id], data, hashlib.sha256).digest()


@pytest.fixture
def clock() -> FixedClock:
    """A deterministic UTC clock."""
    return FixedClock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[KeyStore]:
    """A real SQLite key store with a local root key, closed at teardown."""
    path = tmp_path / "keys.db"
    ks = KeyStore.open(path, root=LocalRootKey(tmp_path / "keys.db.rootkey"))
    try:
        yield ks
    finally:
        ks.close()


@pytest.fixture
def log(store: KeyStore, tmp_path: Path, clock: FixedClock) -> IncidentLog:
    """An incident log beside the key store, authenticated by it."""
    return IncidentLog.open(store=store, clock=clock)


@pytest.fixture
def make_log(tmp_path: Path, clock: FixedClock) -> Callable[..., IncidentLog]:
    """Build standalone logs over a RawMacKey and a DictHead."""

    def make(
        name: str = "log.jsonl", *, key: RawMacKey | None = None, head: DictHead | None = None
    ) -> IncidentLog:
        return IncidentLog(
            tmp_path / name, mac_key=key or RawMacKey(), head_store=head, clock=clock
        )

    return make

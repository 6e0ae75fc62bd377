"""Sensitive data needs both key hierarchies; customer-only holders get a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from styku_crypto.envelope import DataClass, Envelope
from styku_crypto.exceptions import KeyNotFoundError
from styku_crypto.keys import KeyStore, LocalRootKey, SQLiteBackend, StoreSnapshot


def _customer_only_copy(keystore: KeyStore, tmp_path: Path) -> KeyStore:
    """A real second store holding only the customer hierarchy (same root key)."""
    snap = keystore.backend.export_snapshot()
    partial = StoreSnapshot(
        tenants=snap.tenants,
        keys=tuple(k for k in snap.keys if k.purpose == "customer"),
        shredded=snap.shredded,
        meta=snap.meta,
    )
    backend = SQLiteBackend(tmp_path / "customer-only.db")
    backend.initialize()
    root = keystore.providers[0]
    assert isinstance(root, LocalRootKey)
    store = KeyStore(backend, root=LocalRootKey(root.path))  # first: the import is sealed
    backend.import_snapshot(partial)
    return store


def test_sensitive_needs_both_keys(keystore: KeyStore, tmp_path: Path) -> None:
    """A store without the sensitive hierarchy reads customer tokens but not sensitive ones."""
    env = Envelope(keystore)
    ctx = {"field": "dob"}
    c = env.encrypt(b"customer data", tenant="acme", context=ctx)
    s = env.encrypt(b"1970-01-01", tenant="acme", context=ctx, data_class=DataClass.SENSITIVE)
    with _customer_only_copy(keystore, tmp_path) as partial:
        limited = Envelope(partial)
        assert limited.decrypt(c, tenant="acme", context=ctx) == b"customer data"
        with pytest.raises(KeyNotFoundError, match="sensitive"):
            limited.decrypt(s, tenant="acme", context=ctx)
        with pytest.raises(KeyNotFoundError):
            limited.encrypt(b"x", tenant="acme", context=ctx, data_class=DataClass.SENSITIVE)


def test_layers_use_independent_keys(keystore: KeyStore) -> None:
    """The two layers of a sensitive token route to the customer and the sensitive key versions."""
    keystore.rotate("acme", purpose="sensitive")
    env = Envelope(keystore)
    s = env.encrypt(b"layered", tenant="acme", context={}, data_class=DataClass.SENSITIVE)
    assert s[4] == 1
    assert int.from_bytes(s[5:9], "big") == 1
    assert s[89] == 2
    assert int.from_bytes(s[90:94], "big") == 2
    assert s[9:41] != s[94:126]  # independent data keys, independent commitments

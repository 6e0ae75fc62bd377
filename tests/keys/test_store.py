"""Behavioural tests of the KeyStore facade over every backend and root provider."""

from __future__ import annotations

import logging
import pickle
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from styku_crypto.exceptions import (
    DecryptionError,
    InvalidInputError,
    KeyDestroyedError,
    KeyNotFoundError,
    KeyStoreError,
    RootKeyUnavailableError,
)
from styku_crypto.keys import KeyStore, KeyStoreBackend, LocalRootKey, RootKeyProvider
from tests._support import leaks


class SwitchableRoot(RootKeyProvider):
    """A real LocalRootKey whose availability the test switches off (simulated outage)."""

    def __init__(self, path: Path) -> None:
        self.inner = LocalRootKey(path)
        self.available = True
        self.unwraps = 0

    @property
    def provider_id(self) -> str:
        return self.inner.provider_id

    def wrap(self, key: bytes, *, aad: bytes) -> bytes:
        if not self.available:
            raise RootKeyUnavailableError(f"{self.provider_id} unavailable")
        return self.inner.wrap(key, aad=aad)

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        self.unwraps += 1
        if not self.available:
            raise RootKeyUnavailableError(f"{self.provider_id} unavailable")
        return self.inner.unwrap(wrapped, aad=aad)


def _events(name: str) -> list[logging.LogRecord]:
    return [r for r in leaks.captured_records() if r.getMessage() == name]


def test_create_tenant_makes_both_hierarchies(store: KeyStore) -> None:
    """create_tenant makes version 1 of the customer and sensitive keys, both primary."""
    info = store.create_tenant("acme")
    assert [(k.purpose, k.version, k.primary) for k in info.keys] == [
        ("customer", 1, True),
        ("sensitive", 1, True),
    ]
    assert all(k.providers == (store.providers[0].provider_id,) for k in info.keys)
    assert [t.name for t in store.tenants()] == ["acme"]


@pytest.mark.parametrize("name", ["", " acme", "a b", "x" * 129, "-lead", "é", "a/b", "a\x00"])
def test_invalid_tenant_names(store: KeyStore, name: str) -> None:
    """Malformed tenant names are refused with InvalidInputError (a ValueError)."""
    with pytest.raises(ValueError, match="tenant names"):
        store.create_tenant(name)


def test_rotate_keeps_old_versions(store: KeyStore) -> None:
    """After rotate the primary moves on and every old version still unwraps."""
    store.create_tenant("acme")
    k1 = store._tenant_key("acme", "customer")
    new = store.rotate("acme")
    assert [(k.purpose, k.version) for k in new] == [("customer", 2), ("sensitive", 2)]
    assert store._tenant_key("acme", "customer").version == 2
    again = store._tenant_key("acme", "customer", 1)
    assert again.fingerprint == k1.fingerprint
    one = store.rotate("acme", purpose="sensitive")
    assert [(k.purpose, k.version) for k in one] == [("sensitive", 3)]
    with pytest.raises(InvalidInputError):
        store.rotate("acme", purpose="bogus")
    info = store.describe("acme")
    assert [(k.purpose, k.version, k.primary) for k in info.keys] == [
        ("customer", 1, False),
        ("customer", 2, True),
        ("sensitive", 1, False),
        ("sensitive", 2, False),
        ("sensitive", 3, True),
    ]


def test_versions_are_independent_keys(store: KeyStore) -> None:
    """Different tenants, purposes and versions get different key material."""
    store.create_tenant("acme")
    store.create_tenant("beta")
    store.rotate("acme")
    fprs = {
        store._tenant_key(t, p, v).fingerprint
        for t, p, v in [
            ("acme", "customer", 1),
            ("acme", "customer", 2),
            ("acme", "sensitive", 1),
            ("beta", "customer", 1),
        ]
    }
    assert len(fprs) == 4


def test_derive_key_labels(store: KeyStore) -> None:
    """_derive_key is deterministic per label and version, independent across labels."""
    store.create_tenant("acme")
    a, va = store._derive_key("acme", purpose="customer", label=b"blind-index")
    b, _ = store._derive_key("acme", purpose="customer", label=b"blind-index")
    c, _ = store._derive_key("acme", purpose="customer", label=b"incident-log")
    d, _ = store._derive_key("acme", purpose="sensitive", label=b"blind-index")
    e, _ = store._derive_key("acme", purpose="customer", label=b"blind-index", length=64)
    for k in (a, c, d, e):
        leaks.register_secret(k)
    assert va == 1
    assert a == b
    assert len({a, c, d, e[:32]}) == 4
    store.rotate("acme", purpose="customer")
    f, vf = store._derive_key("acme", purpose="customer", label=b"blind-index")
    leaks.register_secret(f)
    assert (vf, f != a) == (2, True)
    assert store._derive_key("acme", purpose="customer", label=b"blind-index", version=1) == (a, 1)
    with pytest.raises(InvalidInputError):
        store._derive_key("acme", purpose="customer", label=b"")


def test_unknown_and_shredded(store: KeyStore) -> None:
    """Unknown tenants raise KeyNotFoundError; shredded ones KeyDestroyedError with an event."""
    with pytest.raises(KeyNotFoundError):
        store._tenant_key("ghost", "customer")
    store.create_tenant("acme")
    store._tenant_key("acme", "customer")  # cached now
    store.shred("acme")
    with pytest.raises(KeyDestroyedError):
        store._tenant_key("acme", "customer", 1)
    with pytest.raises(KeyDestroyedError):
        store._tenant_key("acme", "sensitive")
    assert store.describe("acme").shredded
    assert any(r.styku_event.get("tenant") == "acme" for r in _events("key.shredded_access"))  # type: ignore[attr-defined]
    assert any(r.styku_event.get("tenant") == "acme" for r in _events("key.shredded"))  # type: ignore[attr-defined]
    with pytest.raises(KeyStoreError):
        store.create_tenant("acme")


def test_cache_avoids_root_calls(
    backend_factory: Callable[..., KeyStoreBackend], tmp_path: Path
) -> None:
    """Within the TTL the root is called once per key version, not once per use."""
    root = SwitchableRoot(tmp_path / "r.key")
    with KeyStore(backend_factory(), root=root, cache_ttl=60) as ks:
        ks.create_tenant("acme")
        for _ in range(100):
            ks._tenant_key("acme", "customer")
        assert root.unwraps == 1


def test_cache_disabled_and_bounded(
    backend_factory: Callable[..., KeyStoreBackend], tmp_path: Path
) -> None:
    """cache_ttl=0 unwraps every time; cache_size bounds how many versions stay cached."""
    root = SwitchableRoot(tmp_path / "r.key")
    with KeyStore(backend_factory("a"), root=root, cache_ttl=0) as ks:
        ks.create_tenant("acme")
        for _ in range(5):
            ks._tenant_key("acme", "customer")
        assert root.unwraps == 5
    root2 = SwitchableRoot(tmp_path / "r2.key")
    with KeyStore(backend_factory("b"), root=root2, cache_size=2) as ks:
        for i in range(5):
            ks.create_tenant(f"t{i}")
            ks._tenant_key(f"t{i}", "customer")
        assert len(ks._keys) <= 2


def test_multi_root_failover(
    backend_factory: Callable[..., KeyStoreBackend], tmp_path: Path
) -> None:
    """With two roots, unwrap fails over only on unavailability and names every provider tried."""
    a, b = SwitchableRoot(tmp_path / "a.key"), SwitchableRoot(tmp_path / "b.key")
    with KeyStore(backend_factory(), root=[a, b], cache_ttl=0) as ks:
        info = ks.create_tenant("acme")
        assert info.keys[0].providers == (a.provider_id, b.provider_id)
        a.available = False
        before = len(_events("key.root_failover"))
        assert ks._tenant_key("acme", "customer").version == 1
        assert len(_events("key.root_failover")) == before + 1
        b.available = False
        with pytest.raises(RootKeyUnavailableError) as err:
            ks._tenant_key("acme", "customer")
        assert a.provider_id in str(err.value)
        assert b.provider_id in str(err.value)


def test_integrity_failure_never_fails_over(
    backend_factory: Callable[..., KeyStoreBackend], tmp_path: Path
) -> None:
    """A wrap that fails authentication raises KeyStoreError and is not retried elsewhere."""
    a, b = SwitchableRoot(tmp_path / "a.key"), SwitchableRoot(tmp_path / "b.key")
    backend = backend_factory()
    with KeyStore(backend, root=[a, b], cache_ttl=0) as ks:
        ks.create_tenant("acme")
        rec = backend.get_key("acme", "customer", 1)
        bad = bytearray(rec.wraps[0][1])
        bad[-1] ^= 1
        backend.replace_wraps(
            [
                type(rec)(
                    rec.tenant,
                    rec.purpose,
                    rec.version,
                    rec.key_id,
                    ((rec.wraps[0][0], bytes(bad)), rec.wraps[1]),
                    rec.created_at,
                )
            ]
        )
        b.unwraps = 0
        with pytest.raises(KeyStoreError, match="integrity"):
            ks._tenant_key("acme", "customer")
        assert b.unwraps == 0
        assert any("does not unwrap" in p for p in ks.check(deep=True))


def test_wrap_bound_to_identity(
    backend: KeyStoreBackend, root_factory: Callable[..., RootKeyProvider]
) -> None:
    """A wrap moved to another tenant's row does not unwrap (its AAD binds the identity)."""
    with KeyStore(backend, root=root_factory(), cache_ttl=0) as ks:
        ks.create_tenant("acme")
        ks.create_tenant("evil")
        src = backend.get_key("acme", "customer", 1)
        dst = backend.get_key("evil", "customer", 1)
        backend.replace_wraps(
            [type(dst)(dst.tenant, dst.purpose, dst.version, dst.key_id, src.wraps, dst.created_at)]
        )
        with pytest.raises(KeyStoreError):
            ks._tenant_key("evil", "customer")


def test_rewrap_root_adds_provider(
    backend_factory: Callable[..., KeyStoreBackend], tmp_path: Path
) -> None:
    """rewrap_root wraps existing keys under a newly added provider, which can then unwrap alone."""
    backend = backend_factory()
    a, b = SwitchableRoot(tmp_path / "a.key"), SwitchableRoot(tmp_path / "b.key")
    ks = KeyStore(backend, root=a)
    ks.create_tenant("acme")
    fpr = ks._tenant_key("acme", "customer").fingerprint
    ks2 = KeyStore(backend, root=[a, b], cache_ttl=0)
    assert ks2.rewrap_root() == 2
    only_b = KeyStore(backend, root=b, cache_ttl=0)
    assert only_b._tenant_key("acme", "customer").fingerprint == fpr
    assert ks2.check(deep=True) == []


def test_concurrent_use_while_rotating(store: KeyStore) -> None:
    """Threads reading primary keys while another rotates see only valid versions."""
    store.create_tenant("acme")
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                assert store._tenant_key("acme", "customer").version >= 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(10):
        store.rotate("acme")
    stop.set()
    for t in threads:
        t.join(30)
    assert errors == []
    assert store._tenant_key("acme", "customer").version == 11


def test_no_secret_in_repr_or_pickle(store: KeyStore) -> None:
    """Key objects show ids and fingerprints only and refuse to pickle."""
    store.create_tenant("acme")
    key = store._tenant_key("acme", "customer")
    leaks.register_secret(key._secret)
    for obj in (key, store, store.providers[0], store.describe("acme")):
        leaks.assert_no_secret_in(f"repr {type(obj).__name__}", repr(obj))
    for obj in (key, store, store.providers[0]):
        with pytest.raises(TypeError):
            pickle.dumps(obj)
    assert "tk_" in repr(key)
    assert key.fingerprint in repr(key)


def test_open_paths_and_urls(tmp_path: Path) -> None:
    """KeyStore.open accepts paths and sqlite:/// URLs and refuses other schemes."""
    with KeyStore.open(tmp_path / "a.db") as ks:
        ks.create_tenant("x")
    with KeyStore.open(f"sqlite:///{tmp_path}/a.db") as ks:
        assert [t.name for t in ks.tenants()] == ["x"]
    with pytest.raises(InvalidInputError):
        KeyStore.open("mysql://host/db")
    with pytest.raises(InvalidInputError):
        KeyStore.open("postgresql://localhost/db")  # needs an explicit root
    with pytest.raises(KeyStoreError):
        KeyStore.open(tmp_path / "missing.db", read_only=True)


def test_read_only_store(tmp_path: Path) -> None:
    """A read-only store reads keys and refuses every write."""
    with KeyStore.open(tmp_path / "a.db") as ks:
        ks.create_tenant("x")
    with KeyStore.open(tmp_path / "a.db", read_only=True) as ro:
        assert ro._tenant_key("x", "customer").version == 1
        with pytest.raises(KeyStoreError):
            ro.rotate("x")
        with pytest.raises(KeyStoreError):
            ro.create_tenant("y")


def test_constructor_validation(
    backend: KeyStoreBackend, root_factory: Callable[..., RootKeyProvider]
) -> None:
    """KeyStore refuses no root, duplicate roots and silly cache limits."""
    root = root_factory()
    for kwargs in ({"root": []}, {"root": [root, root]}, {"root": root, "cache_ttl": -1}):
        with pytest.raises(InvalidInputError):
            KeyStore(backend, **kwargs)  # type: ignore[arg-type]


def test_integrity_error_is_not_decryption_error(tmp_path: Path) -> None:
    """LocalRootKey reports tampering as DecryptionError (integrity), never as unavailability."""
    root = LocalRootKey(tmp_path / "r.key")
    wrapped = root.wrap(b"k" * 32, aad=b"ctx")
    with pytest.raises(DecryptionError):
        root.unwrap(wrapped, aad=b"other")

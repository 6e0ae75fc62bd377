"""Behavioural tests of every KeyStoreBackend (parametrised in conftest.BACKENDS)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from styku_crypto.exceptions import KeyDestroyedError, KeyNotFoundError, KeyStoreError
from styku_crypto.keys import KeyRecord, KeyStoreBackend

Factory = Callable[..., KeyStoreBackend]


def _rec(tenant: str, purpose: str, version: int, tag: bytes = b"w") -> KeyRecord:
    return KeyRecord(
        tenant=tenant,
        purpose=purpose,
        version=version,
        key_id=f"tk_{tenant}_{purpose}_{version}_{tag.hex()}",
        wraps=(("p1", tag * 40), ("p2", tag * 41)),
        created_at=datetime.now(UTC),
    )


def _tenant(backend: KeyStoreBackend, name: str = "acme") -> None:
    backend.create_tenant(name, [_rec(name, "customer", 1), _rec(name, "sensitive", 1)])


def test_initialize_is_idempotent(backend_factory: Factory) -> None:
    """Initialising an existing store twice keeps its data."""
    b = backend_factory()
    _tenant(b)
    b.initialize()
    assert [t.name for t in b.list_tenants()] == ["acme"]


def test_create_and_read_tenant(backend: KeyStoreBackend) -> None:
    """A created tenant and its keys read back exactly, wraps in order."""
    _tenant(backend)
    t = backend.get_tenant("acme")
    assert t.name == "acme"
    assert t.shredded_at is None
    key = backend.get_key("acme", "customer", 1)
    assert key == backend.get_primary("acme", "customer")
    assert key.providers == ("p1", "p2")
    assert key.wraps[0][1] == b"w" * 40
    assert [(k.purpose, k.version) for k in backend.list_keys("acme")] == [
        ("customer", 1),
        ("sensitive", 1),
    ]


def test_duplicate_tenant_refused(backend: KeyStoreBackend) -> None:
    """Creating an existing tenant raises KeyStoreError and changes nothing."""
    _tenant(backend)
    with pytest.raises(KeyStoreError):
        backend.create_tenant("acme", [_rec("acme", "customer", 1, b"x")])
    assert backend.get_key("acme", "customer", 1).wraps[0][1] == b"w" * 40


def test_lookup_failures(backend: KeyStoreBackend) -> None:
    """Unknown tenants and versions raise KeyNotFoundError (a LookupError)."""
    _tenant(backend)
    with pytest.raises(KeyNotFoundError):
        backend.get_tenant("nobody")
    with pytest.raises(KeyNotFoundError):
        backend.get_key("nobody", "customer", 1)
    with pytest.raises(KeyNotFoundError):
        backend.get_key("acme", "customer", 2)
    with pytest.raises(LookupError):
        backend.get_primary("acme", "nopurpose")


def test_rotate_appends_versions(backend: KeyStoreBackend) -> None:
    """rotate passes the next version to make() and the result becomes primary."""
    _tenant(backend)
    seen: list[int] = []

    def make(version: int) -> KeyRecord:
        seen.append(version)
        return _rec("acme", "customer", version)

    r2 = backend.rotate("acme", "customer", make)
    r3 = backend.rotate("acme", "customer", make)
    assert seen == [2, 3]
    assert (r2.version, r3.version) == (2, 3)
    assert backend.get_primary("acme", "customer").version == 3
    assert backend.get_primary("acme", "sensitive").version == 1
    assert backend.get_key("acme", "customer", 1).version == 1


def test_rotate_failure_rolls_back(backend: KeyStoreBackend) -> None:
    """An exception inside rotate's make() leaves no new version behind."""
    _tenant(backend)

    def boom(version: int) -> KeyRecord:
        raise RuntimeError("injected crash")

    with pytest.raises(RuntimeError):
        backend.rotate("acme", "customer", boom)
    assert backend.get_primary("acme", "customer").version == 1
    assert backend.check() == []


def test_rotate_rejects_wrong_record(backend: KeyStoreBackend) -> None:
    """rotate refuses a record that is not the next version of that tenant and purpose."""
    _tenant(backend)
    with pytest.raises(KeyStoreError):
        backend.rotate("acme", "customer", lambda v: _rec("acme", "customer", v + 1))
    assert backend.get_primary("acme", "customer").version == 1


def test_concurrent_rotations_get_distinct_versions(backend_factory: Factory) -> None:
    """Threads rotating through separate connections never collide or lose a version."""
    first = backend_factory()
    _tenant(first)
    errors: list[BaseException] = []

    def worker() -> None:
        b = backend_factory()
        try:
            for _ in range(5):
                b.rotate("acme", "customer", lambda v: _rec("acme", "customer", v))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    versions = [k.version for k in first.list_keys("acme") if k.purpose == "customer"]
    assert versions == list(range(1, 22))
    assert first.check() == []


def test_replace_wraps(backend: KeyStoreBackend) -> None:
    """replace_wraps swaps the stored wraps of a version and keeps everything else."""
    _tenant(backend)
    old = backend.get_key("acme", "customer", 1)
    new = KeyRecord(
        old.tenant, old.purpose, old.version, old.key_id, (("p3", b"z" * 60),), old.created_at
    )
    backend.replace_wraps([new])
    got = backend.get_key("acme", "customer", 1)
    assert got.wraps == (("p3", b"z" * 60),)
    assert got.key_id == old.key_id


def test_replace_wraps_is_atomic(backend: KeyStoreBackend) -> None:
    """A failing record in replace_wraps leaves every earlier record unchanged."""
    _tenant(backend)
    old = backend.get_key("acme", "customer", 1)
    good = KeyRecord(old.tenant, old.purpose, 1, old.key_id, (("p3", b"z" * 60),), old.created_at)
    bad_id = KeyRecord("acme", "sensitive", 1, "tk_wrong", (("p3", b"z" * 60),), old.created_at)
    with pytest.raises(KeyStoreError):
        backend.replace_wraps([good, bad_id])
    missing = KeyRecord("acme", "customer", 9, old.key_id, (("p3", b"z"),), old.created_at)
    with pytest.raises(KeyNotFoundError):
        backend.replace_wraps([good, missing])
    assert backend.get_key("acme", "customer", 1).wraps == old.wraps


def test_shred_destroys_and_remembers(backend: KeyStoreBackend) -> None:
    """After shred every key lookup raises KeyDestroyedError and the name is never reused."""
    _tenant(backend)
    _tenant(backend, "other")
    backend.shred("acme")
    for call in (
        lambda: backend.get_key("acme", "customer", 1),
        lambda: backend.get_primary("acme", "sensitive"),
        lambda: backend.list_keys("acme"),
        lambda: backend.rotate("acme", "customer", lambda v: _rec("acme", "customer", v)),
    ):
        with pytest.raises(KeyDestroyedError):
            call()
    assert backend.get_tenant("acme").shredded_at is not None
    assert [name for name, _ in backend.shred_list()] == ["acme"]
    with pytest.raises(KeyStoreError):
        _tenant(backend)
    assert backend.get_key("other", "customer", 1).version == 1
    assert backend.check() == []


def test_shred_unknown_tenant(backend: KeyStoreBackend) -> None:
    """Shredding a tenant that never existed raises KeyNotFoundError."""
    with pytest.raises(KeyNotFoundError):
        backend.shred("ghost")


def test_meta_roundtrip(backend: KeyStoreBackend) -> None:
    """Meta values are set, overwritten and deleted."""
    assert backend.get_meta("canary") is None
    backend.set_meta("canary", b"one")
    backend.set_meta("canary", b"two")
    assert backend.get_meta("canary") == b"two"
    backend.set_meta("canary", None)
    assert backend.get_meta("canary") is None


def test_snapshot_roundtrip(backend_factory: Factory) -> None:
    """export_snapshot then import_snapshot into an empty store reproduces the store."""
    src = backend_factory("src")
    _tenant(src)
    _tenant(src, "gone")
    src.rotate("acme", "sensitive", lambda v: _rec("acme", "sensitive", v))
    src.shred("gone")
    src.set_meta("m", b"v")
    snap = src.export_snapshot()
    dst = backend_factory("dst")
    dst.import_snapshot(snap)
    assert dst.export_snapshot() == snap
    assert dst.check() == []
    with pytest.raises(KeyStoreError):
        dst.import_snapshot(snap)


def test_check_healthy_store(backend: KeyStoreBackend) -> None:
    """A store built only through the API has no consistency problems."""
    _tenant(backend)
    assert backend.check() == []


def test_check_reports_missing_purpose(backend: KeyStoreBackend) -> None:
    """check() reports a tenant that lacks one of the key purposes."""
    backend.create_tenant("half", [_rec("half", "customer", 1)])
    assert any("sensitive" in p for p in backend.check())


def test_rotate_and_replace_wraps_refuse_alike(backend: KeyStoreBackend) -> None:
    """Every backend refuses the same bad rotate/replace_wraps inputs with the same errors."""
    _tenant(backend)
    old = backend.get_key("acme", "customer", 1)
    with pytest.raises(KeyNotFoundError, match="ghost"):
        backend.rotate("ghost", "customer", lambda v: _rec("ghost", "customer", v))
    with pytest.raises(KeyStoreError, match="does not match the next version"):
        backend.rotate("acme", "customer", lambda v: _rec("acme", "sensitive", v))
    no_wraps = KeyRecord(old.tenant, old.purpose, 1, old.key_id, (), old.created_at)
    with pytest.raises(KeyStoreError, match="at least one wrap"):
        backend.replace_wraps([no_wraps])
    missing = KeyRecord("acme", "customer", 7, old.key_id, (("p3", b"z"),), old.created_at)
    with pytest.raises(KeyNotFoundError, match="customer key version 7"):
        backend.replace_wraps([missing])
    other_id = KeyRecord("acme", "customer", 1, "tk_other", (("p3", b"z"),), old.created_at)
    with pytest.raises(KeyStoreError, match="key id does not match"):
        backend.replace_wraps([other_id])
    assert backend.get_key("acme", "customer", 1) == old
    assert [k.version for k in backend.list_keys("acme") if k.purpose == "customer"] == [1]

"""Authenticated metadata: a rotation or shred undone by a database write is refused (12.3).

Each attack writes the store's tables with plain SQL (no key store, no root
key), exactly as a database administrator or an injected query could, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from styku_crypto.envelope import Envelope
from styku_crypto.exceptions import KeyStoreError, MetadataIntegrityError
from styku_crypto.keys import KeyStore, KeyStoreBackend, LocalRootKey, SQLiteBackend

CTX = {"table": "users", "column": "email"}


def _sql(backend: KeyStoreBackend, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run *statement* on the store's database directly; ``{p}`` is the table prefix."""
    if isinstance(backend, SQLiteBackend):
        conn = sqlite3.connect(backend.path)
        try:
            cur = conn.execute(statement.format(p="").replace("%s", "?"), params)
            rows = cur.fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(backend._primary_url, autocommit=True) as conn:  # type: ignore[attr-defined]
        cur = conn.execute(statement.format(p="styku_"), params)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def make_store(
    backend_factory: Callable[..., KeyStoreBackend], tmp_path: Path
) -> Iterator[Callable[[], KeyStore]]:
    """KeyStores (each a new process view: own cache, own sealer) over one backend."""
    root = tmp_path / "root.key"
    opened: list[KeyStore] = []

    def make() -> KeyStore:
        ks = KeyStore(backend_factory("store"), root=LocalRootKey(root), cache_ttl=0)
        opened.append(ks)
        return ks

    yield make
    for ks in opened:
        ks.close()


def _rotated(make: Callable[[], KeyStore]) -> KeyStore:
    store = make()
    store.create_tenant("acme")
    store.create_tenant("beta")
    store.rotate("acme", purpose="customer")
    assert store._tenant_key("acme", "customer").version == 2
    return store


def test_deleting_the_new_version_makes_encrypt_refuse(make_store: Callable[[], KeyStore]) -> None:
    """Attack (found 3): DELETE the v2 rows; encrypt refuses instead of using retired v1."""
    store = _rotated(make_store)
    _sql(store.backend, "DELETE FROM {p}key_wraps WHERE tenant = 'acme' AND version = 2")
    _sql(store.backend, "DELETE FROM {p}tenant_keys WHERE tenant = 'acme' AND version = 2")
    fresh = make_store()
    with pytest.raises(MetadataIntegrityError, match="v2"):
        Envelope(fresh).encrypt(b"x", tenant="acme", context=CTX)
    problems = fresh.check()
    assert any("customer v2" in p and "was deleted" in p for p in problems), problems
    assert any("primary is v1 in the store, authenticated v2" in p for p in problems), problems
    # other tenants keep working; a write does not launder the change
    Envelope(fresh).encrypt(b"x", tenant="beta", context=CTX)
    with pytest.raises(MetadataIntegrityError):
        fresh.rotate("acme", purpose="customer")


def test_deleting_the_seal_too_is_detected(make_store: Callable[[], KeyStore]) -> None:
    """Attack: delete v2 rows and the tenant's seal row; the global seal still lists it."""
    store = _rotated(make_store)
    _sql(store.backend, "DELETE FROM {p}key_wraps WHERE tenant = 'acme' AND version = 2")
    _sql(store.backend, "DELETE FROM {p}tenant_keys WHERE tenant = 'acme' AND version = 2")
    _sql(store.backend, "DELETE FROM {p}meta WHERE name = 'styku/seal/tenant/acme'")
    fresh = make_store()
    with pytest.raises(MetadataIntegrityError):
        fresh._tenant_key("acme", "customer")
    assert any("seal of tenant 'acme' was deleted" in p for p in fresh.check())


def test_replaying_an_older_seal_is_detected(make_store: Callable[[], KeyStore]) -> None:
    """Attack: save the v1-era seal, rotate, then put the old seal back and delete v2."""
    store = make_store()
    store.create_tenant("acme")
    (old,) = _sql(store.backend, "SELECT value FROM {p}meta WHERE name = 'styku/seal/tenant/acme'")
    store.rotate("acme", purpose="customer")
    _sql(store.backend, "DELETE FROM {p}key_wraps WHERE tenant = 'acme' AND version = 2")
    _sql(store.backend, "DELETE FROM {p}tenant_keys WHERE tenant = 'acme' AND version = 2")
    _sql(
        store.backend,
        "UPDATE {p}meta SET value = %s WHERE name = 'styku/seal/tenant/acme'",
        (bytes(old[0]),),
    )
    fresh = make_store()
    with pytest.raises(MetadataIntegrityError, match="replaced"):
        fresh._tenant_key("acme", "customer")
    assert any("older copy" in p for p in fresh.check())


def test_undoing_a_shred_by_sql_is_refused(make_store: Callable[[], KeyStore]) -> None:
    """Attack: copy the key rows aside, shred, then un-shred and put the rows back."""
    store = make_store()
    store.create_tenant("acme")
    keys = _sql(store.backend, "SELECT * FROM {p}tenant_keys WHERE tenant = 'acme'")
    wraps = _sql(store.backend, "SELECT * FROM {p}key_wraps WHERE tenant = 'acme'")
    store.shred("acme")
    _sql(store.backend, "UPDATE {p}tenants SET shredded_at = NULL WHERE name = 'acme'")
    _sql(store.backend, "DELETE FROM {p}shredded WHERE tenant = 'acme'")
    for row in keys:
        _sql(store.backend, "INSERT INTO {p}tenant_keys VALUES (%s, %s, %s, %s, %s)", tuple(row))
    for row in wraps:
        _sql(store.backend, "INSERT INTO {p}key_wraps VALUES (%s, %s, %s, %s, %s, %s)", tuple(row))
    fresh = make_store()
    with pytest.raises(MetadataIntegrityError):
        Envelope(fresh).encrypt(b"x", tenant="acme", context=CTX)
    problems = " ".join(fresh.check())
    assert "not shredded in the store, authenticated shredded" in problems
    assert "tombstone was removed" in problems


def test_tenant_inserted_by_sql_is_refused(make_store: Callable[[], KeyStore]) -> None:
    """Attack: a tenant row written without the key store has no seal: refused and reported."""
    store = make_store()
    store.create_tenant("acme")
    _sql(store.backend, "INSERT INTO {p}tenants (name, created_at) VALUES ('evil', '2026-01-01')")
    fresh = make_store()
    with pytest.raises(MetadataIntegrityError, match="never sealed"):
        fresh._tenant_key("evil", "customer")
    assert any("'evil'" in p and "never sealed" in p for p in fresh.check())


def test_wiping_every_seal_is_refused(make_store: Callable[[], KeyStore]) -> None:
    """Attack: delete all seal rows (key, global, tenant seals) and the v2 rows."""
    store = _rotated(make_store)
    _sql(store.backend, "DELETE FROM {p}meta WHERE name LIKE 'styku/seal/%%'")
    _sql(store.backend, "DELETE FROM {p}key_wraps WHERE tenant = 'acme' AND version = 2")
    _sql(store.backend, "DELETE FROM {p}tenant_keys WHERE tenant = 'acme' AND version = 2")
    fresh = make_store()
    with pytest.raises(MetadataIntegrityError, match="not sealed"):
        fresh._tenant_key("acme", "customer")
    with pytest.raises(MetadataIntegrityError, match="not sealed"):
        fresh.create_tenant("gamma")
    assert any("not sealed" in p for p in fresh.check())


def test_whole_metadata_rollback_is_refused_by_a_process_that_saw_newer(
    make_store: Callable[[], KeyStore],
) -> None:
    """Attack: roll every seal and the v2 rows back to a consistent older state while running."""
    store = make_store()
    store.create_tenant("acme")
    seals = _sql(store.backend, "SELECT name, value FROM {p}meta WHERE name LIKE 'styku/seal/%%'")
    store.rotate("acme", purpose="customer")
    assert store._tenant_key("acme", "customer").version == 2
    _sql(store.backend, "DELETE FROM {p}key_wraps WHERE tenant = 'acme' AND version = 2")
    _sql(store.backend, "DELETE FROM {p}tenant_keys WHERE tenant = 'acme' AND version = 2")
    for name, value in seals:
        _sql(store.backend, "UPDATE {p}meta SET value = %s WHERE name = %s", (bytes(value), name))
    with pytest.raises(MetadataIntegrityError, match="rolled back"):
        store._tenant_key("acme", "customer")


def test_check_is_clean_and_reseal_accepts(make_store: Callable[[], KeyStore]) -> None:
    """A healthy store checks clean; reseal (operator decision) accepts the current rows."""
    store = _rotated(make_store)
    assert store.check() == []
    _sql(store.backend, "DELETE FROM {p}key_wraps WHERE tenant = 'acme' AND version = 2")
    _sql(store.backend, "DELETE FROM {p}tenant_keys WHERE tenant = 'acme' AND version = 2")
    fresh = make_store()
    assert fresh.check() != []
    fresh.reseal()
    assert fresh.check() == []
    assert make_store()._tenant_key("acme", "customer").version == 1


def test_seal_names_are_not_writable_through_set_meta(make_store: Callable[[], KeyStore]) -> None:
    """Careless code cannot clobber a seal through the generic metadata setter."""
    store = make_store()
    store.create_tenant("acme")
    with pytest.raises(KeyStoreError, match="seal"):
        store.backend.set_meta("styku/seal/global", b"{}")


def test_authenticated_records_detect_deletion_and_replay(
    make_store: Callable[[], KeyStore],
) -> None:
    """The record API (used by the incident log head): deleted or replayed records are refused."""
    store = make_store()
    assert store._read_record("head") is None
    store._write_record("head", b"one")
    (old,) = _sql(store.backend, "SELECT value FROM {p}meta WHERE name = 'styku/seal/record/head'")
    store._write_record("head", b"two")
    assert make_store()._read_record("head") == b"two"
    _sql(
        store.backend,
        "UPDATE {p}meta SET value = %s WHERE name = 'styku/seal/record/head'",
        (bytes(old[0]),),
    )
    with pytest.raises(MetadataIntegrityError, match="older copy"):
        make_store()._read_record("head")
    _sql(store.backend, "DELETE FROM {p}meta WHERE name = 'styku/seal/record/head'")
    with pytest.raises(MetadataIntegrityError, match="record 'head' was deleted"):
        make_store()._read_record("head")


def test_keys_check_cli_names_the_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`keys check` exits 1 and prints exactly what the SQL write changed."""
    from styku_crypto._cli import main

    db = tmp_path / "keys.db"
    with KeyStore.open(db) as store:
        store.create_tenant("acme")
        store.rotate("acme", purpose="customer")
        _sql(store.backend, "DELETE FROM {p}key_wraps WHERE tenant = 'acme' AND version = 2")
        _sql(store.backend, "DELETE FROM {p}tenant_keys WHERE tenant = 'acme' AND version = 2")
    assert main(["keys", "check", "--store", str(db)]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM tenant 'acme' customer v2" in out
    assert "primary is v1 in the store, authenticated v2" in out


def test_keys_reseal_cli_needs_yes_and_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`keys reseal` without --yes is a usage error; with it, check is clean again."""
    from styku_crypto._cli import main

    db = tmp_path / "keys.db"
    with KeyStore.open(db) as store:
        store.create_tenant("acme")
        store.rotate("acme", purpose="customer")
        _sql(store.backend, "DELETE FROM {p}key_wraps WHERE tenant = 'acme' AND version = 2")
        _sql(store.backend, "DELETE FROM {p}tenant_keys WHERE tenant = 'acme' AND version = 2")
    assert main(["keys", "reseal", "--store", str(db)]) == 2
    assert main(["keys", "reseal", "--store", str(db), "--yes"]) == 0
    assert "accepted: tenant 'acme' customer v2" in capsys.readouterr().out
    assert main(["keys", "check", "--store", str(db)]) == 0

"""PostgreSQL-specific behaviour on real servers: URLs, racing processes, replica, shredding."""

from __future__ import annotations

import secrets
import subprocess
import sys
import textwrap
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from styku_crypto.envelope import Envelope
from styku_crypto.exceptions import KeyDestroyedError, KeyStoreError
from styku_crypto.keys import KeyStore, LocalRootKey, PostgresBackend, SQLiteBackend
from tests._support import leaks
from tests._support.postgres import PostgresServer, free_port

PROJECT = Path(__file__).resolve().parents[2]
CTX = {"table": "scans", "id": "1"}


def test_url_picks_backend(postgres_url: str, tmp_path: Path) -> None:
    """postgresql:// opens PostgresBackend; a path or sqlite:/// opens SQLiteBackend."""
    root = LocalRootKey(tmp_path / "root.key")
    with KeyStore.open(postgres_url, root=root) as ks:
        assert isinstance(ks.backend, PostgresBackend)
    with KeyStore.open(tmp_path / "a.db") as ks:
        assert isinstance(ks.backend, SQLiteBackend)
    with KeyStore.open(f"sqlite:///{tmp_path / 'b.db'}") as ks:
        assert isinstance(ks.backend, SQLiteBackend)


def test_location_and_errors_hide_password(tmp_path: Path) -> None:
    """A password in the URL never shows in location, repr or the unreachable-server error."""
    password = "pw-" + secrets.token_hex(12)
    leaks.register_secret(password)
    url = f"postgresql://app:{password}@127.0.0.1:{free_port()}/keys"
    backend = PostgresBackend(url, timeouts=1)
    backend.initialize()  # opening never needs a server: checked by the first call
    with pytest.raises(KeyStoreError) as err:
        backend.list_tenants()
    for text in (backend.location, repr(backend), str(err.value)):
        leaks.assert_no_secret_in("postgres location/error", text)
    assert "127.0.0.1" in backend.location
    backend.close()


def test_read_only_backend_refuses_writes(postgres_url: str, tmp_path: Path) -> None:
    """A read-only PostgresBackend reads an initialised store and refuses every write."""
    root = LocalRootKey(tmp_path / "root.key")
    with KeyStore.open(postgres_url, root=root) as ks:
        ks.create_tenant("acme")
    ro = PostgresBackend(postgres_url, read_only=True)
    ro.initialize()
    assert [t.name for t in ro.list_tenants()] == ["acme"]
    with pytest.raises(KeyStoreError, match="read-only"):
        ro.set_meta("x", b"y")
    ro.close()


_RACER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {project!r})
    from styku_crypto.keys import KeyStore, LocalRootKey
    store = KeyStore.open({url!r}, root=LocalRootKey({root!r}, create=False), cache_ttl=0)
    for _ in range({n}):
        store.rotate("acme", purpose="customer")
    store.close()
    """
)


def test_concurrent_rotation_from_processes(postgres_url: str, tmp_path: Path) -> None:
    """Four processes rotating one tenant at once get distinct, gap-free versions (row locks)."""
    root_path = tmp_path / "root.key"
    with KeyStore.open(postgres_url, root=LocalRootKey(root_path)) as ks:
        ks.create_tenant("acme")
    script = _RACER.format(project=str(PROJECT), url=postgres_url, root=str(root_path), n=6)
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE) for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    with KeyStore.open(postgres_url, root=LocalRootKey(root_path)) as ks:
        versions = [k.version for k in ks.describe("acme").keys if k.purpose == "customer"]
        assert versions == list(range(1, 26))
        assert ks.check(deep=True) == []


@pytest.fixture
def primary_and_replica() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    """A private primary server (the test stops it) and its streaming hot standby."""
    primary = PostgresServer.create()
    replica = None
    try:
        replica = primary.replica()
        yield primary, replica
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()


def test_secondary_serves_reads_when_primary_is_down(
    primary_and_replica: tuple[PostgresServer, PostgresServer], tmp_path: Path
) -> None:
    """Primary stopped: reads (decrypt) come from the replica; writes raise, naming the primary."""
    primary, replica = primary_and_replica
    url = primary.create_database("keys")
    secondary = replica.url("keys")
    full = f"{url}?secondary={urllib.parse.quote(secondary, safe='')}"
    root_path = tmp_path / "root.key"
    data = b"scan-" + secrets.token_bytes(16)
    leaks.register_secret(data)
    with KeyStore.open(full, root=LocalRootKey(root_path)) as ks:
        ks.create_tenant("acme")
        token = Envelope(ks).encrypt(data, tenant="acme", context=CTX)
    primary.wait_replayed(replica)
    primary.stop(mode="immediate")
    backend = PostgresBackend(full, timeouts=2)
    with KeyStore(backend, root=LocalRootKey(root_path), cache_ttl=0) as ks:
        assert Envelope(ks).decrypt(token, tenant="acme", context=CTX) == data
        assert [t.name for t in ks.tenants()] == ["acme"]
        with pytest.raises(KeyStoreError, match="primary") as err:
            ks.rotate("acme")
        assert "unreachable" in str(err.value)
        with pytest.raises(KeyStoreError):
            ks.create_tenant("beta")
    # The replica itself refuses writes too: nothing could have been written there.
    with psycopg.connect(secondary) as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("INSERT INTO styku_meta (name, value) VALUES ('x', 'y')")


def test_primary_and_secondary_unreachable() -> None:
    """Both unreachable: one KeyStoreError naming both, not a driver exception."""
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/keys"
    other = f"postgresql://postgres@127.0.0.1:{free_port()}/keys"
    backend = PostgresBackend(f"{url}?secondary={urllib.parse.quote(other, safe='')}", timeouts=1)
    with pytest.raises(KeyStoreError, match="secondary") as err:
        backend.list_tenants()
    assert url.split("@")[1].split("/")[0] in str(err.value)
    backend.close()


def test_shred_removes_wraps_from_table_files(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    """After shred the wrapped key bytes are gone from the live table file (VACUUM FULL rewrite)."""
    with KeyStore.open(postgres_url, root=LocalRootKey(tmp_path / "root.key")) as ks:
        ks.create_tenant("acme")
        ks.create_tenant("keep")
        wraps = [w for r in ks.backend.list_keys("acme") for _, w in r.wraps]
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
            row = conn.execute("SELECT pg_relation_filepath('styku_key_wraps')").fetchone()
        assert row is not None
        before = (postgres_server.datadir / row[0]).read_bytes()
        assert any(w in before for w in wraps)
        ks.shred("acme")
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
            row = conn.execute("SELECT pg_relation_filepath('styku_key_wraps')").fetchone()
        assert row is not None
        after = (postgres_server.datadir / row[0]).read_bytes()
        assert not any(w in after for w in wraps)
        with pytest.raises(KeyDestroyedError):
            ks._tenant_key("acme", "customer")
        assert ks._tenant_key("keep", "customer").version == 1
        assert ks.check() == []


def test_schema_creation_is_concurrent_safe(postgres_url: str) -> None:
    """Initialising the same database from several backends at once succeeds (advisory lock)."""
    backends = [PostgresBackend(postgres_url) for _ in range(4)]
    import threading

    errors: list[BaseException] = []

    def init(b: PostgresBackend) -> None:
        try:
            b.initialize()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=init, args=(b,)) for b in backends]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    for b in backends:
        b.close()


_LAZY = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {project!r})
    import styku_crypto.keys
    heavy = [m for m in ("psycopg", "boto3", "botocore", "pkcs11") if m in sys.modules]
    assert heavy == [], heavy
    for name in ("psycopg", "boto3", "pkcs11"):
        sys.modules[name] = None  # as if the extra were not installed
    from styku_crypto.exceptions import MissingExtraError
    from styku_crypto.keys import AwsKmsRootKey, KeyStore, LocalRootKey, Pkcs11RootKey
    checks = [
        (lambda: KeyStore.open("postgresql://x@127.0.0.1/db", root=LocalRootKey({root!r})),
         "postgres"),
        (lambda: AwsKmsRootKey(key_id="k").wrap(b"k" * 32, aad=b""), "aws"),
        (lambda: Pkcs11RootKey(module="m", token_label="t", pin="p").wrap(b"k" * 32, aad=b""),
         "pkcs11"),
    ]
    for call, extra in checks:
        try:
            call()
        except MissingExtraError as exc:
            assert extra in str(exc), str(exc)
        else:
            raise AssertionError(extra)
    print("ok")
    """
)


def test_extras_are_lazy_and_named_when_missing(tmp_path: Path) -> None:
    """Importing keys loads no extra; without psycopg/boto3/pkcs11 the error names the extra."""
    script = _LAZY.format(project=str(PROJECT), root=str(tmp_path / "root.key"))
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"

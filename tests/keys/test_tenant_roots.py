"""Per-tenant roots: a shred destroys the tenant's root object; old backups die with it (12.2).

Run against the suite's real SoftHSM2 token and moto KMS server. The attack in
every test: the tombstones are deleted from the backup destination (write access
to the backup store) and a backup taken BEFORE the shred is restored.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from styku_crypto._cli import main
from styku_crypto.envelope import Envelope
from styku_crypto.exceptions import (
    InvalidInputError,
    KeyDestroyedError,
    KeyNotFoundError,
    ShredIncompleteError,
    TenantRootRemainsError,
)
from styku_crypto.keys import (
    AwsKmsRootKey,
    KeyStore,
    LocalRootKey,
    Pkcs11RootKey,
    RetryPolicy,
    RootKeyProvider,
    SQLiteBackend,
    backup,
    drill,
    restore,
)
from styku_crypto.keys._material import wrap_aad
from styku_crypto.keys._provider import TENANT_ROOT_MARK
from styku_crypto.keys._restore import load_backup
from tests._support.keystores import kms_provider, pkcs11_provider
from tests._support.moto_server import AWS_ENV, FaultProxy, MotoServer, kms_client
from tests._support.softhsm import SoftHSMToken

PROJECT = Path(__file__).resolve().parents[2]
CTX = {"table": "scans", "id": "1"}
FACTORIES = {"softhsm": pkcs11_provider, "kms": kms_provider}


@pytest.fixture(params=sorted(FACTORIES))
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RootKeyProvider]:
    """A root that can hold per-tenant objects: SoftHSM2 or moto KMS."""
    provider = FACTORIES[request.param](request, tmp_path, "root")
    yield provider
    provider.close()


def _store(
    tmp_path: Path, name: str, root: RootKeyProvider | list[RootKeyProvider], **kw: object
) -> KeyStore:
    backend = SQLiteBackend(tmp_path / f"{name}.db")
    backend.initialize()
    return KeyStore(backend, root=root, cache_ttl=0, **kw)  # type: ignore[arg-type]


def _object_exists(root: RootKeyProvider, ref: str) -> bool:
    """Ask the token / KMS directly (not through the library) whether *ref* is usable."""
    if isinstance(root, Pkcs11RootKey):
        import pkcs11

        lib = pkcs11.lib(root._module)
        token = lib.get_token(token_label=root._token_label)
        session = root._open_session()
        try:
            found = list(session.get_objects({pkcs11.Attribute.LABEL: ref}))
        finally:
            session.close()
        del lib, token
        return bool(found)
    assert isinstance(root, AwsKmsRootKey)
    meta = root._kms().describe_key(KeyId=ref)["KeyMetadata"]
    return bool(meta["KeyState"] == "Enabled")


def _gone_refs(store: KeyStore, tenant: str) -> list[str]:
    entries = store._tenant_root_entries(tenant)
    assert entries is not None
    return [ref for _parent, ref, _state in entries]


def test_old_backup_of_a_shredded_tenant_is_undecryptable(
    root: RootKeyProvider, tmp_path: Path
) -> None:
    """Shred, delete the tombstones, restore a backup from before the shred: 'gone' stays dead."""
    prod = _store(tmp_path, "prod", root, tenant_roots=True)
    prod.create_tenant("gone")
    prod.create_tenant("acme")
    prod.rotate("gone")  # rotation wraps under the tenant's own object too
    env = Envelope(prod)
    tok_gone = env.encrypt(b"gone's data", tenant="gone", context=CTX)
    tok_acme = env.encrypt(b"acme's data", tenant="acme", context=CTX)
    # No wrap of any tenant key exists under the shared root: only under its own object.
    for record in prod.backend.export_snapshot().keys:
        assert record.providers, record.key_id
        for pid in record.providers:
            assert pid.startswith(root.provider_id + TENANT_ROOT_MARK), pid
    assert prod.repair_wraps() == 0
    prod.rewrap_root()
    assert prod.check(deep=True) == []
    for record in prod.backend.export_snapshot().keys:
        assert all(TENANT_ROOT_MARK in pid for pid in record.providers)
    refs = _gone_refs(prod, "gone")
    dest = tmp_path / "backups"
    old = backup(prod, [dest]).backup_id
    report = drill(dest, root=root)  # the drill reaches the per-tenant objects through the root
    assert report.passed, report

    prod.shred("gone")
    assert not any(_object_exists(root, ref) for ref in refs)
    entries = prod._tenant_root_entries("gone")
    assert entries is not None
    assert all(e[2].startswith("destroyed: ") for e in entries)
    if isinstance(root, AwsKmsRootKey):
        assert all("pending window 7 days" in e[2] for e in entries)
    assert prod.check() == []
    shutil.rmtree(dest / "tombstones")  # the attacker deletes every tombstone

    # The attacker's own unwrap of the old backup's wraps, under the very same root:
    snap = load_backup(dest, [root], backup_id=old).snapshot
    gone_keys = [k for k in snap.keys if k.tenant == "gone"]
    assert gone_keys
    for record in gone_keys:
        aad = wrap_aad(record.tenant, record.purpose, record.version, record.key_id)
        for pid, wrapped in record.wraps:
            child = root.tenant_root(pid.partition(TENANT_ROOT_MARK)[2])
            with pytest.raises(KeyDestroyedError):
                child.unwrap(wrapped, aad=aad)
            child.close()

    # ...and a restore through the library: 'gone' is shredded by construction, acme is fine.
    target = _store(tmp_path, "target", root)
    result = restore(dest, target, backup_id=old)
    assert result.kept_shredded == ("gone",)
    assert target.check() == []  # the restored record says the object is destroyed
    renv = Envelope(target)
    assert renv.decrypt(tok_acme, tenant="acme", context=CTX) == b"acme's data"
    with pytest.raises(KeyDestroyedError):
        renv.decrypt(tok_gone, tenant="gone", context=CTX)
    target.close()
    prod.close()


def test_destroy_failure_is_typed_reported_and_finished(
    moto_server: MotoServer, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """KMS down at destroy time: TenantRootRemainsError, check names it, --finish retries it."""
    key = kms_client(moto_server.endpoint).create_key()["KeyMetadata"]["Arn"]
    kms = AwsKmsRootKey(
        key_id=key,
        endpoint_url=fault_proxy.endpoint,
        client_kwargs=dict(AWS_ENV),
        retry=RetryPolicy(attempts=1, deadline=2, timeout=1),
    )
    store = _store(tmp_path, "s", kms, tenant_roots=True)
    store.create_tenant("gone")
    store.create_tenant("acme")
    refs = _gone_refs(store, "gone")
    fault_proxy.set_mode("down")
    with pytest.raises(TenantRootRemainsError) as info:
        store.shred("gone")
    assert isinstance(info.value, ShredIncompleteError)
    assert refs[0] in str(info.value)
    assert "--finish gone" in str(info.value)
    fault_proxy.set_mode("ok")
    assert store.describe("gone").shredded
    problems = store.check()
    assert any("per-tenant root" in p and "gone" in p for p in problems), problems
    store.finish_shred("gone")
    assert store.check() == []
    assert (
        kms_client(moto_server.endpoint).describe_key(KeyId=refs[0])["KeyMetadata"]["KeyState"]
        == "PendingDeletion"
    )
    store.finish_shred("gone")  # idempotent
    store.close()


def test_finish_never_destroys_a_live_tenants_root(root: RootKeyProvider, tmp_path: Path) -> None:
    """`finish_shred` on a tenant that is not shredded leaves its root object alone."""
    store = _store(tmp_path, "s", root, tenant_roots=True)
    store.create_tenant("acme")
    store.finish_shred("acme")
    assert all(_object_exists(root, ref) for ref in _gone_refs(store, "acme"))
    store.close()


def test_local_root_refuses_per_tenant_mode(
    tmp_path: Path, softhsm_token: SoftHSMToken, request: pytest.FixtureRequest
) -> None:
    """A local key file cannot destroy per-tenant objects: asking for the mode is refused."""
    local = LocalRootKey(tmp_path / "root.key")
    backend = SQLiteBackend(tmp_path / "x.db")
    backend.initialize()
    with pytest.raises(InvalidInputError, match="cannot hold per-tenant root objects"):
        KeyStore(backend, root=local, tenant_roots=True)
    hsm = pkcs11_provider(request, tmp_path, "hsm")
    with pytest.raises(InvalidInputError, match=r"local:"):
        KeyStore(backend, root=[hsm, local], tenant_roots=True)  # every root must qualify
    with pytest.raises(InvalidInputError):
        KeyStore.open(tmp_path / "y.db", root=local, tenant_roots=True)
    # The mode is recorded: a later process without the flag and with a local root
    # added is refused instead of silently wrapping new tenants under a shared root.
    backend.close()
    with _store(tmp_path, "z", hsm, tenant_roots=True) as first:
        first.create_tenant("a")
    hsm2 = pkcs11_provider(request, tmp_path, "hsm")
    with _store(tmp_path, "z", [hsm2, LocalRootKey(tmp_path / "root.key")]) as later:
        with pytest.raises(InvalidInputError, match="cannot hold per-tenant"):
            later.create_tenant("b")
        assert [t.name for t in later.tenants()] == ["a"]


_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {project!r})
    from styku_crypto.keys import KeyStore, Pkcs11RootKey, SQLiteBackend

    def die(self, ref):
        os.kill(os.getpid(), signal.SIGKILL)  # after the rows were deleted, before C_DestroyObject

    Pkcs11RootKey.destroy_tenant_root = die
    root = Pkcs11RootKey(module={module!r}, token_label={token!r}, pin=os.environ["PIN"],
                         key_label={label!r})
    backend = SQLiteBackend({db!r})
    backend.initialize()
    KeyStore(backend, root=root).shred("gone")
    """
)


def test_sigkill_between_delete_and_destroy_then_finish(
    softhsm_token: SoftHSMToken,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SIGKILL after the rows are deleted: check reports the live object, `--finish` destroys it."""
    hsm = pkcs11_provider(request, tmp_path, "root")
    assert isinstance(hsm, Pkcs11RootKey)
    db = tmp_path / "prod.db"
    prod = _store(tmp_path, "prod", hsm, tenant_roots=True)
    prod.create_tenant("gone")
    prod.create_tenant("acme")
    refs = _gone_refs(prod, "gone")
    dest = tmp_path / "backups"
    old = backup(prod, [dest]).backup_id
    prod.close()
    hsm = pkcs11_provider(request, tmp_path, "root")
    assert isinstance(hsm, Pkcs11RootKey)

    script = _KILLER.format(
        project=str(PROJECT),
        module=softhsm_token.module,
        token=softhsm_token.label,
        label=hsm._key_label,
        db=str(db),
    )
    env = dict(os.environ, PIN=softhsm_token.pin)
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert all(_object_exists(hsm, ref) for ref in refs)  # the kill came before the destroy

    spec = f"pkcs11:{softhsm_token.module}#token={softhsm_token.label}&key={hsm._key_label}"
    os.environ["STYKU_CRYPTO_PKCS11_PIN"] = softhsm_token.pin
    try:
        assert main(["keys", "check", "--store", str(db), "--root", spec]) == 1
        assert "keys shred --finish gone" in capsys.readouterr().out
        code = main(["keys", "shred", "gone", "--finish", "--store", str(db), "--root", spec])
        capsys.readouterr()
        assert code == 0
        assert main(["keys", "check", "--store", str(db), "--root", spec]) == 0
        capsys.readouterr()
    finally:
        del os.environ["STYKU_CRYPTO_PKCS11_PIN"]
    assert not any(_object_exists(hsm, ref) for ref in refs)

    shutil.rmtree(dest / "tombstones", ignore_errors=True)
    target = _store(tmp_path, "target", hsm)
    result = restore(dest, target, backup_id=old)
    assert result.kept_shredded == ("gone",)
    assert {t.name for t in target.tenants() if t.shredded_at is None} == {"acme"}
    target.close()


def test_tampered_roots_record_stops_the_shred(root: RootKeyProvider, tmp_path: Path) -> None:
    """A database write redirecting the per-tenant object record is refused before any change."""
    from styku_crypto.exceptions import MetadataIntegrityError
    from styku_crypto.keys._sealing import RECORD_PREFIX
    from styku_crypto.keys._tenant_roots import TENANT_ROOTS_RECORD

    store = _store(tmp_path, "s", root, tenant_roots=True)
    store.create_tenant("a")
    store.create_tenant("b")
    name = RECORD_PREFIX + TENANT_ROOTS_RECORD + "a"
    raw = store.backend.get_meta(name)
    assert raw is not None
    doc = json.loads(raw)
    doc["value"] = doc["value"][:-4] + ("AAA=" if not doc["value"].endswith("AAA=") else "BBB=")
    with store.backend.seal_view(write=True) as view:
        view.meta_put(name, json.dumps(doc).encode())
    with pytest.raises(MetadataIntegrityError):
        store.shred("a")
    assert not store.describe("a").shredded
    store.close()


def test_postgres_store_with_per_tenant_roots(
    request: pytest.FixtureRequest, tmp_path: Path, softhsm_token: SoftHSMToken
) -> None:
    """PostgreSQL: rows and the sealed object record commit together; the shred guarantee holds."""
    from tests._support.keystores import postgres_backend

    hsm = pkcs11_provider(request, tmp_path, "root")
    backend = postgres_backend(request, tmp_path, "prod")
    backend.initialize()
    prod = KeyStore(backend, root=hsm, cache_ttl=0, tenant_roots=True)
    prod.create_tenant("gone")
    prod.create_tenant("acme")
    prod.rotate("acme")
    assert prod.check(deep=True) == []
    dest = tmp_path / "backups"
    old = backup(prod, [dest]).backup_id
    prod.shred("gone")
    shutil.rmtree(dest / "tombstones")
    target_backend = postgres_backend(request, tmp_path, "target")
    target_backend.initialize()
    target = KeyStore(target_backend, root=pkcs11_provider(request, tmp_path, "root"), cache_ttl=0)
    assert restore(dest, target, backup_id=old).kept_shredded == ("gone",)
    assert target.check(deep=True) == []
    with pytest.raises(KeyDestroyedError):
        target._tenant_key("gone", "customer", 1)
    assert target._tenant_key("acme", "customer").version == 2
    target.close()
    prod.close()


def test_a_tenant_created_elsewhere_is_never_wrapped_under_the_shared_root(
    root: RootKeyProvider, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A store that looked the tenant up before another process created it per-tenant
    never rotates it under the shared root (no stale "shared" answer is cached)."""
    early = _store(tmp_path, "s", root)
    with pytest.raises(KeyNotFoundError):
        early.rotate("late")
    other_root = FACTORIES[request.node.callspec.params["root"]](request, tmp_path, "root")
    with _store(tmp_path, "s", other_root, tenant_roots=True) as creator:
        creator.create_tenant("late")
    (info,) = early.rotate("late", purpose="customer")
    assert all(TENANT_ROOT_MARK in pid for pid in info.providers)
    early.close()


def test_cli_init_tenant_roots_applies_to_every_later_create(
    moto_server: MotoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`keys init --tenant-roots` records the mode: a plain `keys create` (no flag, another
    process's view) gets the tenant its own KMS key, and `keys shred` disables it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_ENV["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_ENV["aws_secret_access_key"])
    arn = kms_client(moto_server.endpoint).create_key()["KeyMetadata"]["Arn"]
    spec = f"aws-kms:{arn}?region={AWS_ENV['region_name']}&endpoint={moto_server.endpoint}"
    db = tmp_path / "ks.db"
    base = ["--store", str(db), "--root", spec]
    assert main(["keys", "init", *base, "--tenant-roots"]) == 0
    assert "per-tenant roots: on" in capsys.readouterr().out
    assert main(["keys", "init", *base]) == 0  # reopening without the flag: still on
    assert "per-tenant roots: on" in capsys.readouterr().out
    assert main(["keys", "create", *base, "acme"]) == 0
    root = RootKeyProvider.from_spec(spec)  # asks KMS directly; the store closes its own
    with KeyStore.open(str(db), roots=[spec]) as store:
        refs = _gone_refs(store, "acme")
        assert refs
        assert all(_object_exists(root, ref) for ref in refs)
        wraps = {pid for r in store.backend.list_keys("acme") for pid, _ in r.wraps}
        assert wraps
        assert all(TENANT_ROOT_MARK in pid for pid in wraps)  # never the shared key
    assert main(["keys", "shred", *base, "acme", "--yes"]) == 0
    assert not any(_object_exists(root, ref) for ref in refs)
    root.close()


@pytest.mark.parametrize("with_root", [False, True])
def test_cli_init_tenant_roots_refused_for_a_local_root_creates_nothing(
    tmp_path: Path, with_root: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """A local key file cannot hold per-tenant objects: exit 2, no store, no root key file."""
    db = tmp_path / "ks.db"
    extra = ["--root", f"local:{tmp_path / 'root.key'}"] if with_root else []
    assert main(["keys", "init", "--store", str(db), *extra, "--tenant-roots"]) == 2
    err = capsys.readouterr().err
    assert "per-tenant" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_enable_tenant_roots_on_a_local_root_records_nothing(tmp_path: Path) -> None:
    """The library call refuses the same way and leaves the store in shared-root mode."""
    with _store(tmp_path, "s", LocalRootKey(tmp_path / "root.key", create=True)) as store:
        with pytest.raises(InvalidInputError, match="per-tenant"):
            store.enable_tenant_roots()
        assert not store.tenant_roots
        store.create_tenant("acme")
        assert store._tenant_root_entries("acme") is None

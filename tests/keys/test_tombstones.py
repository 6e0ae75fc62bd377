"""Signed shred tombstones: no restore of an older backup yields a shredded tenant (12.2).

Run on the local, SoftHSM2 and KMS (moto) roots (``root_factory``), plus an S3
destination and a SIGKILL crash test around shred + backup + restore.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from styku_crypto._cli import main
from styku_crypto.exceptions import BackupError, KeyDestroyedError
from styku_crypto.keys import (
    DirectoryDestination,
    KeyStore,
    LocalRootKey,
    RootKeyProvider,
    S3Destination,
    SQLiteBackend,
    backup,
    restore,
)
from tests._support.moto_server import AWS_ENV, MotoServer

PROJECT = Path(__file__).resolve().parents[2]


def _store(tmp_path: Path, name: str, root: RootKeyProvider) -> KeyStore:
    backend = SQLiteBackend(tmp_path / f"{name}.db")
    backend.initialize()
    return KeyStore(backend, root=root, cache_ttl=0)


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_older_backup_never_restores_a_shredded_tenant(
    root_factory: Callable[..., RootKeyProvider], tmp_path: Path
) -> None:
    """Found 12.2: the newest backup corrupted, then lost; the older one keeps 'gone' shredded."""
    prod = _store(tmp_path, "prod", root_factory())
    prod.create_tenant("gone")
    prod.create_tenant("acme")
    dest = tmp_path / "backups"
    old = backup(prod, [dest]).backup_id
    prod.shred("gone")  # writes the tombstone to `dest` (recorded at backup time)
    assert DirectoryDestination(dest).list_tombstones() == ["gone"]
    new = backup(prod, [dest]).backup_id
    _flip(dest / new / "manifest.json")  # newest backup corrupted
    for attempt in ("corrupted", "lost"):
        if attempt == "lost":
            for f in (dest / new).iterdir():
                f.unlink()
            (dest / new).rmdir()
        target = _store(tmp_path, f"target-{attempt}", root_factory())  # same root key
        result = restore(dest, target, backup_id=old)
        assert result.kept_shredded == ("gone",)
        with pytest.raises(KeyDestroyedError):
            target._tenant_key("gone", "customer")
        assert target._tenant_key("acme", "customer").version == 1
        target.close()
    prod.close()


def test_tampered_tombstone_is_refused_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tombstone that does not authenticate stops the restore with exit 1 and its path."""
    monkeypatch.setenv("STYKU_CRYPTO_ROOT_KEY_FILE", str(tmp_path / "root.key"))
    monkeypatch.delenv("STYKU_CRYPTO_ROOTS", raising=False)
    with KeyStore.open(tmp_path / "prod.db") as prod:
        prod.create_tenant("gone")
        backup(prod, [tmp_path / "b"])
        prod.shred("gone")
    tomb = tmp_path / "b" / "tombstones" / "gone.json"
    doc = json.loads(tomb.read_text())
    doc["tenant"] = "other"
    (tmp_path / "b" / "tombstones" / "other.json").write_text(json.dumps(doc))
    code = main(["keys", "restore", str(tmp_path / "b"), "--store", str(tmp_path / "t.db")])
    err = capsys.readouterr().err
    assert code == 1
    assert "other.json" in err
    (tmp_path / "b" / "tombstones" / "other.json").unlink()
    _flip(tomb)
    assert main(["keys", "restore", str(tmp_path / "b"), "--store", str(tmp_path / "t.db")]) == 1
    assert "gone.json" in capsys.readouterr().err
    with KeyStore.open(tmp_path / "t.db") as target:
        assert target.tenants() == []


def test_unreachable_destination_at_shred_is_reported_and_healed_by_backup(
    tmp_path: Path,
) -> None:
    """The shred completes, names the destination it could not tombstone; backup retries."""
    root = LocalRootKey(tmp_path / "root.key")
    prod = _store(tmp_path, "prod", root)
    prod.create_tenant("gone")
    dest = tmp_path / "b"
    old = backup(prod, [dest]).backup_id
    (dest / "tombstones").write_text("not a directory")  # the destination breaks
    with pytest.raises(BackupError, match="shredded, but its tombstone could not be written"):
        prod.shred("gone")
    assert prod.describe("gone").shredded  # the keys are gone regardless
    (dest / "tombstones").unlink()
    backup(prod, [dest])
    assert DirectoryDestination(dest).list_tombstones() == ["gone"]
    target = _store(tmp_path, "target", root)
    assert restore(dest, target, backup_id=old).kept_shredded == ("gone",)
    prod.close()
    target.close()


def test_tombstones_on_s3(
    tmp_path: Path, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An S3 destination receives the tombstone at shred time; restore reads it."""
    client = boto3.client("s3", endpoint_url=moto_server.endpoint, **AWS_ENV)
    bucket = f"tomb-{os.urandom(4).hex()}"
    client.create_bucket(Bucket=bucket)
    s3 = S3Destination(bucket, "k", endpoint_url=moto_server.endpoint, client_kwargs=dict(AWS_ENV))
    root = LocalRootKey(tmp_path / "root.key")
    prod = _store(tmp_path, "prod", root)
    prod.create_tenant("gone")
    old = backup(prod, [s3]).backup_id
    # the shred hook rebuilds the destination from its recorded name (s3://bucket/k):
    # boto3 takes the endpoint and the (dummy) credentials from the environment
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_ENV["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_ENV["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_ENV["region_name"])
    prod.shred("gone")
    assert s3.list_tombstones() == ["gone"]
    assert s3.list_backups() == [old]
    target = _store(tmp_path, "target", root)
    assert restore(s3, target).kept_shredded == ("gone",)
    prod.close()
    target.close()


_WORKER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {project!r})
    from styku_crypto.keys import KeyStore, LocalRootKey, backup

    store = KeyStore.open({store!r}, root=LocalRootKey({root!r}, create=False), cache_ttl=0)
    print("ready", flush=True)
    i = len(store.tenants())
    while True:
        i += 1
        store.create_tenant("t%d" % i)
        backup(store, [{dest!r}])
        store.shred("t%d" % i)
        if i % 2:
            backup(store, [{dest!r}])
    """
)


def test_sigkill_around_shred_backup_restore(tmp_path: Path) -> None:
    """After random SIGKILLs, no backup at the destination restores a tenant the store shredded."""
    rng = random.Random(4321)
    root = tmp_path / "root.key"
    db = tmp_path / "prod.db"
    dest = tmp_path / "b"
    with KeyStore.open(db, root=LocalRootKey(root)) as ks:
        ks.create_tenant("keep")
        backup(ks, [dest])
    script = _WORKER.format(project=str(PROJECT), store=str(db), root=str(root), dest=str(dest))
    for round_ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.1, 0.8))
        if proc.poll() is not None:
            pytest.fail(f"worker died: {proc.stderr.read() if proc.stderr else ''!r}")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        with KeyStore.open(db, root=LocalRootKey(root, create=False)) as ks:
            assert ks.check() == []
            shredded = {t.name for t in ks.tenants() if t.shredded_at is not None}
        for bid in DirectoryDestination(dest).list_backups():
            with _store(tmp_path, f"r{round_}-{bid}", LocalRootKey(root, create=False)) as t:
                restore(dest, t, backup_id=bid)
                live = {r.name for r in t.tenants() if r.shredded_at is None}
                assert not (live & shredded), (bid, live & shredded)
                assert "keep" in live

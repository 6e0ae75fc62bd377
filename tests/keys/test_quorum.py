"""One root down does not block writes (issue 21 item 8): quorum, missing wraps, repair, orphans.

Real faults: moto KMS behind the fault proxy taken down (connection refused),
and an S3 upload whose manifest PUT fails. Each call is asserted to end within
twice its bound (the KMS provider's retry deadline per root that is down).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from styku_crypto._cli import main
from styku_crypto.envelope import Envelope
from styku_crypto.exceptions import BackupError, InvalidInputError, RootKeyUnavailableError
from styku_crypto.keys import (
    AwsKmsRootKey,
    KeyStore,
    LocalRootKey,
    RetryPolicy,
    S3Destination,
    SQLiteBackend,
    backup,
    drill,
)
from tests._support import leaks
from tests._support.moto_server import AWS_ENV, FaultProxy, MotoServer, kms_client

POLICY = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02, deadline=1.0)
CTX = {"table": "scans", "id": "9"}


@pytest.fixture
def kms(moto_server: MotoServer, fault_proxy: FaultProxy) -> Iterator[AwsKmsRootKey]:
    """A KMS root reached through the fault proxy (the test takes it down)."""
    arn = kms_client(moto_server.endpoint).create_key()["KeyMetadata"]["Arn"]
    provider = AwsKmsRootKey(
        key_id=arn,
        endpoint_url=fault_proxy.endpoint,
        connect_timeout=0.5,
        read_timeout=0.5,
        retry=POLICY,
        client_kwargs=dict(AWS_ENV),
    )
    yield provider
    provider.close()


def _store(tmp_path: Path, roots: list[object], **kwargs: object) -> KeyStore:
    backend = SQLiteBackend(tmp_path / "k.db")
    backend.initialize()
    return KeyStore(backend, root=roots, cache_ttl=0, **kwargs)  # type: ignore[arg-type]


def test_one_root_down_does_not_block_create_rotate_backup_and_heals(
    tmp_path: Path, kms: AwsKmsRootKey, fault_proxy: FaultProxy
) -> None:
    """KMS down: tenant creation, rotation and backup proceed under the local root.

    The missing KMS wraps are reported by check (not only deep), healed by
    repair_wraps when KMS is back, after which every key unwraps under KMS alone.
    """
    local = LocalRootKey(tmp_path / "local.rootkey")
    store = _store(tmp_path, [kms, local])
    env = Envelope(store)
    data = b"scan-" + secrets.token_bytes(16)
    leaks.register_secret(data)
    fault_proxy.set_mode("down")
    try:
        t0 = time.monotonic()
        store.create_tenant("acme")
        assert time.monotonic() - t0 < 2 * 2 * POLICY.deadline  # one wrap per purpose
        t0 = time.monotonic()
        store.rotate("acme", purpose="customer")
        assert time.monotonic() - t0 < 2 * POLICY.deadline
        token = env.encrypt(data, tenant="acme", context=CTX)
        t0 = time.monotonic()
        result = backup(store, [tmp_path / "b"])
        assert time.monotonic() - t0 < 2 * POLICY.deadline
        problems = store.check()
        assert len(problems) == 4  # customer v1, v2, sensitive v1 and the metadata seal key
        assert all(kms.provider_id in p and "missing" in p for p in problems)
        assert store.repair_wraps() == 0  # still down: nothing added, nothing broken
    finally:
        fault_proxy.set_mode("ok")
    assert store.repair_wraps() == 4
    assert store.check(deep=True) == []
    with KeyStore(store.backend, root=kms, cache_ttl=0) as kms_only:
        assert Envelope(kms_only).decrypt(token, tenant="acme", context=CTX) == data
    # The backup made while KMS was down is recoverable under the local root,
    # and the drill says honestly that it is not under KMS.
    report = drill(tmp_path / "b", root=[kms, local])
    assert report.backup_id == result.backup_id
    assert {r.provider: r.status for r in report.roots}[local.provider_id] == "pass"
    assert not report.passed


def test_quorum_of_all_refuses_while_a_root_is_down(
    tmp_path: Path, kms: AwsKmsRootKey, fault_proxy: FaultProxy
) -> None:
    """quorum=2 of 2: with KMS down, create_tenant fails within its bound and creates nothing."""
    local = LocalRootKey(tmp_path / "local.rootkey")
    with pytest.raises(InvalidInputError):
        _store(tmp_path, [kms, local], quorum=3)
    store = _store(tmp_path, [kms, local], quorum=2)
    fault_proxy.set_mode("down")
    t0 = time.monotonic()
    with pytest.raises(RootKeyUnavailableError, match="quorum") as err:
        store.create_tenant("acme")
    assert time.monotonic() - t0 < 2 * POLICY.deadline
    assert kms.provider_id in str(err.value)
    assert store.tenants() == []
    fault_proxy.set_mode("ok")
    store.create_tenant("acme")
    assert store.check(deep=True) == []


def test_keys_check_cli_reports_and_repairs_missing_wraps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`keys check` lists a root's missing wraps (exit 1); `--repair` adds them (exit 0)."""
    store_path = tmp_path / "k.db"
    a, b = tmp_path / "a.rootkey", tmp_path / "b.rootkey"
    with KeyStore.open(store_path, root=[LocalRootKey(a)]) as store:
        store.create_tenant("acme")
    LocalRootKey(b)  # creates root B's key file (a root configured later, or that was down)
    argv = ["keys", "check", "--store", str(store_path), "--root", f"local:{a}"]
    argv += ["--root", f"local:{b}"]
    assert main([*argv, "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["problems"]) == 3  # customer v1, sensitive v1, the metadata seal key
    assert all("missing" in p for p in doc["problems"])
    assert main([*argv, "--repair", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["wraps_repaired"] == 3
    assert doc["problems"] == []
    assert main([*argv, "--deep"]) == 0


def test_orphan_snapshot_from_failed_s3_upload_is_listed_and_cleaned(
    tmp_path: Path,
    moto_server: MotoServer,
    fault_proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A failed manifest PUT leaves snapshot.json; `keys check` lists it, `--repair` removes it."""
    bucket = f"orph-{secrets.token_hex(5)}"
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint, **AWS_ENV)
    s3.create_bucket(Bucket=bucket)
    store_path = tmp_path / "k.db"
    root = tmp_path / "root.key"
    with KeyStore.open(store_path, root=LocalRootKey(root)) as store:
        store.create_tenant("acme")
        dest = S3Destination(
            bucket, "keys", endpoint_url=fault_proxy.endpoint, client_kwargs=dict(AWS_ENV)
        )
        fault_proxy.set_mode("error")
        fault_proxy.fail_next(2, "ok")  # snapshot.json and canaries.json land; the manifest fails
        with pytest.raises(BackupError):
            backup(store, [dest])
        fault_proxy.set_mode("ok")
        good = backup(store, [dest])
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.endswith("/snapshot.json") for k in keys)
    assert dest.list_backups() == [good.backup_id]
    orphan = dest.orphans(min_age=0)
    assert len(orphan) == 1
    assert dest.orphans(min_age=3600) == []  # may still be uploading: left alone
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    argv = ["keys", "check", "--store", str(store_path), "--root", f"local:{root}"]
    argv += ["--backups", f"s3://{bucket}/keys", "--orphan-age", "0"]
    assert main(argv) == 1
    assert f"s3://{bucket}/keys/{orphan[0]}" in capsys.readouterr().out
    assert main([*argv, "--repair"]) == 0
    assert "removed incomplete backup" in capsys.readouterr().out
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert all(good.backup_id in k for k in keys)
    assert dest.list_backups() == [good.backup_id]
    with pytest.raises(BackupError):
        dest.remove_orphan(good.backup_id)  # a complete backup is never removed


def test_cli_quorum_option_is_checked_and_passed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--quorum N` / `$STYKU_CRYPTO_QUORUM` reach the store; out-of-range values exit 2."""
    store_path = tmp_path / "k.db"
    a, b = tmp_path / "a.rootkey", tmp_path / "b.rootkey"
    with KeyStore.open(store_path, root=[LocalRootKey(a)]):
        pass
    LocalRootKey(b)
    roots = ["--store", str(store_path), "--root", f"local:{a}", "--root", f"local:{b}"]
    assert main(["keys", "create", "acme", *roots, "--quorum", "3"]) == 2
    assert "--quorum must be 1..2" in capsys.readouterr().err
    monkeypatch.setenv("STYKU_CRYPTO_QUORUM", "two")
    assert main(["keys", "create", "acme", *roots]) == 2
    assert "STYKU_CRYPTO_QUORUM must be an integer" in capsys.readouterr().err
    with KeyStore.open(store_path, root=[LocalRootKey(a)]) as store:
        assert store.tenants() == []  # nothing was created by the refused commands
    monkeypatch.setenv("STYKU_CRYPTO_QUORUM", "2")
    assert main(["keys", "create", "acme", *roots]) == 0
    capsys.readouterr()
    with KeyStore.open(store_path, root=[LocalRootKey(b)]) as only_b:
        # quorum 2 of 2: every key version is wrapped under both roots
        assert all(len(k.providers) == 2 for k in only_b.describe("acme").keys)

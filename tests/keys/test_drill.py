"""Disaster-recovery drills: scratch restore, canaries per tenant, JSON report, failures."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from styku_crypto.keys import (
    AwsKmsRootKey,
    KeyStore,
    LocalRootKey,
    RetryPolicy,
    SQLiteBackend,
    backup,
    drill,
)
from tests._support import leaks
from tests._support.moto_server import AWS_ENV, FaultProxy, MotoServer, kms_client
from tests._support.softhsm import SoftHSMToken


@pytest.fixture
def prod(tmp_path: Path) -> Iterator[KeyStore]:
    """A production-like SQLite store with a local root and three tenants (one shredded)."""
    store = KeyStore.open(tmp_path / "prod.db", root=LocalRootKey(tmp_path / "root.key"))
    for name in ("acme", "beta", "gone"):
        store.create_tenant(name)
    store.rotate("acme")
    store.shred("gone")
    yield store
    store.close()


def test_drill_passes_every_tenant(prod: KeyStore, tmp_path: Path) -> None:
    """Every live tenant passes, canaries checked and timed; the shredded one is reported."""
    result = backup(prod, [tmp_path / "b"])
    before = len([r for r in leaks.captured_records() if r.getMessage() == "key.drill"])
    report = drill(tmp_path / "b", root=LocalRootKey(tmp_path / "root.key"))
    assert report.passed
    assert report.backup_id == result.backup_id
    statuses = {t.tenant: t.status for t in report.tenants}
    assert statuses == {"acme": "pass", "beta": "pass", "gone": "shredded"}
    acme = next(t for t in report.tenants if t.tenant == "acme")
    assert acme.canaries == 4  # customer v1, v2 and sensitive v1, v2
    assert acme.seconds >= 0
    assert report.check_problems == ()
    doc = report.to_json()
    assert doc["format"] == "styku-keys-drill/1"
    assert doc["passed"] is True
    assert json.loads(json.dumps(doc)) == doc
    events = [r for r in leaks.captured_records() if r.getMessage() == "key.drill"][before:]
    assert events[-1].styku_event["tenants_passed"] == 2  # type: ignore[attr-defined]


def test_drill_never_touches_production(prod: KeyStore, tmp_path: Path) -> None:
    """The drill restores into a scratch store; the production store is unchanged."""
    backup(prod, [tmp_path / "b"])
    before = prod.backend.export_snapshot()
    drill(tmp_path / "b", root=LocalRootKey(tmp_path / "root.key"))
    after = prod.backend.export_snapshot()
    assert before.keys == after.keys
    assert before.tenants == after.tenants


def test_drill_with_wrong_root_fails_cleanly(prod: KeyStore, tmp_path: Path) -> None:
    """Under another root the drill reports failure (passed=False, error named), never raises."""
    backup(prod, [tmp_path / "b"])
    report = drill(tmp_path / "b", root=LocalRootKey(tmp_path / "other.key"))
    assert not report.passed
    assert report.error is not None
    assert "BackupError" in report.error


def test_drill_with_tampered_backup_fails(prod: KeyStore, tmp_path: Path) -> None:
    """A corrupted backup makes the drill fail with an integrity error."""
    result = backup(prod, [tmp_path / "b"])
    path = tmp_path / "b" / result.backup_id / "canaries.json"
    path.write_bytes(path.read_bytes().replace(b"acme", b"acmf", 1))
    report = drill(tmp_path / "b", root=LocalRootKey(tmp_path / "root.key"))
    assert not report.passed
    assert report.error is not None
    assert "integrity" in report.error


def test_drill_under_kms_and_hsm_with_failover(
    tmp_path: Path, moto_server: MotoServer, fault_proxy: FaultProxy, softhsm_token: SoftHSMToken
) -> None:
    """A drill with KMS down passes through the HSM wrap; with only the dead KMS it fails."""
    from styku_crypto.keys import Pkcs11RootKey

    label = f"drill-{secrets.token_hex(4)}"
    Pkcs11RootKey.create_key(
        module=softhsm_token.module,
        token_label=softhsm_token.label,
        pin=softhsm_token.pin,
        key_label=label,
    )
    arn = kms_client(moto_server.endpoint).create_key()["KeyMetadata"]["Arn"]

    def roots() -> list[AwsKmsRootKey | Pkcs11RootKey]:
        return [
            AwsKmsRootKey(
                key_id=arn,
                endpoint_url=fault_proxy.endpoint,
                connect_timeout=0.3,
                retry=RetryPolicy(attempts=1),
                client_kwargs=dict(AWS_ENV),
            ),
            Pkcs11RootKey(
                module=softhsm_token.module,
                token_label=softhsm_token.label,
                pin=softhsm_token.pin,
                key_label=label,
            ),
        ]

    backend = SQLiteBackend(tmp_path / "prod.db")
    backend.initialize()
    with KeyStore(backend, root=roots()) as store:
        store.create_tenant("acme")
        backup(store, [tmp_path / "b"])
    fault_proxy.set_mode("down")
    both = roots()
    report = drill(tmp_path / "b", root=both)
    assert report.passed, report.to_json()
    assert [t.status for t in report.tenants] == ["pass"]
    for r in both:
        r.close()
    only_kms = roots()[:1]
    failed = drill(tmp_path / "b", root=only_kms)
    assert not failed.passed
    assert failed.error is not None
    assert "RootKeyUnavailableError" in failed.error
    only_kms[0].close()

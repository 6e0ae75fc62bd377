"""Disaster-recovery drills: scratch restore, canaries per tenant, JSON report, failures."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from styku_crypto.exceptions import StykuCryptoError
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
    """KMS down: every tenant recovers through the HSM, but the drill fails: KMS is unproven.

    (Issue 21 item 7: the drill proves recovery under each configured root; a
    root it cannot reach is reported ``unavailable`` and the drill does not pass.)
    """
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
    assert [t.status for t in report.tenants] == ["pass"], report.to_json()
    assert [r.status for r in report.roots] == ["unavailable", "pass"]
    assert not report.passed
    fault_proxy.set_mode("ok")
    assert drill(tmp_path / "b", root=both).passed
    fault_proxy.set_mode("down")
    for r in both:
        r.close()
    only_kms = roots()[:1]
    failed = drill(tmp_path / "b", root=only_kms)
    assert not failed.passed
    assert failed.error is not None
    assert "RootKeyUnavailableError" in failed.error
    only_kms[0].close()


def test_drill_proves_recovery_under_each_root(tmp_path: Path) -> None:
    """Issue 21 item 7: with root B's wraps corrupt, the drill fails even though root A answers.

    Before, the drill used the first root that answered and a shallow check, so
    it passed while a restore with B alone failed. Now every canary is decrypted
    through each root alone and the final check is deep; the report names B.
    """
    from styku_crypto.keys import KeyRecord, restore

    a, b = LocalRootKey(tmp_path / "a.key"), LocalRootKey(tmp_path / "b.key")
    store = KeyStore.open(tmp_path / "prod.db", root=[a, b])
    store.create_tenant("acme")
    store.create_tenant("beta")
    healthy = backup(store, [tmp_path / "good"])
    assert drill(tmp_path / "good", root=[a, b]).passed
    # Corrupt every wrap under B for tenant acme (a silent bad write, a bit flip).
    bad = []
    for record in store.backend.list_keys("acme"):
        wraps = tuple(
            (pid, w[:-1] + bytes([w[-1] ^ 1]) if pid == b.provider_id else w)
            for pid, w in record.wraps
        )
        bad.append(
            KeyRecord(
                record.tenant,
                record.purpose,
                record.version,
                record.key_id,
                wraps,
                record.created_at,
            )
        )
    store.backend.replace_wraps(bad)
    backup(store, [tmp_path / "bad"])
    store.close()
    report = drill(tmp_path / "bad", root=[a, b])
    assert not report.passed
    statuses = {t.tenant: t.status for t in report.tenants}
    assert statuses == {"acme": "fail", "beta": "pass"}
    acme = next(t for t in report.tenants if t.tenant == "acme")
    assert acme.error is not None
    assert b.provider_id in acme.error
    roots = {r.provider: r.status for r in report.roots}
    assert roots == {a.provider_id: "pass", b.provider_id: "fail"}
    assert any(b.provider_id in p for p in report.check_problems)
    assert report.to_json()["roots"][1]["status"] == "fail"
    # What the drill predicts is true: a restore with B alone fails.
    target = KeyStore.open(tmp_path / "restored.db", root=b)
    with pytest.raises(StykuCryptoError):
        restore(tmp_path / "bad", target)
    target.close()
    assert healthy.backup_id != report.backup_id

"""The DR command line in-process: keys backup/restore/drill/check/root, exit codes, output."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import boto3
import pytest

from styku_crypto._cli import main
from styku_crypto.envelope import Envelope
from styku_crypto.keys import KeyStore, LocalRootKey
from tests._support import leaks
from tests._support.moto_server import AWS_ENV, MotoServer

CTX = {"k": "v"}


@pytest.fixture
def prod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite store with two tenants; the root key file shared through the environment."""
    monkeypatch.setenv("STYKU_CRYPTO_ROOT_KEY_FILE", str(tmp_path / "root.key"))
    monkeypatch.delenv("STYKU_CRYPTO_ROOTS", raising=False)
    monkeypatch.delenv("STYKU_CRYPTO_STORE", raising=False)
    store = tmp_path / "prod.db"
    with KeyStore.open(store) as ks:
        ks.create_tenant("acme")
        ks.create_tenant("beta")
    return store


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    leaks.assert_no_secret_in("cli stdout", out)
    leaks.assert_no_secret_in("cli stderr", err)
    return code, out, err


def test_backup_to_two_dirs_and_restore(
    prod: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """backup --to A --to B exits 0; restore FROM into an empty store decrypts old tokens."""
    data = b"cli-" + secrets.token_bytes(16)
    leaks.register_secret(data)
    with KeyStore.open(prod) as ks:
        token = Envelope(ks).encrypt(data, tenant="acme", context=CTX)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    code, out, _ = _run(
        capsys, "keys", "backup", "--store", str(prod), "--to", str(tmp_path / "a"), "--to",
        str(tmp_path / "b"), "--same-device-ok",
    )  # fmt: skip
    assert code == 0
    assert out.count("  ok ") == 2
    target = tmp_path / "restored.db"
    code, out, _ = _run(capsys, "keys", "restore", str(tmp_path / "b"), "--store", str(target))
    assert code == 0
    assert "restored backup" in out
    with KeyStore.open(target) as ks:
        assert Envelope(ks).decrypt(token, tenant="acme", context=CTX) == data
    code, _, err = _run(capsys, "keys", "restore", str(tmp_path / "a"), "--store", str(target))
    assert code == 1
    assert "empty" in err


def test_backup_json_and_failed_destination(
    prod: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    moto_server: MotoServer,
) -> None:
    """A destination that fails while writing makes the exit code 1 and is named on stderr."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_ENV["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_ENV["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_ENV["region_name"])
    (tmp_path / "ok").mkdir()
    missing = "s3://no-such-bucket-json/p"
    code, out, err = _run(
        capsys, "keys", "backup", "--store", str(prod), "--to", str(tmp_path / "ok"), "--to",
        missing, "--format", "json", "--same-device-ok",
    )  # fmt: skip
    assert code == 1
    doc = json.loads(out)
    assert doc["schema"] == "styku-keys-backup-result/1"
    assert doc["ok"] is False
    assert doc["written"] == [str(tmp_path / "ok")]
    assert doc["failed"][0]["destination"] == missing
    assert missing in err


def test_backup_to_s3_via_cli(
    prod: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    moto_server: MotoServer,
) -> None:
    """s3://bucket/prefix destinations use boto3 configuration (endpoint: AWS_ENDPOINT_URL)."""
    bucket = f"cli-{secrets.token_hex(5)}"
    boto3.client("s3", endpoint_url=moto_server.endpoint, **AWS_ENV).create_bucket(Bucket=bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_ENV["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_ENV["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_ENV["region_name"])
    code, _, _ = _run(
        capsys, "keys", "backup", "--store", str(prod), "--to", f"s3://{bucket}/nightly"
    )
    assert code == 0
    code, out, _ = _run(capsys, "keys", "drill", f"s3://{bucket}/nightly", "--store", str(prod))
    assert code == 0
    assert "PASSED" in out
    code, _, err = _run(
        capsys, "keys", "backup", "--store", str(prod), "--to", "s3://no-such-bucket-xyz/p"
    )
    assert code == 1
    assert "s3://no-such-bucket-xyz/p" in err


def test_drill_report_and_failure(
    prod: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """drill --report writes the JSON report; under another root the drill exits 1."""
    (tmp_path / "b").mkdir()
    assert (
        _run(
            capsys, "keys", "backup", "--store", str(prod), "--to", str(tmp_path / "b"),
            "--same-device-ok",
        )[0]
        == 0
    )  # fmt: skip
    report = tmp_path / "drill.json"
    code, out, _ = _run(
        capsys, "keys", "drill", str(tmp_path / "b"), "--store", str(prod), "--report", str(report)
    )
    assert code == 0
    assert "PASS" in out
    doc = json.loads(report.read_text())
    assert doc["passed"] is True
    assert sorted(t["tenant"] for t in doc["tenants"]) == ["acme", "beta"]
    LocalRootKey(tmp_path / "other.key")
    code, out, _ = _run(
        capsys, "keys", "drill", str(tmp_path / "b"), "--root", f"local:{tmp_path / 'other.key'}"
    )
    assert code == 1
    assert "FAILED" in out


def test_check_and_root_add_remove(
    prod: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """keys check passes; root add wraps every key under a second root; remove drops the first."""
    code, out, _ = _run(capsys, "keys", "check", "--store", str(prod), "--deep")
    assert code == 0
    assert out.startswith("ok:")
    first = f"local:{tmp_path / 'root.key'}"
    second_path = tmp_path / "second.key"
    second = LocalRootKey(second_path)
    code, out, _ = _run(
        capsys, "keys", "root", "add", f"local:{second_path}", "--store", str(prod), "--root", first
    )
    assert code == 0
    assert "re-wrapped 4" in out
    code, out, _ = _run(
        capsys, "keys", "root", "list", "--store", str(prod), "--root", first, "--root",
        f"local:{second_path}",
    )  # fmt: skip
    assert out.count("wraps=4") == 2
    first_id = LocalRootKey(tmp_path / "root.key").provider_id
    code, out, _ = _run(
        capsys, "keys", "root", "remove", first_id, "--store", str(prod), "--root", first,
        "--root", f"local:{second_path}",
    )  # fmt: skip
    assert code == 0
    with KeyStore.open(prod, root=second) as ks:
        assert ks.check(deep=True) == []
        assert all(k.providers == (second.provider_id,) for k in ks.describe("acme").keys)
    code, _, err = _run(
        capsys, "keys", "root", "remove", second.provider_id, "--store", str(prod), "--root",
        f"local:{second_path}",
    )  # fmt: skip
    assert code == 2
    assert "last root" in err


def test_check_reports_problems_as_exit_1(
    prod: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A deep check under a root that cannot unwrap the keys exits 1 and lists the problems."""
    other = tmp_path / "other.key"
    LocalRootKey(other)
    code, out, _ = _run(
        capsys, "keys", "check", "--store", str(prod), "--deep", "--format", "json", "--root",
        f"local:{other}",
    )  # fmt: skip
    assert code == 1
    doc = json.loads(out)
    assert doc["schema"] == "styku-keys-check/1"
    assert doc["problems"]


def test_bad_root_spec_is_usage_error(prod: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed --root spec or a pkcs11 spec without PIN exits 2 with one clear line."""
    code, _, err = _run(capsys, "keys", "check", "--store", str(prod), "--root", "nonsense")
    assert code == 2
    assert "root spec" in err
    code, _, err = _run(
        capsys, "keys", "check", "--store", str(prod), "--root", "pkcs11:/x.so#token=t"
    )
    assert code == 2
    assert "STYKU_CRYPTO_PKCS11_PIN" in err

"""Bad configuration of providers and stores fails with typed errors that echo no secret."""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import pytest

from styku_crypto._cli import main
from styku_crypto.exceptions import InvalidInputError, KeyStoreError
from styku_crypto.keys import (
    AwsKmsRootKey,
    KeyStore,
    LocalRootKey,
    Pkcs11RootKey,
    PostgresBackend,
    RetryPolicy,
)
from tests._support import leaks


def test_kms_without_key_id_is_invalid_input() -> None:
    """An empty KMS key id is an InvalidInputError, not a bare ValueError."""
    with pytest.raises(InvalidInputError):
        AwsKmsRootKey(key_id="")


def test_pkcs11_pool_size_is_invalid_input() -> None:
    """A PKCS#11 pool of zero sessions is an InvalidInputError (checked before any token use)."""
    with pytest.raises(InvalidInputError):
        Pkcs11RootKey(module="/nonexistent.so", token_label="t", pin="1234", pool_size=0)


@pytest.mark.parametrize(
    "kwargs", [{"attempts": 0}, {"deadline": 0}, {"timeout": -1.0}, {"base_delay": -1.0}]
)
def test_retry_policy_is_invalid_input(kwargs: dict[str, float]) -> None:
    """Impossible retry settings are an InvalidInputError."""
    with pytest.raises(InvalidInputError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:{pw}@127.0.0.1:notaport/keys",
        "postgresql://app:{pw}%zz@127.0.0.1:5432/keys",
        "postgresql://app:{pw}@127.0.0.1:5432/keys?nosuchoption={pw}",
        "postgresql://app:{pw}@127.0.0.1:5432/keys?secondary=mysql://app:{pw}@replica/keys",
    ],
)
def test_malformed_postgres_url_is_typed_and_redacted(url: str) -> None:
    """A malformed store URL raises InvalidInputError at once, without the password in it."""
    password = "pg-Secret-7f3a9c"
    leaks.register_secret(password)
    with pytest.raises(InvalidInputError) as info:
        PostgresBackend(url.format(pw=password))
    rendered = "".join(traceback.format_exception(info.value))
    leaks.assert_no_secret_in("PostgresBackend error and its chain", rendered)


def test_cli_malformed_root_spec_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--root aws-kms:?region=x`` (no key id) exits 2 with one line, not a traceback."""
    code = main(["keys", "init", "--store", f"{tmp_path}/ks.db", "--root", "aws-kms:?region=x"])
    err = capsys.readouterr().err
    assert code == 2
    assert "aws-kms:KEY_ID" in err  # names the expected shape
    assert "Traceback" not in err


def test_cli_malformed_postgres_store_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store URL libpq cannot parse exits 2 and the password is not printed."""
    password = "pg-Secret-cli-51d0"
    leaks.register_secret(password)
    root = LocalRootKey(tmp_path / "root.key")
    root.close()
    code = main(
        [
            "keys",
            "list",
            "--store",
            f"postgresql://app:{password}%zz@127.0.0.1:1/keys",
            "--root",
            f"local:{root.path}",
        ]
    )
    captured = capsys.readouterr()
    assert code == 2
    leaks.assert_no_secret_in("keys list output", captured.out + captured.err)


def test_cli_drill_report_unwritable_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``keys drill --report`` into a missing directory exits 2 with one line and leaves no file."""
    monkeypatch.setenv("STYKU_CRYPTO_ROOT_KEY_FILE", str(tmp_path / "root.key"))
    monkeypatch.delenv("STYKU_CRYPTO_ROOTS", raising=False)
    store = tmp_path / "prod.db"
    with KeyStore.open(store) as ks:
        ks.create_tenant("acme")
    (tmp_path / "b").mkdir()
    assert (
        main(
            [
                "keys",
                "backup",
                "--store",
                str(store),
                "--to",
                str(tmp_path / "b"),
                "--same-device-ok",
            ]
        )
        == 0
    )
    capsys.readouterr()
    report = tmp_path / "missing" / "report.json"
    code = main(
        ["keys", "drill", str(tmp_path / "b"), "--store", str(store), "--report", str(report)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot write the drill report" in err
    assert "Traceback" not in err
    assert not report.parent.exists()


def test_cli_drill_report_is_complete_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``keys drill --report`` writes the whole JSON report and no temporary file beside it."""
    monkeypatch.setenv("STYKU_CRYPTO_ROOT_KEY_FILE", str(tmp_path / "root.key"))
    monkeypatch.delenv("STYKU_CRYPTO_ROOTS", raising=False)
    store = tmp_path / "prod.db"
    with KeyStore.open(store) as ks:
        ks.create_tenant("acme")
    (tmp_path / "b").mkdir()
    assert (
        main(
            [
                "keys",
                "backup",
                "--store",
                str(store),
                "--to",
                str(tmp_path / "b"),
                "--same-device-ok",
            ]
        )
        == 0
    )
    out_dir = tmp_path / "reports"
    out_dir.mkdir()
    report = out_dir / "drill.json"
    code = main(
        ["keys", "drill", str(tmp_path / "b"), "--store", str(store), "--report", str(report)]
    )
    capsys.readouterr()
    assert code == 0
    assert json.loads(report.read_text(encoding="utf-8"))["passed"] is True
    assert sorted(p.name for p in out_dir.iterdir()) == ["drill.json"]


def test_store_in_missing_directory_is_key_store_error(tmp_path: Path) -> None:
    """A store path whose directory cannot be created raises KeyStoreError, not OSError."""
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    root = LocalRootKey(tmp_path / "root.key")
    with pytest.raises(KeyStoreError):
        KeyStore.open(blocker / "sub" / "keys.db", root=root)


def test_root_key_in_missing_directory_is_key_store_error(tmp_path: Path) -> None:
    """A root key file that cannot be created raises KeyStoreError and leaves no temp file."""
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    with pytest.raises(KeyStoreError):
        LocalRootKey(blocker / "root.key")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_bad_s3_endpoint_fails_that_destination_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A malformed S3 endpoint is one failed destination (BackupError); the others are written."""
    from styku_crypto.exceptions import BackupError
    from styku_crypto.keys import S3Destination, backup

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with KeyStore.open(tmp_path / "keys.db", root=LocalRootKey(tmp_path / "root.key")) as store:
        store.create_tenant("acme")
        bad = S3Destination("bucket", endpoint_url="not a url")
        with pytest.raises(BackupError) as info:
            backup(store, [bad, tmp_path / "ok"])
    result = info.value.result  # type: ignore[attr-defined]
    assert result.written == (str(tmp_path / "ok"),)
    assert [d for d, _ in result.failed] == ["s3://bucket"]


def test_bad_kms_endpoint_is_root_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed KMS endpoint makes wrap raise RootKeyUnavailableError, not ValueError."""
    from styku_crypto.exceptions import RootKeyUnavailableError

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    provider = AwsKmsRootKey(key_id="alias/x", region="us-east-1", endpoint_url="not a url")
    secret = b"\x5a" * 32
    leaks.register_secret(secret)
    with pytest.raises(RootKeyUnavailableError) as info:
        provider.wrap(secret, aad=b"aad")
    leaks.assert_no_secret_in("kms error", "".join(traceback.format_exception(info.value)))
    provider.close()


def test_unlistable_backup_directory_is_backup_error(tmp_path: Path) -> None:
    """A backup directory that cannot be listed (name too long) raises BackupError, not OSError."""
    from styku_crypto.exceptions import BackupError
    from styku_crypto.keys import DirectoryDestination

    with pytest.raises(BackupError):
        DirectoryDestination(tmp_path / ("x" * 5000)).list_backups()

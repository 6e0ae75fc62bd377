"""Planted and malformed backup files: bounded parsing, no crash, no silent fallback.

Issue 21 item 6 (a deeply nested manifest.json in another backup directory
crashed restore and drill with RecursionError) and issue 12 item 2 (shred-list
files of the wrong shape were silently ignored).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from styku_crypto._cli import main
from styku_crypto.exceptions import BackupError
from styku_crypto.keys import KeyStore, backup, drill, restore
from styku_crypto.keys._backup_format import SHRED_LIST_FORMAT
from styku_crypto.keys._restore import read_shred_list_file

NESTED = b"[" * 200_000 + b"]" * 200_000
PLANTED_ID = "99991231T235959999999Z-deadbeef"  # sorts after every real backup id


@pytest.fixture
def prod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite store with two tenants and one good backup in ``backups/``."""
    monkeypatch.setenv("STYKU_CRYPTO_ROOT_KEY_FILE", str(tmp_path / "root.key"))
    monkeypatch.delenv("STYKU_CRYPTO_ROOTS", raising=False)
    monkeypatch.delenv("STYKU_CRYPTO_STORE", raising=False)
    db = tmp_path / "prod.db"
    with KeyStore.open(db) as ks:
        ks.create_tenant("acme")
        ks.create_tenant("beta")
        backup(ks, [tmp_path / "backups"])
    return db


def _plant(tmp_path: Path, content: bytes) -> Path:
    planted = tmp_path / "backups" / PLANTED_ID
    planted.mkdir()
    (planted / "manifest.json").write_bytes(content)
    return planted / "manifest.json"


def _good_id(tmp_path: Path) -> str:
    return sorted(p.name for p in (tmp_path / "backups").iterdir() if p.name != PLANTED_ID)[0]


@pytest.mark.parametrize("content", [NESTED, b"{" * 50 + b"}", b"\xff\xfe", b"[]"])
def test_planted_manifest_does_not_break_restore_of_another_backup(
    prod: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    """Restoring the good backup by id works and reports the planted one as invalid."""
    _plant(tmp_path, content)
    target = tmp_path / "restored.db"
    args = ["keys", "restore", str(tmp_path / "backups"), "--store", str(target)]
    assert main([*args, "--backup-id", _good_id(tmp_path)]) == 0
    _out, err = capsys.readouterr()
    assert f"ignored invalid backup {PLANTED_ID}" in err
    with KeyStore.open(target) as ks:
        assert [t.name for t in ks.tenants()] == ["acme", "beta"]


def test_planted_newest_manifest_is_refused_naming_the_file(
    prod: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Restoring "the newest" when that is the planted file: exit 1, one line naming it."""
    manifest = _plant(tmp_path, NESTED)
    target = tmp_path / "restored.db"
    assert main(["keys", "restore", str(tmp_path / "backups"), "--store", str(target)]) == 1
    err = capsys.readouterr().err
    assert str(manifest) in err
    assert "nested too deeply" in err
    assert len(err.strip().splitlines()) == 1


def test_oversized_manifest_is_refused(prod: Path, tmp_path: Path) -> None:
    """A manifest over the size limit is a BackupError, not a memory spike."""
    _plant(tmp_path, b" " * (5 * 1024 * 1024) + b"{}")
    with KeyStore.open(tmp_path / "r.db") as target, pytest.raises(BackupError, match="too large"):
        restore(tmp_path / "backups", target)


def test_drill_on_a_planted_backup_writes_report_and_event(
    prod: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The drill fails cleanly: its JSON report is written and key.drill is emitted."""
    _plant(tmp_path, NESTED)
    caplog.set_level(logging.INFO, logger="styku_crypto")
    report = tmp_path / "drill.json"
    code = main(
        ["keys", "drill", str(tmp_path / "backups"), "--store", str(prod), "--report", str(report)]
    )
    assert code == 1
    doc = json.loads(report.read_text())
    assert doc["passed"] is False
    assert "nested too deeply" in doc["error"]
    assert any(getattr(r, "styku_event", {}).get("event") == "key.drill" for r in caplog.records)
    # and the good backup, named, still drills clean
    assert drill(tmp_path / "backups", root=_roots(prod), backup_id=_good_id(tmp_path)).passed


def _roots(db: Path) -> list[object]:
    from styku_crypto.keys import LocalRootKey

    return [LocalRootKey(db.with_name("root.key"))]


@pytest.mark.parametrize(
    "content",
    [
        "{}",
        '["gone"]',
        '[["gone", "2026-01-01T00:00:00+00:00"]]',
        '{"schema": "styku-crypto/keys-list/v1", "tenants": []}',
        '{"format": "styku-keys-shred-list/1", "shredded": [{"tenant": "gone"}]}',
        '{"format": "styku-keys-shred-list/2", "shredded": []}',
        '{"schema": "styku-keys-shred-list/1", "format": "other/1", "shredded": []}',
        "not json",
    ],
)
def test_shred_list_of_the_wrong_shape_is_refused(
    prod: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    """Found 12.2: a shred list of any other shape is refused with exit 1 naming the file."""
    bad = tmp_path / "shred.json"
    bad.write_text(content)
    target = tmp_path / "restored.db"
    code = main(
        ["keys", "restore", str(tmp_path / "backups"), "--store", str(target),
         "--shred-list", str(bad)]
    )  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert str(bad) in err
    assert len(err.strip().splitlines()) == 1
    with KeyStore.open(target) as ks:
        assert ks.tenants() == []  # nothing restored


def test_exported_shred_list_round_trips(
    prod: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`keys list --shred-list` writes the versioned document that restore accepts."""
    with KeyStore.open(prod) as ks:
        ks.shred("beta")
    assert main(["keys", "list", "--store", str(prod), "--shred-list"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == doc["format"] == SHRED_LIST_FORMAT
    path = tmp_path / "list.json"
    path.write_text(json.dumps(doc))
    assert list(read_shred_list_file(path)) == ["beta"]
    for key in ("schema", "format"):  # documents with only one of the two tags are read too
        one = {k: v for k, v in doc.items() if k != key}
        path.write_text(json.dumps(one))
        assert list(read_shred_list_file(path)) == ["beta"]
    assert main(["keys", "restore", str(tmp_path / "backups"), "--store",
                 str(tmp_path / "r.db"), "--shred-list", str(path)]) == 0  # fmt: skip
    with KeyStore.open(tmp_path / "r.db") as ks:
        assert ks.describe("beta").shredded


def test_missing_shred_list_file_is_a_usage_error(
    prod: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo'd path is exit 2 (usage), one line."""
    code = main(["keys", "restore", str(tmp_path / "backups"), "--store", str(tmp_path / "r.db"),
                 "--shred-list", str(tmp_path / "nope.json")])  # fmt: skip
    assert code == 2
    assert "nope.json" in capsys.readouterr().err

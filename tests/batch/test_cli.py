"""``styku-crypto batch rewrap`` and ``batch rewrap-objects``, run in-process."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from styku_crypto._cli import main
from tests.batch._tables import fill_sqlite


def _store_args(keys: Any) -> list[str]:
    return ["--store", keys.spec.store, "--root", keys.spec.roots[0]]


def test_cli_rewrap_embedded_cluster_reports_tampered_key_exit_1(
    tmp_path: Path, keys: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --scheduler the CLI starts a cluster; a tampered row gives exit 1 and its key."""
    db = tmp_path / "app.db"
    fill_sqlite(str(db), keys.env, 600)
    conn = sqlite3.connect(db)
    tok = bytearray(conn.execute("SELECT token FROM scans WHERE id = 42").fetchone()[0])
    tok[40] ^= 0x80
    conn.execute("UPDATE scans SET token = ? WHERE id = 42", (bytes(tok),))
    conn.commit()
    keys.store.rotate("acme")
    keys.store.rotate("globex")
    argv = [
        "batch",
        "rewrap",
        *_store_args(keys),
        "--dsn",
        f"sqlite:///{db}",
        "--table",
        "scans",
        "--column",
        "token",
        "--tenant-column",
        "tenant",
        "--workers",
        "2",
        "--chunk-rows",
        "200",
        "--format",
        "json",
    ]
    assert main(argv) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "styku-batch-report/1"
    assert doc["failures"] == [{"key": "42", "reason": "tamper"}]
    assert doc["changed"] == 599
    assert doc["complete"] is True
    assert len(doc["per_worker"]) >= 1
    assert main(argv) == 1  # a rerun: nothing left to change, the bad row is still reported
    again = json.loads(capsys.readouterr().out)
    assert again["changed"] == 0
    assert again["current"] == 599


def test_cli_rewrap_objects_on_existing_scheduler(
    tmp_path: Path, keys: Any, cluster: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """--scheduler uses a running cluster; a directory of tokens is rewrapped, exit 0."""
    d = tmp_path / "objs"
    d.mkdir()
    for i in range(5):
        out = io.BytesIO()
        with keys.env.encrypt_stream(out, tenant="acme", context={"n": str(i)}) as w:
            w.write(b"x" * 5000)
        (d / f"o{i}").write_bytes(out.getvalue())
    keys.store.rotate("acme")
    argv = [
        "batch",
        "rewrap-objects",
        str(d),
        *_store_args(keys),
        "--tenant",
        "acme",
        "--scheduler",
        cluster.scheduler_address,
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "changed      5" in out
    assert main(["batch", "rewrap", "--table", "t"]) == 2  # usage: required options missing


def test_cli_refuses_password_in_dsn(keys: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """A DSN with a password is a usage error (it would travel to every worker)."""
    argv = [
        "batch",
        "rewrap",
        *_store_args(keys),
        "--dsn",
        "postgresql://u:secret@h/db",
        "--table",
        "t",
        "--column",
        "c",
        "--tenant",
        "acme",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "secret" not in err
    assert "PGPASSWORD" in err

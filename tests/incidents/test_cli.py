"""The ``styku-crypto incidents`` command group, run in-process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from styku_crypto._cli import main
from tests._support import leaks

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run the CLI against a store in tmp_path; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STYKU_CRYPTO_STORE", raising=False)
    monkeypatch.delenv("STYKU_CRYPTO_INCIDENTS", raising=False)
    monkeypatch.delenv("STYKU_CRYPTO_ROOT_KEY_FILE", raising=False)
    # Only ``keys init`` creates a key store; the incidents commands need one.
    assert main(["keys", "init"]) == 0
    capsys.readouterr()

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["incidents", *argv])
        out, err = capsys.readouterr()
        leaks.assert_no_secret_in(f"incidents {' '.join(argv[:1])} output", out + err)
        return code, out, err

    return run


def test_workflow_open_update_close_list_show(cli: Run, tmp_path: Path) -> None:
    """open, update, close, list and show work end to end with the default paths."""
    code, out, _ = cli(
        "open", "--title", "Stolen laptop", "--severity", "high",
        "--description", "Laptop with cached tokens stolen", "--tenant", "acme",
        "--tenant", "globex", "--detected-at", "2026-01-01T10:00:00Z",
    )  # fmt: skip
    assert code == 0
    assert out.startswith("opened INC-000001 (high)")
    assert (tmp_path / "incidents.jsonl").exists()
    assert (tmp_path / "styku-keys.db").exists()
    assert cli("update", "INC-000001", "--action", "Tokens revoked", "--actor", "ops")[0] == 0
    code, out, _ = cli("close", "INC-000001", "--disposition", "Contained", "--format", "json")
    assert code == 0
    assert json.loads(out)["status"] == "closed"
    code, out, _ = cli("list")
    assert code == 0
    assert "INC-000001" in out
    assert "Stolen laptop" in out
    assert "closed" in out
    code, out, _ = cli("list", "--open-only", "--format", "json")
    assert json.loads(out)["incidents"] == []
    code, out, _ = cli("show", "INC-000001")
    assert code == 0
    assert "detected:    2026-01-01T10:00:00Z" in out
    assert "[ops] Tokens revoked" in out


def test_verify_exit_codes(cli: Run, tmp_path: Path) -> None:
    """verify exits 0 on an intact log and 1 on a tampered one, naming the first bad entry."""
    for i in range(3):
        cli("open", "--title", f"t{i}", "--severity", "low", "--description", "d")
    code, out, _ = cli("verify")
    assert code == 0
    assert out.startswith("intact: 3 entries")
    assert "head record matches" in out
    path = tmp_path / "incidents.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"t1"', '"tX"')
    path.write_text("\n".join(lines) + "\n")
    code, out, err = cli("verify")
    assert code == 1
    assert "entry 2" in err
    assert "TAMPERED" in err
    code, out, _ = cli("verify", "--format", "json")
    assert code == 1
    assert json.loads(out)["intact"] is False
    assert cli("list")[0] == 1


def test_log_location_options(cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--log and $STYKU_CRYPTO_INCIDENTS choose the log file; --store picks the store."""
    store = tmp_path / "stores" / "k.db"
    store.parent.mkdir()
    assert main(["keys", "init", "--store", str(store)]) == 0
    cli("open", "--store", str(store), "--title", "a", "--severity", "low", "--description", "d")
    assert (store.parent / "incidents.jsonl").exists()
    custom = tmp_path / "custom.jsonl"
    cli("open", "--store", str(store), "--log", str(custom), "--title", "b",
        "--severity", "low", "--description", "d")  # fmt: skip
    assert custom.exists()
    monkeypatch.setenv("STYKU_CRYPTO_INCIDENTS", str(tmp_path / "env.jsonl"))
    monkeypatch.setenv("STYKU_CRYPTO_STORE", str(store))
    cli("open", "--title", "c", "--severity", "low", "--description", "d")
    assert (tmp_path / "env.jsonl").exists()


def test_export_formats(cli: Run, tmp_path: Path) -> None:
    """export writes JSON (versioned schema), Markdown and HTML with markup escaped."""
    cli("open", "--title", "<script>alert(1)</script>", "--severity", "critical",
        "--description", "Injected *markdown* | pipes", "--tenant", "acme")  # fmt: skip
    code, out, _ = cli("export", "--format", "json")
    doc = json.loads(out)
    assert code == 0
    assert doc["schema"] == "styku-crypto/incidents-export/v2"
    assert doc["verification"]["intact"] is True
    assert doc["incidents"][0]["severity"] == "critical"
    code, out, _ = cli("export", "--format", "html", "--output", str(tmp_path / "r.html"))
    assert code == 0
    html = (tmp_path / "r.html").read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    code, out, _ = cli("export", "--format", "markdown")
    assert "\\*markdown\\*" in out
    assert "\\| pipes" in out


@pytest.mark.parametrize(
    "argv",
    [
        ("open", "--title", "t", "--severity", "urgent", "--description", "d"),
        ("open", "--title", "t", "--severity", "low"),
        (
            "open",
            "--title",
            "t",
            "--severity",
            "low",
            "--description",
            "d",
            "--detected-at",
            "2026-01-01T00:00:00",
        ),
        ("update", "INC-000001"),
        ("close", "INC-000099", "--disposition", "x"),
        (),
    ],
)
def test_usage_errors_exit_2(cli: Run, argv: tuple[str, ...]) -> None:
    """Bad severities, missing options, naive times, empty updates, unknown ids exit 2."""
    cli("open", "--title", "seed", "--severity", "low", "--description", "d")
    assert cli(*argv)[0] == 2


def test_export_output_is_fsynced_then_renamed_then_dir_fsynced(
    cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """export --output fsyncs the temp file before the rename and the directory after it."""
    import os
    import stat

    cli("open", "--title", "t", "--severity", "low", "--description", "d")
    target = tmp_path / "report.md"
    synced: list[tuple[str, bool]] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            synced.append((os.readlink(f"/proc/self/fd/{fd}"), target.exists()))
        else:
            synced.append((Path(os.readlink(f"/proc/self/fd/{fd}")).name, target.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    code, _, _ = cli("export", "--format", "markdown", "--output", str(target))
    assert code == 0
    assert "# " in target.read_text()
    temp = [name for name, done in synced if name.startswith(".report.md.") and not done]
    assert temp, synced  # the temp file, before the rename
    assert synced[-1] == (str(tmp_path.resolve()), True), synced  # the directory, after the rename
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_export_output_to_missing_directory_is_a_usage_error(cli: Run, tmp_path: Path) -> None:
    """An unwritable --output path exits 2 with a message, not a traceback, and leaves no file."""
    cli("open", "--title", "t", "--severity", "low", "--description", "d")
    code, _, err = cli("export", "--format", "json", "--output", str(tmp_path / "nope" / "r.json"))
    assert code == 2
    assert "cannot write" in err
    assert not (tmp_path / "nope").exists()

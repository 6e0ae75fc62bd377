"""The CLI dispatcher turns unreadable paths and storage failures into one line, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from styku_crypto._cli import main


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An initialised key store with one tenant."""
    monkeypatch.setenv("STYKU_CRYPTO_ROOT_KEY_FILE", str(tmp_path / "root.key"))
    path = tmp_path / "keys.db"
    assert main(["keys", "init", "--store", str(path)]) == 0
    assert main(["keys", "create", "acme", "--store", str(path)]) == 0
    return path


@pytest.mark.parametrize("command", ["encrypt", "decrypt"])
def test_unreadable_input_is_one_line_exit_2(
    command: str, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory given as the input file exits 2 with one stderr line and no output file."""
    capsys.readouterr()
    source = tmp_path / "a-directory"
    source.mkdir()
    out = tmp_path / "out.bin"
    code = main([command, "--store", str(store), "--tenant", "acme", str(source), str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert err.count("\n") == 1
    assert "a-directory" in err
    assert not out.exists()


def test_storage_failure_is_one_line_nonzero(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory given as the incident log is refused with one stderr line naming it."""
    capsys.readouterr()
    log_dir = tmp_path / "a-directory"
    log_dir.mkdir()
    code = main(["incidents", "list", "--store", str(store), "--log", str(log_dir)])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    assert err.count("\n") == 1
    assert str(log_dir) in err

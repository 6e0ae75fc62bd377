"""The CLI dispatcher turns an unreadable or unwritable path into one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from styku_crypto._cli import main


def test_os_error_in_a_handler_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory given as the incident log path exits 2 with one stderr line, no traceback."""
    monkeypatch.setenv("STYKU_CRYPTO_ROOT_KEY_FILE", str(tmp_path / "root.key"))
    store = tmp_path / "keys.db"
    assert main(["keys", "init", "--store", str(store)]) == 0
    capsys.readouterr()
    log_dir = tmp_path / "a-directory"
    log_dir.mkdir()
    code = main(["incidents", "list", "--store", str(store), "--log", str(log_dir)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert err.count("\n") == 1
    assert str(log_dir) in err

"""The package's one ``atomic_write`` and one ``fsync_dir`` (styku_crypto._fs)."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

from styku_crypto import _fs

PACKAGE = Path(__file__).resolve().parent.parent / "styku_crypto"
# Streaming publishers that cannot hold their output in memory keep their own
# rename step (they share fsync_dir); everything else goes through _fs.atomic_write.
# Streaming writers that also check the original is unchanged before renaming
# (batch rewrap of token files) keep their own rename step.
STREAMING_PUBLISHERS = {
    "_fs.py",
    "envelope/_output.py",
    "_cli/_stream_io.py",
    "batch/_objects.py",
}


def test_atomic_write_replaces_content_owner_only(tmp_path: Path) -> None:
    """The new bytes replace the old ones, the file is 0600, and no temporary file remains."""
    target = tmp_path / "out.json"
    target.write_bytes(b"old")
    _fs.atomic_write(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_atomic_write_failure_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure before the rename (the disk refuses the fsync) leaves the old file, no debris."""
    target = tmp_path / "out.json"
    target.write_bytes(b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="Input/output"):
        _fs.atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_atomic_write_missing_directory_raises(tmp_path: Path) -> None:
    """A typo'd directory is an error, not a silently created tree."""
    with pytest.raises(FileNotFoundError):
        _fs.atomic_write(tmp_path / "nope" / "out.json", b"x")
    assert not (tmp_path / "nope").exists()


def test_atomic_write_mode(tmp_path: Path) -> None:
    """An explicit mode is applied to the published file."""
    target = tmp_path / "ca.pem"
    _fs.atomic_write(target, b"cert", mode=0o644)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_fsync_dir_propagates_real_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EIO from a directory fsync propagates; EINVAL (unsupported filesystem) does not."""
    calls: list[int] = []

    def fsync(errno_value: int) -> object:
        def _fsync(fd: int) -> None:
            calls.append(fd)
            raise OSError(errno_value, os.strerror(errno_value))

        return _fsync

    monkeypatch.setattr(os, "fsync", fsync(22))  # EINVAL
    _fs.fsync_dir(tmp_path)
    monkeypatch.setattr(os, "fsync", fsync(5))  # EIO
    with pytest.raises(OSError, match="Input/output"):
        _fs.fsync_dir(tmp_path)
    assert len(calls) == 2


def test_one_rename_publisher() -> None:
    """Only _fs and the streaming publishers call os.replace or define an fsync-dir helper."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if rel in STREAMING_PUBLISHERS:
                break
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "replace"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "os"
            ):
                offenders.append(f"{rel}:{node.lineno} os.replace")
            if isinstance(node, ast.FunctionDef) and "fsync" in node.name and "dir" in node.name:
                offenders.append(f"{rel}:{node.lineno} def {node.name}")
    assert offenders == []

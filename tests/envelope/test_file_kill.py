"""decrypt_file killed with SIGKILL leaves no plaintext on disk (issue 12, item 6).

A child process decrypts a file and is stopped right after it wrote its first plaintext
block; the test looks at the output directory, then SIGKILLs the child. With
``O_TMPFILE`` the output has no name until it is complete: nothing is ever visible. On
the fallback path (forced here) a locked ``.part`` file is visible while the writer
lives; it is never removed while locked, and the next run removes it once its writer
is dead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from styku_crypto.envelope import Envelope
from styku_crypto.envelope._output import remove_stale_parts
from styku_crypto.keys import KeyStore

MARKER = b"PLAINTEXT-MARKER-"
PLAIN = MARKER * (3 * (1 << 20) // len(MARKER))
CTX = {"file": "scan"}

CHILD = r"""
import sys, time
from pathlib import Path
from styku_crypto.envelope import Envelope, _output, _stream
from styku_crypto.keys import KeyStore

store_path, src, dst, mode = sys.argv[1:5]
if mode == "named":
    _output._O_TMPFILE = 0  # force the fallback path
calls = 0
original = _stream.DecryptingReader.readinto

def stalling(self, buf):
    global calls
    calls += 1
    if calls == 2:  # the first 1 MiB block has been written to the output
        sys.stdout.write("wrote\n")
        sys.stdout.flush()
        time.sleep(600)
    return original(self, buf)

_stream.DecryptingReader.readinto = stalling
with KeyStore.open(store_path) as store:
    Envelope(store).decrypt_file(src, dst, tenant="acme", context={"file": "scan"})
"""


def _token(tmp_path: Path) -> tuple[Path, Path]:
    store_path = tmp_path / "keys.db"
    with KeyStore.open(store_path) as store:
        store.create_tenant("acme")
        plain = tmp_path / "plain.bin"
        plain.write_bytes(PLAIN)
        src = tmp_path / "scan.stk"
        Envelope(store).encrypt_file(plain, src, tenant="acme", context=CTX)
        plain.unlink()
    return store_path, src


def _start(store_path: Path, src: Path, dst: Path, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(store_path), str(src), str(dst), mode],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "wrote\n"
    return child


def _kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL


def _plaintext_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.is_file() and MARKER in p.read_bytes()]


def test_sigkill_with_unnamed_output_leaves_nothing(tmp_path: Path) -> None:
    """With O_TMPFILE, no file of the output directory ever holds plaintext, killed or not."""
    assert hasattr(os, "O_TMPFILE")  # CI runs on Linux, where the unnamed path is the default
    store_path, src = _token(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    child = _start(store_path, src, out / "scan.bin", "unnamed")
    try:
        assert list(out.iterdir()) == []  # mid-run: 1 MiB of plaintext written, no name
    finally:
        _kill(child)
    assert list(out.iterdir()) == []
    with KeyStore.open(store_path) as store:
        n = Envelope(store).decrypt_file(src, out / "scan.bin", tenant="acme", context=CTX)
    assert n == len(PLAIN)
    assert [p.name for p in out.iterdir()] == ["scan.bin"]


def test_sigkill_on_fallback_path_part_is_removed_by_next_run(tmp_path: Path) -> None:
    """Fallback path: a live writer's part is kept; after SIGKILL the next run removes it."""
    store_path, src = _token(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    child = _start(store_path, src, out / "scan.bin", "named")
    try:
        parts = _plaintext_files(out)
        assert len(parts) == 1  # the attack surface this test is about is real
        assert parts[0].name.startswith(".scan.bin.")
        assert parts[0].name.endswith(".part")
        assert remove_stale_parts(out) == 0  # locked by a live writer: never removed
        assert parts[0].exists()
    finally:
        _kill(child)
    assert parts[0].exists()  # SIGKILL: nothing ran to clean up
    with KeyStore.open(store_path) as store:
        n = Envelope(store).decrypt_file(src, out / "scan.bin", tenant="acme", context=CTX)
    assert n == len(PLAIN)
    assert [p.name for p in out.iterdir()] == ["scan.bin"]


def test_remove_stale_parts_ignores_other_files(tmp_path: Path) -> None:
    """Only unlocked ``.<name>.*.part`` regular files are removed; others stay."""
    (tmp_path / ".a.bin.0123.part").write_bytes(b"x")
    (tmp_path / "a.bin").write_bytes(b"keep")
    (tmp_path / ".b.bin.part.keep").write_bytes(b"keep")
    (tmp_path / ".c.bin.99.part").mkdir()
    os.symlink(tmp_path / "a.bin", tmp_path / ".d.bin.1.part")
    assert remove_stale_parts(tmp_path, "b.bin") == 0
    assert remove_stale_parts(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".b.bin.part.keep",
        ".c.bin.99.part",
        ".d.bin.1.part",
        "a.bin",
    ]


CLI_CHILD = r"""
import sys, time
from styku_crypto._cli import main
from styku_crypto.envelope import _stream

calls = 0
original = _stream.DecryptingReader.readinto

def stalling(self, buf):
    global calls
    calls += 1
    if calls == 2:  # the CLI has written its first 1 MiB of plaintext
        sys.stdout.write("wrote\n")
        sys.stdout.flush()
        time.sleep(600)
    return original(self, buf)

_stream.DecryptingReader.readinto = stalling
store, src, dst = sys.argv[1:4]
main(["decrypt", "--store", store, "--tenant", "acme", "--context", "file=scan", src, dst])
"""


def test_sigkill_of_cli_decrypt_leaves_nothing(tmp_path: Path) -> None:
    """``styku-crypto decrypt IN OUT`` killed mid-write: no output name, no plaintext file."""
    store_path, src = _token(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen(
        [sys.executable, "-c", CLI_CHILD, str(store_path), str(src), str(out / "scan.bin")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    try:
        assert child.stdout.readline() == "wrote\n"
        assert list(out.iterdir()) == []
    finally:
        _kill(child)
    assert list(out.iterdir()) == []
    assert _plaintext_files(tmp_path) == []

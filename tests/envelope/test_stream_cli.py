"""The CLI's streaming encrypt/decrypt: any size, '-' for stdin/stdout, progress only on a TTY."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from styku_crypto._cli import main
from styku_crypto._cli._stream_io import Progress
from styku_crypto.envelope import Envelope
from styku_crypto.envelope._format import SUITE_STREAM, parse_header
from styku_crypto.keys import KeyStore
from tests._support import leaks

CTX = ["--context", "table=scans", "--context", "id=42"]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store with tenant acme, also set as $STYKU_CRYPTO_STORE."""
    path = tmp_path / "keys.db"
    monkeypatch.setenv("STYKU_CRYPTO_STORE", str(path))
    monkeypatch.delenv("STYKU_CRYPTO_ROOTS", raising=False)
    monkeypatch.delenv("STYKU_CRYPTO_ROOT_KEY_FILE", raising=False)
    with KeyStore.open(path) as ks:
        ks.create_tenant("acme")
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    leaks.assert_no_secret_in("stream cli stdout", out)
    leaks.assert_no_secret_in("stream cli stderr", err)
    return code, out, err


def test_file_round_trip_is_a_streamed_token(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """encrypt writes a suite-2 token; decrypt restores the file; piped stderr stays quiet."""
    data = os.urandom(3 * (1 << 20) + 12345)
    (tmp_path / "in.bin").write_bytes(data)
    code, _, err = _run(
        capsys, "encrypt", "--tenant", "acme", *CTX, str(tmp_path / "in.bin"), str(tmp_path / "x")
    )
    assert (code, err) == (0, "")
    token = (tmp_path / "x").read_bytes()
    assert parse_header(token).suite == SUITE_STREAM
    code, _, err = _run(
        capsys, "decrypt", "--tenant", "acme", *CTX, str(tmp_path / "x"), str(tmp_path / "out")
    )
    assert (code, err) == (0, "")
    assert (tmp_path / "out").read_bytes() == data
    with KeyStore.open(store) as ks:  # the library reads CLI output
        ctx = {"table": "scans", "id": "42"}
        assert Envelope(ks).decrypt(token, tenant="acme", context=ctx) == data


def test_sensitive_and_wrong_flags(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--sensitive round-trips; a mismatched flag or context is refused with exit 1, no output."""
    (tmp_path / "in").write_bytes(b"sensitive scan" * 1000)
    args = ["--tenant", "acme", *CTX]
    assert (
        _run(capsys, "encrypt", "--sensitive", *args, str(tmp_path / "in"), str(tmp_path / "x"))[0]
        == 0
    )
    assert _run(capsys, "decrypt", *args, str(tmp_path / "x"), str(tmp_path / "o1"))[0] == 1
    code, _, err = _run(
        capsys, "decrypt", "--tenant", "acme", "--context", "id=1", "--sensitive",
        str(tmp_path / "x"), str(tmp_path / "o2"),
    )  # fmt: skip
    assert code == 1
    assert err.strip()
    assert not (tmp_path / "o1").exists()
    assert not (tmp_path / "o2").exists()
    assert (
        _run(capsys, "decrypt", "--sensitive", *args, str(tmp_path / "x"), str(tmp_path / "o"))[0]
        == 0
    )
    assert (tmp_path / "o").read_bytes() == b"sensitive scan" * 1000


@pytest.mark.parametrize("damage", ["truncate", "flip", "append"])
def test_tampered_decrypt_leaves_no_output(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    """A tampered streamed token exits 1 and leaves neither output nor temporary files."""
    (tmp_path / "in").write_bytes(os.urandom(200_000))
    assert (
        _run(
            capsys, "encrypt", "--tenant", "acme", *CTX, str(tmp_path / "in"), str(tmp_path / "x")
        )[0]
        == 0
    )
    raw = bytearray((tmp_path / "x").read_bytes())
    if damage == "truncate":
        raw = raw[:-5]
    elif damage == "flip":
        raw[-3] ^= 0x40
    else:
        raw += b"extra"
    (tmp_path / "x").write_bytes(bytes(raw))
    code, _, err = _run(
        capsys, "decrypt", "--tenant", "acme", *CTX, str(tmp_path / "x"), str(tmp_path / "out")
    )
    assert code == 1
    assert "decrypt" in err.lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "keys.db", "keys.db.rootkey", "x"]


class _Std:
    """A stand-in for sys.stdin/sys.stdout with a binary buffer."""

    def __init__(self, data: bytes = b"") -> None:
        self.buffer = io.BytesIO(data)

    def isatty(self) -> bool:
        return False


def test_dash_for_stdin_and_stdout(
    store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """'-' reads plaintext from stdin and writes the token to stdout, and back again."""
    data = os.urandom(70_000)
    stdout = _Std()
    monkeypatch.setattr(sys, "stdin", _Std(data))
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["encrypt", "--tenant", "acme", *CTX, "-", "-"]) == 0
    token = stdout.buffer.getvalue()
    assert parse_header(token).suite == SUITE_STREAM
    stdout2 = _Std()
    monkeypatch.setattr(sys, "stdin", _Std(token))
    monkeypatch.setattr(sys, "stdout", stdout2)
    assert main(["decrypt", "--tenant", "acme", *CTX, "-", "-"]) == 0
    assert stdout2.buffer.getvalue() == data
    assert capsys.readouterr().err == ""


def test_one_shot_and_text_tokens_still_decrypt(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Binary one-shot tokens from the library and --text tokens from the CLI still decrypt."""
    with KeyStore.open(store) as ks:
        one_shot = Envelope(ks).encrypt(
            b"record", tenant="acme", context={"table": "scans", "id": "42"}
        )
    (tmp_path / "t1").write_bytes(one_shot)
    assert (
        _run(
            capsys, "decrypt", "--tenant", "acme", *CTX, str(tmp_path / "t1"), str(tmp_path / "o1")
        )[0]
        == 0
    )
    assert (tmp_path / "o1").read_bytes() == b"record"
    (tmp_path / "in").write_bytes(b"text form")
    assert (
        _run(
            capsys,
            "encrypt",
            "--text",
            "--tenant",
            "acme",
            *CTX,
            str(tmp_path / "in"),
            str(tmp_path / "t2"),
        )[0]
        == 0
    )
    assert (tmp_path / "t2").read_bytes().startswith(b"stk1.")
    assert (
        _run(
            capsys, "decrypt", "--tenant", "acme", *CTX, str(tmp_path / "t2"), str(tmp_path / "o2")
        )[0]
        == 0
    )
    assert (tmp_path / "o2").read_bytes() == b"text form"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_tty_plain_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal without rich, a plain progress line is drawn; off a terminal, nothing."""
    monkeypatch.setitem(sys.modules, "rich.progress", None)
    tty = _Tty()
    with Progress("encrypting", 4 << 20, stream=tty) as progress:
        assert progress.enabled
        progress.update(4 << 20)
    assert "encrypting" in tty.getvalue()
    assert "100.0%" in tty.getvalue()
    quiet = io.StringIO()
    with Progress("encrypting", 10, stream=quiet) as progress:
        progress.update(10)
    assert quiet.getvalue() == ""


def test_progress_on_tty_with_rich() -> None:
    """With the cli extra's rich installed, the bar is drawn by rich on the terminal stream."""
    tty: Any = _Tty()
    with Progress("decrypting", None, stream=tty) as progress:
        progress.update(1 << 20)
        assert progress._rich is not None
    assert progress.enabled
    assert "decrypting" in tty.getvalue()

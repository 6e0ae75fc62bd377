"""The keys and envelope commands, run in-process through main()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from styku_crypto._cli import main
from tests._support import leaks


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store path in a temp dir, also set as $STYKU_CRYPTO_STORE."""
    path = tmp_path / "keys.db"
    monkeypatch.setenv("STYKU_CRYPTO_STORE", str(path))
    monkeypatch.delenv("STYKU_CRYPTO_ROOTS", raising=False)
    monkeypatch.delenv("STYKU_CRYPTO_ROOT_KEY_FILE", raising=False)
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    leaks.assert_no_secret_in(f"cli {' '.join(argv[:2])} stdout", out)
    leaks.assert_no_secret_in(f"cli {' '.join(argv[:2])} stderr", err)
    return code, out, err


def test_keys_lifecycle(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """init, create, rotate, list (text and JSON) and shred --yes work and print no secrets."""
    assert _run(capsys, "keys", "init")[0] == 0
    assert store.exists()
    code, out, _ = _run(capsys, "keys", "create", "acme")
    assert code == 0
    assert "customer v1" in out
    assert _run(capsys, "keys", "rotate", "acme", "--purpose", "sensitive")[0] == 0
    code, out, _ = _run(capsys, "keys", "list")
    assert code == 0
    assert "acme" in out
    assert "v2" in out
    code, out, _ = _run(capsys, "keys", "list", "--format", "json")
    doc = json.loads(out)
    assert doc["schema"] == "styku-crypto/keys-list/v1"
    keys = doc["tenants"][0]["keys"]
    assert [(k["purpose"], k["version"], k["primary"]) for k in keys] == [
        ("customer", 1, True),
        ("sensitive", 1, False),
        ("sensitive", 2, True),
    ]
    code, _, err = _run(capsys, "keys", "shred", "acme")
    assert code == 2
    assert "--yes" in err
    assert _run(capsys, "keys", "shred", "acme", "--yes")[0] == 0
    doc = json.loads(_run(capsys, "keys", "list", "--format", "json", "--store", str(store))[1])
    assert doc["tenants"][0]["shredded_at"] is not None


def test_keys_errors(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown tenants exit 1, malformed names and missing arguments exit 2, each with one line."""
    _run(capsys, "keys", "init")
    code, _, err = _run(capsys, "keys", "rotate", "ghost")
    assert code == 1
    assert err.count("\n") == 1
    assert _run(capsys, "keys", "create", "bad name")[0] == 2
    assert _run(capsys, "keys", "create")[0] == 2
    code, _, err = _run(capsys, "keys")
    assert code == 2
    assert "KEYS_COMMAND" in err


def test_encrypt_decrypt_files(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """encrypt then decrypt round-trips a file, binary and text forms, customer and sensitive."""
    _run(capsys, "keys", "init")
    _run(capsys, "keys", "create", "acme")
    secret = b"CLI SECRET PAYLOAD \x00\x01\x02 0123456789"
    leaks.register_secret(secret)
    src = tmp_path / "in.bin"
    src.write_bytes(secret)
    for extra in ([], ["--sensitive"], ["--text"], ["--sensitive", "--text"]):
        enc, dec = tmp_path / "tok", tmp_path / "out"
        ctx = ["--context", "table=scans", "--context", "id=42"]
        assert _run(capsys, "encrypt", "--tenant", "acme", *ctx, *extra, str(src), str(enc))[0] == 0
        assert secret not in enc.read_bytes()
        if "--text" in extra:
            assert enc.read_text().startswith("stk1.")
        flags = [f for f in extra if f == "--sensitive"]
        assert _run(capsys, "decrypt", "--tenant", "acme", *ctx, *flags, str(enc), str(dec))[0] == 0
        assert dec.read_bytes() == secret
        dec.unlink()


def test_failed_decrypt_leaves_no_output(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Wrong context, tampering or a data-class mismatch exit 1 and never create the output file."""
    _run(capsys, "keys", "init")
    _run(capsys, "keys", "create", "acme")
    src, enc, out = tmp_path / "in", tmp_path / "tok", tmp_path / "out"
    src.write_bytes(b"payload for failure")
    _run(capsys, "encrypt", "--tenant", "acme", "--context", "a=1", str(src), str(enc))
    code, _, err = _run(
        capsys, "decrypt", "--tenant", "acme", "--context", "a=2", str(enc), str(out)
    )
    assert code == 1
    assert "DecryptionError" in err
    tampered = bytearray(enc.read_bytes())
    tampered[-1] ^= 1
    enc.write_bytes(bytes(tampered))
    assert (
        _run(capsys, "decrypt", "--tenant", "acme", "--context", "a=1", str(enc), str(out))[0] == 1
    )
    _run(capsys, "encrypt", "--tenant", "acme", "--context", "a=1", str(src), str(enc))
    args = ["--tenant", "acme", "--context", "a=1", "--sensitive", str(enc), str(out)]
    assert _run(capsys, "decrypt", *args)[0] == 1
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_usage_errors(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad --context, missing input files and unknown commands exit 2 with one line on stderr."""
    _run(capsys, "keys", "init")
    _run(capsys, "keys", "create", "acme")
    src = tmp_path / "in"
    src.write_bytes(b"x")
    code, _, err = _run(
        capsys, "encrypt", "--tenant", "acme", "--context", "novalue", str(src), "o"
    )
    assert code == 2
    assert "KEY=VALUE" in err
    dup = ["--context", "a=1", "--context", "a=2"]
    assert _run(capsys, "encrypt", "--tenant", "acme", *dup, str(src), "o")[0] == 2
    code, _, err = _run(capsys, "encrypt", "--tenant", "acme", str(tmp_path / "missing"), "o")
    assert code == 2
    assert "cannot read" in err
    assert _run(capsys, "encrypt", str(src), "o")[0] == 2


def test_rewrap_command(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """rewrap moves a token (file replaced atomically, even in place) to the current versions."""
    _run(capsys, "keys", "init")
    _run(capsys, "keys", "create", "acme")
    src, enc = tmp_path / "in", tmp_path / "tok"
    src.write_bytes(b"rewrap me")
    _run(capsys, "encrypt", "--tenant", "acme", str(src), str(enc))
    before = enc.read_bytes()
    _run(capsys, "keys", "rotate", "acme")
    code, _, err = _run(capsys, "rewrap", "--tenant", "acme", str(enc), str(enc))
    assert code == 0
    assert "re-wrapped" in err
    after = enc.read_bytes()
    assert after[89:] == before[89:]
    assert after[:89] != before[:89]
    out = tmp_path / "out"
    assert _run(capsys, "decrypt", "--tenant", "acme", str(enc), str(out))[0] == 0
    assert out.read_bytes() == b"rewrap me"
    assert "already current" in _run(capsys, "rewrap", "--tenant", "acme", str(enc), str(enc))[2]


def test_stdin_stdout(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """'-' reads stdin and writes stdout."""
    import io
    import sys

    _run(capsys, "keys", "init")
    _run(capsys, "keys", "create", "acme")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"from stdin")))
    tok = tmp_path / "tok"
    assert _run(capsys, "encrypt", "--tenant", "acme", "-", str(tok))[0] == 0
    code = main(["decrypt", "--tenant", "acme", str(tok), "-"])
    assert code == 0
    assert capsys.readouterr().out == "from stdin"


def test_demo(capsys: pytest.CaptureFixture[str]) -> None:
    """demo runs the whole lifecycle on a throwaway store and reports speeds."""
    code, out, _ = _run(capsys, "demo", "--records", "200")
    assert code == 0
    assert "KeyDestroyedError" in out
    assert "unexpected" not in out
    assert "/s" in out
    assert _run(capsys, "demo", "--records", "0")[0] == 2

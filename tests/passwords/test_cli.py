"""The ``styku-crypto passwords`` command group, run in-process."""

from __future__ import annotations

import io
import json
from pathlib import Path

import argon2
import pytest

from styku_crypto._cli import main
from styku_crypto._cli._passwords import parse_memory
from styku_crypto.exceptions import InvalidInputError
from tests._support import leaks
from tests.passwords.conftest import new_password


def test_calibrate_json_meets_floor(capsys: pytest.CaptureFixture[str]) -> None:
    """calibrate prints a versioned JSON profile at or above OWASP's floor within the memory cap."""
    assert (
        main(
            [
                "passwords",
                "calibrate",
                "--target-ms",
                "60",
                "--max-memory",
                "16MiB",
                "--format",
                "json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "styku-passwords-calibrate/1"
    assert 7168 <= doc["memory_cost"] <= 16384
    assert doc["memory_cost"] * doc["time_cost"] >= 7168 * 5
    assert doc["parallelism"] == 1


def test_calibrate_unreachable_target_returns_floor(capsys: pytest.CaptureFixture[str]) -> None:
    """An impossible target yields the floor profile with a warning, never a weaker one."""
    assert main(["passwords", "calibrate", "--target-ms", "0.01", "--max-memory", "8MiB"]) == 0
    captured = capsys.readouterr()
    assert "memory_cost = 7168 KiB" in captured.out
    assert "time_cost   = 5" in captured.out
    assert "OWASP" in captured.err


@pytest.mark.parametrize(
    "argv",
    [
        ["passwords", "calibrate", "--max-memory", "256"],
        ["passwords", "calibrate", "--max-memory", "4MiB"],
        ["passwords", "calibrate", "--target-ms", "0"],
        ["passwords", "calibrate", "--parallelism", "0"],
        ["passwords"],
        ["passwords", "hash", "--profile", "NOPE"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Bad sizes, targets, profiles and a missing subcommand exit with code 2."""
    assert main(argv) == 2


def test_parse_memory_units() -> None:
    """Sizes accept KiB/MiB/GiB (and K/M/G) and return KiB."""
    assert parse_memory("256MiB") == 262144
    assert parse_memory("1g") == 1048576
    assert parse_memory("7168KiB") == 7168
    with pytest.raises(InvalidInputError):
        parse_memory("lots")


def test_hash_and_verify_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """hash reads stdin and prints a hash; verify exits 0 on match, 1 on mismatch; no echo."""
    pw = new_password()
    monkeypatch.setattr("sys.stdin", io.StringIO(pw + "\n"))
    assert main(["passwords", "hash", "--profile", "OWASP_M7168_T5"]) == 0
    out = capsys.readouterr()
    stored = out.out.strip()
    assert stored.startswith("$argon2id$v=19$m=7168,t=5,p=1$")
    assert argon2.PasswordHasher().verify(stored, pw)
    monkeypatch.setattr("sys.stdin", io.StringIO(pw + "\n"))
    assert main(["passwords", "verify", stored]) == 0
    ok = capsys.readouterr()
    assert "upgraded" in ok.out  # weaker than the default profile
    monkeypatch.setattr("sys.stdin", io.StringIO(pw + "x\n"))
    assert main(["passwords", "verify", stored]) == 1
    bad = capsys.readouterr()
    assert "PasswordMismatchError" in bad.err
    for text in (out.out, out.err, ok.out, ok.err, bad.out, bad.err):
        leaks.assert_no_secret_in("passwords CLI output", text)


def test_hash_applies_policy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A too-short password is a usage error (exit 2) naming the rule, not the password."""
    monkeypatch.setattr("sys.stdin", io.StringIO("tiny-pass\n"))
    assert main(["passwords", "hash", "--profile", "OWASP_M7168_T5"]) == 2
    assert "at least 15" in capsys.readouterr().err


def test_verify_refuses_planted_hash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hash over the limits exits 1 with InvalidHashError before any work."""
    monkeypatch.setattr("sys.stdin", io.StringIO("whatever-password-123\n"))
    planted = "$argon2id$v=19$m=4194304,t=1000,p=255$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43
    assert main(["passwords", "verify", planted]) == 1
    assert "InvalidHashError" in capsys.readouterr().err


def test_profiles_listing(capsys: pytest.CaptureFixture[str]) -> None:
    """profiles lists every built-in profile; CHEAPEST is marked as below the floor."""
    assert main(["passwords", "profiles", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = {p["name"]: p for p in doc["profiles"]}
    assert names["CHEAPEST"]["meets_owasp_floor"] is False
    assert names["RFC_9106_LOW_MEMORY"]["meets_owasp_floor"] is True
    assert main(["passwords", "profiles"]) == 0
    assert "RFC_9106_LOW_MEMORY" in capsys.readouterr().out


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_hash_on_a_terminal_asks_twice(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a terminal, hash asks twice: equal answers are hashed, different ones exit 2 with
    nothing printed on stdout (a typo is never hashed)."""
    pw = new_password()
    answers = iter([pw, pw, pw, pw + "typo"])
    prompts: list[str] = []

    def getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", getpass)
    monkeypatch.setattr("sys.stdin", _Tty())
    assert main(["passwords", "hash", "--profile", "OWASP_M7168_T5"]) == 0
    stored = capsys.readouterr().out.strip()
    assert argon2.PasswordHasher().verify(stored, pw)
    assert len(prompts) == 2
    assert prompts[0] != prompts[1]
    assert main(["passwords", "hash", "--profile", "OWASP_M7168_T5"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert "differ" in out.err
    leaks.assert_no_secret_in("passwords hash error", out.err)


def test_verify_exit_codes_follow_cli_md(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/cli.md's scheme: a malformed or unknown hash is a bad token (exit 1, named as a
    refused hash, not a mismatch); a password over the byte cap is a policy error (exit 2)."""
    for bad in ("$argon2id$v=19$m=64", "$1$md5crypt$abcdefghijklmnopqrstuv"):
        monkeypatch.setattr("sys.stdin", io.StringIO("whatever-password-123\n"))
        assert main(["passwords", "verify", bad]) == 1
        err = capsys.readouterr().err
        assert "InvalidHashError" in err
        assert "refused" in err
        assert bad not in err
    stored = argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash("a" * 20)
    monkeypatch.setattr("sys.stdin", io.StringIO("x" * 2000 + "\n"))
    assert main(["passwords", "verify", stored]) == 2
    assert "longer than 1024 bytes" in capsys.readouterr().err
    cli_md = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    row = next(line for line in cli_md.splitlines() if "`passwords verify HASH`" in line)
    assert "1 mismatch or refused hash" in row
    assert "2 usage or policy error" in row


def test_wrap_command_all_or_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """wrap prints each hash wrapped under the store's pepper, in order, verifiable with
    require_pepper; a refused line prints nothing, exits 1 and names the line, not the hash."""
    import bcrypt

    from styku_crypto.keys import KeyStore
    from styku_crypto.passwords import CHEAPEST, PasswordHasher, PepperSet

    store_path = tmp_path / "keys.db"
    KeyStore.open(store_path).close()
    monkeypatch.setattr("sys.stdin", io.StringIO("$2b$04$" + "a" * 53 + "\n"))
    assert main(["passwords", "wrap", "--store", str(store_path)]) == 2  # no pepper yet
    assert "no password pepper" in capsys.readouterr().err
    store = KeyStore.open(store_path)
    PepperSet.from_key_store(store)  # what a service does on first start
    store.close()
    pws = [new_password() for _ in range(3)]
    hashes = [
        argon2.PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash(pws[0]),
        bcrypt.hashpw(pws[1].encode(), bcrypt.gensalt(4)).decode(),
        "pbkdf2_sha256$1000$salt$"
        + __import__("base64")
        .b64encode(__import__("hashlib").pbkdf2_hmac("sha256", pws[2].encode(), b"salt", 1000))
        .decode(),
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(hashes) + "\n"))
    assert main(["passwords", "wrap", "--store", str(store_path)]) == 0
    wrapped = capsys.readouterr().out.splitlines()
    assert len(wrapped) == 3
    store = KeyStore.open(store_path)
    peppers = PepperSet.from_key_store(store, required=True)
    store.close()
    with PasswordHasher(profile=CHEAPEST, insecure_test_only=True, pepper=peppers) as h:
        for stored, pw in zip(wrapped, pws, strict=True):
            assert stored.startswith("$styku-wrap$v=1,pepper=ks1$")
            assert h.verify(stored, pw)
    planted = "$2b$31$" + "a" * 53
    monkeypatch.setattr("sys.stdin", io.StringIO(hashes[0] + "\n" + planted + "\n"))
    assert main(["passwords", "wrap", "--store", str(store_path)]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert "line 2" in out.err
    assert planted not in out.err


def test_wrap_never_creates_a_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo'd --store is one line and exit 2; no store (and no fresh pepper) is created."""
    typo = tmp_path / "typo.db"
    monkeypatch.setattr("sys.stdin", io.StringIO("$2b$04$" + "a" * 53 + "\n"))
    assert main(["passwords", "wrap", "--store", str(typo)]) == 2
    err = capsys.readouterr().err
    assert "no key store at" in err
    assert "keys init" in err
    assert not typo.exists()
    assert list(tmp_path.iterdir()) == []

"""The ``styku-crypto passwords`` command group, run in-process."""

from __future__ import annotations

import io
import json

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

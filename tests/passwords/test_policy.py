"""NIST SP 800-63B input policy and the memory-mapped SHA-1 blocklist."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from styku_crypto.exceptions import InvalidInputError, InvalidPolicyError, PasswordPolicyError
from styku_crypto.passwords import CHEAPEST, Blocklist, PasswordHasher, PasswordPolicy
from tests._support import leaks
from tests.passwords.conftest import EventLog


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest().upper()


def test_defaults_follow_nist() -> None:
    """Defaults: 15..128 characters, 1024-byte cap, no composition rules."""
    policy = PasswordPolicy()
    assert (policy.min_length, policy.max_length, policy.max_bytes) == (15, 128, 1024)
    assert policy.check("aaaaaaaaaaaaaaa") == "aaaaaaaaaaaaaaa"  # no composition rules
    with pytest.raises(PasswordPolicyError):
        policy.check("a" * 14)
    with pytest.raises(PasswordPolicyError):
        policy.check("a" * 129)


def test_length_counts_normalised_code_points() -> None:
    """Lengths count code points after NFKC, so decomposed input is not over-counted."""
    policy = PasswordPolicy(min_length=8)
    decomposed = "e\u0301" * 8  # 16 code points, 8 after NFKC composition
    assert policy.check(decomposed) == "\u00e9" * 8
    with pytest.raises(PasswordPolicyError):
        policy.check("e\u0301" * 7)


def test_byte_cap_bounds_work() -> None:
    """Within the character limit, the UTF-8 byte cap still applies."""
    policy = PasswordPolicy(max_length=300, max_bytes=400)
    with pytest.raises(PasswordPolicyError) as info:
        policy.check("\U0001f600" * 101)  # 101 characters, 404 bytes
    assert info.value.rule == "too_long"  # type: ignore[attr-defined]


def test_policy_bounds_validated() -> None:
    """NIST floors: min_length >= 8 and max_length >= 64; byte cap within bounds."""
    PasswordPolicy(min_length=8)  # allowed with MFA
    for kwargs in (
        {"min_length": 7},
        {"max_length": 63},
        {"max_bytes": 10_000},
        {"max_length": 200, "max_bytes": 100},
    ):
        with pytest.raises(InvalidPolicyError):
            PasswordPolicy(**kwargs)  # type: ignore[arg-type]


def test_not_text_is_a_policy_error() -> None:
    """Lone surrogates cannot be encoded and are refused with rule not_text."""
    with pytest.raises(PasswordPolicyError) as info:
        PasswordPolicy().check("\ud800" * 20)
    assert info.value.rule == "not_text"  # type: ignore[attr-defined]


def _write_list(path: Path, entries: list[str], *, crlf: bool = False) -> None:
    end = "\r\n" if crlf else "\n"
    path.write_text("".join(f"{e}:{i + 1}{end}" for i, e in enumerate(sorted(entries))))


def test_blocklist_rejects_listed_passwords(tmp_path: Path, events: EventLog) -> None:
    """hash() refuses a password whose SHA-1 is listed, with a policy_rejected event."""
    bad = "correct horse battery staple"
    leaks.register_secret(bad)
    path = tmp_path / "pwned.txt"
    _write_list(path, [_sha1(bad), _sha1("another breached password"), "0" * 40, "F" * 40])
    policy = PasswordPolicy(blocklist=Blocklist(path))
    with PasswordHasher(profile=CHEAPEST, insecure_test_only=True, policy=policy) as h:
        with pytest.raises(PasswordPolicyError) as info:
            h.hash(bad)
        assert info.value.rule == "blocklisted"  # type: ignore[attr-defined]
        leaks.assert_no_secret_in("blocklist error", str(info.value))
        assert events.last("password.policy_rejected")["reason"] == "blocklisted"
        assert h.hash("correct horse battery stapler").startswith("$argon2id$")


@pytest.mark.parametrize("crlf", [False, True])
def test_blocklist_binary_search_finds_every_entry(tmp_path: Path, crlf: bool) -> None:
    """Every listed digest is found and unlisted ones are not (LF and CRLF files, any case)."""
    rng = random.Random(7)
    entries = [f"{rng.getrandbits(160):040X}" for _ in range(500)]
    path = tmp_path / "list.txt"
    _write_list(path, entries, crlf=crlf)
    bl = Blocklist(path)
    for e in entries:
        assert bl.contains_digest(e)
        assert bl.contains_digest(e.lower())
    for _ in range(500):
        probe = f"{rng.getrandbits(160):040X}"
        assert bl.contains_digest(probe) == (probe in entries)
    bl.close()


def test_blocklist_min_count(tmp_path: Path) -> None:
    """Entries seen fewer than min_count times are ignored; count-less lines count once."""
    path = tmp_path / "counts.txt"
    path.write_text(f"{'1' * 40}:1\n{'2' * 40}\n{'3' * 40}:50\n")
    bl = Blocklist(path, min_count=10)
    assert not bl.contains_digest("1" * 40)
    assert not bl.contains_digest("2" * 40)
    assert bl.contains_digest("3" * 40)


def test_blocklist_fast_on_a_million_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a sorted file of 1,000,000 entries, each lookup reads O(log n) lines (binary search)."""
    n = 1_000_000
    step = (1 << 160) // n
    path = tmp_path / "big.txt"
    with path.open("w") as fh:
        for start in range(0, n, 100_000):
            fh.write(
                "".join(f"{i * step:040X}:{i % 997 + 1}\n" for i in range(start, start + 100_000))
            )
    bl = Blocklist(path)
    probes = [f"{i * step:040X}" for i in range(0, n, 9973)]
    misses = [f"{i * step + 1:040X}" for i in range(0, n, 9973)]
    reads = 0
    line_at = bl._line_at

    def counting(pos: int) -> tuple[bytes, int, int, int]:
        nonlocal reads
        reads += 1
        return line_at(pos)

    monkeypatch.setattr(bl, "_line_at", counting)
    worst = 0
    for digest in probes + misses:
        reads = 0
        assert bl.contains_digest(digest) == (digest in probes)
        worst = max(worst, reads)
    # A bisection over ~47 MB snapping to lines: about log2(bytes) = 26 reads at most,
    # nowhere near a scan. Speed itself is measured in benchmarks/, not asserted here.
    assert worst <= 40, worst
    bl.close()


def test_blocklist_rejects_bad_files(tmp_path: Path) -> None:
    """Unsorted, malformed and missing files are input errors; an empty file blocks nothing."""
    unsorted = tmp_path / "unsorted.txt"
    unsorted.write_text("".join(f"{c * 40}:1\n" for c in "F0123456789ABCDE"))
    with pytest.raises(InvalidInputError, match="sorted"):
        Blocklist(unsorted)
    junk = tmp_path / "junk.txt"
    junk.write_text("password123\n")
    with pytest.raises(InvalidInputError):
        Blocklist(junk)
    with pytest.raises(InvalidInputError):
        Blocklist(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert "anything at all" not in Blocklist(empty)
    assert b"bytes" not in Blocklist(empty)

"""The public surface of styku_crypto.passwords matches the documentation."""

from __future__ import annotations

import re
from pathlib import Path

import argon2
import pytest

import styku_crypto.passwords as passwords
from styku_crypto.exceptions import InvalidHashError, PasswordMismatchError
from styku_crypto.passwords import PasswordHasher, profiles

DOC = Path(__file__).resolve().parents[2] / "docs" / "passwords.md"


def test_all_is_sorted_and_documented() -> None:
    """__all__ is isort-style sorted and every public name appears in docs/passwords.md."""
    names = passwords.__all__

    def key(name: str) -> tuple[int, list[object]]:
        group = 0 if name.isupper() else 1 if name[0].isupper() else 2
        parts = re.split(r"(\d+)", name)
        return group, [int(p) if p.isdigit() else p for p in parts]

    assert names == sorted(names, key=key)
    text = DOC.read_text()
    for name in names:
        assert f"`{name}" in text or name in text, name
        assert hasattr(passwords, name)


def test_profiles_module_exports_rfc_9106_low_memory() -> None:
    """``passwords.profiles.RFC_9106_LOW_MEMORY`` is importable and frozen."""
    from dataclasses import FrozenInstanceError

    assert profiles.RFC_9106_LOW_MEMORY.memory_cost == 65536
    with pytest.raises(FrozenInstanceError):
        profiles.RFC_9106_LOW_MEMORY.memory_cost = 1  # type: ignore[misc]
    assert profiles.by_name("owasp_m19456_t2") is profiles.OWASP_M19456_T2


def test_empty_and_non_str_stored_values(hasher: PasswordHasher) -> None:
    """The empty password verifies against argon2-cffi's hash of ''; non-str hashes are invalid."""
    stored = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("")
    assert hasher.verify(stored, "")
    with pytest.raises(PasswordMismatchError):
        hasher.verify(stored, " ")
    for bad in (None, b"$argon2id$", 42):
        with pytest.raises(InvalidHashError):
            hasher.verify(bad, "")  # type: ignore[arg-type]

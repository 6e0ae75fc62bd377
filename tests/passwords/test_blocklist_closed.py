"""A closed blocklist fails closed: lookups raise instead of letting every password through."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from styku_crypto.exceptions import InvalidInputError, PasswordPolicyError
from styku_crypto.passwords import Blocklist, PasswordPolicy
from tests._support import leaks


def test_closed_blocklist_raises_rather_than_allowing(tmp_path: Path) -> None:
    """After close(), a listed password is not accepted: the lookup raises InvalidInputError."""
    password = "correct horse battery staple 42"
    leaks.register_secret(password)
    digest = hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()
    path = tmp_path / "list.txt"
    path.write_text(f"{digest}:3\n")
    blocklist = Blocklist(path)
    policy = PasswordPolicy(blocklist=blocklist)
    with pytest.raises(PasswordPolicyError):
        policy.check(password)
    blocklist.close()
    with pytest.raises(InvalidInputError) as info:
        policy.check(password)
    assert not isinstance(info.value, PasswordPolicyError)
    leaks.assert_no_secret_in("closed blocklist error", str(info.value))
    with pytest.raises(InvalidInputError):
        blocklist.contains_digest(digest)

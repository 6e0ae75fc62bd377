"""A raw key passed as the pepper is refused at construction, without echoing it."""

from __future__ import annotations

import pytest

from styku_crypto.passwords import CHEAPEST, PasswordHasher
from tests._support import leaks


@pytest.mark.parametrize("raw", [b"\x13" * 32, "raw-pepper-text-0b6f2e9d41aa"])
def test_raw_pepper_is_a_type_error_without_the_value(raw: bytes | str) -> None:
    """pepper=<bytes or str> raises TypeError at once, not later, and never shows the value."""
    leaks.register_secret(raw)
    with pytest.raises(TypeError) as info:
        PasswordHasher(profile=CHEAPEST, pepper=raw, insecure_test_only=True)  # type: ignore[arg-type]
    leaks.assert_no_secret_in("PasswordHasher pepper error", str(info.value))
    leaks.assert_no_secret_in("PasswordHasher pepper error repr", repr(info.value))

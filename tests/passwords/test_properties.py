"""Hypothesis properties: round trips, Unicode normalisation, distinct passwords."""

from __future__ import annotations

import secrets
import unicodedata

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from styku_crypto.exceptions import PasswordMismatchError
from styku_crypto.passwords import PasswordHasher
from tests._support import leaks

# Any Unicode text (hypothesis' default alphabet: every code point except surrogates),
# behind a random ASCII prefix so that each example is a unique secret for the leak guard
# (a bare generated "0000000000" would be flagged wherever those digits appear in a log).
passwords = st.builds(
    lambda text: secrets.token_urlsafe(12) + "-" + text, st.text(max_size=80)
).filter(lambda s: len(unicodedata.normalize("NFKC", s)) <= 128)


@given(passwords)
def test_any_unicode_password_round_trips(shared_hasher: PasswordHasher, pw: str) -> None:
    """Every Unicode password within the policy hashes and verifies."""
    leaks.register_secret(pw)
    assert shared_hasher.verify(shared_hasher.hash(pw), pw)


@given(passwords)
def test_nfc_and_nfd_forms_verify(shared_hasher: PasswordHasher, pw: str) -> None:
    """A hash made from one normalisation form verifies with the NFC, NFD, NFKC and NFKD forms."""
    leaks.register_secret(pw)
    stored = shared_hasher.hash(unicodedata.normalize("NFC", pw))
    for form in ("NFC", "NFD", "NFKC", "NFKD"):
        assert shared_hasher.verify(stored, unicodedata.normalize(form, pw))


@given(st.text(max_size=60), st.text(max_size=60))
def test_different_passwords_never_verify(shared_hasher: PasswordHasher, a: str, b: str) -> None:
    """Passwords (shared prefix, any Unicode tails) with different NFKC forms never cross-verify."""
    prefix = secrets.token_urlsafe(12) + "-"
    a, b = prefix + a, prefix + b
    assume(unicodedata.normalize("NFKC", a) != unicodedata.normalize("NFKC", b))
    leaks.register_secret(a)
    leaks.register_secret(b)
    stored = shared_hasher.hash(a)
    with pytest.raises(PasswordMismatchError):
        shared_hasher.verify(stored, b)


@given(passwords)
def test_composed_and_decomposed_accents(shared_hasher: PasswordHasher, suffix: str) -> None:
    """'é' typed as one code point or as e + combining acute verifies against the same hash."""
    composed, decomposed = "caf\u00e9-" + suffix, "cafe\u0301-" + suffix
    leaks.register_secret(composed)
    stored = shared_hasher.hash(composed)
    assert shared_hasher.verify(stored, decomposed)

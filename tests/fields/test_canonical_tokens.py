"""``de1.``/``bi1.`` strings parse with an ASCII-only, canonical grammar (issue 14).

``str.isdigit`` accepts superscript two (U+00B2) and Arabic-Indic one (U+0661), and
``int`` reads U+0661 as 1, so ``de1.<U+0661>.…`` used to decrypt like ``de1.1.…``
while an equality search for the canonical form missed it. Every non-canonical form
is now refused with a typed error.
"""

from __future__ import annotations

import pytest

from styku_crypto.exceptions import DecryptionError, UnsupportedFormatError
from styku_crypto.fields import BlindIndexer, DeterministicEncryptor
from styku_crypto.keys import KeyStore

_NON_CANONICAL_VERSIONS = ["\u00b2", "\u0661", "01", "+1", "-1", "1 ", " 1", "0", "99999999999", ""]


@pytest.mark.parametrize("version", _NON_CANONICAL_VERSIONS)
def test_deterministic_token_versions_are_canonical(store: KeyStore, version: str) -> None:
    """A de1 token whose version is not canonical ASCII decimal is UnsupportedFormatError."""
    det = DeterministicEncryptor(store, name="members.ssn")
    token = det.encrypt("123-45-6789", tenant="acme")
    prefix, _, body = token.split(".")
    assert det.decrypt(f"{prefix}.1.{body}", tenant="acme") == "123-45-6789"
    with pytest.raises(UnsupportedFormatError):
        det.decrypt(f"{prefix}.{version}.{body}", tenant="acme")


def test_deterministic_body_must_be_canonical_base64(store: KeyStore) -> None:
    """A body with non-zero trailing bits (another spelling of the same bytes) is refused."""
    det = DeterministicEncryptor(store, name="members.ssn")
    token = det.encrypt("xy", tenant="acme")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(token.split(".")[2]) % 4 != 0  # there are spare trailing bits to set
    last = token[-1]
    variant = token[:-1] + alphabet[alphabet.index(last) ^ 1]
    with pytest.raises(DecryptionError):
        det.decrypt(variant, tenant="acme")


@pytest.mark.parametrize("version", _NON_CANONICAL_VERSIONS)
def test_blind_index_tag_versions_are_canonical(store: KeyStore, version: str) -> None:
    """bi1 tags: version_of and needs_reindex refuse non-canonical versions the same way."""
    idx = BlindIndexer(store, name="members.email")
    tag = idx.tag("a@example.com", tenant="acme")
    prefix, _, body = tag.split(".")
    assert idx.version_of(tag) == 1
    with pytest.raises(UnsupportedFormatError):
        idx.version_of(f"{prefix}.{version}.{body}")
    with pytest.raises(UnsupportedFormatError):
        idx.needs_reindex(f"{prefix}.{version}.{body}", tenant="acme")

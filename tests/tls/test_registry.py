"""The cipher-suite and named-group registries against the local OpenSSL builds."""

from __future__ import annotations

import ssl

import pytest
from OpenSSL import SSL

from styku_crypto import tls


def test_registry_is_consistent() -> None:
    """Code points and IANA names are unique; every profile suite is known."""
    codes = [s.code for s in tls.CIPHER_SUITES]
    assert len(codes) == len(set(codes)) > 340
    assert len({s.iana for s in tls.CIPHER_SUITES}) == len(codes)
    for policy in tls.profiles.ALL:
        for name in (*policy.tls12_ciphers, *policy.tls12_ciphers_openssl, *policy.tls13_suites):
            assert tls.cipher_by_name(name)


def test_registry_matches_system_openssl() -> None:
    """Every suite the interpreter's OpenSSL knows has the same code point and name here."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    seen = 0
    for entry in ctx.get_ciphers():
        suite = tls.cipher_by_code(int(entry["id"]) & 0xFFFF)
        assert suite is not None, entry["name"]
        assert entry["name"] in (suite.openssl, suite.iana), (entry["name"], suite)
        seen += 1
    assert seen > 50


def test_registry_matches_pyopenssl_openssl() -> None:
    """pyOpenSSL's (bundled) OpenSSL names map to registry entries too."""
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_cipher_list(b"ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    for name in SSL.Connection(ctx, None).get_cipher_list():
        assert tls.cipher_by_name(name)


@pytest.mark.parametrize(
    ("name", "pfs", "insecure", "aead"),
    [
        ("ECDHE-RSA-AES128-GCM-SHA256", True, False, True),
        ("AES128-SHA", False, False, False),
        ("TLS_DH_anon_WITH_AES_128_CBC_SHA", False, True, False),
        ("TLS_RSA_EXPORT_WITH_RC4_40_MD5", False, True, False),
        ("TLS_RSA_WITH_NULL_SHA256", False, True, False),
        ("DES-CBC3-SHA", False, True, False),
        ("TLS_CHACHA20_POLY1305_SHA256", True, False, True),
    ],
)
def test_suite_properties(name: str, pfs: bool, insecure: bool, aead: bool) -> None:
    """Derived properties classify suites the way the rules need."""
    suite = tls.cipher_by_name(name)
    assert (suite.forward_secret, suite.insecure, suite.aead) == (pfs, insecure, aead)


def test_named_groups() -> None:
    """Group spellings resolve to IANA code points, including FFDHE and hybrid PQ groups."""
    assert tls.group_by_name("prime256v1").code == tls.group_by_name("P-256").code == 23
    assert tls.group_by_name("X25519MLKEM768").code == 4588
    assert tls.group_by_name("ffdhe2048").kind == "ffdhe"
    assert tls.group_by_code(30).name == "x448"
    with pytest.raises(ValueError, match="unknown"):
        tls.group_by_name("curve-of-doom")


def test_public_api_is_sorted_and_importable() -> None:
    """__all__ is sorted and every name exists."""
    assert list(tls.__all__) == sorted(tls.__all__)
    for name in tls.__all__:
        assert hasattr(tls, name)

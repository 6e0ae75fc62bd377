"""The well-known DH prime table against OpenSSL's own copies and the RFC text."""

from __future__ import annotations

import subprocess
import warnings

import pytest

from styku_crypto.tls.audit._dhgroups import identify, known_groups

OPENSSL_NAMES = {
    "MODP group 5": "modp_1536",
    "MODP group 14": "modp_2048",
    "MODP group 15": "modp_3072",
    "MODP group 16": "modp_4096",
    "MODP group 17": "modp_6144",
    "MODP group 18": "modp_8192",
    "ffdhe2048": "ffdhe2048",
    "ffdhe3072": "ffdhe3072",
    "ffdhe4096": "ffdhe4096",
    "ffdhe6144": "ffdhe6144",
    "ffdhe8192": "ffdhe8192",
}


def _openssl_prime(group: str) -> int:
    pem = subprocess.run(
        ["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", f"group:{group}"],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography deprecates FFDH
        from cryptography.hazmat.primitives.serialization import load_pem_parameters

        params = load_pem_parameters(pem)
    return params.parameter_numbers().p  # type: ignore[union-attr]


@pytest.mark.parametrize("name", sorted(OPENSSL_NAMES))
def test_computed_prime_matches_openssl(name: str) -> None:
    """Each RFC 3526 / RFC 7919 prime computed from its formula equals OpenSSL's built-in one."""
    by_name = {g.name: p for p, g in known_groups().items()}
    assert by_name[name] == _openssl_prime(OPENSSL_NAMES[name])


def test_oakley_group_2_matches_rfc_2409_text() -> None:
    """Oakley group 2 (no OpenSSL name): its hex starts and ends as printed in RFC 2409 6.2."""
    prime = next(p for p, g in known_groups().items() if g.name == "Oakley group 2")
    text = f"{prime:X}"
    assert len(text) == 256
    assert text.startswith("FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1")
    assert text.endswith("49286651ECE65381FFFFFFFFFFFFFFFF")
    assert pow(2, prime - 1, prime) == 1  # probable prime
    assert pow(2, (prime - 1) // 2 - 1, (prime - 1) // 2) == 1  # (p-1)/2 probable prime too


def test_identify_and_sizes() -> None:
    """Identification works on big-endian bytes; sizes match; anything else is custom."""
    for prime, group in known_groups().items():
        assert prime.bit_length() == group.bits
        assert identify(prime.to_bytes(group.bits // 8, "big")) == group
    assert identify(b"\x00" * 127 + b"\x17") is None

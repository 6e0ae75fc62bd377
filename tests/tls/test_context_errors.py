"""Context builders turn unloadable certificates and keys into typed errors, never prompts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.tls import (
    client_context,
    pyopenssl_client_context,
    pyopenssl_server_context,
    server_context,
)
from tests._support import leaks

SERVERS: list[Callable[..., Any]] = [server_context, pyopenssl_server_context]
CLIENTS: list[Callable[..., Any]] = [client_context, pyopenssl_client_context]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A valid chain and key, a key that does not match, an encrypted key, and garbage."""
    d = tmp_path_factory.mktemp("ctxerr")
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    other = ca.issue_cert("other.example")
    (d / "cert.pem").write_bytes(leaf.cert_chain_pems[0].bytes())
    (d / "key.pem").write_bytes(leaf.private_key_pem.bytes())
    (d / "other-key.pem").write_bytes(other.private_key_pem.bytes())
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    passphrase = b"correct horse battery staple"
    leaks.register_secret(passphrase)
    (d / "encrypted-key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
    )
    (d / "garbage.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n")
    return {p.stem: p for p in d.iterdir()}


@pytest.mark.parametrize("build", SERVERS, ids=lambda f: f.__name__)
def test_garbage_certificate_is_invalid_input(build: Any, files: dict[str, Path]) -> None:
    """A certificate file that is not a certificate raises InvalidInputError."""
    with pytest.raises(InvalidInputError, match="cannot load"):
        build(certfile=files["garbage"], keyfile=files["key"])


@pytest.mark.parametrize("build", SERVERS, ids=lambda f: f.__name__)
def test_mismatched_key_is_invalid_input(build: Any, files: dict[str, Path]) -> None:
    """A private key that does not belong to the certificate raises InvalidInputError."""
    with pytest.raises(InvalidInputError):
        build(certfile=files["cert"], keyfile=files["other-key"])


@pytest.mark.parametrize("build", SERVERS + CLIENTS, ids=lambda f: f.__name__)
def test_encrypted_key_is_refused_without_prompting(build: Any, files: dict[str, Path]) -> None:
    """An encrypted key raises InvalidInputError at once; OpenSSL is never left to prompt."""
    with pytest.raises(InvalidInputError, match="encrypted") as info:
        build(certfile=files["cert"], keyfile=files["encrypted-key"])
    leaks.assert_no_secret_in("context error", str(info.value))


@pytest.mark.parametrize("build", SERVERS, ids=lambda f: f.__name__)
def test_garbage_client_ca_is_invalid_input(build: Any, files: dict[str, Path]) -> None:
    """An unloadable client-CA bundle raises InvalidInputError."""
    with pytest.raises(InvalidInputError, match="CA"):
        build(certfile=files["cert"], keyfile=files["key"], client_ca=files["garbage"])


@pytest.mark.parametrize("build", CLIENTS, ids=lambda f: f.__name__)
def test_garbage_cafile_is_invalid_input(build: Any, files: dict[str, Path]) -> None:
    """An unloadable trust bundle raises InvalidInputError."""
    with pytest.raises(InvalidInputError, match="CA"):
        build(cafile=files["garbage"])

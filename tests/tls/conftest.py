"""Fixtures for the TLS tests: a throwaway CA, server and client certificates on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from styku_crypto.testing import CertificateFactory
from tests._support import leaks


@dataclass(frozen=True)
class Pki:
    factory: CertificateFactory
    ca: Path
    server_cert: Path
    server_key: Path
    rsa_cert: Path
    rsa_key: Path
    client_cert: Path
    client_key: Path


def _register(issued: object) -> None:
    leaks.register_secret(issued.key_pem())  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One CA, an ECDSA and an RSA server certificate for localhost, and a client certificate."""
    base = tmp_path_factory.mktemp("pki")
    factory = CertificateFactory()
    server = factory.good("localhost", sans=["localhost", "127.0.0.1"])
    rsa = factory.issue("localhost", sans=["localhost", "127.0.0.1"], key="rsa-2048")
    client = factory.client("client.example")
    for issued in (server, rsa, client):
        _register(issued)
    server_cert, server_key = server.write(base, "server")
    rsa_cert, rsa_key = rsa.write(base, "rsa")
    client_cert, client_key = client.write(base, "client")
    return Pki(
        factory=factory,
        ca=factory.write_ca(base),
        server_cert=server_cert,
        server_key=server_key,
        rsa_cert=rsa_cert,
        rsa_key=rsa_key,
        client_cert=client_cert,
        client_key=client_key,
    )

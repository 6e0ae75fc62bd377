"""Fixtures for the TLS tests: a throwaway CA, server and client certificates on disk."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


# ----------------------------------------------------------------------------- finding messages

#: Every finding message created while the TLS tests run (policy checks and audits).
FINDING_MESSAGES: list[str] = []

#: What a message must never contain: debug representations of foreign objects.
DEBUG_MARKERS = ("{", "PhantomData", "Some(", "<Certificate(", "ParseError")


def debug_text_in(messages: list[str]) -> list[str]:
    """The messages that carry a debug representation (Rust ``Debug``, Python reprs)."""
    return [m for m in messages if any(marker in m for marker in DEBUG_MARKERS)]


@pytest.fixture(scope="session", autouse=True)
def _scan_every_finding_message() -> Iterator[None]:
    """Record each Finding/AuditFinding message; at the end, fail if any has debug text.

    Issue 16: a SHA-1 chain produced ``AlgorithmIdentifier { oid:
    DefinedByMarker(PhantomData<...>) ...`` in a CERT-CHAIN-003 message. This
    covers every message any TLS test produces, not only the known offender.
    """
    from styku_crypto.tls._policy import Finding
    from styku_crypto.tls.audit._model import AuditFinding

    originals = {cls: cls.__init__ for cls in (Finding, AuditFinding)}

    def recording(cls: type) -> Any:
        original = originals[cls]

        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            FINDING_MESSAGES.append(str(self.message))

        return init

    for cls in originals:
        cls.__init__ = recording(cls)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for cls, original in originals.items():
            cls.__init__ = original  # type: ignore[method-assign]
    bad = debug_text_in(FINDING_MESSAGES)
    assert not bad, f"finding messages with debug text: {bad[:5]}"

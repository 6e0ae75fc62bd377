"""Real loopback handshakes between our server and client contexts (stdlib and pyOpenSSL)."""

from __future__ import annotations

import ssl

import pytest
from OpenSSL import SSL

from styku_crypto import tls
from styku_crypto.tls import profiles

from ._loopback import connect, raw_pyopenssl_client, serve_once

PROFILES = {p.name: p for p in profiles.ALL}


def _server(kind: str, policy: tls.Policy, pki: object, *, mtls: bool) -> object:
    make = tls.server_context if kind == "stdlib" else tls.pyopenssl_server_context
    return make(
        policy=policy,
        certfile=pki.server_cert,  # type: ignore[attr-defined]
        keyfile=pki.server_key,  # type: ignore[attr-defined]
        client_ca=pki.ca if mtls else None,  # type: ignore[attr-defined]
    )


def _client(kind: str, policy: tls.Policy, pki: object, *, mtls: bool) -> object:
    make = tls.client_context if kind == "stdlib" else tls.pyopenssl_client_context
    return make(
        policy=policy,
        cafile=pki.ca,  # type: ignore[attr-defined]
        certfile=pki.client_cert if mtls else None,  # type: ignore[attr-defined]
        keyfile=pki.client_key if mtls else None,  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize("name", sorted(PROFILES))
@pytest.mark.parametrize(
    ("server_kind", "client_kind"),
    [
        ("stdlib", "stdlib"),
        ("stdlib", "pyopenssl"),
        ("pyopenssl", "stdlib"),
        ("pyopenssl", "pyopenssl"),
    ],
)
def test_profile_handshake_with_mtls(
    name: str, server_kind: str, client_kind: str, pki: object
) -> None:
    """Our server and client contexts complete an mTLS handshake for every profile and API pair."""
    policy = PROFILES[name]
    server = _server(server_kind, policy, pki, mtls=True)
    run = serve_once(server)
    result = connect(_client(client_kind, policy, pki, mtls=True), run.port)
    run.join()
    assert not run.error, run.error
    assert result.reply == b"pong:ping"
    assert result.version in policy.protocols
    assert run.peer_cert, "the server finished the handshake"
    assert run.peer_cert[0], "the server saw a verified client certificate"
    if result.version == "TLSv1.3":
        assert result.cipher in policy.tls13_suites
    else:
        assert result.cipher in policy.tls12_ciphers_openssl


@pytest.mark.parametrize("server_kind", ["stdlib", "pyopenssl"])
def test_mtls_server_refuses_client_without_certificate(server_kind: str, pki: object) -> None:
    """With client_ca the server requires a client certificate: a client without one fails."""
    run = serve_once(_server(server_kind, profiles.MOZILLA_INTERMEDIATE, pki, mtls=True))
    client = _client("stdlib", profiles.MOZILLA_INTERMEDIATE, pki, mtls=False)
    # TLS 1.3: the server's refusal arrives with the client's first read.
    with pytest.raises((ssl.SSLError, OSError, SSL.Error)):
        connect(client, run.port)
    run.join()
    assert run.error, "the server accepted a client without a certificate"


FORBIDDEN_CLIENTS = {
    "tls1.1-only": {
        "versions": (SSL.TLS1_1_VERSION, SSL.TLS1_1_VERSION),
        "ciphers": b"ALL:@SECLEVEL=0",
    },
    "rsa-kx-cbc-only": {
        "versions": (SSL.TLS1_2_VERSION, SSL.TLS1_2_VERSION),
        "ciphers": b"AES128-SHA:@SECLEVEL=0",
    },
    "cbc-ecdhe-only": {
        "versions": (SSL.TLS1_2_VERSION, SSL.TLS1_2_VERSION),
        "ciphers": b"ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA",
    },
    "x448-only": {"versions": (SSL.TLS1_3_VERSION, SSL.TLS1_3_VERSION), "groups": b"X448"},
    "ffdhe-only": {"versions": (SSL.TLS1_3_VERSION, SSL.TLS1_3_VERSION), "groups": b"ffdhe2048"},
    "ccm8-only": {
        "versions": (SSL.TLS1_3_VERSION, SSL.TLS1_3_VERSION),
        "tls13_suites": b"TLS_AES_128_CCM_8_SHA256",
    },
}


@pytest.mark.parametrize("server_kind", ["stdlib", "pyopenssl"])
@pytest.mark.parametrize("offer", sorted(FORBIDDEN_CLIENTS))
def test_client_offering_only_forbidden_parameters_is_refused(
    server_kind: str, offer: str, pki: object
) -> None:
    """A client offering only versions, suites or groups intermediate forbids is refused."""
    run = serve_once(_server(server_kind, profiles.MOZILLA_INTERMEDIATE, pki, mtls=False))
    client = raw_pyopenssl_client(**FORBIDDEN_CLIENTS[offer])  # type: ignore[arg-type]
    with pytest.raises((SSL.Error, OSError)):
        connect(client, run.port)
    run.join()
    assert run.error, f"the server accepted a {offer} client"


def _bad_server(pki: object, issued: object, tmp_path: object) -> object:
    cert, key = issued.write(tmp_path, "bad")  # type: ignore[attr-defined]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    ctx.load_cert_chain(cert, key)
    return ctx


@pytest.mark.parametrize("client_kind", ["stdlib", "pyopenssl"])
@pytest.mark.parametrize(
    "case", ["rsa_1024", "missing_eku", "expired", "wrong_san", "cn_only", "self_signed"]
)
def test_client_refuses_server_certificate_failing_policy(
    client_kind: str, case: str, pki: object, tmp_path: object
) -> None:
    """Our client contexts refuse a server whose certificate breaks the policy."""
    factory = pki.factory  # type: ignore[attr-defined]
    issued = getattr(factory, case)("localhost")
    from tests._support import leaks

    leaks.register_secret(issued.key_pem())
    run = serve_once(_bad_server(pki, issued, tmp_path))
    client = _client(client_kind, profiles.MOZILLA_INTERMEDIATE, pki, mtls=False)
    with pytest.raises((ssl.SSLError, SSL.Error, OSError, tls.CertificatePolicyError)):
        connect(client, run.port)
    run.join()


def test_stdlib_client_raises_certificate_policy_error_for_missing_eku(
    pki: object, tmp_path: object
) -> None:
    """A verified but EKU-less server certificate is refused with CertificatePolicyError."""
    issued = pki.factory.missing_eku("localhost")  # type: ignore[attr-defined]
    from tests._support import leaks

    leaks.register_secret(issued.key_pem())
    run = serve_once(_bad_server(pki, issued, tmp_path))
    client = _client("stdlib", profiles.MOZILLA_INTERMEDIATE, pki, mtls=False)
    with pytest.raises(tls.CertificatePolicyError, match="CERT-EKU-001"):
        connect(client, run.port)
    run.join()

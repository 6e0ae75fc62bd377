"""Client-certificate policy (mTLS) through real uvicorn servers on loopback.

Two ways a certificate reaches the middleware: the ASGI TLS extension (a
uvicorn protocol subclass that exposes the verified peer certificate, as
servers implementing the extension do) and a header from a trusted
TLS-terminating proxy.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.tls import client_context, profiles
from styku_crypto.web import (
    CLIENT_CERT_ENVIRON_KEY,
    ClientCertPolicy,
    HTTPSEnforcer,
    WSGIMiddleware,
)
from tests.web._servers import TLSExtensionProtocol, run_uvicorn
from tests.web.conftest import TLSMaterial, starlette_app

POLICY = profiles.MOZILLA_INTERMEDIATE
SOON = datetime.now(UTC) + timedelta(days=30)
RECENT = datetime.now(UTC) - timedelta(days=1)


@pytest.fixture(scope="module")
def client_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    """The CA that issues client certificates, and its PEM file."""
    ca = trustme.CA(organization_name="Styku clients")
    path = tmp_path_factory.mktemp("client-ca") / "clients-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


def _pem(leaf: trustme.LeafCert) -> str:
    return leaf.cert_chain_pems[0].bytes().decode("ascii")


def _files(leaf: trustme.LeafCert, directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "client.pem", directory / "client.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return cert, key


@pytest.fixture(scope="module")
def proxy_server(client_ca: tuple[trustme.CA, Path]) -> Iterator[int]:
    """Plain-HTTP uvicorn behind a 'proxy' at 127.0.0.2 that forwards the client certificate."""
    enforcer = HTTPSEnforcer(
        allowed_hosts=["localhost"],
        trusted_proxies=["127.0.0.2"],
        client_cert=ClientCertPolicy(
            policy=POLICY, trust=client_ca[1], proxy_header="X-SSL-Client-Cert"
        ),
    )
    with run_uvicorn(starlette_app(enforcer)) as port:
        yield port


def _via_proxy(port: int, pem: str | None, *, local: str = "127.0.0.2") -> httpx.Response:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.20"}
    if pem is not None:
        headers["X-SSL-Client-Cert"] = urllib.parse.quote(pem)
    transport = httpx.HTTPTransport(local_address=local)
    with httpx.Client(transport=transport, timeout=10) as client:
        return client.get(f"http://localhost:{port}/whoami", headers=headers)


def test_valid_certificate_from_trusted_proxy_accepted(
    proxy_server: int, client_ca: tuple[trustme.CA, Path]
) -> None:
    """A client certificate from the client CA, forwarded by the trusted proxy, reaches the app."""
    leaf = client_ca[0].issue_cert(
        "alice@example.com", common_name="alice", not_before=RECENT, not_after=SOON
    )
    r = _via_proxy(proxy_server, _pem(leaf))
    assert r.status_code == 200
    assert "CN=alice" in r.json()["subject"]
    assert r.headers["strict-transport-security"].startswith("max-age=63072000")


def test_certificate_from_other_ca_rejected(
    proxy_server: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A certificate issued by another CA gets 403 and web.client_cert_rejected."""
    stranger = trustme.CA().issue_cert("mallory@example.com", not_before=RECENT, not_after=SOON)
    with caplog.at_level(logging.INFO, logger="styku_crypto.web"):
        r = _via_proxy(proxy_server, _pem(stranger))
    assert r.status_code == 403
    assert r.json() == {"error": "client_certificate_rejected"}
    events = [x.styku_event for x in caplog.records if hasattr(x, "styku_event")]
    rejected = [e for e in events if e["event"] == "web.client_cert_rejected"]
    assert rejected
    assert rejected[0]["source"] == "198.51.100.20"


def test_expired_certificate_rejected_with_rule_id(
    client_ca: tuple[trustme.CA, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """An expired client certificate fails the policy's expiry rule (CERT-EXPIRY-001)."""
    policy = ClientCertPolicy(policy=POLICY, trust=client_ca[1])
    expired = client_ca[0].issue_cert(
        "old@example.com",
        not_before=datetime.now(UTC) - timedelta(days=60),
        not_after=datetime.now(UTC) - timedelta(days=1),
    )
    result = policy.check([_pem(expired)])
    assert not result.accepted
    assert "CERT-EXPIRY-001" in (result.reason or "")


def test_over_long_lifetime_rejected(client_ca: tuple[trustme.CA, Path]) -> None:
    """A client certificate valid for longer than the policy maximum is refused."""
    policy = ClientCertPolicy(policy=POLICY, trust=client_ca[1])
    result = policy.check([_pem(client_ca[0].issue_cert("long@example.com"))])
    assert not result.accepted
    assert "CERT-LIFETIME-001" in (result.reason or "")


def test_server_only_certificate_rejected(client_ca: tuple[trustme.CA, Path]) -> None:
    """A certificate from the right CA but with only the serverAuth purpose is 'untrusted'."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_key = serialization.load_pem_private_key(client_ca[0].private_key_pem.bytes(), None)
    root = x509.load_pem_x509_certificate(client_ca[0].cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "server-only")]))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(RECENT)
        .not_valid_after(SOON)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("s.example.com")]), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),  # type: ignore[arg-type]
            False,
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    policy = ClientCertPolicy(policy=POLICY, trust=client_ca[1])
    result = policy.check([cert.public_bytes(serialization.Encoding.PEM)])
    assert (result.accepted, result.reason) == (False, "untrusted")


def test_missing_certificate_rejected(proxy_server: int) -> None:
    """No certificate: 403 (the policy requires one)."""
    assert _via_proxy(proxy_server, None).status_code == 403


def test_certificate_header_from_untrusted_peer_ignored(
    proxy_server: int, client_ca: tuple[trustme.CA, Path]
) -> None:
    """The same header from an untrusted address is ignored: plain HTTP, so a redirect."""
    leaf = client_ca[0].issue_cert("alice@example.com", not_before=RECENT, not_after=SOON)
    r = _via_proxy(proxy_server, _pem(leaf), local="127.0.0.1")
    assert r.status_code == 308


def test_garbage_and_optional_policy(client_ca: tuple[trustme.CA, Path]) -> None:
    """Garbage PEM is 'unparseable'; with required=False a missing certificate passes."""
    strict = ClientCertPolicy(policy=POLICY, trust=client_ca[1])
    assert strict.check(["-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"]) == (
        strict.check([b"garbage"])
    )
    assert strict.check([b"garbage"]).reason == "unparseable"
    optional = ClientCertPolicy(policy=POLICY, trust=client_ca[1], required=False)
    assert optional.check(None).accepted


def test_bad_configuration_refused(client_ca: tuple[trustme.CA, Path], tmp_path: Path) -> None:
    """A bad header name, unreadable or non-PEM trust is refused at configuration."""
    with pytest.raises(InvalidInputError):
        ClientCertPolicy(policy=POLICY, trust=client_ca[1], proxy_header="x bad")
    with pytest.raises(InvalidInputError):
        ClientCertPolicy(policy=POLICY, trust=tmp_path / "missing.pem")
    with pytest.raises(InvalidInputError):
        ClientCertPolicy(policy=POLICY, trust=b"not pem")


def test_mtls_handshake_with_tls_extension(
    tls_material: TLSMaterial, client_ca: tuple[trustme.CA, Path], tmp_path: Path
) -> None:
    """Real mTLS with our server and client contexts; the leaf comes via the ASGI TLS extension."""
    enforcer = HTTPSEnforcer(
        allowed_hosts=["localhost"],
        client_cert=ClientCertPolicy(policy=POLICY, trust=client_ca[1]),
    )
    leaf = client_ca[0].issue_cert(
        "svc@example.com", common_name="svc-a", not_before=RECENT, not_after=SOON
    )
    cert, key = _files(leaf, tmp_path)
    server_ctx = tls_material.server_context(client_ca=client_ca[1])
    ctx = client_context(policy=POLICY, cafile=tls_material.ca_pem, certfile=cert, keyfile=key)
    with (
        run_uvicorn(
            starlette_app(enforcer), ssl_context=server_ctx, http=TLSExtensionProtocol
        ) as port,
        httpx.Client(verify=ctx, timeout=10) as client,
    ):
        r = client.get(f"https://localhost:{port}/whoami")
    assert r.status_code == 200
    assert "CN=svc-a" in r.json()["subject"]


def test_tls_extension_absent_means_missing(
    tls_material: TLSMaterial, client_ca: tuple[trustme.CA, Path]
) -> None:
    """A TLS server that exposes no client certificate cannot satisfy a required policy: 403."""
    enforcer = HTTPSEnforcer(
        allowed_hosts=["localhost"],
        client_cert=ClientCertPolicy(policy=POLICY, trust=client_ca[1]),
    )
    with (
        run_uvicorn(starlette_app(enforcer), ssl_context=tls_material.server_context()) as port,
        httpx.Client(verify=tls_material.client_context(), timeout=10) as client,
    ):
        r = client.get(f"https://localhost:{port}/whoami")
    assert r.status_code == 403


def _wsgi_call(middleware: Any, environ: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"] = int(status.split()[0])
        return lambda data: None

    b"".join(middleware(environ, start_response))
    return captured["status"], environ


def test_wsgi_server_provided_certificate(client_ca: tuple[trustme.CA, Path]) -> None:
    """WSGI: SSL_CLIENT_CERT set by the server (mod_wsgi) is checked; the leaf reaches the app."""
    enforcer = HTTPSEnforcer(
        allowed_hosts=["localhost"], client_cert=ClientCertPolicy(policy=POLICY, trust=client_ca[1])
    )
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen["cert"] = environ.get(CLIENT_CERT_ENVIRON_KEY)
        start_response("200 OK", [])
        return [b"ok"]

    middleware = WSGIMiddleware(app, enforcer=enforcer)
    leaf = client_ca[0].issue_cert(
        "w@example.com", common_name="wsgi-client", not_before=RECENT, not_after=SOON
    )
    base = {"wsgi.url_scheme": "https", "HTTP_HOST": "localhost", "REMOTE_ADDR": "192.0.2.5"}
    status, _ = _wsgi_call(middleware, {**base, "SSL_CLIENT_CERT": _pem(leaf)})
    assert status == 200
    assert "wsgi-client" in seen["cert"].subject.rfc4514_string()
    stranger = trustme.CA().issue_cert("x@example.com", not_before=RECENT, not_after=SOON)
    assert _wsgi_call(middleware, {**base, "SSL_CLIENT_CERT": _pem(stranger)})[0] == 403
    assert _wsgi_call(middleware, dict(base))[0] == 403
    # A client-supplied header is not the server's variable and is ignored.
    assert _wsgi_call(middleware, {**base, "HTTP_SSL_CLIENT_CERT": _pem(leaf)})[0] == 403


def test_wsgi_proxy_header_only_from_trusted_peer(client_ca: tuple[trustme.CA, Path]) -> None:
    """WSGI: the proxy's certificate header counts from the trusted proxy only."""
    enforcer = HTTPSEnforcer(
        allowed_hosts=["localhost"],
        trusted_proxies=["10.0.0.1"],
        client_cert=ClientCertPolicy(
            policy=POLICY, trust=client_ca[1], proxy_header="x-ssl-client-cert"
        ),
    )
    middleware = WSGIMiddleware(lambda e, s: (s("200 OK", []), [b"ok"])[1], enforcer=enforcer)
    leaf = client_ca[0].issue_cert("p@example.com", not_before=RECENT, not_after=SOON)
    header = urllib.parse.quote(_pem(leaf))
    base = {
        "wsgi.url_scheme": "https",
        "HTTP_HOST": "localhost",
        "HTTP_X_SSL_CLIENT_CERT": header,
    }
    assert _wsgi_call(middleware, {**base, "REMOTE_ADDR": "10.0.0.1"})[0] == 200
    assert _wsgi_call(middleware, {**base, "REMOTE_ADDR": "10.0.0.2"})[0] == 403

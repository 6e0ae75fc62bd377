"""What the local OpenSSL cannot serve, exercised with scripted servers speaking crafted bytes.

OpenSSL 3.0 has no SSLv2, SSLv3, TLS compression or ML-KEM on the server side,
so these servers read the scanner's real ClientHellos on a real socket and
answer with hand-built ServerHellos, HelloRetryRequests, SSLv2 SERVER-HELLOs,
Certificate and CertificateStatus messages.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import struct
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from styku_crypto.tls.audit import TargetReport, audit
from tests.tls.audit import _bed
from tests.tls.audit._hello import (
    HRR_RANDOM,
    ParsedHello,
    alert,
    certificate_message,
    ext,
    handshake,
    parse_client_hello,
    read_client_hello,
    record,
    server_hello,
    sslv2_server_hello,
)

X25519MLKEM768 = 0x11EC
LEGACY_SUITES = (0x0005, 0x000A, 0x002F)  # RC4-SHA, DES-CBC3-SHA, AES128-SHA


def _cert_der() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "legacy.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=200))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("legacy.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


class Scripted:
    """Records every ClientHello a scripted server received."""

    def __init__(self) -> None:
        self.hellos: list[ParsedHello] = []


def _pq_server(log: Scripted) -> _bed.Server:
    """TLS 1.3 only; the only group is X25519MLKEM768; suites 0x1301 and 0x1302."""

    def handle(conn: socket.socket) -> None:
        conn.settimeout(5)
        hello = parse_client_hello(read_client_hello(conn))
        log.hellos.append(hello)
        if 0x0304 not in hello.supported_versions():
            conn.sendall(alert(70))
            return
        suite = next((s for s in hello.suites if s in (0x1301, 0x1302)), None)
        if X25519MLKEM768 not in hello.groups() or suite is None:
            conn.sendall(alert(40))
            return
        versions = ext(43, b"\x03\x04")
        if X25519MLKEM768 in hello.key_shares():
            share = ext(51, struct.pack("!HH", X25519MLKEM768, 1120) + os.urandom(1120))
            conn.sendall(
                record(22, server_hello(version=0x0303, suite=suite, extensions=versions + share))
            )
        else:
            hrr = ext(51, struct.pack("!H", X25519MLKEM768))
            conn.sendall(
                record(
                    22,
                    server_hello(
                        version=0x0303, suite=suite, extensions=versions + hrr, random=HRR_RANDOM
                    ),
                )
            )

    return _bed._serve("pq13", handle)


def _legacy_server(log: Scripted, cert: bytes, ocsp: bytes) -> _bed.Server:
    """SSLv2, SSLv3, TLS 1.0, TLS 1.1; RC4/3DES/AES-CBC; DEFLATE; no RFC 5746, no EMS, no SCSV."""

    def handle(conn: socket.socket) -> None:
        conn.settimeout(5)
        hello = parse_client_hello(read_client_hello(conn))
        log.hellos.append(hello)
        if hello.sslv2:
            conn.sendall(sslv2_server_hello(cert, [0x010080, 0x0700C0]))
            return
        version = min(hello.version, 0x0302)
        suite = next((s for s in hello.suites if s in LEGACY_SUITES), None)
        if suite is None:
            conn.sendall(alert(40, version))
            return
        stapling = 5 in hello.extensions
        flight = server_hello(
            version=version,
            suite=suite,
            compression=1 if 1 in hello.compression else 0,
            extensions=ext(5, b"") if stapling else b"",
        ) + certificate_message([cert])
        if stapling:
            flight += handshake(22, b"\x01" + len(ocsp).to_bytes(3, "big") + ocsp)
        flight += handshake(14, b"")
        conn.sendall(record(22, flight, version))

    return _bed._serve("legacy", handle)


def _picky_server(log: Scripted) -> _bed.Server:
    """TLS 1.3 only, X25519 and P-256, suites 0x1301/0x1303; refuses an empty key_share."""
    sizes = {0x001D: 32, 0x0017: 65}

    def handle(conn: socket.socket) -> None:
        conn.settimeout(5)
        hello = parse_client_hello(read_client_hello(conn))
        log.hellos.append(hello)
        suite = next((s for s in hello.suites if s in (0x1301, 0x1303)), None)
        if 0x0304 not in hello.supported_versions() or suite is None:
            conn.sendall(alert(70))
            return
        shares = hello.key_shares()
        if not shares:
            conn.sendall(alert(47))  # illegal_parameter: this server wants a share
            return
        group = next((g for g in hello.groups() if g in sizes and g in shares), None)
        if group is None:
            conn.sendall(alert(40))
            return
        share = ext(51, struct.pack("!HH", group, sizes[group]) + os.urandom(sizes[group]))
        versions = ext(43, b"\x03\x04")
        conn.sendall(
            record(22, server_hello(version=0x0303, suite=suite, extensions=versions + share))
        )

    return _bed._serve("picky", handle)


@pytest.fixture(scope="module")
def scripted() -> Iterator[dict[str, tuple[_bed.Server, Scripted, TargetReport]]]:
    """Start both scripted servers and audit them together."""
    pq_log, legacy_log, picky_log = Scripted(), Scripted(), Scripted()
    cert = _cert_der()
    servers = [
        _pq_server(pq_log),
        _legacy_server(legacy_log, cert, b"\x30\x03\x0a\x01\x00"),
        _picky_server(picky_log),
    ]
    try:
        report = audit([s.target for s in servers], timeout=2.0, per_host=16)
        yield {
            "pq13": (servers[0], pq_log, report.targets[0]),
            "legacy": (servers[1], legacy_log, report.targets[1]),
            "picky": (servers[2], picky_log, report.targets[2]),
        }
    finally:
        for s in servers:
            s.stop()


def test_mlkem_hybrid_group_found_via_correctly_sized_share(scripted: dict) -> None:
    """X25519MLKEM768 is detected, and the scanner's share for it was exactly 1216 bytes."""
    _server, log, result = scripted["pq13"]
    assert result.complete
    assert result.facts.groups == {"X25519MLKEM768": ["TLSv1.3"]}
    sizes = {h.key_shares()[X25519MLKEM768] for h in log.hellos if X25519MLKEM768 in h.key_shares()}
    assert sizes == {1216}
    assert "AUDIT-GROUP-001" not in {f.rule for f in result.findings}


def test_hello_retry_request_counts_as_acceptance(scripted: dict) -> None:
    """TLS 1.3 and both suites are found although every baseline answer was an HRR."""
    _server, _log, result = scripted["pq13"]
    assert {p for p, ok in result.facts.protocols.items() if ok} == {"TLSv1.3"}
    assert set(result.facts.suites["TLSv1.3"]) == {
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
    }
    assert result.facts.server_preference["TLSv1.3"] is False


def test_failed_full_handshake_is_not_tested_not_a_crash(scripted: dict) -> None:
    """When the local OpenSSL cannot finish a handshake, those facts say why they are missing."""
    _server, _log, result = scripted["pq13"]
    assert "handshake" in result.facts.not_tested
    assert "AUDIT-CERT-001" not in {f.rule for f in result.findings}


def test_sslv2_and_sslv3_detected(scripted: dict) -> None:
    """An SSLv2 SERVER-HELLO and an SSLv3 ServerHello are recognised as those protocols."""
    _server, _log, result = scripted["legacy"]
    protocols = {p for p, ok in result.facts.protocols.items() if ok}
    assert protocols == {"SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"}
    for proto in ("SSLv3", "TLSv1.0", "TLSv1.1"):
        assert set(result.facts.suites[proto]) == {
            "TLS_RSA_WITH_RC4_128_SHA",
            "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
            "TLS_RSA_WITH_AES_128_CBC_SHA",
        }


def test_legacy_flags_from_the_server_hello(scripted: dict) -> None:
    """Compression, missing RFC 5746, missing EMS, ignored SCSV and a stapled OCSP response."""
    _server, _log, result = scripted["legacy"]
    facts = result.facts
    assert facts.compression is True
    assert facts.secure_renegotiation is False
    assert facts.ems is False
    assert facts.fallback_scsv is False
    assert facts.ocsp_stapling is True
    assert len(facts.certificates) == 1


def test_legacy_findings_and_grade(scripted: dict) -> None:
    """Each legacy weakness has its rule, and SSLv2 caps the grade at F."""
    _server, _log, result = scripted["legacy"]
    rules = {f.rule for f in result.findings}
    assert {
        "AUDIT-SSLV2-001",
        "TLS-PROTO-001",
        "TLS-COMP-001",
        "AUDIT-RENEG-001",
        "AUDIT-EMS-001",
        "AUDIT-FALLBACK-001",
        "TLS-CIPHER-002",
    } <= rules
    assert "TLS-OCSP-001" not in rules
    assert result.grade == "F"
    caps = " | ".join(result.grade_caps)
    for reason in (
        "SSL 2.0",
        "SSL 3.0",
        "RC4",
        "Sweet32",
        "compression",
        "secure renegotiation",
        "no forward-secret",
        "no AEAD",
        "FALLBACK",
    ):
        assert reason in caps


def test_sslv3_probe_is_a_bare_sslv3_hello(scripted: dict) -> None:
    """The SSLv3 probe uses record and hello version 3.0 and sends no extensions."""
    _server, log, _result = scripted["legacy"]
    v3 = [h for h in log.hellos if h.version == 0x0300]
    assert v3
    assert all(h.record_version == 0x0300 and not h.extensions for h in v3)


def test_sslv2_probe_offers_sslv2_cipher_kinds(scripted: dict) -> None:
    """The SSLv2 probe is a real SSLv2 CLIENT-HELLO with 3-byte cipher kinds."""
    _server, log, _result = scripted["legacy"]
    v2 = [h for h in log.hellos if h.sslv2]
    assert len(v2) == 1
    assert 0x010080 in v2[0].suites
    assert v2[0].version == 0x0002


def test_server_refusing_empty_key_share_still_enumerated(scripted: dict) -> None:
    """When HelloRetryRequest probing is refused, probes fall back to real key shares."""
    _server, log, result = scripted["picky"]
    assert result.complete
    assert set(result.facts.suites["TLSv1.3"]) == {
        "TLS_AES_128_GCM_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
    }
    assert set(result.facts.groups) == {"x25519", "secp256r1"}
    assert any(not h.key_shares() for h in log.hellos if h.supported_versions())


def test_stalled_flight_keeps_the_server_hello() -> None:
    """A server that sends its ServerHello and then stalls still counts as having answered."""
    import asyncio
    import threading

    from styku_crypto.tls.audit import _clienthello as ch
    from styku_crypto.tls.audit._wire import exchange

    release = threading.Event()

    def handle(conn: socket.socket) -> None:
        conn.settimeout(5)
        read_client_hello(conn)
        conn.sendall(
            record(22, server_hello(version=0x0303, suite=0xC02F, extensions=ext(23, b"")))
        )
        release.wait(5)

    server = _bed._serve("stall", handle)
    try:
        hello = ch.client_hello(version=ch.TLS12, suites=[0xC02F])
        reply = asyncio.run(
            exchange("127.0.0.1", server.port, hello, timeout=0.3, full_flight=True)
        )
    finally:
        release.set()
        server.stop()
    assert reply.kind == "hello"
    assert reply.hello is not None
    assert reply.hello.cipher_suite == 0xC02F
    assert reply.detail == "flight incomplete"


def test_server_refusing_every_hello_is_incomplete_not_compliant() -> None:
    """A TLS speaker that refuses every version cannot be judged: exit 3, never 'compliant'."""

    def handle(conn: socket.socket) -> None:
        conn.settimeout(5)
        read_client_hello(conn)
        conn.sendall(alert(40))

    server = _bed._serve("refuser", handle)
    try:
        report = audit([server.target], timeout=2)
    finally:
        server.stop()
    result = report.targets[0]
    assert not result.compliant
    assert "no protocol version accepted" in (result.error or "")
    assert report.exit_code == 3


def test_unparseable_certificate_is_a_finding_not_a_crash() -> None:
    """A Certificate message carrying garbage DER yields AUDIT-CERT-001; the scan completes."""

    def handle(conn: socket.socket) -> None:
        conn.settimeout(5)
        hello = parse_client_hello(read_client_hello(conn))
        if hello.sslv2 or hello.version != 0x0303 or 0x002F not in hello.suites:
            conn.sendall(alert(70 if hello.version != 0x0303 else 40))
            return
        flight = server_hello(version=0x0303, suite=0x002F, extensions=ext(0xFF01, b"\x00"))
        flight += certificate_message([b"\x30\x82\x01\x00garbage"]) + handshake(14, b"")
        conn.sendall(record(22, flight))

    server = _bed._serve("badcert", handle)
    try:
        report = audit([server.target], timeout=2)
    finally:
        server.stop()
    result = report.targets[0]
    assert result.complete, result.error
    cert = [f for f in result.findings if f.rule == "AUDIT-CERT-001"]
    assert cert
    assert "does not parse" in cert[0].message
    assert result.grade == "F"

"""Heartbleed, CCS injection and ROBOT: patched servers on the bed, a scripted vulnerable one.

The bed's servers are OpenSSL 3.0 and must come out clean. No vulnerable
OpenSSL can be started here, so a scripted server reproduces what vulnerable
stacks do on the wire: it negotiates heartbeats and answers a malformed
heartbeat request with a heartbeat response, accepts an early
ChangeCipherSpec (then fails the Finished with bad_record_mac), and decrypts
the ClientKeyExchange with its RSA key, answering differently for good and bad
padding (a padding oracle).
"""

from __future__ import annotations

import datetime as dt
import socket
import struct
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from styku_crypto.tls.audit import TargetReport, audit
from tests.tls.audit import _bed
from tests.tls.audit._hello import (
    alert,
    certificate_message,
    ext,
    handshake,
    parse_client_hello,
    read_client_hello,
    record,
    server_hello,
)
from tests.tls.audit.conftest import Bed

RSA_SUITES = (0x002F, 0x0035)


@pytest.mark.parametrize("name", ["intermediate", "weak", "badname", "stapled"])
def test_bed_servers_are_not_vulnerable(bed: Bed, name: str) -> None:
    """Every OpenSSL 3.0 server on the bed is found free of all three bugs."""
    facts = bed.result(name).facts
    assert facts.heartbleed is False
    assert facts.ccs_injection is False
    assert facts.robot is False


def test_tls13_only_server_has_none_of_these_code_paths(bed: Bed) -> None:
    """A TLS 1.3-only server reports the three as not tested, with the reason."""
    facts = bed.result("tls13").facts
    for item in ("heartbleed", "ccs_injection", "robot"):
        assert getattr(facts, item) is None
        assert "TLS 1.3" in facts.not_tested[item]


def _read_record(conn: socket.socket) -> tuple[int, bytes] | None:
    data = b""
    while len(data) < 5:
        chunk = conn.recv(5 - len(data))
        if not chunk:
            return None
        data += chunk
    length = int.from_bytes(data[3:5], "big")
    body = b""
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return data[0], body


def _vulnerable_server(key: rsa.RSAPrivateKey, cert: bytes) -> _bed.Server:
    numbers = key.private_numbers()
    n, d = numbers.public_numbers.n, numbers.d
    k = (n.bit_length() + 7) // 8

    def handle(conn: socket.socket) -> None:
        conn.settimeout(5)
        hello = parse_client_hello(read_client_hello(conn))
        if hello.sslv2 or hello.version != 0x0303:
            conn.sendall(alert(70))
            return
        suite = next((s for s in hello.suites if s in RSA_SUITES), None)
        if suite is None:
            conn.sendall(alert(40))
            return
        exts = ext(0xFF01, b"\x00") + ext(23, b"")
        if 15 in hello.extensions:
            exts += ext(15, b"\x01")
        flight = server_hello(version=0x0303, suite=suite, extensions=exts)
        flight += certificate_message([cert]) + handshake(14, b"")
        conn.sendall(record(22, flight))
        first = _read_record(conn)
        if first is None:
            return
        ctype, body = first
        if ctype == 24:  # heartbeat request: leak "memory"
            conn.sendall(record(24, b"\x02\x40\x00" + b"\xaa" * 0x4000))
        elif ctype == 20:  # early CCS accepted; the Finished then fails its MAC
            _read_record(conn)
            conn.sendall(alert(20))
        elif ctype == 22 and body[:1] == b"\x10":  # ClientKeyExchange: padding oracle
            c = int.from_bytes(body[6:], "big")
            m = pow(c, d, n).to_bytes(k, "big")
            good = m[:2] == b"\x00\x02" and m[-49] == 0 and 0 not in m[2:-49]
            conn.sendall(alert(20 if good else 51))
        else:
            conn.sendall(alert(10))

    return _bed._serve("vulnerable", handle)


@pytest.fixture(scope="module")
def vulnerable() -> Iterator[TargetReport]:
    """Audit the scripted vulnerable server once."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vulnerable.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    server = _vulnerable_server(key, cert)
    try:
        yield audit([server.target], timeout=2).targets[0]
    finally:
        server.stop()


def test_heartbleed_detected(vulnerable: TargetReport) -> None:
    """A heartbeat response to a 16 KiB claim is Heartbleed: finding and grade F."""
    assert vulnerable.facts.heartbleed is True
    assert "AUDIT-HEARTBLEED-001" in {f.rule for f in vulnerable.findings}


def test_ccs_injection_detected(vulnerable: TargetReport) -> None:
    """bad_record_mac after an early CCS means the CCS was accepted."""
    assert vulnerable.facts.ccs_injection is True
    assert "AUDIT-CCS-001" in {f.rule for f in vulnerable.findings}


def test_robot_oracle_detected(vulnerable: TargetReport) -> None:
    """Different alerts for good and bad padding make a ROBOT oracle; the grade is F."""
    assert vulnerable.facts.robot is True
    assert "AUDIT-ROBOT-001" in {f.rule for f in vulnerable.findings}
    assert vulnerable.grade == "F"
    caps = " | ".join(vulnerable.grade_caps)
    for reason in ("Heartbleed", "CCS injection", "ROBOT"):
        assert reason in caps


def test_robot_padding_variants_are_well_formed_or_broken_as_labelled() -> None:
    """Only the first of the five ROBOT plaintexts is valid PKCS #1 v1.5 with a 48-byte PMS."""
    from styku_crypto.tls.audit._vulns import _pkcs1_variants

    variants = _pkcs1_variants(256, 0x0303)
    assert all(len(v) == 256 for v in variants)

    def valid(m: bytes) -> bool:
        if m[:2] != b"\x00\x02" or 0 not in m[2:]:
            return False
        sep = m.index(0, 2)
        return sep >= 10 and len(m) - sep - 1 == 48 and m[sep + 1 : sep + 3] == b"\x03\x03"

    assert [valid(v) for v in variants] == [True, False, False, False, False]
    assert struct.unpack("!H", variants[4][-48:-46])[0] == 0x0202

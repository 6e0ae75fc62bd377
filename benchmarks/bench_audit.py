"""pytest-benchmark cases for the TLS audit scanner: wire building/parsing and a loopback scan."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from styku_crypto.tls.audit import _clienthello as ch
from styku_crypto.tls.audit import _records, audit
from tests.tls.audit import _bed
from tests.tls.audit._hello import ext, server_hello


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One Mozilla-intermediate server on loopback and its CA file."""
    certs = _bed.make_certs(tmp_path_factory.mktemp("bench-audit"))
    srv = _bed.https_server(
        "intermediate",
        _bed.server_context(
            certs.good,
            minimum=ssl.TLSVersion.TLSv1_2,
            maximum=ssl.TLSVersion.TLSv1_3,
            ciphers=_bed.MOZILLA_INTERMEDIATE_OPENSSL,
            curve="prime256v1",
            server_preference=False,
        ),
        _bed.LONG_HSTS,
    )
    yield srv.target, certs.ca
    srv.stop()


def test_build_tls13_client_hello(benchmark: Any) -> None:
    """Cost of one TLS 1.3 ClientHello with an X25519MLKEM768 share."""
    benchmark(
        ch.client_hello,
        version=ch.TLS13,
        suites=[0x1301, 0x1302, 0x1303],
        groups=[0x11EC, 0x001D, 0x0017],
        key_shares=[0x11EC, 0x001D],
        sni="bench.test",
    )


def test_parse_server_hello(benchmark: Any) -> None:
    """Cost of parsing one ServerHello with three extensions."""
    body = server_hello(
        version=0x0303,
        suite=0xC02F,
        extensions=ext(0xFF01, b"\x00") + ext(23, b"") + ext(11, b"\x01\x00"),
    )[4:]
    benchmark(_records.parse_server_hello, body)


def test_full_audit_of_one_loopback_server(benchmark: Any, server: tuple[str, Path]) -> None:
    """Wall time of a complete in-process audit of one intermediate server."""
    target, ca = server
    report = benchmark.pedantic(
        audit, args=([target],), kwargs={"ca_file": ca}, rounds=5, iterations=1
    )
    assert report.targets[0].compliant


@pytest.fixture(scope="module")
def smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A scripted SMTP server with STARTTLS (intermediate TLS) on loopback, and its CA."""
    from tests.tls.audit import _scripted

    certs = _bed.make_certs(tmp_path_factory.mktemp("bench-audit-smtp"))
    ctx = _bed.server_context(
        certs.good,
        minimum=ssl.TLSVersion.TLSv1_2,
        maximum=ssl.TLSVersion.TLSv1_3,
        ciphers=_bed.MOZILLA_INTERMEDIATE_OPENSSL,
        curve="prime256v1",
        server_preference=False,
    )
    srv = _scripted.scripted_server("smtp", "smtp", ctx)
    yield f"smtp://127.0.0.1:{srv.port}", certs.ca
    srv.stop()


def test_full_audit_of_one_starttls_server(benchmark: Any, smtp_server: tuple[str, Path]) -> None:
    """The same audit through the SMTP STARTTLS preamble on every connection."""
    target, ca = smtp_server
    report = benchmark.pedantic(
        audit, args=([target],), kwargs={"ca_file": ca, "sni": "localhost"}, rounds=5, iterations=1
    )
    assert report.targets[0].compliant

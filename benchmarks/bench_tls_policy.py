"""pytest-benchmark: TLS policy contexts and checks (see compare_tls_policy.py for ratios)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from styku_crypto import tls
from styku_crypto.testing import CertificateFactory


@pytest.fixture(scope="module")
def material(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[CertificateFactory, Any, Path, Path]:
    """A factory, a good certificate and its files."""
    factory = CertificateFactory()
    issued = factory.good("localhost")
    cert, key = issued.write(tmp_path_factory.mktemp("bench"))
    return factory, issued, cert, key


def test_bench_server_context(benchmark: Any, material: tuple[Any, Any, Path, Path]) -> None:
    """Cost of building a hardened server context."""
    _, _, cert, key = material
    benchmark(lambda: tls.server_context(certfile=cert, keyfile=key))


def test_bench_check_context(benchmark: Any, material: tuple[Any, Any, Path, Path]) -> None:
    """Cost of an offline audit of a server context (includes the in-memory group probes)."""
    _, _, cert, key = material
    ctx = tls.server_context(certfile=cert, keyfile=key)
    report = benchmark(lambda: tls.check_context(ctx))
    assert report.ok


def test_bench_check_certificate(benchmark: Any, material: tuple[Any, Any, Path, Path]) -> None:
    """Cost of checking a two-certificate chain with path validation."""
    factory, issued, _, _ = material
    report = benchmark(
        lambda: tls.check_certificate(issued.chain, hostname="localhost", trust=[factory.root])
    )
    assert report.ok

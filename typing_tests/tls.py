"""Typed usage of styku_crypto.tls and styku_crypto.testing, checked by ``mypy --strict``."""

from __future__ import annotations

import ssl
from datetime import UTC, date, datetime
from pathlib import Path

from styku_crypto.exceptions import InvalidPolicyError, PolicyViolationError
from styku_crypto.testing import CertificateFactory, IssuedCertificate
from styku_crypto.tls import (
    Finding,
    Policy,
    Report,
    Severity,
    Waiver,
    check_certificate,
    check_cipher_string,
    check_context,
    client_context,
    load_policy,
    profiles,
    server_context,
)


def hardened_pair(cert: Path, key: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Server and client contexts for the default policy."""
    server: ssl.SSLContext = server_context(certfile=cert, keyfile=key)
    client: ssl.SSLContext = client_context(policy=profiles.MOZILLA_MODERN)
    return server, client


def audit(ctx: ssl.SSLContext, policy: Policy = profiles.DEFAULT) -> list[str]:
    """Rule ids of the errors a context has."""
    report: Report = check_context(ctx, policy)
    errors: tuple[Finding, ...] = report.errors
    return [f"{f.rule_id}:{f.severity}" for f in errors]


def strict_cipher_check(ciphers: str) -> None:
    """Raise if a cipher string breaks the modern policy."""
    check_cipher_string(
        ciphers, protocols=["TLSv1.3"], policy=profiles.MOZILLA_MODERN
    ).raise_for_violations()


def with_waiver(path: str) -> Policy:
    """Load a policy file and add a waiver."""
    try:
        policy = load_policy(path)
    except InvalidPolicyError:
        policy = profiles.by_name("intermediate")
    waiver = Waiver(
        rule="CERT-LIFETIME-001", target="*.legacy", reason="ticket 1", expires=date(2030, 1, 1)
    )
    return policy.replace(
        waivers=(*policy.waivers, waiver), severities=(("TLS-ORDER-001", Severity.OFF),)
    )


def certificate_gate(factory: CertificateFactory) -> bool:
    """Check a factory certificate; True when compliant."""
    issued: IssuedCertificate = factory.expired("svc.internal")
    report = check_certificate(
        list(issued.chain), hostname="svc.internal", trust=[factory.root], now=datetime.now(UTC)
    )
    try:
        report.raise_for_violations(min_severity=Severity.WARNING)
    except PolicyViolationError:
        return False
    return report.ok

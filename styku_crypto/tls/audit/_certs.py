"""Certificate findings for a scanned chain, by the TLS policy's certificate check.

The chain a server presented is judged by
:func:`styku_crypto.tls.check_certificate` (path validation with
:mod:`cryptography.x509.verification`, names, validity and expiry horizons,
lifetime, key, signature, chain order, basic constraints, EKU), so every
finding keeps that module's rule id and honours the policy's severities and
waivers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.tls.audit._model import AuditFinding, Facts
from styku_crypto.tls.audit._view import PolicyView

__all__ = ["check_chain"]

Make = Callable[[str, str, PolicyView], AuditFinding]


def check_chain(
    chain: Sequence[bytes],
    *,
    hostname: str,
    view: PolicyView,
    now: datetime,
    trust: Any,
    make: Make,
    target: str | None = None,
    facts: Facts | None = None,
) -> list[AuditFinding]:
    """Findings for a DER chain (leaf first) presented for *hostname*.

    The verifier that performed path validation is recorded in *facts*.
    """
    from cryptography import x509

    from styku_crypto.tls import check_certificate, profiles

    try:
        certs = [x509.load_der_x509_certificate(der) for der in chain]
    except ValueError:
        return [make("AUDIT-CERT-001", "the server sent a certificate that does not parse", view)]
    policy = view.policy if view.policy is not None else profiles.MOZILLA_INTERMEDIATE
    try:
        report = check_certificate(
            certs, hostname=hostname, policy=policy, now=now, trust=trust, target=target
        )
    except InvalidInputError as exc:
        return [make("AUDIT-CERT-001", f"the chain could not be checked: {exc}", view)]
    if facts is not None:
        facts.certificate_verifier = report.verifier
    return [_adapt(f, view, make) for f in report.findings]


def _adapt(found: Any, view: PolicyView, make: Make) -> AuditFinding:
    base = make(found.rule_id, "", view)
    message = str(found.message)
    waiver = found.waiver
    if waiver is not None:
        message += f" (waived until {waiver.expires}: {waiver.reason})"
    return AuditFinding(
        rule=found.rule_id,
        severity=str(found.severity).lower(),
        message=f"{base.message}: {message}" if message else base.message,
        clause=base.clause,
        remediation=str(found.remediation or base.remediation),
        waived=waiver is not None,
    )

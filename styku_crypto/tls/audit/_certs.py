"""Certificate findings for a scanned chain.

The chain a server presented is judged by the certificate policy of the TLS
policy module (:func:`styku_crypto.tls.check_certificate`) when it is
available: every finding keeps that module's rule id. Until then (or when it is
absent from an installation) a reduced set of checks with the same rule ids
runs here: validity window and expiry horizons, SAN match, RSA key size, and
SHA-1/MD5 signatures.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from styku_crypto.tls.audit._model import Finding
from styku_crypto.tls.audit._view import PolicyView

__all__ = ["check_chain"]

Make = Callable[[str, str, PolicyView], Finding]


def check_chain(
    chain: Sequence[bytes],
    *,
    hostname: str,
    view: PolicyView,
    now: datetime,
    trust: Any,
    make: Make,
) -> list[Finding]:
    """Findings for a DER chain (leaf first) presented for *hostname*."""
    from cryptography import x509

    certs = [x509.load_der_x509_certificate(der) for der in chain]
    delegate = _policy_checker()
    if delegate is not None and view.policy is not None:
        found = delegate(certs, hostname=hostname, policy=view.policy, now=now, trust=trust)
        return [_adapt(f, view, make) for f in _iter_findings(found)]
    return _basic(certs, hostname=hostname, view=view, now=now, make=make)


def _policy_checker() -> Callable[..., Any] | None:
    try:
        from styku_crypto import tls
    except ImportError:
        return None
    checker = getattr(tls, "check_certificate", None)
    return checker if callable(checker) else None


def _iter_findings(result: Any) -> list[Any]:
    if isinstance(result, list | tuple):
        return list(result)
    return list(getattr(result, "findings", ()))


def _adapt(found: Any, view: PolicyView, make: Make) -> Finding:
    rule_id = str(getattr(found, "rule_id", getattr(found, "rule", "")))
    rule_id = str(getattr(rule_id, "id", rule_id))
    message = str(getattr(found, "message", ""))
    try:
        base = make(rule_id, "", view)
    except KeyError:
        return Finding(
            rule=rule_id,
            severity=str(getattr(found, "severity", "error")).lower(),
            message=message,
            clause=f"{view.name}: certificate",
            remediation=str(getattr(found, "remediation", "")),
        )
    severity = str(getattr(found, "severity", base.severity)).lower()
    return Finding(
        rule=rule_id,
        severity=severity,
        message=message or base.message,
        clause=base.clause,
        remediation=str(getattr(found, "remediation", "") or base.remediation),
    )


def _basic(
    certs: list[Any], *, hostname: str, view: PolicyView, now: datetime, make: Make
) -> list[Finding]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa

    out: list[Finding] = []
    leaf = certs[0]
    not_after = leaf.not_valid_after_utc
    not_before = leaf.not_valid_before_utc
    if now >= not_after:
        out.append(make("CERT-EXPIRY-001", f"expired {not_after:%Y-%m-%d}", view))
    elif now < not_before:
        out.append(make("CERT-EXPIRY-004", f"valid from {not_before:%Y-%m-%d}", view))
    else:
        days = (not_after - now).total_seconds() / 86400
        fail = int(getattr(view.policy, "expiry_fail_days", 7) or 7)
        warn = int(getattr(view.policy, "expiry_warn_days", 30) or 30)
        if days < fail:
            out.append(make("CERT-EXPIRY-002", f"expires in {days:.1f} days", view))
        elif days < warn:
            out.append(make("CERT-EXPIRY-003", f"expires in {days:.1f} days", view))
    if not _name_matches(leaf, hostname):
        out.append(make("CERT-HOST-001", f"{hostname} not in the SAN", view))
    key = leaf.public_key()
    rsa_min = int(getattr(view.policy, "rsa_min_bits", 2048) or 2048)
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < rsa_min:
        out.append(make("CERT-KEY-002", f"{key.key_size}-bit RSA", view))
    algo = leaf.signature_hash_algorithm
    if isinstance(algo, hashes.SHA1 | hashes.MD5):
        out.append(make("CERT-SIG-002", f"signed with {algo.name}", view))
    if leaf.issuer == leaf.subject:
        out.append(make("CERT-CHAIN-004", "", view))
    del x509
    return out


def _name_matches(cert: Any, hostname: str) -> bool:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        ip = ipaddress.ip_address(hostname)
    except ValueError:
        ip = None
    if ip is not None:
        return ip in san.get_values_for_type(x509.IPAddress)
    host = hostname.lower().rstrip(".")
    for name in san.get_values_for_type(x509.DNSName):
        pattern = name.lower().rstrip(".")
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host and host.split(".", 1)[1] == pattern[2:]:
            return True
    return False

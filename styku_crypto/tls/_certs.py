"""Certificate policy: :func:`check_certificate` and the handshake-time leaf check."""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import re
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cryptography
import cryptography.utils
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from styku_crypto.exceptions import CertificatePolicyError, InvalidInputError
from styku_crypto.tls._policy import FindingCollector, Policy, Report
from styku_crypto.tls._rules import Severity
from styku_crypto.tls.profiles import DEFAULT

__all__ = [
    "ChainInput",
    "TrustInput",
    "check_certificate",
    "enforce_handshake_certificate",
    "load_chain",
]


def emit(event: str, **fields: Any) -> None:
    """Forward to :func:`styku_crypto.events.emit`, imported on first use (cheap import)."""
    from styku_crypto.events._emit import emit as forward

    forward(event, **fields)


ChainInput = Sequence[x509.Certificate] | bytes | str | os.PathLike[str]
TrustInput = Sequence[x509.Certificate] | bytes | str | os.PathLike[str] | None

#: Rules the client contexts enforce during the handshake (the leaf is unsafe
#: whatever the operator intended).
HANDSHAKE_RULES = frozenset({"CERT-SIG-002", "CERT-KEY-002", "CERT-EKU-001", "CERT-BC-001"})

_CURVE_ALIASES = {"secp256r1": "prime256v1", "prime256v1": "prime256v1"}
_WEAK_HASHES = ("sha1", "md5")


def load_chain(chain: ChainInput) -> list[x509.Certificate]:
    """Load a chain from certificates, PEM/DER bytes, PEM text or a PEM file path.

    Raises:
        InvalidInputError: nothing parseable, or an unreadable file.
    """
    if isinstance(chain, Sequence) and not isinstance(chain, str | bytes):
        certs = list(chain)
        if not certs or not all(isinstance(c, x509.Certificate) for c in certs):
            raise InvalidInputError("chain must hold at least one x509.Certificate")
        return certs
    data: bytes
    if isinstance(chain, bytes):
        data = chain
    elif isinstance(chain, str) and "-----BEGIN" in chain:
        data = chain.encode("ascii", "replace")
    else:
        path = Path(os.fspath(chain))
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInputError(
                f"cannot read certificate file {path}: {exc.strerror}"
            ) from None
    if not data.strip():
        raise InvalidInputError("not a certificate chain: the input is empty")
    pem = b"-----BEGIN" in data
    try:
        if pem:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        # cryptography's message is Rust debug text (ParseError { kind: ... }): say it plainly.
        what = (
            "a PEM block that holds no parseable certificate (empty or corrupt)"
            if pem
            else "neither PEM (no -----BEGIN line) nor a DER certificate"
        )
        raise InvalidInputError(f"not a certificate chain: {what}") from None


@functools.cache
def _certifi_roots() -> tuple[tuple[x509.Certificate, ...], str]:
    import certifi

    data = Path(certifi.where()).read_bytes()
    with warnings.catch_warnings():
        # A few long-lived roots in the bundle have non-positive serial numbers.
        warnings.simplefilter("ignore", cryptography.utils.CryptographyDeprecationWarning)
        roots = tuple(x509.load_pem_x509_certificates(data))
    return roots, f"certifi {certifi.__version__}"


def _trust(trust: TrustInput) -> tuple[tuple[x509.Certificate, ...], str]:
    if trust is None:
        return _certifi_roots()
    roots = load_chain(trust)
    return tuple(roots), f"{len(roots)} caller-supplied root(s)"


def _ca_issuers_url(cert: x509.Certificate) -> str | None:
    """The first ``caIssuers`` URL of the Authority Information Access extension, if any."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    for description in aia:
        if description.access_method == x509.oid.AuthorityInformationAccessOID.CA_ISSUERS:
            location = description.access_location
            if isinstance(location, x509.UniformResourceIdentifier):
                return location.value
    return None


_RUST_PARAMS = re.compile(r"params:\s*([A-Za-z0-9]+)")
_CERT_REPR = re.compile(r"\s*\(encountered processing <Certificate\(.*\)>\)", re.DOTALL)
_DEBUG_REPR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\s*\{.*\}", re.DOTALL)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def readable_error(exc: BaseException) -> str:
    """An error from cryptography's path validation, without debug representations.

    The Rust verifier's messages can embed ``Debug`` output of its internal
    types (``AlgorithmIdentifier { oid: DefinedByMarker(PhantomData<...>),
    params: RsaWithSha1(Some(())) }``) or Python reprs of certificates; a
    finding must read as a sentence, so those are replaced by what they name.
    """
    text = str(exc) or type(exc).__name__
    text = _CERT_REPR.sub("", text)
    if "{" in text:
        match = _RUST_PARAMS.search(text)
        named = _CAMEL.sub(" ", match.group(1)).lower() if match else "an unnamed value"
        text = _DEBUG_REPR.sub(named, text)
    text = text.replace("validation failed: ", "", 1)
    text = text.replace(
        "candidates exhausted: all candidates exhausted with no interior errors",
        "no path to a trust anchor",
    )
    text = text.replace("candidates exhausted: ", "")
    return " ".join(text.split())


def _names(
    cert: x509.Certificate,
) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address], bool]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], [], False
    ips = [
        ip
        for ip in san.get_values_for_type(x509.IPAddress)
        if not isinstance(ip, ipaddress.IPv4Network | ipaddress.IPv6Network)
    ]
    return san.get_values_for_type(x509.DNSName), ips, True


def _dns_match(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern == host:
        return True
    if pattern.startswith("*.") and "*" not in pattern[2:]:
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:] and rest.count(".") >= 1
    return False


def _hostname_matches(cert: x509.Certificate, hostname: str) -> bool:
    dns, ips, _ = _names(cert)
    try:
        ip = ipaddress.ip_address(hostname)
    except ValueError:
        return any(_dns_match(p, hostname) for p in dns)
    return ip in ips


def leaf_matches_host(cert: x509.Certificate, hostname: str) -> bool:
    """Whether *hostname* (DNS name or IP) is among the certificate's SAN entries."""
    return _hostname_matches(cert, hostname)


def _common_names(cert: x509.Certificate) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def _sig_hash_name(cert: x509.Certificate) -> str | None:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return "unsupported"
    return algorithm.name if algorithm is not None else None


def _sig_name(cert: x509.Certificate) -> str:
    return getattr(
        cert.signature_algorithm_oid, "_name", cert.signature_algorithm_oid.dotted_string
    )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    key = issuer.public_key()
    try:
        hash_alg = cert.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey) and hash_alg is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hash_alg)
        elif isinstance(key, ec.EllipticCurvePublicKey) and hash_alg is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hash_alg))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        elif isinstance(key, dsa.DSAPublicKey) and hash_alg is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes, hash_alg)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


def _leaf_rules(
    found: FindingCollector, leaf: x509.Certificate, policy: Policy, now: datetime
) -> None:
    not_after, not_before = leaf.not_valid_after_utc, leaf.not_valid_before_utc
    if not_after < now:
        found.add("CERT-EXPIRY-001", f"expired on {not_after:%Y-%m-%d %H:%M} UTC")
    else:
        days_left = (not_after - now) / timedelta(days=1)
        if days_left < policy.expiry_fail_days:
            found.add(
                "CERT-EXPIRY-002",
                f"expires in {days_left:.1f} days ({not_after:%Y-%m-%d}); "
                f"fail horizon {policy.expiry_fail_days} days",
            )
        elif days_left < policy.expiry_warn_days:
            found.add(
                "CERT-EXPIRY-003",
                f"expires in {days_left:.1f} days ({not_after:%Y-%m-%d}); "
                f"warning horizon {policy.expiry_warn_days} days",
            )
    if not_before > now:
        found.add("CERT-EXPIRY-004", f"not valid before {not_before:%Y-%m-%d %H:%M} UTC")
    lifetime = (not_after - not_before) / timedelta(days=1)
    if lifetime > policy.max_certificate_lifetime_days:
        found.add(
            "CERT-LIFETIME-001",
            f"validity period is {lifetime:.0f} days; policy maximum "
            f"{policy.max_certificate_lifetime_days}",
        )

    key = leaf.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if "rsa" not in policy.certificate_types:
            found.add(
                "CERT-KEY-001", f"RSA key; policy allows {', '.join(policy.certificate_types)}"
            )
        if key.key_size < policy.rsa_min_bits:
            found.add(
                "CERT-KEY-002", f"RSA key of {key.key_size} bits; minimum {policy.rsa_min_bits}"
            )
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if "ecdsa" not in policy.certificate_types:
            found.add(
                "CERT-KEY-001", f"ECDSA key; policy allows {', '.join(policy.certificate_types)}"
            )
        curve = _CURVE_ALIASES.get(key.curve.name, key.curve.name)
        allowed = {_CURVE_ALIASES.get(c, c) for c in policy.certificate_curves}
        if curve not in allowed:
            found.add(
                "CERT-KEY-003",
                f"ECDSA curve {key.curve.name}; allowed: {', '.join(sorted(allowed))}",
            )
    else:
        kind = type(key).__name__.removeprefix("_").replace("PublicKey", "")
        if kind.lower() not in policy.certificate_types:
            found.add(
                "CERT-KEY-001", f"{kind} key; policy allows {', '.join(policy.certificate_types)}"
            )

    hash_name = _sig_hash_name(leaf)
    if hash_name in _WEAK_HASHES:
        found.add("CERT-SIG-002", f"signed with {_sig_name(leaf)}")
    elif _sig_name(leaf) not in policy.certificate_signatures:
        found.add(
            "CERT-SIG-001",
            f"signature algorithm {_sig_name(leaf)}; policy allows "
            f"{', '.join(policy.certificate_signatures)}",
        )

    if _is_ca(leaf):
        found.add("CERT-BC-001", "the leaf is a CA certificate (basicConstraints CA=true)")
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        found.add("CERT-EKU-001", "no extendedKeyUsage extension")
    else:
        if ExtendedKeyUsageOID.SERVER_AUTH not in eku:
            found.add("CERT-EKU-001", "extendedKeyUsage lacks serverAuth")


def _emit_findings(report: Report) -> None:
    for finding in report.active:
        if finding.severity >= Severity.WARNING:
            emit(
                "tls.certificate_violation",
                capability="tls",
                outcome="failure",
                level=logging.WARNING,
                reason=finding.rule_id,
                attributes={
                    "rule": finding.rule_id,
                    "severity": str(finding.severity),
                    "target": finding.target,
                    "policy": report.policy,
                },
            )


def _name_rules(
    found: FindingCollector,
    leaf: x509.Certificate,
    hostname: str | None,
    dns: list[str],
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
    has_san: bool,
) -> None:
    """CERT-HOST-001/002: the name clients use is in the SAN; no CN-only certificates."""
    if not has_san:
        found.add(
            "CERT-HOST-002",
            f"no subjectAltName; subject CN is {', '.join(_common_names(leaf)) or 'absent'}",
        )
    if hostname is not None and has_san and not _hostname_matches(leaf, hostname):
        listed = ", ".join([*dns, *map(str, ips)]) or "none"
        found.add("CERT-HOST-001", f"{hostname} is not among the SAN names ({listed})")


def _chain_rules(
    found: FindingCollector,
    certs: list[x509.Certificate],
    roots: Sequence[x509.Certificate],
    *,
    caller_trust: bool,
) -> bool:
    """Chain structure: self-signed leaf, CA flags, weak intermediates, order, completeness.

    Returns ``True`` when the chain ends below an untrusted root (already reported
    as CERT-CHAIN-003, so path validation need not say it again).
    """
    leaf = certs[0]
    if leaf.issuer == leaf.subject and _signed_by(leaf, leaf):
        found.add("CERT-CHAIN-004", "the leaf is self-signed")
    for issuer in certs[1:]:
        if not _is_ca(issuer):
            found.add("CERT-BC-001", f"issuer {issuer.subject.rfc4514_string()} is not a CA")
        if issuer.issuer != issuer.subject and _sig_hash_name(issuer) in _WEAK_HASHES:
            found.add("CERT-SIG-002", f"intermediate signed with {_sig_name(issuer)}")
    subjects = {c.subject for c in certs}
    for index in range(len(certs) - 1):
        if certs[index].issuer != certs[index + 1].subject:
            where = "elsewhere in the chain" if certs[index].issuer in subjects else "nowhere"
            found.add(
                "CERT-CHAIN-001",
                f"certificate {index} is followed by one that did not issue it "
                f"(its issuer appears {where})",
            )
            break
    root_subjects = {r.subject for r in roots}
    tops = [c for c in certs if c.issuer not in subjects and c.issuer != c.subject]
    top = next((c for c in tops if c.issuer not in root_subjects), None)
    if top is not None:
        missing = top.issuer.rfc4514_string()
        url = _ca_issuers_url(top)
        if url is not None or caller_trust:
            # The certificate says where its issuer lives, or the caller gave the
            # trust anchors the chain should reach: an intermediate is missing.
            where = f" (the certificate names it at {url})" if url else ""
            found.add(
                "CERT-CHAIN-002",
                f"issuer {missing} is neither sent nor a trust anchor: an intermediate "
                f"is missing{where}",
            )
            return False
        # No AIA pointer, default trust store, issuer not in it: most likely a
        # private root (public CAs' certificates carry an AIA issuer URL).
        found.add(
            "CERT-CHAIN-003",
            f"issuer {missing} is not a trust anchor here and the certificate names no "
            "issuer URL (AIA): an untrusted (private) root, not a missing intermediate; "
            "pass it as the trust store (--ca-file) if it is yours",
        )
        return True
    last = certs[-1]
    if len(certs) > 1 and last.issuer == last.subject and last.subject not in root_subjects:
        found.add(
            "CERT-CHAIN-003",
            f"the chain ends in root {last.subject.rfc4514_string()}, "
            "which is not a trust anchor here",
        )
        return True
    return False


def _path_validation(
    found: FindingCollector,
    certs: list[x509.Certificate],
    roots: Sequence[x509.Certificate],
    store_name: str,
    hostname: str | None,
    dns: list[str],
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
    moment: datetime,
    *,
    untrusted_root: bool,
) -> str:
    """CERT-CHAIN-003 from cryptography's path validation; returns the verifier's name."""
    verifier_name = (
        f"cryptography {cryptography.__version__} x509.verification "
        f"ServerVerifier (trust: {store_name})"
    )
    subject_name: x509.DNSName | x509.IPAddress | None = None
    if hostname is not None:
        try:
            subject_name = x509.IPAddress(ipaddress.ip_address(hostname))
        except ValueError:
            subject_name = x509.DNSName(hostname)
    elif dns:
        subject_name = x509.DNSName(dns[0])
    elif ips:
        subject_name = x509.IPAddress(ips[0])
    if subject_name is None:
        found.add("CERT-CHAIN-003", "no name to validate against (no SAN, no hostname)")
        return verifier_name
    try:
        builder = PolicyBuilder().store(Store(list(roots))).time(moment)
        verifier = builder.build_server_verifier(subject_name)
        verifier.verify(certs[0], certs[1:])
    except VerificationError as exc:
        if not untrusted_root:  # already said, more precisely
            found.add("CERT-CHAIN-003", f"path validation failed: {readable_error(exc)}")
    except ValueError as exc:
        found.add("CERT-CHAIN-003", f"path validation could not run: {readable_error(exc)}")
    return verifier_name


def check_certificate(
    chain: ChainInput,
    *,
    hostname: str | None = None,
    policy: Policy = DEFAULT,
    now: datetime | None = None,
    trust: TrustInput = None,
    target: str | None = None,
) -> Report:
    """Check a server certificate chain against *policy*.

    Runs every certificate rule (host name and SAN, CN-only names, validity and
    expiry horizons, lifetime, key type and size, signature algorithm, chain
    order and completeness, basic constraints, EKU) and path validation to a
    trust anchor with :mod:`cryptography.x509.verification`. Never raises for a
    non-compliant chain: read the report, or call
    :meth:`~styku_crypto.tls.Report.raise_for_violations`.

    Args:
        chain: leaf first, as certificates, PEM/DER bytes, PEM text or a file path.
        hostname: the name clients connect to (DNS name or IP address).
        policy: the TLS policy (default: Mozilla intermediate, guideline 6.0).
        now: the validation time (aware datetime; default: now, UTC).
        trust: trust anchors (certificates, PEM bytes or a file); default certifi.
        target: the name used for waivers and in findings (default: *hostname*
            or the leaf's first DNS name).

    Returns:
        The report, naming the verifier and policy used. Emits one
        ``tls.certificate_violation`` event per active finding.

    Raises:
        InvalidInputError: the chain or trust input cannot be parsed.
    """
    certs = load_chain(chain)
    moment = now if now is not None else datetime.now(UTC)
    if moment.tzinfo is None:
        raise InvalidInputError("now must be timezone-aware")
    moment = moment.astimezone(UTC)
    roots, store_name = _trust(trust)
    leaf = certs[0]
    dns, ips, has_san = _names(leaf)
    label = target or hostname or (dns[0] if dns else (_common_names(leaf) or ["certificate"])[0])
    found = FindingCollector(policy, label, today=moment.date())

    _name_rules(found, leaf, hostname, dns, ips, has_san)
    _leaf_rules(found, leaf, policy, moment)
    untrusted_root = _chain_rules(found, certs, roots, caller_trust=trust is not None)
    verifier_name = _path_validation(
        found, certs, roots, store_name, hostname, dns, ips, moment, untrusted_root=untrusted_root
    )

    report = found.report(
        "certificate",
        subject=label,
        verifier=verifier_name,
        details={
            "leaf_subject": leaf.subject.rfc4514_string(),
            "leaf_issuer": leaf.issuer.rfc4514_string(),
            "not_before": leaf.not_valid_before_utc.isoformat(),
            "not_after": leaf.not_valid_after_utc.isoformat(),
            "chain_length": len(certs),
            "san_dns": ", ".join(dns),
            "signature_algorithm": _sig_name(leaf),
            "checked_at": moment.isoformat(),
        },
    )
    _emit_findings(report)
    return report


def enforce_handshake_certificate(der: bytes | None, *, policy: Policy, target: str | None) -> None:
    """Refuse a peer leaf that breaks the essential certificate rules.

    Raises:
        CertificatePolicyError: no certificate, or a :data:`HANDSHAKE_RULES` finding
            at ERROR that no waiver covers.
    """
    if not der:
        raise CertificatePolicyError("the peer sent no certificate")
    leaf = x509.load_der_x509_certificate(der)
    found = FindingCollector(policy, target or "peer")
    _leaf_rules(found, leaf, policy, datetime.now(UTC))
    report = found.report("certificate", verifier="handshake leaf check")
    bad = [
        f for f in report.active if f.rule_id in HANDSHAKE_RULES and f.severity >= Severity.ERROR
    ]
    if bad:
        _emit_findings(report)
        listing = "; ".join(f"{f.rule_id}: {f.message}" for f in bad)
        raise CertificatePolicyError(f"server certificate violates policy {policy.name}: {listing}")

"""The catalogue of TLS and certificate policy rules.

Every finding produced by :func:`~styku_crypto.tls.check_context`,
:func:`~styku_crypto.tls.check_cipher_string`,
:func:`~styku_crypto.tls.check_certificate` and the audit scanner carries one of
these stable rule ids. Ids never change meaning; retired rules keep their id
reserved. Policy files refer to rules by id (severity overrides, waivers).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from styku_crypto.exceptions import InvalidPolicyError

__all__ = ["RULES", "Rule", "Severity", "rule"]


class Severity(enum.IntEnum):
    """How much a finding matters. ``OFF`` disables a rule in a policy overlay."""

    OFF = 0
    INFO = 1
    WARNING = 2
    ERROR = 3

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Parse ``"off"``, ``"info"``, ``"warning"`` or ``"error"`` (case-insensitive).

        Raises:
            InvalidPolicyError: any other text.
        """
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise InvalidPolicyError(
                f"unknown severity {text!r}; expected one of off, info, warning, error"
            ) from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Rule:
    """One policy rule.

    Attributes:
        id: stable identifier, e.g. ``"TLS-PROTO-001"``.
        clause: the :class:`~styku_crypto.tls.Policy` field it enforces.
        severity: default severity (a policy may override it).
        title: one-line statement of what is wrong when the rule fires.
        remediation: what to change.
    """

    id: str
    clause: str
    severity: Severity
    title: str
    remediation: str


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO

_CATALOGUE = (
    # --- protocol versions --------------------------------------------------
    Rule(
        "TLS-PROTO-001",
        "protocols",
        _E,
        "a protocol version the policy forbids is enabled",
        "Raise the minimum version; set only the versions listed by the policy.",
    ),
    Rule(
        "TLS-PROTO-002",
        "protocols",
        _W,
        "a protocol version the policy expects is disabled",
        "Enable the missing version (TLS 1.3 at least) so modern clients can connect.",
    ),
    # --- cipher suites ---------------------------------------------------------
    Rule(
        "TLS-CIPHER-001",
        "tls12_ciphers",
        _E,
        "a cipher suite outside the policy is offered (TLS 1.2 or older)",
        "Use the policy's cipher list exactly (see `styku-crypto tls config`).",
    ),
    Rule(
        "TLS-CIPHER-002",
        "tls12_ciphers",
        _E,
        "an insecure cipher suite is offered (NULL, anonymous, export, RC4, DES, 3DES, MD5)",
        "Remove it; no policy allows these suites.",
    ),
    Rule(
        "TLS-CIPHER-003",
        "tls13_suites",
        _E,
        "a TLS 1.3 cipher suite outside the policy is offered",
        "Restrict TLS 1.3 suites to the policy's ciphersuites list.",
    ),
    Rule(
        "TLS-CIPHER-004",
        "tls12_ciphers",
        _E,
        "no allowed cipher suite is offered for an enabled version",
        "Offer at least one of the policy's suites for every enabled protocol version.",
    ),
    Rule(
        "TLS-CIPHER-005",
        "tls12_ciphers",
        _W,
        "a cipher suite without forward secrecy is offered",
        "Prefer ECDHE suites; drop RSA key transport.",
    ),
    Rule(
        "TLS-CIPHER-006",
        "tls12_ciphers",
        _E,
        "the cipher string names an unknown suite or is invalid",
        "Fix the cipher string; use OpenSSL or IANA names only.",
    ),
    # --- key exchange groups ---------------------------------------------------
    Rule(
        "TLS-GROUP-001",
        "groups",
        _E,
        "a key-exchange group outside the policy is enabled",
        "Restrict the groups (curves) to the policy's list.",
    ),
    Rule(
        "TLS-GROUP-002",
        "groups",
        _W,
        "the enabled key-exchange groups could not be determined",
        "Build the context with styku_crypto.tls so groups are set and recorded.",
    ),
    Rule(
        "TLS-GROUP-003",
        "groups",
        _I,
        "a group the policy lists is not available in this OpenSSL",
        "Upgrade OpenSSL (hybrid post-quantum groups need OpenSSL 3.5 or later).",
    ),
    Rule(
        "TLS-DH-001",
        "dh_param_size",
        _E,
        "finite-field DH parameters are smaller than the policy minimum",
        "Use the RFC 7919 ffdhe2048 group or larger, or drop DHE suites.",
    ),
    # --- context options -----------------------------------------------------------
    Rule(
        "TLS-COMP-001",
        "protocols",
        _E,
        "TLS compression is enabled (CRIME)",
        "Set OP_NO_COMPRESSION.",
    ),
    Rule(
        "TLS-RENEG-001",
        "protocols",
        _W,
        "client-initiated renegotiation is not disabled",
        "Set OP_NO_RENEGOTIATION.",
    ),
    Rule(
        "TLS-ORDER-001",
        "server_preferred_order",
        _W,
        "server cipher preference differs from the policy",
        "Match the policy: modern/intermediate let the client choose; old uses server order.",
    ),
    Rule(
        "TLS-VERIFY-001",
        "certificate",
        _E,
        "the client context does not verify the peer certificate",
        "Use CERT_REQUIRED with a trust store (certifi or the OS store).",
    ),
    Rule(
        "TLS-VERIFY-002",
        "certificate",
        _E,
        "the client context does not check host names",
        "Set check_hostname = True.",
    ),
    Rule(
        "TLS-VERIFY-003",
        "certificate",
        _W,
        "host names may be matched against the subject CN",
        "Set hostname_checks_common_name = False; names belong in the SAN.",
    ),
    Rule(
        "TLS-VERIFY-004",
        "certificate",
        _E,
        "client certificates are requested but not required",
        "For mTLS set CERT_REQUIRED on the server context.",
    ),
    # --- HTTP-level policy (used by the audit scanner and the web middleware) --
    Rule(
        "TLS-HSTS-001",
        "hsts_min_age",
        _E,
        "the HSTS header is missing",
        "Send Strict-Transport-Security on every HTTPS response.",
    ),
    Rule(
        "TLS-HSTS-002",
        "hsts_min_age",
        _W,
        "the HSTS max-age is below the policy minimum",
        "Set max-age to at least the policy's hsts_min_age (two years for Mozilla 5.7+).",
    ),
    Rule(
        "TLS-OCSP-001",
        "ocsp_staple",
        _W,
        "OCSP stapling is not enabled",
        "Enable OCSP stapling on the server.",
    ),
    # --- certificates ------------------------------------------------------------
    Rule(
        "CERT-HOST-001",
        "certificate",
        _E,
        "the host name is not in the certificate's SAN",
        "Reissue the certificate with the host name as a DNS subjectAltName.",
    ),
    Rule(
        "CERT-HOST-002",
        "certificate",
        _E,
        "the certificate names its host only in the subject CN",
        "Reissue with a subjectAltName extension; CN matching is obsolete (RFC 6125).",
    ),
    Rule(
        "CERT-EXPIRY-001",
        "expiry_fail_days",
        _E,
        "the certificate has expired",
        "Renew and deploy the certificate now.",
    ),
    Rule(
        "CERT-EXPIRY-002",
        "expiry_fail_days",
        _E,
        "the certificate expires within the fail horizon",
        "Renew now; automate renewal (ACME) well ahead of expiry.",
    ),
    Rule(
        "CERT-EXPIRY-003",
        "expiry_warn_days",
        _W,
        "the certificate expires within the warning horizon",
        "Schedule renewal.",
    ),
    Rule(
        "CERT-EXPIRY-004",
        "certificate",
        _E,
        "the certificate is not yet valid",
        "Check the issuing system's clock, or wait for notBefore; do not deploy it yet.",
    ),
    Rule(
        "CERT-LIFETIME-001",
        "max_certificate_lifetime_days",
        _E,
        "the certificate's validity period exceeds the policy maximum",
        "Reissue with a shorter lifetime (Mozilla: 90 days recommended).",
    ),
    Rule(
        "CERT-KEY-001",
        "certificate_types",
        _E,
        "the certificate key type is not allowed by the policy",
        "Reissue with an allowed key type (ECDSA P-256 is allowed everywhere).",
    ),
    Rule(
        "CERT-KEY-002",
        "rsa_min_bits",
        _E,
        "the RSA key is smaller than the policy minimum",
        "Reissue with a 2048-bit or larger RSA key, or an ECDSA key.",
    ),
    Rule(
        "CERT-KEY-003",
        "certificate_curves",
        _E,
        "the ECDSA curve is not allowed by the policy",
        "Reissue on P-256 or P-384.",
    ),
    Rule(
        "CERT-SIG-001",
        "certificate_signatures",
        _E,
        "the certificate's signature algorithm is not allowed by the policy",
        "Have the CA sign with an algorithm from the policy's list.",
    ),
    Rule(
        "CERT-SIG-002",
        "certificate_signatures",
        _E,
        "the certificate is signed with SHA-1 or MD5",
        "Reissue; SHA-1 and MD5 signatures are forgeable.",
    ),
    Rule(
        "CERT-CHAIN-001",
        "certificate",
        _E,
        "the chain is out of order",
        "Serve the leaf first, then each issuer in turn.",
    ),
    Rule(
        "CERT-CHAIN-002",
        "certificate",
        _E,
        "the chain is incomplete (an intermediate is missing)",
        "Serve the full chain up to, but excluding, the root.",
    ),
    Rule(
        "CERT-CHAIN-003",
        "certificate",
        _E,
        "the chain does not validate to a trusted root",
        "Use a certificate from a publicly trusted CA or pass the right trust store.",
    ),
    Rule(
        "CERT-CHAIN-004",
        "certificate",
        _E,
        "the leaf certificate is self-signed",
        "Use a CA-issued certificate.",
    ),
    Rule(
        "CERT-BC-001",
        "certificate",
        _E,
        "basic constraints are wrong (CA leaf or non-CA issuer)",
        "Leaf: CA=false; issuers: CA=true with keyCertSign.",
    ),
    Rule(
        "CERT-EKU-001",
        "certificate",
        _E,
        "the certificate lacks the serverAuth extended key usage",
        "Reissue with extendedKeyUsage = serverAuth.",
    ),
    # --- live scan only (styku_crypto.tls.audit) ---------------------------------
    Rule(
        "AUDIT-SSLV2-001",
        "protocols",
        _E,
        "SSL 2.0 is enabled (DROWN)",
        "Disable SSLv2 everywhere the certificate's key is used.",
    ),
    Rule(
        "AUDIT-RENEG-001",
        "protocols",
        _E,
        "secure renegotiation (RFC 5746) is not supported",
        "Upgrade the TLS library; every maintained one supports RFC 5746.",
    ),
    Rule(
        "AUDIT-EMS-001",
        "protocols",
        _W,
        "the extended master secret (RFC 7627) is not supported",
        "Enable EMS (or upgrade the TLS library); it stops the triple-handshake attack.",
    ),
    Rule(
        "AUDIT-FALLBACK-001",
        "protocols",
        _W,
        "TLS_FALLBACK_SCSV (RFC 7507) is not honoured",
        "Upgrade the TLS library, or offer a single protocol version.",
    ),
    Rule(
        "AUDIT-ECDH-001",
        "ecdh_param_size",
        _E,
        "an elliptic-curve group is smaller than the policy minimum",
        "Restrict groups to X25519, P-256 or larger.",
    ),
    Rule(
        "AUDIT-GROUP-001",
        "groups",
        _I,
        "no post-quantum hybrid group (X25519MLKEM768) is offered",
        "Use a TLS stack with ML-KEM (OpenSSL 3.5+) and enable X25519MLKEM768 first.",
    ),
    Rule(
        "AUDIT-CERT-001",
        "certificate",
        _E,
        "no certificate chain could be retrieved",
        "Check that the server presents a certificate for this name (SNI).",
    ),
    Rule(
        "AUDIT-HEARTBLEED-001",
        "protocols",
        _E,
        "the server leaks memory through TLS heartbeats (Heartbleed, CVE-2014-0160)",
        "Upgrade OpenSSL now, then revoke and reissue the certificate and rotate secrets.",
    ),
    Rule(
        "AUDIT-CCS-001",
        "protocols",
        _E,
        "the server accepts an early ChangeCipherSpec (CCS injection, CVE-2014-0224)",
        "Upgrade the TLS library (OpenSSL 1.0.1h or later).",
    ),
    Rule(
        "AUDIT-ROBOT-001",
        "tls12_ciphers",
        _E,
        "the server is an RSA padding oracle (ROBOT)",
        "Disable RSA key-exchange suites (TLS_RSA_*) and patch the TLS stack or appliance.",
    ),
    Rule(
        "AUDIT-STARTTLS-001",
        "protocols",
        _E,
        "TLS could not be started: the server refused it or does not speak the protocol",
        "Enable TLS on the service (e.g. ssl = on, smtpd_tls_security_level = may) "
        "or audit it with the right --starttls protocol.",
    ),
    Rule(
        "AUDIT-DH-001",
        "dh_param_size",
        _E,
        "DHE uses a well-known prime of 1024 bits or less: precomputation risk (Logjam)",
        "Use the RFC 7919 ffdhe2048 group or larger, or drop DHE suites.",
    ),
    Rule(
        "AUDIT-DH-002",
        "dh_param_size",
        _I,
        "DHE uses a custom prime (not a published group): its quality cannot be checked",
        "Prefer the RFC 7919 ffdhe groups (RFC 7919 section 3), or drop DHE suites.",
    ),
    Rule(
        "AUDIT-ORDER-002",
        "server_preferred_order",
        _W,
        "the server prefers weaker suites over stronger ones both sides support",
        "Order suites strongest first (forward secrecy, then AEAD, then key size) and "
        "enforce that order, or let the client choose.",
    ),
)

#: Every rule, by id.
RULES: dict[str, Rule] = {r.id: r for r in _CATALOGUE}


def rule(rule_id: str) -> Rule:
    """Return the rule with this id.

    Raises:
        InvalidPolicyError: the id is not in the catalogue.
    """
    try:
        return RULES[rule_id]
    except KeyError:
        raise InvalidPolicyError(f"unknown rule id {rule_id!r}") from None

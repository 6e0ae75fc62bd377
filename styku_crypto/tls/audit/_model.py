"""The typed results of an audit: targets, facts, findings, reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "AuditReport",
    "Facts",
    "AuditFinding",
    "Target",
    "TargetReport",
]

#: Protocol names used everywhere (report, JSON, policies).
PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@dataclass(frozen=True)
class Target:
    """One endpoint to audit.

    Attributes:
        host: the name or address to connect to.
        port: the TCP port (443 by default when parsed from text).
        sni: the server name to send and to check the certificate against;
            ``None`` sends none and uses *host* for the name check.
        protocol: how TLS is entered: ``https`` (TLS from the first byte,
            HTTP checks apply), ``tls``/``smtps``/``imaps``/... (TLS from the
            first byte, no HTTP), or a STARTTLS-style preamble: ``postgres``,
            ``mysql``, ``smtp``, ``imap``, ``pop3``, ``ldap``, ``ftp``, ``xmpp``.
    """

    host: str
    port: int = 443
    sni: str | None = None
    protocol: str = "https"

    @property
    def label(self) -> str:
        """``host:port`` (IPv6 addresses bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def server_name(self) -> str:
        """The name sent in SNI and checked in the certificate."""
        return self.sni or self.host


@dataclass
class Facts:
    """What the scanner observed on one target; ``None`` means "not tested".

    Every ``None`` has its reason in :attr:`not_tested`; a fact is never guessed.

    Attributes:
        protocols: ``SSLv2`` .. ``TLSv1.3`` -> offered (``True``), refused
            (``False``) or not tested (``None``).
        suites: protocol -> accepted suites (IANA names), in the order chosen.
        server_preference: protocol -> the server imposes its suite order.
        groups: accepted key-exchange group (IANA name) -> protocols seen on.
        dh_bits: smallest finite-field DH prime seen in a ServerKeyExchange.
        dh_group: that prime identified: a published group's label (``1024-bit
            Oakley group 2 (RFC 2409)``), ``custom`` or ``None`` (no DHE seen).
        ecdh_bits: smallest EC group seen in a ServerKeyExchange.
        ems: extended master secret (RFC 7627) on TLS 1.2 and older.
        secure_renegotiation: RFC 5746 ``renegotiation_info`` in the ServerHello.
        client_renegotiation: a client-initiated renegotiation completed.
        compression: the server chose DEFLATE.
        fallback_scsv: a fallback hello with TLS_FALLBACK_SCSV was refused.
        ocsp_stapling: an OCSP response was stapled (TLS 1.2 or 1.3).
        session_resumption: a second handshake resumed the first session.
        session_tickets: the server acknowledged the session ticket extension.
        alpn: ALPN protocols the server selected (``h2``, ``http/1.1``).
        hsts: the ``Strict-Transport-Security`` value of ``GET /``, if any.
        hsts_max_age: its ``max-age``, ``None`` if absent or malformed.
        negotiated_protocol: version of the full handshake (OpenSSL spelling).
        negotiated_suite: suite of the full handshake (OpenSSL name).
        heartbleed: the server leaks memory through heartbeats (CVE-2014-0160).
        ccs_injection: the server accepts an early ChangeCipherSpec (CVE-2014-0224).
        robot: the server's reactions to bad RSA padding form an oracle (ROBOT).
        certificates: the chain as sent, DER, leaf first (public data).
        certificate_verifier: what validated the chain (from the TLS policy check).
        not_tested: item -> why it could not be tested.
    """

    protocols: dict[str, bool | None] = field(default_factory=dict)
    suites: dict[str, list[str]] = field(default_factory=dict)
    server_preference: dict[str, bool | None] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    dh_bits: int | None = None
    dh_group: str | None = None
    ecdh_bits: int | None = None
    ems: bool | None = None
    secure_renegotiation: bool | None = None
    client_renegotiation: bool | None = None
    compression: bool | None = None
    fallback_scsv: bool | None = None
    ocsp_stapling: bool | None = None
    session_resumption: bool | None = None
    session_tickets: bool | None = None
    alpn: list[str] = field(default_factory=list)
    hsts: str | None = None
    hsts_max_age: int | None = None
    negotiated_protocol: str | None = None
    negotiated_suite: str | None = None
    heartbleed: bool | None = None
    ccs_injection: bool | None = None
    robot: bool | None = None
    certificates: list[bytes] = field(default_factory=list, repr=False)
    certificate_verifier: str | None = None
    not_tested: dict[str, str] = field(default_factory=dict)

    def skip(self, what: str, why: str) -> None:
        """Record that *what* was not tested, and why."""
        self.not_tested.setdefault(what, why)


@dataclass(frozen=True)
class AuditFinding:
    """One way a target breaks the policy (or a note about it).

    Attributes:
        rule: the stable rule id, e.g. ``TLS-PROTO-001``.
        severity: ``error`` (breaks the policy), ``warning`` or ``info``.
        message: what was observed.
        clause: the policy clause broken, e.g. ``intermediate 6.0: tls_versions``.
        remediation: how to fix it.
        waived: a policy waiver covers it (it does not count against compliance).
    """

    rule: str
    severity: str
    message: str
    clause: str
    remediation: str
    waived: bool = False


@dataclass
class TargetReport:
    """The result for one target.

    Attributes:
        target: what was scanned.
        facts: what was observed.
        findings: policy findings, errors first.
        grade: SSL Labs-style grade (``A+`` .. ``F``), or ``None`` when the scan
            could not complete.
        grade_caps: why the grade is capped, one line each.
        error: why the scan is incomplete (unreachable, hostile answer), or ``None``.
        started: when the scan of this target began (UTC).
        duration: seconds spent on this target.
    """

    target: Target
    facts: Facts
    findings: list[AuditFinding] = field(default_factory=list)
    grade: str | None = None
    grade_caps: list[str] = field(default_factory=list)
    error: str | None = None
    started: datetime | None = None
    duration: float = 0.0

    @property
    def complete(self) -> bool:
        """The scan reached the target and finished."""
        return self.error is None

    @property
    def compliant(self) -> bool:
        """Complete and no unwaived error-severity finding."""
        return self.complete and not any(
            f.severity == "error" and not f.waived for f in self.findings
        )


@dataclass
class AuditReport:
    """The result of one audit run.

    Attributes:
        policy: the policy's display name (e.g. ``mozilla-intermediate-6.0``).
        targets: one report per target, in the order given.
        started: when the run began (UTC).
        duration: wall time in seconds.
    """

    policy: str
    targets: list[TargetReport]
    started: datetime
    duration: float

    @property
    def compliant(self) -> bool:
        """Every target complete and compliant."""
        return all(t.compliant for t in self.targets)

    @property
    def complete(self) -> bool:
        """Every target reached and fully scanned."""
        return all(t.complete for t in self.targets)

    @property
    def exit_code(self) -> int:
        """0 compliant, 1 non-compliant, 3 a target unreachable or incomplete."""
        if not self.complete:
            return 3
        return 0 if self.compliant else 1

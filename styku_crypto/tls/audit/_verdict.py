"""Facts versus policy: findings with rule ids, and an SSL Labs-style grade.

Findings carry the rule id, the policy clause, the observation and the
remediation. A fact that was not tested produces no finding: the report lists
it under "not tested" with the reason instead.

The grade follows the SSL Labs rating guide (2009r, with the 2014-2020
amendments): a numeric score from protocol support (30 %), key exchange (30 %)
and cipher strength (40 %), mapped to A..F, then capped:

* F: SSL 2.0; export, NULL or anonymous suites; DH or RSA keys under 1024 bits;
  insecure client-initiated renegotiation; Heartbleed, CCS injection, ROBOT; a
  certificate that is expired, not yet valid, for another name, self-signed,
  untrusted or SHA-1/MD5 signed (SSL Labs shows T or M there; this scanner has
  no separate letter).
* C: SSL 3.0; RC4; 64-bit block ciphers with TLS 1.1+; no TLS 1.2; TLS
  compression; no secure renegotiation.
* B: TLS 1.0 or 1.1; no forward-secret suite; no AEAD suite; 1024-bit DH;
  RSA keys under 2048 bits.
* A-: no TLS_FALLBACK_SCSV while several versions are offered.
* A+: an A with HSTS max-age of at least 180 days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from styku_crypto.tls.audit import _catalog
from styku_crypto.tls.audit._model import AuditFinding, Facts, Target
from styku_crypto.tls.audit._rules import lookup
from styku_crypto.tls.audit._view import PolicyView

__all__ = ["grade", "judge", "order_inversions", "preamble_finding"]

_GRADES = ("A+", "A", "A-", "B", "C", "D", "E", "F")
_PROTO_SCORE = {
    "SSLv2": 0,
    "SSLv3": 80,
    "TLSv1.0": 90,
    "TLSv1.1": 95,
    "TLSv1.2": 100,
    "TLSv1.3": 100,
}
_HSTS_A_PLUS = 15_552_000
_CERT_F_RULES = frozenset(
    {
        "CERT-EXPIRY-001",
        "CERT-EXPIRY-004",
        "CERT-HOST-001",
        "CERT-HOST-002",
        "CERT-CHAIN-003",
        "CERT-CHAIN-004",
        "CERT-SIG-002",
        "AUDIT-CERT-001",
    }
)


def _finding(rule_id: str, message: str, view: PolicyView) -> AuditFinding:
    rule = lookup(rule_id)
    severity = _severity(rule_id, str(rule.severity), view)
    return AuditFinding(
        rule=rule_id,
        severity=severity,
        message=f"{rule.title}: {message}" if message else rule.title,
        clause=f"{view.name}: {rule.clause}",
        remediation=rule.remediation,
    )


def preamble_finding(message: str, view: PolicyView) -> AuditFinding:
    """``AUDIT-STARTTLS-001``: the server refused to start TLS or is not the protocol."""
    return _finding("AUDIT-STARTTLS-001", message, view)


def _severity(rule_id: str, default: str, view: PolicyView) -> str:
    """A policy overlay may change a rule's severity (``Policy.severity``)."""
    severity_fn = getattr(view.policy, "severity", None)
    if callable(severity_fn):
        try:
            return str(severity_fn(rule_id)).lower()
        except (KeyError, ValueError):
            return default
    return default


def judge(
    facts: Facts, view: PolicyView, *, target: Target, now: datetime | None = None
) -> list[AuditFinding]:
    """Every finding for *facts* under *view*, errors first, then by rule id."""
    out: list[AuditFinding] = []
    add = out.append
    offered = [p for p, ok in facts.protocols.items() if ok]
    if facts.protocols.get("SSLv2"):
        add(_finding("AUDIT-SSLV2-001", "SSLv2 answered", view))
    for proto in offered:
        if proto not in view.protocols:
            add(_finding("TLS-PROTO-001", f"{proto} is offered", view))
    for proto in sorted(view.protocols):
        if facts.protocols.get(proto) is False:
            add(_finding("TLS-PROTO-002", f"{proto} is not offered", view))
    _suite_findings(facts, view, add)
    _group_findings(facts, view, add)
    _handshake_findings(facts, view, add)
    prefs = {v: p for v, p in facts.server_preference.items() if p is not None}
    if view.server_preferred_order is not None and prefs:
        wrong = [v for v, p in prefs.items() if p != view.server_preferred_order]
        if wrong:
            what = "enforces its own" if not view.server_preferred_order else "follows the client's"
            add(_finding("TLS-ORDER-001", f"the server {what} order on {', '.join(wrong)}", view))
    for proto, weaker, stronger, why in order_inversions(facts):
        add(
            _finding(
                "AUDIT-ORDER-002",
                f"{proto}: {weaker} ({why}) is preferred over {stronger}",
                view,
            )
        )
    if view.hsts_min_age and "hsts" not in facts.not_tested:
        if facts.hsts is None:
            add(_finding("TLS-HSTS-001", "no Strict-Transport-Security header on GET /", view))
        elif facts.hsts_max_age is None or facts.hsts_max_age < view.hsts_min_age:
            add(
                _finding(
                    "TLS-HSTS-002",
                    f"max-age={facts.hsts_max_age} < {view.hsts_min_age}",
                    view,
                )
            )
    if view.ocsp_staple and facts.ocsp_stapling is False:
        add(_finding("TLS-OCSP-001", "no OCSP response stapled", view))
    out.extend(_certificate_findings(facts, view, target=target, now=now))
    today = (now or datetime.now(UTC)).date()
    out = [_waive(f, view, target, today) for f in out]
    rank = {"error": 0, "warning": 1, "info": 2, "off": 3}
    return sorted(
        (f for f in out if f.severity != "off"), key=lambda f: (rank.get(f.severity, 3), f.rule)
    )


def _suite_rank(suite: _catalog.CipherSuite) -> tuple[int, int, int]:
    """Forward secrecy, then AEAD, then a cipher of at least 128 bits.

    Key size above 128 bits is deliberately not ranked: Mozilla's own order puts
    AES-128-GCM before AES-256-GCM, and neither is weak.
    """
    return (
        int(suite.forward_secret),
        int(suite.aead),
        int(_catalog.strength(suite) >= 128),
    )


def _weakness(weaker: _catalog.CipherSuite, stronger: _catalog.CipherSuite) -> str:
    if not weaker.forward_secret and stronger.forward_secret:
        return "no forward secrecy"
    if not weaker.aead and stronger.aead:
        return "CBC or other non-AEAD"
    return f"{_catalog.strength(weaker)}-bit cipher"


def order_inversions(facts: Facts) -> list[tuple[str, str, str, str]]:
    """Where an enforced server order puts a weaker suite before a stronger one.

    Only versions with server preference observed on (``True``) count: then the
    accepted suites are listed in the server's order, and a suite ranked above
    an earlier one (:func:`_suite_rank`) is a stronger choice both sides
    support that the server passes over. One ``(version, weaker, stronger,
    why)`` per version: the server's first such choice against the best suite
    ranked after it.
    """
    out = []
    for proto, names in facts.suites.items():
        if proto == "TLSv1.3" or facts.server_preference.get(proto) is not True:
            continue
        suites = [_catalog.suite_by_code(c) for c in _codes(names)]
        for i, weaker in enumerate(suites[:-1]):
            stronger = max(suites[i + 1 :], key=_suite_rank)  # the first of the best
            if _suite_rank(stronger) > _suite_rank(weaker):
                why = _weakness(weaker, stronger)
                out.append((proto, weaker.iana, stronger.iana, why))
                break
    return out


def _waive(finding: AuditFinding, view: PolicyView, target: Target, today: date) -> AuditFinding:
    """Mark a finding waived when an unexpired policy waiver covers it on *target*."""
    waiver_fn = getattr(view.policy, "waiver_for", None)
    if finding.waived or not callable(waiver_fn):
        return finding
    for name in (target.label, target.server_name, target.host):
        waiver = waiver_fn(finding.rule, name, today=today)
        if waiver is not None:
            reason = getattr(waiver, "reason", "")
            expires = getattr(waiver, "expires", "")
            return replace(
                finding,
                waived=True,
                message=f"{finding.message} (waived until {expires}: {reason})",
            )
    return finding


def _handshake_findings(facts: Facts, view: PolicyView, add: Any) -> None:
    """Compression, renegotiation, extensions and the known handshake attacks."""
    if facts.compression:
        add(_finding("TLS-COMP-001", "the server accepted DEFLATE", view))
    if facts.client_renegotiation:
        add(_finding("TLS-RENEG-001", "a client-initiated renegotiation completed", view))
    if facts.secure_renegotiation is False:
        add(_finding("AUDIT-RENEG-001", "no renegotiation_info in the ServerHello", view))
    if facts.ems is False:
        add(_finding("AUDIT-EMS-001", "no extended_master_secret in the ServerHello", view))
    if facts.fallback_scsv is False:
        add(_finding("AUDIT-FALLBACK-001", "a fallback hello was accepted", view))
    if facts.heartbleed:
        add(_finding("AUDIT-HEARTBLEED-001", "a heartbeat response to a malformed request", view))
    if facts.ccs_injection:
        add(_finding("AUDIT-CCS-001", "bad_record_mac after an early ChangeCipherSpec", view))
    if facts.robot:
        add(_finding("AUDIT-ROBOT-001", "different reactions to differently bad padding", view))


def _suite_findings(facts: Facts, view: PolicyView, add: Any) -> None:
    for proto, names in facts.suites.items():
        suites = [_catalog.suite_by_code(c) for c in _codes(names)]
        if proto == "TLSv1.3":
            bad = [s.iana for s in suites if s.iana not in view.tls13_suites]
            if bad:
                add(_finding("TLS-CIPHER-003", ", ".join(bad), view))
            allowed = [s for s in suites if s.iana in view.tls13_suites]
        else:
            insecure = [s.iana for s in suites if s.insecure]
            if insecure:
                add(_finding("TLS-CIPHER-002", f"{proto}: {', '.join(insecure)}", view))
            outside = [
                s.iana for s in suites if not s.insecure and s.iana not in view.tls12_ciphers
            ]
            if outside:
                add(_finding("TLS-CIPHER-001", f"{proto}: {', '.join(outside)}", view))
            no_fs = [s.iana for s in suites if not s.forward_secret and not s.insecure]
            if no_fs:
                add(_finding("TLS-CIPHER-005", f"{proto}: {', '.join(no_fs)}", view))
            allowed = [s for s in suites if s.iana in view.tls12_ciphers]
        if proto in view.protocols and suites and not allowed:
            add(_finding("TLS-CIPHER-004", f"{proto} offers none of the policy's suites", view))


def _codes(names: Sequence[str]) -> list[int]:
    out = []
    for name in names:
        try:
            out.append(_catalog.suite_by_name(name).code)
        except ValueError:
            continue
    return out


def _group_findings(facts: Facts, view: PolicyView, add: Any) -> None:
    outside = [g for g in facts.groups if g not in view.groups]
    if outside and view.groups:
        add(_finding("TLS-GROUP-001", ", ".join(outside), view))
    if facts.dh_bits is not None and view.dh_min_bits and facts.dh_bits < view.dh_min_bits:
        add(_finding("TLS-DH-001", f"{facts.dh_bits}-bit prime < {view.dh_min_bits}", view))
    if facts.dh_group == "custom":
        add(_finding("AUDIT-DH-002", f"a custom {facts.dh_bits}-bit prime", view))
    elif facts.dh_group is not None and facts.dh_bits is not None and facts.dh_bits <= 1024:
        add(_finding("AUDIT-DH-001", f"{facts.dh_group}", view))
    if (
        facts.ecdh_bits is not None
        and view.ecdh_min_bits
        and facts.ecdh_bits < view.ecdh_min_bits - 1
    ):
        add(_finding("AUDIT-ECDH-001", f"{facts.ecdh_bits}-bit group < {view.ecdh_min_bits}", view))
    hybrids = {g.name for g in _catalog.groups() if g.kind == "hybrid"}
    if facts.protocols.get("TLSv1.3") and view.groups & hybrids and not hybrids & set(facts.groups):
        tested = all(f"group {h}" not in facts.not_tested for h in hybrids)
        if tested:
            add(_finding("AUDIT-GROUP-001", "", view))


def _certificate_findings(
    facts: Facts, view: PolicyView, *, target: Target, now: datetime | None
) -> list[AuditFinding]:
    if not facts.certificates:
        if "handshake" in facts.not_tested and "certificate" not in facts.not_tested:
            return []
        return [_finding("AUDIT-CERT-001", "", view)]
    from styku_crypto.tls.audit._certs import check_chain

    return check_chain(
        facts.certificates,
        hostname=target.server_name,
        view=view,
        now=now or datetime.now(UTC),
        trust=view.trust,
        make=_finding,
        target=target.label,
        facts=facts,
    )


def _fatal_caps(
    facts: Facts,
    offered: list[str],
    suites: list[_catalog.CipherSuite],
    key_bits: int | None,
    rules: set[str],
) -> list[tuple[str, str]]:
    """Caps to F: broken protocols, suites, keys and known attacks."""
    caps: list[tuple[str, str]] = []

    def cap(letter: str, why: str) -> None:
        caps.append((letter, why))

    if "SSLv2" in offered:
        cap("F", "SSL 2.0 is offered")
    if any(s.export for s in suites):
        cap("F", "export suites are offered")
    if any(s.null_encryption for s in suites):
        cap("F", "NULL (unencrypted) suites are offered")
    if any(s.anonymous for s in suites):
        cap("F", "anonymous suites are offered")
    if facts.dh_bits is not None and facts.dh_bits < 1024:
        cap("F", f"DH parameters of {facts.dh_bits} bits")
    if key_bits is not None and key_bits < 1024:
        cap("F", f"server key of {key_bits} bits")
    if facts.client_renegotiation and facts.secure_renegotiation is False:
        cap("F", "insecure client-initiated renegotiation")
    if facts.heartbleed:
        cap("F", "Heartbleed")
    if facts.ccs_injection:
        cap("F", "CCS injection (CVE-2014-0224)")
    if facts.robot:
        cap("F", "ROBOT (RSA padding oracle)")
    for rule in sorted(rules & _CERT_F_RULES):
        cap("F", f"certificate not trusted for this name ({rule}; SSL Labs: T/M)")
    return caps


def _c_caps(
    facts: Facts,
    offered: list[str],
    suites: list[_catalog.CipherSuite],
    key_bits: int | None,
    rules: set[str],
) -> list[tuple[str, str]]:
    """Caps to C: weak but not broken (SSL 3.0, RC4, Sweet32, no TLS 1.2+...)."""
    caps: list[tuple[str, str]] = []

    def cap(letter: str, why: str) -> None:
        caps.append((letter, why))

    if "SSLv3" in offered:
        cap("C", "SSL 3.0 is offered (POODLE)")
    if any(_catalog.rc4(s) for s in suites):
        cap("C", "RC4 is offered")
    if any(_catalog.block64(s) for s in suites) and (
        {"TLSv1.1", "TLSv1.2", "TLSv1.3"} & set(offered)
    ):
        cap("C", "64-bit block ciphers (Sweet32) with TLS 1.1 or newer")
    if offered and "TLSv1.2" not in offered and "TLSv1.3" not in offered:
        cap("C", "no TLS 1.2 or 1.3")
    if facts.compression:
        cap("C", "TLS compression (CRIME)")
    if facts.secure_renegotiation is False:
        cap("C", "no secure renegotiation")
    return caps


def _b_caps(
    facts: Facts,
    offered: list[str],
    suites: list[_catalog.CipherSuite],
    key_bits: int | None,
    rules: set[str],
) -> list[tuple[str, str]]:
    """Caps to B: legacy versions, no forward secrecy or AEAD, small keys."""
    caps: list[tuple[str, str]] = []

    def cap(letter: str, why: str) -> None:
        caps.append((letter, why))

    if {"TLSv1.0", "TLSv1.1"} & set(offered):
        cap("B", "TLS 1.0 or 1.1 is offered")
    legacy_suites = [s for s in suites if not s.tls13]
    if legacy_suites and not any(s.forward_secret for s in suites):
        cap("B", "no forward-secret suite")
    if suites and not any(s.aead for s in suites):
        cap("B", "no AEAD suite")
    if facts.dh_bits is not None and 1024 <= facts.dh_bits < 2048:
        cap("B", f"DH parameters of {facts.dh_bits} bits")
    if key_bits is not None and 1024 <= key_bits < 2048:
        cap("B", f"server key of {key_bits} bits")
    return caps


def grade(facts: Facts, findings: Sequence[AuditFinding]) -> tuple[str, list[str]]:
    """The SSL Labs-style grade and the reasons it is capped."""
    offered = [p for p, ok in facts.protocols.items() if ok]
    all_suites = [
        _catalog.suite_by_code(c) for names in facts.suites.values() for c in _codes(names)
    ]
    rules = {f.rule for f in findings if not f.waived}
    key_bits = _leaf_key_bits(facts)

    caps = [
        *_fatal_caps(facts, offered, all_suites, key_bits, rules),
        *_c_caps(facts, offered, all_suites, key_bits, rules),
        *_b_caps(facts, offered, all_suites, key_bits, rules),
    ]

    def cap(letter: str, why: str) -> None:
        caps.append((letter, why))

    if facts.fallback_scsv is False:
        cap("A-", "TLS_FALLBACK_SCSV not supported")
    if "AUDIT-DH-001" in rules:
        cap("B", "a well-known DH prime of 1024 bits or less (Logjam precomputation)")
    if "AUDIT-ORDER-002" in rules:
        cap("A-", "the server prefers weaker suites over stronger ones")
    errors = sorted({f.rule for f in findings if f.severity == "error" and not f.waived})
    if errors:
        # The verdict wins: a non-compliant target never grades above B.
        cap("B", f"non-compliant with the policy ({', '.join(errors)})")

    letter = _score_letter(offered, all_suites, facts, key_bits)
    for limit, _why in caps:
        if _GRADES.index(limit) > _GRADES.index(letter):
            letter = limit
    if letter == "A" and facts.hsts_max_age is not None and facts.hsts_max_age >= _HSTS_A_PLUS:
        letter = "A+"
    return letter, [f"{limit}: {why}" for limit, why in caps]


def _score_letter(
    offered: list[str], suites: list[_catalog.CipherSuite], facts: Facts, key_bits: int | None
) -> str:
    if not offered:
        return "F"
    protos = [_PROTO_SCORE[p] for p in offered if p in _PROTO_SCORE]
    proto_score = (max(protos) + min(protos)) / 2
    kx_bits = [b for b in (key_bits, facts.dh_bits) if b is not None]
    if facts.ecdh_bits is not None:
        kx_bits.append(facts.ecdh_bits * 12)  # ~RSA-equivalent for 256-bit curves: 3072
    if any(s.anonymous for s in suites):
        kx_bits.append(0)
    weakest = min(kx_bits) if kx_bits else 2048
    kx_score = (
        0
        if weakest == 0
        else 20
        if weakest < 512
        else 40
        if weakest < 1024
        else (80 if weakest < 2048 else 90 if weakest < 4096 else 100)
    )
    strengths = [_catalog.strength(s) for s in suites] or [128]

    def cipher_points(bits: int) -> int:
        return 0 if bits == 0 else 20 if bits < 128 else 80 if bits < 256 else 100

    cipher_score = (cipher_points(max(strengths)) + cipher_points(min(strengths))) / 2
    score = 0.3 * proto_score + 0.3 * kx_score + 0.4 * cipher_score
    for letter, floor in (("A", 80), ("B", 65), ("C", 50), ("D", 35), ("E", 20)):
        if score >= floor:
            return letter
    return "F"


def _leaf_key_bits(facts: Facts) -> int | None:
    """RSA-equivalent size of the leaf key (EC keys count as 3072+)."""
    if not facts.certificates:
        return None
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

    try:
        key = x509.load_der_x509_certificate(facts.certificates[0]).public_key()
    except ValueError:
        return None
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey):
        return key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return 3072 if key.curve.key_size < 384 else 7680
    return 3072

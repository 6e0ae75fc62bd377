"""Findings and grades from facts, under profiles and policy-file overlays."""

from __future__ import annotations

import datetime as dt

import pytest

from styku_crypto.exceptions import InvalidPolicyError
from styku_crypto.tls import parse_policy, profiles
from styku_crypto.tls.audit import Facts, Target
from styku_crypto.tls.audit._verdict import grade, judge
from styku_crypto.tls.audit._view import view_of

TARGET = Target("127.0.0.1", 8443)
GOOD12 = ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]
GOOD13 = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"]


def _facts(**changes: object) -> Facts:
    """Facts of a server that complies with intermediate (no certificate: checked elsewhere)."""
    facts = Facts(
        protocols={
            "SSLv2": False,
            "SSLv3": False,
            "TLSv1.0": False,
            "TLSv1.1": False,
            "TLSv1.2": True,
            "TLSv1.3": True,
        },
        suites={"TLSv1.2": list(GOOD12), "TLSv1.3": list(GOOD13)},
        server_preference={"TLSv1.2": False, "TLSv1.3": False},
        groups={"x25519": ["TLSv1.3"], "secp256r1": ["TLSv1.3"], "X25519MLKEM768": ["TLSv1.3"]},
        ems=True,
        secure_renegotiation=True,
        client_renegotiation=False,
        compression=False,
        fallback_scsv=True,
        ocsp_stapling=True,
        hsts="max-age=63072000",
        hsts_max_age=63072000,
    )
    facts.not_tested["handshake"] = "certificates are not part of these tests"
    for name, value in changes.items():
        setattr(facts, name, value)
    return facts


def _rules(facts: Facts, policy: object = profiles.MOZILLA_INTERMEDIATE) -> set[str]:
    return {f.rule for f in judge(facts, view_of(policy), target=TARGET)}


def test_compliant_facts_have_no_findings_and_grade_a_plus() -> None:
    """A server matching intermediate 6.0 in every scanned respect has nothing to fix."""
    facts = _facts()
    findings = judge(facts, view_of(profiles.MOZILLA_INTERMEDIATE), target=TARGET)
    assert findings == []
    assert grade(facts, findings) == ("A+", [])


def test_modern_forbids_tls12() -> None:
    """The same server fails modern: TLS 1.2 and its suites are not allowed there."""
    rules = _rules(_facts(), profiles.MOZILLA_MODERN)
    assert {"TLS-PROTO-001", "TLS-CIPHER-001"} <= rules


def test_each_fact_maps_to_its_rule() -> None:
    """Every scanned weakness produces its stable rule id."""
    cases = {
        "TLS-COMP-001": {"compression": True},
        "TLS-RENEG-001": {"client_renegotiation": True},
        "AUDIT-RENEG-001": {"secure_renegotiation": False},
        "AUDIT-EMS-001": {"ems": False},
        "AUDIT-FALLBACK-001": {"fallback_scsv": False},
        "TLS-OCSP-001": {"ocsp_stapling": False},
        "TLS-HSTS-001": {"hsts": None, "hsts_max_age": None},
        "TLS-HSTS-002": {"hsts": "max-age=60", "hsts_max_age": 60},
        "TLS-ORDER-001": {"server_preference": {"TLSv1.2": True}},
        "TLS-DH-001": {"dh_bits": 1024},
        "AUDIT-GROUP-001": {"groups": {"x25519": ["TLSv1.3"]}},
        "TLS-GROUP-001": {"groups": {"x448": ["TLSv1.3"], "X25519MLKEM768": ["TLSv1.3"]}},
        "TLS-CIPHER-003": {"suites": {"TLSv1.3": ["TLS_AES_128_CCM_SHA256"]}},
        "TLS-CIPHER-002": {"suites": {"TLSv1.2": ["TLS_RSA_WITH_RC4_128_SHA"]}},
        "TLS-CIPHER-005": {"suites": {"TLSv1.2": ["TLS_RSA_WITH_AES_128_GCM_SHA256"]}},
        "TLS-CIPHER-004": {"suites": {"TLSv1.2": ["TLS_RSA_WITH_AES_128_GCM_SHA256"]}},
        "AUDIT-SSLV2-001": {"protocols": {"SSLv2": True, "TLSv1.3": True}},
    }
    for rule, changes in cases.items():
        assert rule in _rules(_facts(**changes)), rule


def test_untested_facts_produce_no_findings() -> None:
    """None means "not tested": no finding is invented for it."""
    facts = _facts(ems=None, fallback_scsv=None, ocsp_stapling=None, hsts=None, hsts_max_age=None)
    facts.not_tested["hsts"] = "HTTPS GET failed"
    assert _rules(facts) == set()


def test_missing_chain_is_a_finding_when_handshakes_worked() -> None:
    """A completed handshake without certificates is AUDIT-CERT-001."""
    facts = _facts()
    del facts.not_tested["handshake"]
    assert "AUDIT-CERT-001" in _rules(facts)


def _overlay(extra: str) -> object:
    text = 'schema = "styku-tls-policy/1"\nname = "acme"\nextends = "intermediate"\n' + extra
    return parse_policy(text, fmt="toml", source="acme.toml")


def test_policy_file_severity_overrides_apply_to_scanner_rules() -> None:
    """A policy file can raise AUDIT-EMS-001 to error and switch TLS-OCSP-001 off."""
    policy = _overlay('[rules]\n"AUDIT-EMS-001" = "error"\n"TLS-OCSP-001" = "off"\n')
    findings = judge(_facts(ems=False, ocsp_stapling=False), view_of(policy), target=TARGET)
    assert {(f.rule, f.severity) for f in findings} == {("AUDIT-EMS-001", "error")}
    assert findings[0].clause == "acme: protocols"


def test_waiver_applies_until_it_expires() -> None:
    """A waiver for this target marks the finding waived; after its expiry it counts again."""
    policy = _overlay(
        '[[waivers]]\nrule = "TLS-PROTO-001"\ntarget = "127.0.0.1:*"\n'
        'reason = "legacy kiosk clients"\nexpires = 2030-01-01\n'
    )
    facts = _facts(
        protocols={"TLSv1.0": True, "TLSv1.2": True, "TLSv1.3": True},
        suites={"TLSv1.2": GOOD12, "TLSv1.3": GOOD13},
    )
    view = view_of(policy)
    before = judge(facts, view, target=TARGET, now=dt.datetime(2029, 12, 31, tzinfo=dt.UTC))
    proto = [f for f in before if f.rule == "TLS-PROTO-001"]
    assert proto
    assert all(f.waived for f in proto)
    assert "legacy kiosk clients" in proto[0].message
    after = judge(facts, view, target=TARGET, now=dt.datetime(2030, 1, 2, tzinfo=dt.UTC))
    assert not any(f.waived for f in after if f.rule == "TLS-PROTO-001")


def test_policy_overlay_with_unknown_rule_fails_loudly() -> None:
    """An unknown rule id in a policy file is an InvalidPolicyError, never ignored."""
    with pytest.raises(InvalidPolicyError, match="AUDIT-NOPE-001"):
        _overlay('[rules]\n"AUDIT-NOPE-001" = "off"\n')


@pytest.mark.parametrize(
    ("changes", "letter", "reason"),
    [
        ({"fallback_scsv": False}, "A-", "FALLBACK"),
        ({"hsts_max_age": 86400}, "A", None),
        ({"protocols": {"TLSv1.0": True, "TLSv1.2": True}}, "B", "TLS 1.0"),
        ({"dh_bits": 1024}, "B", "DH parameters of 1024"),
        ({"suites": {"TLSv1.2": ["TLS_RSA_WITH_AES_128_CBC_SHA"]}}, "B", "no forward-secret"),
        ({"suites": {"TLSv1.2": ["TLS_ECDHE_RSA_WITH_RC4_128_SHA"]}}, "C", "RC4"),
        ({"compression": True}, "C", "CRIME"),
        ({"secure_renegotiation": False}, "C", "secure renegotiation"),
        ({"protocols": {"SSLv3": True, "TLSv1.2": True}}, "C", "SSL 3.0"),
        ({"suites": {"TLSv1.2": ["TLS_RSA_EXPORT_WITH_RC4_40_MD5"]}}, "F", "export"),
        ({"dh_bits": 512}, "F", "DH parameters of 512"),
        ({"protocols": {"SSLv2": True, "TLSv1.2": True}}, "F", "SSL 2.0"),
    ],
)
def test_grade_caps(changes: dict[str, object], letter: str, reason: str | None) -> None:
    """Each SSL Labs cap limits the grade and says why."""
    facts = _facts(**changes)
    got, caps = grade(facts, judge(facts, view_of(profiles.MOZILLA_INTERMEDIATE), target=TARGET))
    assert got == letter
    if reason:
        assert any(reason in c for c in caps)


def test_view_normalises_policy_spellings() -> None:
    """OpenSSL suite names, 'TLSv1' and group aliases are normalised to IANA/our names."""
    view = view_of(profiles.by_name("mozilla-5.7-old"))
    assert "TLSv1.0" in view.protocols
    assert "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" in view.tls12_ciphers
    assert "secp256r1" in view.groups


# ------------------------------------------------------------------ issue 16


def _graded(**changes: object) -> tuple[str, list[str], set[str]]:
    facts = _facts(**changes)
    findings = judge(facts, view_of(profiles.MOZILLA_INTERMEDIATE), target=TARGET)
    letter, caps = grade(facts, findings)
    return letter, caps, {f.rule for f in findings}


def test_ccm8_and_off_list_groups_cannot_grade_a() -> None:
    """Issue 16: a CCM_8 suite and off-list groups fail the policy, so the grade is B, not A."""
    letter, caps, rules = _graded(
        suites={"TLSv1.2": [*GOOD12, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8"], "TLSv1.3": GOOD13},
        groups={"x25519": ["TLSv1.3"], "x448": ["TLSv1.3"], "X25519MLKEM768": ["TLSv1.3"]},
    )
    assert {"TLS-CIPHER-001", "TLS-GROUP-001"} <= rules
    assert letter == "B"
    assert "B: non-compliant with the policy (TLS-CIPHER-001, TLS-GROUP-001)" in caps


def test_policy_failing_certificate_cannot_grade_a_plus() -> None:
    """Issue 16: an error finding from the certificate policy (e.g. a leaf signature the
    policy forbids) caps an otherwise perfect A+ at B; a waived one does not."""
    from styku_crypto.tls.audit import AuditFinding

    facts = _facts()
    error = AuditFinding("CERT-SIG-001", "error", "ECDSA leaf signed with sha384WithRSA", "c", "r")
    assert grade(facts, [error])[0] == "B"
    waived = AuditFinding("CERT-SIG-001", "error", "waived", "c", "r", waived=True)
    assert grade(facts, [waived])[0] == "A+"


@pytest.mark.parametrize(
    ("order", "flagged", "why"),
    [
        (["TLS_RSA_WITH_AES_128_CBC_SHA", *GOOD12], True, "no forward secrecy"),
        (
            ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
            True,
            "CBC",
        ),
        (
            ["TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"],
            True,
            "112-bit cipher",
        ),
        (list(GOOD12), False, None),
        (list(reversed(GOOD12)), False, None),  # 256 before 128 is not "weaker first"
        (["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA"], False, None),
    ],
)
def test_order_quality_rule(order: list[str], flagged: bool, why: str | None) -> None:
    """AUDIT-ORDER-002 fires only when an enforced order puts a weaker suite first."""
    _letter, caps, rules = _graded(
        suites={"TLSv1.2": order, "TLSv1.3": GOOD13},
        server_preference={"TLSv1.2": True, "TLSv1.3": True},
    )
    assert ("AUDIT-ORDER-002" in rules) is flagged
    if flagged:
        assert any("prefers weaker suites" in c for c in caps)
        facts = _facts(suites={"TLSv1.2": order}, server_preference={"TLSv1.2": True})
        message = next(
            f.message
            for f in judge(facts, view_of(profiles.MOZILLA_INTERMEDIATE), target=TARGET)
            if f.rule == "AUDIT-ORDER-002"
        )
        assert why is not None
        assert why in message


def test_order_quality_needs_server_preference() -> None:
    """A client-chosen order says nothing about the server's taste: no AUDIT-ORDER-002."""
    _, _, rules = _graded(
        suites={"TLSv1.2": ["TLS_RSA_WITH_AES_128_CBC_SHA", *GOOD12]},
        server_preference={"TLSv1.2": False},
    )
    assert "AUDIT-ORDER-002" not in rules


def test_dh_prime_findings() -> None:
    """A well-known 1024-bit prime: AUDIT-DH-001 and a B cap; a custom 2048-bit one: info only."""
    letter, caps, rules = _graded(dh_bits=1024, dh_group="1024-bit Oakley group 2 (RFC 2409)")
    assert "AUDIT-DH-001" in rules
    assert "AUDIT-DH-002" not in rules
    assert letter == "B"
    assert any("Logjam" in c for c in caps)
    letter, _, rules = _graded(dh_bits=2048, dh_group="custom")
    assert "AUDIT-DH-002" in rules
    assert "AUDIT-DH-001" not in rules
    assert letter == "A+"
    _, _, rules = _graded(dh_bits=2048, dh_group="2048-bit ffdhe2048 (RFC 7919)")
    assert not {"AUDIT-DH-001", "AUDIT-DH-002"} & rules

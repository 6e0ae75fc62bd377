"""Ground truth of every test-bed server, asserted against one concurrent scan."""

from __future__ import annotations

import pytest

from tests.tls.audit.conftest import BED_TIMEOUT, Bed

INTERMEDIATE_TLS12 = {
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}
TLS13_DEFAULT = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
OPENSSL30_DEFAULT_GROUPS = {
    "x25519",
    "secp256r1",
    "x448",
    "secp521r1",
    "secp384r1",
    "ffdhe2048",
    "ffdhe3072",
    "ffdhe4096",
    "ffdhe6144",
    "ffdhe8192",
}
PQ = {
    "X25519MLKEM768",
    "SecP256r1MLKEM768",
    "SecP384r1MLKEM1024",
    "MLKEM512",
    "MLKEM768",
    "MLKEM1024",
}


def _rules(bed: Bed, name: str, severity: str | None = None) -> set[str]:
    return {f.rule for f in bed.result(name).findings if severity is None or f.severity == severity}


def _protocols(bed: Bed, name: str) -> set[str]:
    return {p for p, ok in bed.result(name).facts.protocols.items() if ok}


# ------------------------------------------------------------------ TLS 1.3 only


def test_tls13_only_protocols_and_suites(bed: Bed) -> None:
    """The TLS 1.3-only server offers exactly TLS 1.3 with the three default suites."""
    facts = bed.result("tls13").facts
    assert _protocols(bed, "tls13") == {"TLSv1.3"}
    assert facts.protocols["SSLv2"] is False
    assert facts.protocols["SSLv3"] is False
    assert facts.protocols["TLSv1.2"] is False
    assert set(facts.suites["TLSv1.3"]) == TLS13_DEFAULT
    assert facts.server_preference["TLSv1.3"] is True


def test_tls13_only_groups_include_ffdhe_and_no_pq(bed: Bed) -> None:
    """Every group OpenSSL 3.0 enables by default is found, FFDHE included, and no ML-KEM."""
    facts = bed.result("tls13").facts
    assert set(facts.groups) == OPENSSL30_DEFAULT_GROUPS
    assert all(v == ["TLSv1.3"] for v in facts.groups.values())
    assert not PQ & set(facts.groups)
    assert "group X25519MLKEM768" not in facts.not_tested


def test_tls13_only_legacy_features_are_not_tested_with_reasons(bed: Bed) -> None:
    """EMS, renegotiation, compression and fallback are 'not tested' with a reason, not 'no'."""
    facts = bed.result("tls13").facts
    for item in (
        "ems",
        "secure_renegotiation",
        "compression",
        "fallback_scsv",
        "client_renegotiation",
    ):
        assert getattr(facts, item) is None
        assert facts.not_tested[item]


def test_tls13_only_handshake_facts(bed: Bed) -> None:
    """Chain, resumption, HSTS and stapling come from full TLS 1.3 handshakes."""
    facts = bed.result("tls13").facts
    assert len(facts.certificates) == 2
    assert facts.session_resumption is True
    assert facts.hsts_max_age == 63072000
    assert facts.ocsp_stapling is False
    assert facts.negotiated_protocol == "TLSv1.3"
    assert facts.alpn == []


def test_tls13_only_verdict(bed: Bed) -> None:
    """Groups outside intermediate fail it; the grade follows the verdict: B, not A+ (issue 16)."""
    result = bed.result("tls13")
    assert result.complete
    assert not result.compliant
    assert _rules(bed, "tls13", "error") == {"TLS-GROUP-001"}
    assert {"TLS-PROTO-002", "TLS-OCSP-001", "TLS-ORDER-001"} <= _rules(bed, "tls13", "warning")
    assert "AUDIT-GROUP-001" in _rules(bed, "tls13", "info")
    assert result.grade == "B"
    assert "B: non-compliant with the policy (TLS-GROUP-001)" in result.grade_caps


# ------------------------------------------------------------------ intermediate


def test_intermediate_is_compliant_with_grade_a_plus(bed: Bed) -> None:
    """The Mozilla-intermediate server complies; only the OCSP warning and PQ note remain."""
    result = bed.result("intermediate")
    assert result.compliant, [f.rule for f in result.findings]
    assert _rules(bed, "intermediate") == {"TLS-OCSP-001", "AUDIT-GROUP-001"}
    assert result.grade == "A+"
    assert result.grade_caps == []


def test_intermediate_facts(bed: Bed) -> None:
    """Protocols, suites, the single group, client order and every handshake feature."""
    facts = bed.result("intermediate").facts
    assert _protocols(bed, "intermediate") == {"TLSv1.2", "TLSv1.3"}
    assert set(facts.suites["TLSv1.2"]) == INTERMEDIATE_TLS12
    assert set(facts.suites["TLSv1.3"]) == TLS13_DEFAULT
    assert set(facts.groups) == {"secp256r1"}
    assert facts.server_preference == {"TLSv1.2": False, "TLSv1.3": False}
    assert facts.ems is True
    assert facts.secure_renegotiation is True
    assert facts.client_renegotiation is False
    assert facts.compression is False
    assert facts.fallback_scsv is True
    assert facts.session_resumption is True
    assert facts.alpn == ["h2", "http/1.1"]
    assert facts.hsts == "max-age=63072000; includeSubDomains"
    assert facts.dh_bits is None
    assert facts.ecdh_bits == 256


# ------------------------------------------------------------------ weak


def test_weak_protocols_and_suite_classes(bed: Bed) -> None:
    """TLS 1.0-1.2 with CBC, NULL and anonymous suites, and server order on every version."""
    facts = bed.result("weak").facts
    assert _protocols(bed, "weak") == {"TLSv1.0", "TLSv1.1", "TLSv1.2"}
    assert facts.protocols["SSLv3"] is False
    for proto in ("TLSv1.0", "TLSv1.1", "TLSv1.2"):
        suites = set(facts.suites[proto])
        assert "TLS_RSA_WITH_AES_128_CBC_SHA" in suites
        assert "TLS_RSA_WITH_NULL_SHA" in suites
        assert "TLS_DH_anon_WITH_AES_128_CBC_SHA" in suites
        assert "TLS_ECDH_anon_WITH_AES_128_CBC_SHA" in suites
        assert "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA" in suites
        assert facts.server_preference[proto] is True
    assert "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" in facts.suites["TLSv1.2"]
    assert "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" not in facts.suites["TLSv1.0"]


def test_weak_key_exchange_and_features(bed: Bed) -> None:
    """1024-bit DH, no EMS, client renegotiation allowed, fallback SCSV honoured."""
    facts = bed.result("weak").facts
    assert facts.dh_bits == 1024
    assert facts.ems is False
    assert facts.client_renegotiation is True
    assert facts.secure_renegotiation is True
    assert facts.fallback_scsv is True
    assert facts.compression is False
    assert facts.hsts is None
    assert "hsts" not in facts.not_tested


def test_weak_findings_and_grade(bed: Bed) -> None:
    """Every weakness maps to its rule, and the grade is F with the reasons listed."""
    result = bed.result("weak")
    errors = _rules(bed, "weak", "error")
    assert {
        "TLS-PROTO-001",
        "TLS-CIPHER-001",
        "TLS-CIPHER-002",
        "TLS-DH-001",
        "TLS-HSTS-001",
        "CERT-EXPIRY-001",
        "CERT-KEY-002",
        "CERT-SIG-002",
    } <= errors
    assert {"AUDIT-EMS-001", "TLS-RENEG-001", "TLS-CIPHER-005", "TLS-ORDER-001"} <= _rules(
        bed, "weak", "warning"
    )
    assert result.grade == "F"
    caps = " | ".join(result.grade_caps)
    for reason in (
        "NULL",
        "anonymous",
        "TLS 1.0 or 1.1",
        "DH parameters of 1024 bits",
        "server key of 1024 bits",
    ):
        assert reason in caps


def test_weak_certificate_is_the_1024_bit_sha1_expired_one(bed: Bed) -> None:
    """The chain retrieved is the weak certificate itself."""
    from cryptography import x509

    facts = bed.result("weak").facts
    leaf = x509.load_der_x509_certificate(facts.certificates[0])
    assert leaf.public_key().key_size == 1024  # type: ignore[union-attr]
    assert leaf.signature_algorithm_oid._name == "sha1WithRSAEncryption"


# ------------------------------------------------------------------ bad name


def test_badname_certificate_and_hsts_findings(bed: Bed) -> None:
    """Wrong SAN, expiry inside the fail horizon and a short HSTS are each reported."""
    result = bed.result("badname")
    assert {"CERT-HOST-001", "CERT-EXPIRY-002"} <= _rules(bed, "badname", "error")
    assert "TLS-HSTS-002" in _rules(bed, "badname", "warning")
    assert result.facts.hsts_max_age == 300
    assert result.grade == "F"
    message = next(f.message for f in result.findings if f.rule == "CERT-EXPIRY-002")
    assert "3.0 days" in message or "2.9 days" in message


# ------------------------------------------------------------------ OCSP staple (s_server)


def test_stapled_server_ocsp_order_and_groups(bed: Bed) -> None:
    """openssl s_server staples OCSP, imposes its order, and offers only X25519 and P-256."""
    result = bed.result("stapled")
    facts = result.facts
    assert facts.ocsp_stapling is True
    assert facts.server_preference == {"TLSv1.2": True, "TLSv1.3": True}
    assert set(facts.groups) == {"x25519", "secp256r1"}
    assert set(facts.suites["TLSv1.3"]) == {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"}
    assert set(facts.suites["TLSv1.2"]) == INTERMEDIATE_TLS12
    assert _rules(bed, "stapled", "error") == {"TLS-HSTS-001"}
    assert "TLS-ORDER-001" in _rules(bed, "stapled", "warning")
    assert "TLS-OCSP-001" not in _rules(bed, "stapled")
    # SSL Labs would say A; the policy says non-compliant (no HSTS), and the grade
    # never reads better than the verdict (issue 16).
    assert result.grade == "B"
    assert "B: non-compliant with the policy (TLS-HSTS-001)" in result.grade_caps


# ------------------------------------------------------------------ hostile


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("garbage", "the server speaks plain HTTP"),
        ("truncated", "truncated"),
        ("silent", "no complete answer"),
        ("absurd", "exceeds"),
        ("drip", "no complete answer"),
        ("reset", "reset"),
        ("refused", "cannot connect"),
    ],
)
def test_hostile_target_is_an_error_in_bounded_time(bed: Bed, name: str, why: str) -> None:
    """A hostile or dead target becomes an incomplete result with a reason, never a hang."""
    result = bed.result(name)
    assert not result.complete
    assert result.error is not None
    assert why in result.error
    assert result.grade is None
    assert result.duration < BED_TIMEOUT * 4


def test_hostile_targets_do_not_stall_the_others(bed: Bed) -> None:
    """The run finished every good target although hostile ones sat in the same scan."""
    good = ["tls13", "intermediate", "weak", "badname", "stapled"]
    assert all(bed.result(n).complete for n in good)
    assert bed.report.exit_code == 3
    assert not bed.report.complete

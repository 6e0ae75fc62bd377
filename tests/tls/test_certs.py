"""check_certificate: one test per certificate rule, using the CertificateFactory."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest

from styku_crypto import tls
from styku_crypto.testing import CertificateFactory
from styku_crypto.tls import profiles
from tests._support import leaks


@pytest.fixture(scope="module")
def factory() -> CertificateFactory:
    """A CA shared by the certificate-rule tests."""
    return CertificateFactory()


def _check(factory: CertificateFactory, issued: object, **kwargs: object) -> tls.Report:
    leaks.register_secret(issued.key_pem())  # type: ignore[attr-defined]
    kwargs.setdefault("hostname", "localhost")
    kwargs.setdefault("trust", [factory.root])
    kwargs.setdefault("now", factory.now)
    return tls.check_certificate(issued.chain, **kwargs)  # type: ignore[attr-defined,arg-type]


def test_good_certificate_passes(factory: CertificateFactory) -> None:
    """A well-formed ECDSA chain to the trusted root has no findings."""
    report = _check(factory, factory.good())
    assert report.ok, report.to_text()
    assert not report.findings, report.to_text()
    assert "x509.verification" in (report.verifier or "")
    assert report.policy == "mozilla-6.0-intermediate"


CASES = {
    "expired": ("expired", {"CERT-EXPIRY-001"}),
    "not_yet_valid": ("not_yet_valid", {"CERT-EXPIRY-004"}),
    "wrong_san": ("wrong_san", {"CERT-HOST-001"}),
    "cn_only": ("cn_only", {"CERT-HOST-002"}),
    "rsa_1024": ("rsa_1024", {"CERT-KEY-002"}),
    "over_long": ("over_long", {"CERT-LIFETIME-001"}),
    "missing_eku": ("missing_eku", {"CERT-EKU-001"}),
    "self_signed": ("self_signed", {"CERT-CHAIN-004", "CERT-CHAIN-003"}),
    "sha1": ("sha1_signed", {"CERT-SIG-002"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_negative_certificate_fires_its_rule(factory: CertificateFactory, case: str) -> None:
    """Each broken certificate is reported with its specific rule id and fails the check."""
    method, expected = CASES[case]
    report = _check(factory, getattr(factory, method)())
    assert expected <= report.rule_ids(), report.to_text()
    assert not report.ok
    for finding in report.active:
        assert finding.remediation
        assert finding.message


def test_expiry_horizons_warn_then_fail(factory: CertificateFactory) -> None:
    """Under 30 days left is a warning (CERT-EXPIRY-003); under 7 is an error (CERT-EXPIRY-002)."""
    warn = _check(factory, factory.expiring_in(20))
    assert warn.rule_ids() == {"CERT-EXPIRY-003"}
    assert warn.ok
    fail = _check(factory, factory.expiring_in(3))
    assert "CERT-EXPIRY-002" in fail.rule_ids()
    assert not fail.ok


def test_modern_profile_rejects_rsa_and_long_lifetime(factory: CertificateFactory) -> None:
    """Modern allows only ECDSA keys and 90-day certificates."""
    issued = factory.issue("localhost", key="rsa-2048", lifetime_days=200)
    report = _check(factory, issued, policy=profiles.MOZILLA_MODERN)
    assert {"CERT-KEY-001", "CERT-LIFETIME-001"} <= report.rule_ids()


def test_curve_and_signature_rules(factory: CertificateFactory) -> None:
    """A P-521 key breaks the curve rule; sha512WithRSA is outside intermediate's signatures."""
    assert (
        "CERT-KEY-003" in _check(factory, factory.issue("localhost", key="ecdsa-p521")).rule_ids()
    )
    rsa_factory = CertificateFactory(key_type="rsa")
    issued = rsa_factory.issue("localhost", key="rsa-2048", hash_name="sha512")
    report = _check(rsa_factory, issued)
    assert "CERT-SIG-001" in report.rule_ids(), report.to_text()


def test_chain_order_and_completeness(factory: CertificateFactory) -> None:
    """A reversed chain is out of order; a chain without its intermediate is incomplete."""
    issued = factory.good()
    reversed_report = tls.check_certificate(
        list(issued.reversed_chain()), hostname="localhost", trust=[factory.root], now=factory.now
    )
    assert "CERT-CHAIN-001" in reversed_report.rule_ids()
    incomplete = tls.check_certificate(
        [issued.cert], hostname="localhost", trust=[factory.root], now=factory.now
    )
    assert {"CERT-CHAIN-002", "CERT-CHAIN-003"} <= incomplete.rule_ids()


def test_basic_constraints(factory: CertificateFactory) -> None:
    """A CA leaf and a non-CA issuer both break CERT-BC-001."""
    assert "CERT-BC-001" in _check(factory, factory.issue("localhost", ca=True)).rule_ids()
    leaf = factory.good()
    other = factory.good("other.example")
    report = tls.check_certificate([leaf.cert, other.cert], trust=[factory.root], now=factory.now)
    assert "CERT-BC-001" in report.rule_ids()


def test_untrusted_root_fails_validation_against_certifi(factory: CertificateFactory) -> None:
    """Against certifi the test CA is an untrusted private root, not a missing intermediate.

    Issue 16: without a trust store, a chain ending below a private root was
    reported as "an intermediate is missing" (CERT-CHAIN-002).
    """
    report = tls.check_certificate(factory.good().chain, hostname="localhost", now=factory.now)
    assert "CERT-CHAIN-003" in report.rule_ids()
    assert "CERT-CHAIN-002" not in report.rule_ids()
    messages = [f.message for f in report.findings if f.rule_id == "CERT-CHAIN-003"]
    assert any("untrusted (private) root" in m for m in messages)
    assert "certifi" in (report.verifier or "")


def test_ip_address_hostname(factory: CertificateFactory) -> None:
    """IP SANs match IP host names; a different IP does not."""
    issued = factory.issue("127.0.0.1", sans=["127.0.0.1"])
    assert _check(factory, issued, hostname="127.0.0.1").ok
    assert "CERT-HOST-001" in _check(factory, issued, hostname="127.0.0.2").rule_ids()


def test_waiver_applies_until_it_expires(factory: CertificateFactory) -> None:
    """A waiver hides a finding for its target until it expires; then the finding counts again."""
    issued = factory.over_long("legacy.example")
    waiver = tls.Waiver(
        "CERT-LIFETIME-001", "legacy.example", "vendor appliance", factory.now.date()
    )
    policy = profiles.MOZILLA_INTERMEDIATE.replace(waivers=(waiver,))
    report = _check(factory, issued, hostname="legacy.example", policy=policy)
    assert report.ok
    assert report.findings[0].waiver == waiver
    later = _check(
        factory,
        issued,
        hostname="legacy.example",
        policy=policy,
        now=factory.now + timedelta(days=1),
    )
    assert not later.ok
    other = _check(
        factory, factory.over_long("other.example"), hostname="other.example", policy=policy
    )
    assert not other.ok


def test_violations_are_emitted_as_events(
    factory: CertificateFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Each failing finding emits a tls.certificate_violation WARNING event naming the rule."""
    with caplog.at_level(logging.WARNING, logger="styku_crypto.tls"):
        _check(factory, factory.expired())
    events = [
        r.styku_event for r in caplog.records if r.getMessage() == "tls.certificate_violation"
    ]  # type: ignore[attr-defined]
    assert any(e["rule"] == "CERT-EXPIRY-001" for e in events)


def test_report_json_schema(factory: CertificateFactory) -> None:
    """The JSON report is versioned and lists rule, severity and remediation per finding."""
    data = _check(factory, factory.expired()).to_dict()
    assert data["schema"] == "styku-tls-report/1"
    assert data["ok"] is False
    assert {"rule", "severity", "message", "remediation", "target", "clause", "waived"} <= set(
        data["findings"][0]
    )
    assert date.fromisoformat(data["details"]["not_after"][:10])

"""check_context and check_cipher_string: our contexts comply, Python's default does not."""

from __future__ import annotations

import ssl

import pytest

from styku_crypto import tls
from styku_crypto.exceptions import PolicyViolationError
from styku_crypto.tls import profiles

PROFILES = {p.name: p for p in profiles.ALL}


@pytest.mark.parametrize("name", sorted(PROFILES))
@pytest.mark.parametrize(
    "kind", ["stdlib-server", "stdlib-client", "pyopenssl-server", "pyopenssl-client"]
)
def test_every_profile_context_passes_check_context(name: str, kind: str, pki: object) -> None:
    """Each context we build for a profile is found compliant with that profile."""
    policy = PROFILES[name]
    files = {"certfile": pki.server_cert, "keyfile": pki.server_key}  # type: ignore[attr-defined]
    ctx = {
        "stdlib-server": lambda: tls.server_context(policy=policy, **files),
        "stdlib-client": lambda: tls.client_context(policy=policy),
        "pyopenssl-server": lambda: tls.pyopenssl_server_context(policy=policy, **files),
        "pyopenssl-client": lambda: tls.pyopenssl_client_context(policy=policy),
    }[kind]()
    report = tls.check_context(ctx, policy)
    assert report.ok, report.to_text()
    report.raise_for_violations()
    assert not report.rule_ids() & {
        "TLS-GROUP-001",
        "TLS-CIPHER-001",
        "TLS-CIPHER-002",
        "TLS-PROTO-001",
    }


def test_python_default_server_context_is_non_compliant_for_specific_reasons() -> None:
    """Python's default server context fails: CBC suites, X448/P-521/ffdhe groups, server order."""
    report = tls.check_context(
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH), profiles.MOZILLA_INTERMEDIATE
    )
    assert not report.ok
    messages = "\n".join(f.message for f in report.active)
    cbc = [f for f in report.active if f.rule_id == "TLS-CIPHER-001" and "CBC" in f.message]
    assert cbc, messages
    groups = {f.message.split()[1] for f in report.active if f.rule_id == "TLS-GROUP-001"}
    assert {"x448", "secp521r1", "ffdhe2048", "ffdhe8192"} <= groups, messages
    assert "TLS-ORDER-001" in report.rule_ids()
    with pytest.raises(PolicyViolationError, match="TLS-GROUP-001"):
        report.raise_for_violations()


def test_default_pyopenssl_context_offers_rsa_key_transport() -> None:
    """A bare pyOpenSSL context offers suites without forward secrecy, outside the policy."""
    from OpenSSL import SSL

    report = tls.check_context(
        SSL.Context(SSL.TLS_METHOD), profiles.MOZILLA_INTERMEDIATE, side="client"
    )
    no_pfs = [
        f for f in report.active if f.rule_id == "TLS-CIPHER-001" and "forward secrecy" in f.message
    ]
    assert no_pfs, report.to_text()


def test_client_context_without_verification_is_flagged() -> None:
    """A client context that skips certificate and host-name checks gets VERIFY findings."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.hostname_checks_common_name = True
    report = tls.check_context(ctx, profiles.MOZILLA_INTERMEDIATE)
    assert {"TLS-VERIFY-001", "TLS-VERIFY-002", "TLS-VERIFY-003"} <= report.rule_ids()


def test_context_check_records_how_groups_were_observed(pki: object) -> None:
    """The report says which groups are enabled and how they were observed."""
    ctx = tls.server_context(certfile=pki.server_cert, keyfile=pki.server_key)  # type: ignore[attr-defined]
    report = tls.check_context(ctx)
    assert "X25519" in report.details["groups"]
    assert "probed" in report.details["groups_observed_by"]
    facts = tls.context_facts(ctx)
    assert facts is not None
    assert facts.side == "server"
    assert "X25519" in facts.groups


def test_cipher_string_high_is_non_compliant() -> None:
    """'HIGH:!aNULL' expands to suites the intermediate profile forbids (CBC, RSA key transport)."""
    report = tls.check_cipher_string("HIGH:!aNULL", policy=profiles.MOZILLA_INTERMEDIATE)
    assert not report.ok
    assert "TLS-CIPHER-001" in report.rule_ids()
    assert "ECDHE-RSA-AES128-GCM-SHA256" in report.details["expanded"]


def test_policy_cipher_string_is_compliant() -> None:
    """The policy's own OpenSSL string passes its check."""
    policy = profiles.MOZILLA_INTERMEDIATE
    report = tls.check_cipher_string(policy.openssl_cipher_string, policy=policy)
    assert report.ok, report.to_text()
    assert not report.findings


def test_cipher_string_insecure_and_protocol_findings() -> None:
    """NULL/anonymous suites and TLS 1.0 are reported with their own rules."""
    report = tls.check_cipher_string(
        "aNULL:eNULL:@SECLEVEL=0",
        protocols=["TLSv1", "TLSv1.2"],
        policy=profiles.MOZILLA_INTERMEDIATE,
    )
    assert {"TLS-CIPHER-002", "TLS-PROTO-001", "TLS-CIPHER-004"} <= report.rule_ids()


def test_invalid_cipher_string_is_a_finding() -> None:
    """A cipher string OpenSSL rejects yields TLS-CIPHER-006, not a crash."""
    report = tls.check_cipher_string("NOPE-NOT-A-CIPHER")
    assert report.rule_ids() == {"TLS-CIPHER-006"}


def test_severity_override_and_waiver_change_the_verdict() -> None:
    """Switching a rule off removes its findings; a waiver marks them waived, not active."""
    from datetime import date

    base = profiles.MOZILLA_INTERMEDIATE
    relaxed = base.replace(severities=(("TLS-CIPHER-001", tls.Severity.OFF),))
    report = tls.check_cipher_string("ECDHE+AESGCM:ECDHE+AES", policy=relaxed)
    assert "TLS-CIPHER-001" not in report.rule_ids(active_only=False)
    waived = base.replace(
        waivers=(tls.Waiver("TLS-CIPHER-001", "cipher string*", "legacy app", date(2999, 1, 1)),)
    )
    report = tls.check_cipher_string("ECDHE+AESGCM:ECDHE+AES", policy=waived)
    assert report.ok
    assert "TLS-CIPHER-001" in report.rule_ids(active_only=False)

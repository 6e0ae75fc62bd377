"""Real servers behind STARTTLS and friends (issue 16), each good and weak, scanned once.

PostgreSQL 15, aiosmtpd, Dovecot (IMAP and POP3), MariaDB, OpenLDAP slapd,
vsftpd, Prosody (XMPP) and gnutls-serv, started by the ``daemons`` fixture from the Debian
packages ``scripts/system-deps.sh`` installs.
"""

from __future__ import annotations

import pytest

from tests.tls.audit.conftest import Daemons

GOOD = [
    "postgres-good",
    "smtp-good",
    "imap-good",
    "pop3-good",
    "mariadb-good",
    "slapd-good",
    "vsftpd-good",
    "gnutls-good",
    "xmpp-good",
]
WEAK = [
    "smtp-weak",
    "imap-weak",
    "pop3-weak",
    "mariadb-weak",
    "slapd-weak",
    "vsftpd-weak",
    "xmpp-weak",
]


@pytest.mark.parametrize("name", GOOD)
def test_good_configuration_is_compliant(daemons: Daemons, name: str) -> None:
    """Each real server with the intermediate suites, TLS 1.2+ and policy groups passes."""
    result = daemons.result(name)
    assert result.complete, result.error
    assert result.compliant, [f.message for f in result.findings if f.severity == "error"]
    assert result.facts.protocols["TLSv1.2"] is True
    assert result.facts.protocols["TLSv1.1"] is False
    assert result.facts.certificates
    assert result.facts.not_tested["hsts"].startswith("not applicable")
    # Dovecot, slapd and aiosmtpd hang up on the fallback hello without flushing the
    # alert; the control hello (no SCSV) is accepted, so the SCSV is honoured.
    assert result.facts.fallback_scsv is True, result.facts.not_tested.get("fallback_scsv")
    assert result.grade in {"A", "A-"}


@pytest.mark.parametrize("name", WEAK)
def test_weak_configuration_is_not_compliant(daemons: Daemons, name: str) -> None:
    """Each real server offering TLS_RSA_WITH_AES_128_CBC_SHA fails, and grades at most B."""
    result = daemons.result(name)
    assert result.complete, result.error
    assert not result.compliant
    assert "TLS_RSA_WITH_AES_128_CBC_SHA" in result.facts.suites["TLSv1.2"]
    rules = {f.rule for f in result.findings}
    assert {"TLS-CIPHER-001", "TLS-CIPHER-005"} <= rules
    assert result.grade is not None
    assert result.grade >= "B"


def test_weak_server_order_is_flagged(daemons: Daemons) -> None:
    """Dovecot, slapd, gnutls-serv and Prosody told to prefer RSA-CBC get AUDIT-ORDER-002 and an
    A- cap."""
    for name in ("imap-weak", "slapd-weak", "gnutls-order", "xmpp-weak"):
        result = daemons.result(name)
        found = [f for f in result.findings if f.rule == "AUDIT-ORDER-002"]
        assert found, name
        assert "TLS_RSA_WITH_AES_128_CBC_SHA (no forward secrecy) is preferred over" in (
            found[0].message
        )
        assert "A-: the server prefers weaker suites over stronger ones" in result.grade_caps


def test_sane_enforced_order_is_not_flagged(daemons: Daemons) -> None:
    """PostgreSQL enforces its own (strong-first) order: TLS-ORDER-001 only, no ORDER-002."""
    result = daemons.result("postgres-good")
    assert result.facts.server_preference.get("TLSv1.2") is True
    rules = {f.rule for f in result.findings}
    assert "AUDIT-ORDER-002" not in rules


def test_gnutls_ffdhe_groups_per_version(daemons: Daemons) -> None:
    """GnuTLS negotiates RFC 7919 groups under TLS 1.2 and older: each found, per version."""
    result = daemons.result("gnutls-ffdhe")
    facts = result.facts
    offered = [v for v in ("TLSv1.0", "TLSv1.1", "TLSv1.2") if facts.protocols.get(v)]
    assert "TLSv1.2" in offered
    for group in ("ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192"):
        assert facts.groups.get(group) == offered, group
        assert f"group {group}" not in facts.not_tested
    assert facts.dh_group == "2048-bit ffdhe2048 (RFC 7919)"
    assert "AUDIT-DH-002" not in {f.rule for f in result.findings}


def test_postgres_weak_after_reload(daemons: Daemons) -> None:
    """The same PostgreSQL cluster, reloaded with an RSA-CBC suite first: non-compliant."""
    result = daemons.postgres["weak"]
    assert result.complete, result.error
    assert not result.compliant
    assert "TLS_RSA_WITH_AES_128_CBC_SHA" in result.facts.suites["TLSv1.2"]


def test_postgres_ssl_off_is_a_clear_refusal(daemons: Daemons) -> None:
    """``ssl = off``: PostgreSQL answers N to SSLRequest; the audit says so and is incomplete."""
    result = daemons.postgres["off"]
    assert not result.complete
    assert [f.rule for f in result.findings] == ["AUDIT-STARTTLS-001"]
    assert "answered N to SSLRequest" in result.findings[0].message


def test_daemon_run_is_non_compliant_not_incomplete(daemons: Daemons) -> None:
    """Every real server was reached and fully scanned: the run exits 1, not 3."""
    assert daemons.report.complete, [t.error for t in daemons.report.targets if t.error]
    assert daemons.report.exit_code == 1


def test_client_renegotiation_through_starttls(daemons: Daemons) -> None:
    """GnuTLS slapd completes a client-initiated renegotiation (TLS-RENEG-001); PostgreSQL
    refuses it. slapd sometimes hangs up after the renegotiation: that must not turn a
    completed renegotiation into "refused" (it did, in about half the runs, before)."""
    slapd = daemons.result("slapd-good")
    assert slapd.facts.client_renegotiation is True
    assert "TLS-RENEG-001" in {f.rule for f in slapd.findings}
    assert daemons.result("postgres-good").facts.client_renegotiation is False


def test_prosody_xmpp_starttls_audit(daemons: Daemons) -> None:
    """Real Prosody: the stream is opened to the --sni host, STARTTLS proceeds, every probe
    redoes the preamble (all six TLS 1.2/1.3 suites found), and the groups match its
    configured curve list."""
    good = daemons.result("xmpp-good")
    assert good.target.protocol == "xmpp"
    assert good.facts.suites["TLSv1.3"]
    assert sorted(good.facts.suites["TLSv1.2"]) == [
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ]
    assert set(good.facts.groups) == {"x25519", "secp256r1", "secp384r1"}
    assert good.facts.not_tested["alpn"].startswith("not applicable")
    weak = daemons.result("xmpp-weak")
    assert weak.facts.protocols["TLSv1.3"] is False
    assert weak.facts.server_preference.get("TLSv1.2") is True


def test_prosody_unknown_host_is_a_clear_refusal(daemons: Daemons) -> None:
    """Without --sni the stream names 127.0.0.1, which Prosody does not serve: it answers
    with a stream error, and the audit names the condition (host-unknown) and is
    incomplete (exit 3), without a hang or a raw XML dump."""
    result = daemons.xmpp_wrong_host
    assert not result.complete
    assert [f.rule for f in result.findings] == ["AUDIT-STARTTLS-001"]
    message = result.findings[0].message
    assert "XMPP stream error: host-unknown" in message
    assert "xmlns" not in message


def test_prosody_listens_only_on_the_port_the_test_chose(daemons: Daemons) -> None:
    """Each Prosody opens exactly one listener, its own free c2s port: no 5222, no s2s
    (5269), no HTTP (5280), so neither collides with a packaged service or another run."""
    assert set(daemons.xmpp_listeners) == {"xmpp-good", "xmpp-weak"}
    for name, (port, ports) in daemons.xmpp_listeners.items():
        assert ports == {port}, name
        assert not ports & {5222, 5223, 5269, 5280, 5281}, name

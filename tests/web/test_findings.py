"""The shared HSTS / redirect / cookie rules (also used by the TLS audit scanner)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.tls import Severity, profiles
from styku_crypto.tls._rules import RULES as TLS_RULES
from styku_crypto.web import CookiePolicy
from styku_crypto.web._findings import (
    RULES,
    evaluate_cookies,
    evaluate_hsts,
    evaluate_redirect,
    parse_hsts,
    rule_info,
)


def _rules(findings: list) -> list[str]:  # type: ignore[type-arg]
    return [f.rule for f in findings]


def test_good_hsts_has_no_findings() -> None:
    """The default header meets the intermediate policy."""
    assert evaluate_hsts(["max-age=63072000; includeSubDomains"], https=True) == []


def test_missing_and_short_hsts_use_shared_tls_rule_ids() -> None:
    """Missing HSTS is TLS-HSTS-001, a short max-age TLS-HSTS-002: the TLS catalogue's ids."""
    assert _rules(evaluate_hsts([], https=True)) == ["TLS-HSTS-001"]
    short = evaluate_hsts(["max-age=86400; includeSubDomains"], https=True)
    assert _rules(short) == ["TLS-HSTS-002"]
    assert short[0].severity == str(TLS_RULES["TLS-HSTS-002"].severity)
    assert "TLS-HSTS-001" in TLS_RULES


def test_policy_severity_override_applies() -> None:
    """A policy that raises TLS-HSTS-002 to error makes the finding an error."""
    policy = profiles.MOZILLA_INTERMEDIATE.replace(severities=(("TLS-HSTS-002", Severity.ERROR),))
    findings = evaluate_hsts(["max-age=600; includeSubDomains"], https=True, policy=policy)
    assert findings[0].severity == "error"


def test_hsts_parse_rules() -> None:
    """Case-insensitive directives and quoted values parse; duplicates and bad max-age do not."""
    header = parse_hsts('MAX-AGE="31536000"; includesubdomains; Preload')
    assert header is not None
    assert (header.max_age, header.include_subdomains, header.preload) == (31536000, True, True)
    for bad in ("", "includeSubDomains", "max-age=-1", "max-age=1; max-age=2", "max-age=abc"):
        assert parse_hsts(bad) is None, bad
    assert _rules(evaluate_hsts(["max-age=abc"], https=True)) == ["WEB-HSTS-002"]


def test_hsts_other_findings() -> None:
    """No includeSubDomains, ineligible preload, duplicates and HSTS over HTTP are reported."""
    assert _rules(evaluate_hsts(["max-age=63072000"], https=True)) == ["WEB-HSTS-001"]
    assert "WEB-HSTS-003" in _rules(evaluate_hsts(["max-age=63072000; preload"], https=True))
    assert "WEB-HSTS-002" in _rules(
        evaluate_hsts(["max-age=63072000; includeSubDomains"] * 2, https=True)
    )
    assert _rules(evaluate_hsts(["max-age=1"], https=False)) == ["WEB-HSTS-004"]
    assert evaluate_hsts([], https=False) == []


def test_redirect_rules() -> None:
    """No redirect, redirect to http, temporary redirect and off-host redirect are findings."""
    assert evaluate_redirect(308, "https://example.com/", host="example.com") == []
    assert evaluate_redirect(None, None, host="example.com") == []
    assert _rules(evaluate_redirect(200, None, host="example.com")) == ["WEB-REDIR-001"]
    assert _rules(evaluate_redirect(301, "http://example.com/", host="example.com")) == [
        "WEB-REDIR-001"
    ]
    assert _rules(evaluate_redirect(302, "https://example.com/", host="example.com")) == [
        "WEB-REDIR-002"
    ]
    off = evaluate_redirect(308, "https://www.example.com/", host="example.com", preload=True)
    assert _rules(off) == ["WEB-REDIR-003"]
    assert off[0].severity == "error"
    tricky = evaluate_redirect(308, "https://example.com@evil.test/", host="example.com")
    assert _rules(tricky) == ["WEB-REDIR-003"]


def test_cookie_rules_and_no_values_in_messages() -> None:
    """Cookie findings name the cookie, never its value."""
    findings = evaluate_cookies(["sid=SECRETVALUE123; Path=/"], https=True)
    assert _rules(findings) == ["WEB-COOKIE-001", "WEB-COOKIE-002", "WEB-COOKIE-003"]
    assert all("SECRETVALUE123" not in f.message for f in findings)
    assert _rules(evaluate_cookies(["sid=x"], https=False)) == ["WEB-COOKIE-004"]


@given(st.text(max_size=60).filter(lambda s: ";" not in s and "=" not in s), st.text(max_size=40))
def test_hardened_cookie_passes_cookie_rules(name: str, value: str) -> None:
    """A cookie hardened by CookiePolicy passes the HTTPS cookie rules; idempotently."""
    header = f"{name.strip() or 'c'}={value.replace(';', '')}"
    hardened = CookiePolicy().harden(header)
    assert evaluate_cookies([hardened], https=True) == []
    assert CookiePolicy().harden(hardened) == hardened


def test_rule_table_complete() -> None:
    """Every web rule has severity, title and remediation; TLS ids resolve via the catalogue."""
    for rule_id, (severity, title, remediation) in RULES.items():
        assert rule_id.startswith("WEB-")
        assert severity in ("error", "warning", "info")
        assert title
        assert remediation
    assert rule_info("TLS-HSTS-001")[0] == "error"


def test_preload_header_makes_off_host_redirect_an_error() -> None:
    """Judged for preload, a first redirect to another host is an error, not a warning."""
    plain = evaluate_redirect(301, "https://www.example.com/", host="example.com")
    assert plain[0].severity == "warning"
    judged = evaluate_redirect(301, "https://www.example.com/", host="example.com", preload=True)
    assert judged[0].severity == "error"

"""HSTS, redirect and cookie evaluation: the one place these rules live.

Used by :mod:`styku_crypto.web` (``web check``) and by the TLS audit scanner
for its HSTS rules, so both report the same rule ids with the same logic.
Every function is pure: it takes what was observed (status, headers) and
returns findings; fetching is done elsewhere.

Rule ids are stable; severities are ``error`` (breaks the policy),
``warning`` or ``info``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from styku_crypto.web._hsts import DEFAULT_MAX_AGE, PRELOAD_MIN_MAX_AGE

__all__ = [
    "RULES",
    "Finding",
    "HSTSHeader",
    "evaluate_cookies",
    "evaluate_hsts",
    "evaluate_redirect",
    "parse_hsts",
    "rule_info",
]

#: Rules of this module: id -> (severity, title, remediation). Ids are stable.
#: ``TLS-HSTS-001`` and ``TLS-HSTS-002`` come from the TLS rule catalogue
#: (:mod:`styku_crypto.tls._rules`), shared with the audit scanner.
RULES: dict[str, tuple[str, str, str]] = {
    "WEB-HSTS-001": (
        "warning",
        "HSTS without includeSubDomains",
        "Add includeSubDomains once every subdomain serves HTTPS.",
    ),
    "WEB-HSTS-002": (
        "error",
        "malformed Strict-Transport-Security header",
        "Send exactly one header: max-age=<seconds>[; includeSubDomains][; preload].",
    ),
    "WEB-HSTS-003": (
        "error",
        "HSTS preload requested but not eligible",
        "Preload needs max-age >= 31536000 and includeSubDomains.",
    ),
    "WEB-HSTS-004": (
        "warning",
        "Strict-Transport-Security sent over plain HTTP",
        "Send HSTS over HTTPS only; browsers ignore it over HTTP.",
    ),
    "WEB-REDIR-001": (
        "error",
        "plain HTTP is not redirected to HTTPS",
        "Answer plain HTTP with 308 (or 301) to the https:// URL.",
    ),
    "WEB-REDIR-002": (
        "warning",
        "the HTTP-to-HTTPS redirect is temporary or changes the method",
        "Use 308 (or 301): permanent, and 308 keeps the method and body.",
    ),
    "WEB-REDIR-003": (
        "warning",
        "the HTTP-to-HTTPS redirect leaves the host",
        "Redirect to https:// on the same host first (the preload list requires it).",
    ),
    "WEB-COOKIE-001": (
        "error",
        "a cookie is set over HTTPS without Secure",
        "Add the Secure attribute.",
    ),
    "WEB-COOKIE-002": (
        "warning",
        "a cookie is set without HttpOnly",
        "Add HttpOnly unless scripts must read the cookie.",
    ),
    "WEB-COOKIE-003": (
        "warning",
        "a cookie is set without SameSite",
        "Add SameSite=Lax (or Strict).",
    ),
    "WEB-COOKIE-004": (
        "error",
        "a cookie is set over plain HTTP",
        "Set cookies only after the redirect, over HTTPS.",
    ),
}


def rule_info(rule_id: str) -> tuple[str, str, str]:
    """``(severity, title, remediation)`` for a web rule or a shared TLS rule."""
    if rule_id in RULES:
        return RULES[rule_id]
    from styku_crypto.tls._rules import rule

    shared = rule(rule_id)
    return str(shared.severity), shared.title, shared.remediation


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation against the policy (same fields as the TLS audit's).

    Attributes:
        rule: the stable rule id, e.g. ``TLS-HSTS-002``.
        severity: ``error``, ``warning`` or ``info``.
        message: what was observed.
        clause: the policy clause or requirement concerned.
        remediation: how to fix it.
    """

    rule: str
    severity: str
    message: str
    clause: str
    remediation: str


def _make(rule: str, message: str, clause: str, *, severity: str | None = None) -> Finding:
    default, _title, remediation = rule_info(rule)
    return Finding(rule, severity or default, message, clause, remediation)


_finding = _make


@dataclass(frozen=True, slots=True)
class HSTSHeader:
    """A parsed ``Strict-Transport-Security`` value (RFC 6797 section 6.1)."""

    max_age: int
    include_subdomains: bool
    preload: bool


def parse_hsts(value: str) -> HSTSHeader | None:
    """Parse an HSTS header value; ``None`` when browsers would ignore it.

    Directive names are case-insensitive, values may be quoted, a repeated
    directive or a missing/invalid ``max-age`` makes the header invalid.
    """
    seen: dict[str, str | None] = {}
    for part in value.split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, raw = part.partition("=")
        name = name.strip().lower()
        if not name or name in seen:
            return None
        item: str | None = None
        if sep:
            item = raw.strip()
            if len(item) >= 2 and item[0] == item[-1] == '"':
                item = item[1:-1]
        seen[name] = item
    max_age = seen.get("max-age")
    if max_age is None or not max_age.isdigit() or len(max_age) > 12:
        return None
    return HSTSHeader(
        max_age=int(max_age),
        include_subdomains="includesubdomains" in seen,
        preload="preload" in seen,
    )


def evaluate_hsts(
    values: Sequence[str],
    *,
    https: bool,
    policy: Any = None,
    min_age: int | None = None,
    clause: str = "hsts_min_age",
) -> list[Finding]:
    """Findings for the ``Strict-Transport-Security`` header(s) of one response.

    Args:
        values: every ``Strict-Transport-Security`` header value received.
        https: the response came over HTTPS.
        policy: a :class:`styku_crypto.tls.Policy`; gives the minimum
            max-age and its severity overrides for the shared ``TLS-HSTS-*``
            rules. ``None``: two years and the catalogue severities.
        min_age: override the minimum max-age.
        clause: the policy clause named in findings.
    """
    if min_age is None:
        min_age = int(policy.hsts_min_age) if policy is not None else DEFAULT_MAX_AGE

    def _finding(rule: str, message: str, clause: str, *, severity: str | None = None) -> Finding:
        if severity is None and policy is not None and rule.startswith("TLS-"):
            severity = str(policy.severity(rule))
        return _make(rule, message, clause, severity=severity)

    if not https:
        if values:
            return [
                _finding("WEB-HSTS-004", "HSTS header on a plain-HTTP response", "RFC 6797 8.1")
            ]
        return []
    if not values:
        return [_finding("TLS-HSTS-001", "no Strict-Transport-Security header", clause)]
    findings: list[Finding] = []
    if len(values) > 1:
        findings.append(
            _finding(
                "WEB-HSTS-002",
                f"{len(values)} Strict-Transport-Security headers; browsers use the first",
                "RFC 6797 8.1",
                severity="warning",
            )
        )
    header = parse_hsts(values[0])
    if header is None:
        findings.append(_finding("WEB-HSTS-002", "header cannot be parsed", "RFC 6797 6.1"))
        return findings
    if header.max_age < min_age:
        findings.append(
            _finding("TLS-HSTS-002", f"max-age={header.max_age} is below {min_age}", clause)
        )
    if not header.include_subdomains:
        findings.append(_finding("WEB-HSTS-001", "includeSubDomains is missing", clause))
    if header.preload and (header.max_age < PRELOAD_MIN_MAX_AGE or not header.include_subdomains):
        findings.append(
            _finding("WEB-HSTS-003", "preload without the list's requirements", "hstspreload.org")
        )
    return findings


def evaluate_redirect(
    status: int | None,
    location: str | None,
    *,
    host: str,
    preload: bool = False,
) -> list[Finding]:
    """Findings for the answer to a plain-HTTP request.

    Args:
        status: the HTTP status of the plain-HTTP response (``None`` if the
            plain-HTTP port did not answer: not a finding, nothing to redirect).
        location: its ``Location`` header, if any.
        host: the host that was asked for.
        preload: judge by the preload list (a redirect off-host is an error).
    """
    if status is None:
        return []
    clause = "HTTPS required on every interface"
    if status not in (301, 302, 303, 307, 308) or not location:
        return [_finding("WEB-REDIR-001", f"plain HTTP answered {status} without redirect", clause)]
    target = location.strip()
    if not target.lower().startswith("https://"):
        return [_finding("WEB-REDIR-001", "plain HTTP redirects to a non-HTTPS URL", clause)]
    findings: list[Finding] = []
    if status not in (301, 308):
        findings.append(_finding("WEB-REDIR-002", f"redirect status {status}", clause))
    authority = target[8:].split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    target_host = (
        authority[1:].split("]", 1)[0]
        if authority.startswith("[")
        else (authority.split(":", 1)[0])
    )
    if target_host.lower().rstrip(".") != host.lower().rstrip("."):
        findings.append(
            _finding(
                "WEB-REDIR-003",
                "redirect goes to another host",
                "hstspreload.org" if preload else clause,
                severity="error" if preload else None,
            )
        )
    return findings


def evaluate_cookies(set_cookies: Sequence[str], *, https: bool) -> list[Finding]:
    """Findings for the ``Set-Cookie`` headers of one response.

    Cookie *values* are never copied into findings: only their names.
    """
    findings: list[Finding] = []
    clause = "cookies on HTTPS services"
    for header in set_cookies:
        parts = header.split(";")
        name = parts[0].split("=", 1)[0].strip()[:64] or "(unnamed)"
        attributes = {p.split("=", 1)[0].strip().lower(): p for p in parts[1:]}
        if not https:
            findings.append(_finding("WEB-COOKIE-004", f"cookie {name!r} set over HTTP", clause))
            continue
        if "secure" not in attributes:
            findings.append(_finding("WEB-COOKIE-001", f"cookie {name!r} lacks Secure", clause))
        if "httponly" not in attributes:
            findings.append(_finding("WEB-COOKIE-002", f"cookie {name!r} lacks HttpOnly", clause))
        if "samesite" not in attributes:
            findings.append(_finding("WEB-COOKIE-003", f"cookie {name!r} lacks SameSite", clause))
    return findings

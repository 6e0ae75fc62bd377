"""``web check``: fetch a URL over HTTP and HTTPS and judge redirect, HSTS and cookies.

The fetch uses the standard library (:mod:`http.client`) and, for HTTPS, our
hardened client context from :func:`styku_crypto.tls.client_context`, so a
certificate the policy refuses fails the check as a connection error. One GET
per scheme, no redirects followed, bounded reads. The evaluation itself lives
in :mod:`styku_crypto.web._findings`, shared with the TLS audit scanner.

Cookie *values* are never kept: only their names and attributes reach the
report.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.web._findings import (
    Finding,
    evaluate_cookies,
    evaluate_hsts,
    evaluate_redirect,
    parse_hsts,
)

__all__ = ["REPORT_SCHEMA", "ResponseFacts", "WebCheckReport", "check_url"]

#: Version tag of :meth:`WebCheckReport.to_dict` output.
REPORT_SCHEMA = "styku-web-check/1"

_MAX_HEADERS_BYTES = 64 * 1024
_MAX_BODY_READ = 64 * 1024


@dataclass(frozen=True)
class ResponseFacts:
    """What one fetch observed (no cookie values, no body).

    Attributes:
        url: the URL fetched.
        status: the HTTP status, or ``None`` when the fetch failed.
        location: the ``Location`` header, if any.
        hsts: every ``Strict-Transport-Security`` value.
        cookies: each ``Set-Cookie`` with its value replaced by ``<redacted>``.
        error: why the fetch failed, else ``None``.
        tls_version: the negotiated TLS version (HTTPS only).
        cipher: the negotiated cipher suite (HTTPS only).
    """

    url: str
    status: int | None
    location: str | None = None
    hsts: tuple[str, ...] = ()
    cookies: tuple[str, ...] = ()
    error: str | None = None
    tls_version: str | None = None
    cipher: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "url": self.url,
            "status": self.status,
            "location": self.location,
            "hsts": list(self.hsts),
            "cookies": list(self.cookies),
            "error": self.error,
            "tls_version": self.tls_version,
            "cipher": self.cipher,
        }


@dataclass(frozen=True)
class WebCheckReport:
    """The result of :func:`check_url`.

    Attributes:
        target: the URL asked for.
        policy: the TLS policy's name.
        http: the plain-HTTP fetch.
        https: the HTTPS fetch.
        findings: every finding, errors first.
        checked_at: when the check ran (UTC).
    """

    target: str
    policy: str
    http: ResponseFacts
    https: ResponseFacts
    findings: tuple[Finding, ...]
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def reachable(self) -> bool:
        """The HTTPS endpoint answered (a failed TLS handshake counts as unreachable)."""
        return self.https.status is not None

    @property
    def ok(self) -> bool:
        """Reachable and no error-severity finding."""
        return self.reachable and not any(f.severity == "error" for f in self.findings)

    @property
    def exit_code(self) -> int:
        """0 compliant, 1 findings of error severity, 3 HTTPS unreachable."""
        if not self.reachable:
            return 3
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON document (schema ``styku-web-check/1``)."""
        return {
            "schema": REPORT_SCHEMA,
            "target": self.target,
            "policy": self.policy,
            "checked_at": self.checked_at.isoformat(timespec="seconds"),
            "ok": self.ok,
            "http": self.http.to_dict(),
            "https": self.https.to_dict(),
            "findings": [
                {
                    "rule": f.rule,
                    "severity": f.severity,
                    "message": f.message,
                    "clause": f.clause,
                    "remediation": f.remediation,
                }
                for f in self.findings
            ],
        }


def _split_target(url: str) -> tuple[str, str, int | None, int | None]:
    """(host, path+query, explicit http port, explicit https port)."""
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError("URL must be http:// or https:// with a host name")
    if parts.username or parts.password:
        raise InvalidInputError("URL must not carry credentials")
    try:
        port = parts.port
    except ValueError:
        raise InvalidInputError("URL has an invalid port") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in path):
        raise InvalidInputError("URL path must be ASCII without spaces (percent-encode it)")
    http_port = port if parts.scheme == "http" else None
    https_port = port if parts.scheme == "https" else None
    return parts.hostname, path, http_port, https_port


def _fetch(
    conn: http.client.HTTPConnection, url: str, host_header: str, path: str
) -> ResponseFacts:
    try:
        conn.request("GET", path, headers={"Host": host_header, "User-Agent": "styku-crypto"})
        response = conn.getresponse()
        headers = response.msg
        response.read(_MAX_BODY_READ)
        tls_version = cipher = None
        sock = conn.sock
        if isinstance(sock, ssl.SSLSocket):
            tls_version = sock.version()
            negotiated = sock.cipher()
            cipher = negotiated[0] if negotiated else None
        return ResponseFacts(
            url=url,
            status=response.status,
            location=headers.get("Location"),
            hsts=tuple(headers.get_all("Strict-Transport-Security") or ()),
            cookies=tuple(_redact_cookie(c) for c in headers.get_all("Set-Cookie") or ()),
            tls_version=tls_version,
            cipher=cipher,
        )
    except ssl.SSLCertVerificationError as exc:
        return ResponseFacts(
            url=url, status=None, error=f"certificate refused: {exc.verify_message}"
        )
    except ssl.SSLError as exc:
        return ResponseFacts(url=url, status=None, error=f"TLS handshake failed: {exc.reason}")
    except (OSError, http.client.HTTPException) as exc:
        return ResponseFacts(url=url, status=None, error=f"{type(exc).__name__}: {exc}"[:200])
    finally:
        conn.close()


def _redact_cookie(header: str) -> str:
    first, sep, rest = header.partition(";")
    name = first.split("=", 1)[0].strip()[:64]
    return f"{name}=<redacted>{sep}{rest}"


def _hostport(host: str, port: int, default: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port == default else f"{shown}:{port}"


def check_url(
    url: str,
    *,
    policy: Any = None,
    cafile: str | Path | None = None,
    http_port: int | None = None,
    https_port: int | None = None,
    timeout: float = 10.0,
) -> WebCheckReport:
    """Fetch *url* over HTTP and HTTPS and report redirect, HSTS and cookie findings.

    Args:
        url: ``https://host[:port]/path``, ``http://...`` or a bare host.
        policy: the TLS policy (default ``MOZILLA_INTERMEDIATE``): the HTTPS
            fetch uses its client context and its HSTS minimum.
        cafile: PEM trust anchors instead of certifi's (private CAs).
        http_port: plain-HTTP port (default 80, or the URL's for http://).
        https_port: HTTPS port (default 443, or the URL's for https://).
        timeout: seconds per connection.

    Returns:
        The report; it never raises for a non-compliant or unreachable site.

    Raises:
        InvalidInputError: the URL is malformed.
    """
    from styku_crypto.tls import client_context, profiles

    if policy is None:
        policy = profiles.MOZILLA_INTERMEDIATE
    host, path, url_http, url_https = _split_target(url)
    plain_port = http_port or url_http or 80
    tls_port = https_port or url_https or 443
    context = client_context(policy=policy, cafile=cafile)

    http_url = f"http://{_hostport(host, plain_port, 80)}{path}"
    https_url = f"https://{_hostport(host, tls_port, 443)}{path}"
    plain = _fetch(
        http.client.HTTPConnection(host, plain_port, timeout=timeout),
        http_url,
        _hostport(host, plain_port, 80),
        path,
    )
    secure = _fetch(
        http.client.HTTPSConnection(host, tls_port, timeout=timeout, context=context),
        https_url,
        _hostport(host, tls_port, 443),
        path,
    )
    findings: list[Finding] = []
    sts = parse_hsts(secure.hsts[0]) if secure.hsts else None
    preload = sts is not None and sts.preload
    findings += evaluate_redirect(plain.status, plain.location, host=host, preload=preload)
    findings += evaluate_hsts(plain.hsts, https=False, policy=policy)
    findings += evaluate_cookies(plain.cookies, https=False)
    if secure.status is not None:
        findings += evaluate_hsts(secure.hsts, https=True, policy=policy)
        findings += evaluate_cookies(secure.cookies, https=True)
    order = {"error": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: (order.get(f.severity, 3), f.rule))
    return WebCheckReport(
        target=url,
        policy=str(getattr(policy, "name", policy)),
        http=plain,
        https=secure,
        findings=tuple(findings),
    )

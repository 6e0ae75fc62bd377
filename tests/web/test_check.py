"""`styku-crypto web check` against real servers on loopback (in-process CLI)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from styku_crypto._cli import main
from styku_crypto.web import HTTPSEnforcer, check_url
from tests._support import leaks
from tests.web._servers import run_uvicorn
from tests.web.conftest import TLSMaterial, starlette_app

SESSION_VALUE = "sess-" + os.urandom(12).hex()
leaks.register_secret(SESSION_VALUE)


async def _leaky(request: Request) -> Response:
    response = PlainTextResponse("no https enforcement here")
    response.headers.append("set-cookie", f"sid={SESSION_VALUE}; Path=/")
    return response


@pytest.fixture(scope="module")
def good(tls_material: TLSMaterial) -> Iterator[tuple[int, int]]:
    """The enforced app: plain port and TLS port."""
    app = starlette_app(HTTPSEnforcer(allowed_hosts=["localhost"]))
    with (
        run_uvicorn(app) as http_port,
        run_uvicorn(app, ssl_context=tls_material.server_context()) as https_port,
    ):
        yield http_port, https_port


@pytest.fixture(scope="module")
def bad(tls_material: TLSMaterial) -> Iterator[tuple[int, int]]:
    """An app without the middleware: serves HTTP, no HSTS, insecure cookie."""
    app = Starlette(routes=[Route("/{path:path}", _leaky)])
    with (
        run_uvicorn(app) as http_port,
        run_uvicorn(app, ssl_context=tls_material.server_context()) as https_port,
    ):
        yield http_port, https_port


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["web", "check", *argv])
    out, err = capsys.readouterr()
    leaks.assert_no_secret_in("web check output", out + err)
    return code, out, err


def test_enforced_site_passes(
    good: tuple[int, int], tls_material: TLSMaterial, capsys: pytest.CaptureFixture[str]
) -> None:
    """The middleware's own site: 308 to https, HSTS at the policy minimum, exit 0."""
    code, out, _ = _run(
        capsys,
        f"https://localhost:{good[1]}/login",
        "--http-port",
        str(good[0]),
        "--ca-file",
        str(tls_material.ca_pem),
    )
    assert code == 0, out
    assert "308 -> https://localhost/login" in out
    assert "result: OK" in out


def test_enforced_site_cookies_judged_secure(
    good: tuple[int, int], tls_material: TLSMaterial
) -> None:
    """Cookies the app sets without attributes pass the cookie rules thanks to the middleware."""
    report = check_url(
        f"https://localhost:{good[1]}/login", cafile=tls_material.ca_pem, http_port=good[0]
    )
    assert report.ok
    assert report.https.cookies
    assert all("Secure" in c for c in report.https.cookies)


def test_unprotected_site_fails_with_rule_ids_json(
    bad: tuple[int, int], tls_material: TLSMaterial, capsys: pytest.CaptureFixture[str]
) -> None:
    """A site without enforcement: no redirect, no HSTS, cookies in the clear; JSON schema v1."""
    code, out, _ = _run(
        capsys,
        f"https://localhost:{bad[1]}/",
        "--http-port",
        str(bad[0]),
        "--ca-file",
        str(tls_material.ca_pem),
        "--format",
        "json",
    )
    assert code == 1
    doc = json.loads(out)
    assert doc["schema"] == "styku-web-check/1"
    assert doc["ok"] is False
    rules = {f["rule"] for f in doc["findings"]}
    assert {"WEB-REDIR-001", "TLS-HSTS-001", "WEB-COOKIE-004", "WEB-COOKIE-001"} <= rules
    assert doc["https"]["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert doc["https"]["cookies"] == ["sid=<redacted>; Path=/"]
    assert doc["findings"][0]["severity"] == "error"


def test_untrusted_certificate_is_unreachable(
    good: tuple[int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the test CA (certifi roots) the TLS handshake fails: exit 3, reason printed."""
    code, out, _ = _run(
        capsys, f"https://localhost:{good[1]}/", "--http-port", str(good[0]), "--timeout", "5"
    )
    assert code == 3
    assert "certificate refused" in out
    assert "UNREACHABLE" in out


def test_closed_port_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    """A closed HTTPS port: exit 3."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out, _ = _run(
        capsys, f"https://127.0.0.1:{port}/", "--http-port", str(port), "--timeout", "2"
    )
    assert code == 3
    assert "unreachable" in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Malformed URLs, credentials in the URL, bad ports and unknown policies exit 2."""
    for argv in (
        ["ftp://example.com/"],
        ["https://user:pw@example.com/"],
        ["https://example.com/", "--https-port", "0"],
        ["https://example.com/", "--policy", "no-such-policy"],
        ["https://example.com/a b"],
    ):
        code, _, err = _run(capsys, *argv)
        assert code == 2, argv
        assert err
    assert main(["web"]) == 2

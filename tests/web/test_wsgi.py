"""The WSGI middleware with Flask and Django apps under a real waitress server.

waitress speaks plain HTTP only, so HTTPS is reached the way production
reaches it: through a TLS-terminating proxy at a trusted address (127.0.0.2)
that sets X-Forwarded-Proto / Forwarded. The same headers from an untrusted
address (127.0.0.1) are ignored.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from flask import Flask, make_response, session

from styku_crypto.web import HTTPSEnforcer, WSGIMiddleware
from tests.web._servers import raw_request, run_waitress

HSTS_DEFAULT = "max-age=63072000; includeSubDomains"
ROOT = Path(__file__).resolve().parents[2]


def flask_app() -> Flask:
    """A Flask app with a session cookie, behind the enforcer."""
    app = Flask("styku_web_test")
    app.secret_key = os.urandom(32)

    @app.get("/")
    def home() -> str:
        return "flask home"

    @app.get("/login")
    def login() -> object:
        session["user"] = "alice"
        response = make_response("logged in")
        response.set_cookie("csrftoken", "abc123token", samesite="Strict")
        return response

    @app.get("/health")
    def health() -> str:
        return "ok"

    @app.get("/whoami")
    def whoami() -> str:
        from flask import request

        return f"{request.scheme} {request.remote_addr}"

    enforcer = HTTPSEnforcer(
        allowed_hosts=["localhost", ".example.test"],
        exempt_paths=["/health"],
        trusted_proxies=["127.0.0.2/32"],
    )
    app.wsgi_app = WSGIMiddleware(app.wsgi_app, enforcer=enforcer)  # type: ignore[method-assign]
    return app


@pytest.fixture(scope="module")
def flask_port() -> Iterator[int]:
    """The Flask app under waitress on loopback."""
    with run_waitress(flask_app()) as port:
        yield port


@pytest.fixture(scope="module")
def django_port() -> Iterator[int]:
    """The Django app under waitress, in its own process (Django settings are global)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests/web/_django_server.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            proc.kill()
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"django server did not start: {err[-2000:]}")
        yield int(line.split()[1])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """A client at 127.0.0.1: not a trusted proxy."""
    with httpx.Client(timeout=10) as c:
        yield c


@pytest.fixture
def proxy() -> Iterator[httpx.Client]:
    """A client at 127.0.0.2: the trusted TLS-terminating proxy."""
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=10) as c:
        yield c


@pytest.fixture(params=["flask", "django"])
def port(request: pytest.FixtureRequest) -> int:
    """Run each test against the Flask and the Django app."""
    return int(request.getfixturevalue(f"{request.param}_port"))


def test_plain_http_redirects_308(port: int, client: httpx.Client) -> None:
    """Plain HTTP gets 308 to https on the same host, path and query; no HSTS."""
    r = client.get(f"http://localhost:{port}/login?next=%2Fhome")
    assert r.status_code == 308
    assert r.headers["location"] == "https://localhost/login?next=%2Fhome"
    assert "strict-transport-security" not in r.headers
    assert "set-cookie" not in r.headers


def test_forged_host_refused(port: int, client: httpx.Client) -> None:
    """A forged Host gets 400 and no Location."""
    r = client.get(f"http://127.0.0.1:{port}/", headers={"Host": "attacker.example"})
    assert r.status_code == 400
    assert "location" not in r.headers


def test_spoofed_proto_from_untrusted_still_redirected(port: int, client: httpx.Client) -> None:
    """X-Forwarded-Proto: https from an untrusted address is ignored: still a redirect."""
    r = client.get(
        f"http://localhost:{port}/",
        headers={"X-Forwarded-Proto": "https", "Forwarded": "proto=https"},
    )
    assert r.status_code == 308


def test_trusted_proxy_https_gets_hsts_and_secure_cookies(port: int, proxy: httpx.Client) -> None:
    """Through the trusted proxy with proto=https: the app answers, HSTS set, cookies Secure."""
    r = proxy.get(f"http://localhost:{port}/login", headers={"X-Forwarded-Proto": "https"})
    assert r.status_code == 200
    assert r.headers["strict-transport-security"] == HSTS_DEFAULT
    cookies = r.headers.get_list("set-cookie")
    assert cookies
    for cookie in cookies:
        assert "; Secure" in cookie
        assert "samesite=" in cookie.lower()


def test_health_exempt(port: int, client: httpx.Client) -> None:
    """/health is served over plain HTTP without HSTS."""
    r = client.get(f"http://localhost:{port}/health")
    assert r.status_code == 200
    assert "strict-transport-security" not in r.headers


def test_dot_segments_not_exempt(port: int) -> None:
    """A verbatim '/health/../login' is redirected, not served as exempt."""
    status, _ = raw_request(port, b"GET /health/../login HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert status == 308


def test_flask_subdomain_allowed_and_csrf_cookie_keeps_samesite(
    flask_port: int, proxy: httpx.Client
) -> None:
    """'.example.test' admits subdomains; the app's own SameSite=Strict is kept."""
    r = proxy.get(
        f"http://127.0.0.1:{flask_port}/login",
        headers={"Host": "app.example.test", "Forwarded": "proto=https;host=app.example.test"},
    )
    assert r.status_code == 200
    csrf = next(c for c in r.headers.get_list("set-cookie") if c.startswith("csrftoken="))
    assert "SameSite=Strict" in csrf
    assert "SameSite=Lax" not in csrf
    assert "; Secure" in csrf


def test_flask_subdomain_redirect_keeps_validated_host(
    flask_port: int, client: httpx.Client
) -> None:
    """A subdomain Host is redirected to itself; the bare lookalike 'xexample.test' is refused."""
    r = client.get(f"http://127.0.0.1:{flask_port}/", headers={"Host": "App.Example.Test."})
    assert r.status_code == 308
    assert r.headers["location"] == "https://app.example.test/"
    r = client.get(f"http://127.0.0.1:{flask_port}/", headers={"Host": "xexample.test"})
    assert r.status_code == 400


def test_app_sees_forwarded_scheme_and_client(port: int, proxy: httpx.Client) -> None:
    """Behind the trusted proxy the app sees https and the forwarded client address."""
    r = proxy.get(
        f"http://localhost:{port}/whoami",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.50"},
    )
    assert r.status_code == 200
    assert r.text == "https 203.0.113.50"

"""The ASGI middleware under a real uvicorn server, plain HTTP and TLS, on loopback."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterator

import httpx
import pytest

from styku_crypto.web import HTTPSEnforcer
from tests._support import leaks
from tests.web._servers import raw_request, run_uvicorn
from tests.web.conftest import TLSMaterial, starlette_app

HSTS_DEFAULT = "max-age=63072000; includeSubDomains"


@pytest.fixture(scope="module")
def servers(tls_material: TLSMaterial) -> Iterator[dict[str, int]]:
    """One Starlette app behind the enforcer, served over plain HTTP and over TLS."""
    enforcer = HTTPSEnforcer(
        allowed_hosts=["localhost", "127.0.0.1"],
        exempt_paths=["/health"],
        trusted_proxies=["127.0.0.2"],
    )
    app = starlette_app(enforcer)
    with (
        run_uvicorn(app) as http_port,
        run_uvicorn(app, ssl_context=tls_material.server_context()) as https_port,
    ):
        yield {"http": http_port, "https": https_port}


@pytest.fixture
def client(tls_material: TLSMaterial) -> Iterator[httpx.Client]:
    """An httpx client using our client context, from 127.0.0.1 (not a trusted proxy)."""
    with httpx.Client(verify=tls_material.client_context(), timeout=10) as c:
        yield c


@pytest.fixture
def proxy_client(tls_material: TLSMaterial) -> Iterator[httpx.Client]:
    """An httpx client connecting from 127.0.0.2, the configured trusted proxy."""
    transport = httpx.HTTPTransport(local_address="127.0.0.2", verify=tls_material.client_context())
    with httpx.Client(transport=transport, timeout=10) as c:
        yield c


def test_plain_http_get_redirects_308_to_https(
    servers: dict[str, int], client: httpx.Client
) -> None:
    """A plain-HTTP GET gets a 308 to the same host, path and query over https, without HSTS."""
    r = client.get(f"http://localhost:{servers['http']}/some/path?a=1&b=%20x")
    assert r.status_code == 308
    assert r.headers["location"] == "https://localhost/some/path?a=1&b=%20x"
    assert "strict-transport-security" not in r.headers


def test_plain_http_post_redirect_keeps_method_semantics(
    servers: dict[str, int], client: httpx.Client
) -> None:
    """A plain-HTTP POST also gets 308 (method and body survive), never a 301/302 downgrade."""
    r = client.post(f"http://127.0.0.1:{servers['http']}/echo", content=b"x" * 100)
    assert r.status_code == 308
    assert r.headers["location"] == "https://127.0.0.1/echo"


def test_https_response_carries_hsts(servers: dict[str, int], client: httpx.Client) -> None:
    """Over TLS (our server and client contexts) the app answers and HSTS is added."""
    r = client.get(f"https://localhost:{servers['https']}/")
    assert r.status_code == 200
    assert r.text == "home"
    assert r.headers["strict-transport-security"] == HSTS_DEFAULT


def test_https_post_reaches_app_with_body(servers: dict[str, int], client: httpx.Client) -> None:
    """Request bodies pass through the middleware untouched over HTTPS."""
    r = client.put(f"https://localhost:{servers['https']}/echo", content=b"y" * 5000)
    assert r.json() == {"method": "PUT", "length": 5000}


def test_forged_host_gets_400_not_redirect(servers: dict[str, int], client: httpx.Client) -> None:
    """A Host outside the allow-list gets 400 and no Location: it cannot steer the redirect."""
    r = client.get(f"http://127.0.0.1:{servers['http']}/login", headers={"Host": "evil.example"})
    assert r.status_code == 400
    assert "location" not in r.headers
    assert "evil" not in r.text


def test_forged_host_over_https_also_refused(servers: dict[str, int], client: httpx.Client) -> None:
    """Over HTTPS an unknown Host is refused too (400), with HSTS on the answer."""
    r = client.get(f"https://localhost:{servers['https']}/", headers={"Host": "evil.example"})
    assert r.status_code == 400
    assert r.headers["strict-transport-security"] == HSTS_DEFAULT


def test_host_with_path_characters_cannot_inject(
    servers: dict[str, int], client: httpx.Client
) -> None:
    """Host values like 'localhost@evil' or 'evil/localhost' are malformed and refused."""
    for forged in ("localhost@evil.example", "evil.example/localhost", "localhost:80x"):
        r = client.get(f"http://127.0.0.1:{servers['http']}/", headers={"Host": forged})
        assert r.status_code == 400, forged


def test_spoofed_forwarded_proto_from_untrusted_peer_still_redirected(
    servers: dict[str, int], client: httpx.Client
) -> None:
    """X-Forwarded-Proto / Forwarded 'https' from 127.0.0.1 (not trusted) is ignored."""
    for headers in (
        {"X-Forwarded-Proto": "https"},
        {"Forwarded": "for=198.51.100.7;proto=https"},
    ):
        r = client.get(f"http://localhost:{servers['http']}/", headers=headers)
        assert r.status_code == 308, headers
        assert "strict-transport-security" not in r.headers


def test_forwarded_proto_from_trusted_proxy_is_honoured(
    servers: dict[str, int], proxy_client: httpx.Client
) -> None:
    """From the trusted proxy (127.0.0.2) 'https' is believed: no redirect, HSTS sent."""
    for headers in (
        {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"},
        {"Forwarded": 'for="198.51.100.7";proto=https'},
    ):
        r = proxy_client.get(f"http://localhost:{servers['http']}/", headers=headers)
        assert r.status_code == 200, headers
        assert r.headers["strict-transport-security"] == HSTS_DEFAULT


def test_trusted_proxy_saying_http_gets_redirect(
    servers: dict[str, int], proxy_client: httpx.Client
) -> None:
    """A trusted proxy reporting proto=http (or nothing) leads to the redirect."""
    r = proxy_client.get(
        f"http://localhost:{servers['http']}/x", headers={"X-Forwarded-Proto": "http"}
    )
    assert r.status_code == 308
    r = proxy_client.get(f"http://localhost:{servers['http']}/x")
    assert r.status_code == 308


def test_cookies_over_https_gain_secure_httponly_samesite(
    servers: dict[str, int], client: httpx.Client
) -> None:
    """Cookies set over HTTPS come back Secure, HttpOnly and SameSite=Lax unless the app chose."""
    r = client.get(f"https://localhost:{servers['https']}/login")
    cookies = r.headers.get_list("set-cookie")
    assert len(cookies) == 2
    session = next(c for c in cookies if c.startswith("session="))
    prefs = next(c for c in cookies if c.startswith("prefs="))
    assert "; Secure" in session
    assert "; HttpOnly" in session
    assert "SameSite=Lax" in session
    assert "; Secure" in prefs
    assert "samesite=strict" in prefs.lower()
    assert "samesite=lax" not in prefs.lower()


def test_exempt_health_path_served_over_http(servers: dict[str, int], client: httpx.Client) -> None:
    """The exempt /health path answers over plain HTTP, without HSTS, whatever the Host."""
    r = client.get(f"http://127.0.0.1:{servers['http']}/health", headers={"Host": "10.1.2.3"})
    assert r.status_code == 200
    assert r.text == "ok"
    assert "strict-transport-security" not in r.headers


def test_exempt_path_does_not_cover_dot_segments(
    servers: dict[str, int], client: httpx.Client
) -> None:
    """'/health/../login' (sent verbatim) does not ride on an exemption: it is redirected."""
    status, head = raw_request(
        servers["http"], b"GET /health/../login HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    assert status == 308
    assert b"location: https://localhost/health/../login" in head.lower()


def test_websocket_upgrade_over_ws_redirected_to_wss(
    servers: dict[str, int], client: httpx.Client
) -> None:
    """A ws:// upgrade gets 308 with a wss:// Location (ASGI denial-response extension)."""
    key = base64.b64encode(os.urandom(16)).decode()
    r = client.get(
        f"http://localhost:{servers['http']}/ws?room=1",
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
        },
    )
    assert r.status_code == 308
    assert r.headers["location"] == "wss://localhost/ws?room=1"


def test_events_carry_source_address(
    servers: dict[str, int], client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Redirects and refusals emit web.https_redirect / web.https_reject with the client address."""
    secret_query = "token=" + os.urandom(12).hex()
    leaks.register_secret(secret_query)
    with caplog.at_level(logging.DEBUG, logger="styku_crypto.web"):
        client.get(f"http://localhost:{servers['http']}/reset?{secret_query}")
        client.get(f"http://127.0.0.1:{servers['http']}/", headers={"Host": "evil.example"})
    events = [r.styku_event for r in caplog.records if hasattr(r, "styku_event")]
    redirect = next(e for e in events if e["event"] == "web.https_redirect")
    assert redirect["source"] == "127.0.0.1"
    assert redirect["host"] == "localhost"
    reject = next(e for e in events if e["event"] == "web.https_reject")
    assert reject["reason"] == "host_not_allowed"
    assert reject["source"] == "127.0.0.1"
    for record in caplog.records:
        leaks.assert_no_secret_in("web event", leaks.record_text(record))
        assert "evil.example" not in leaks.record_text(record)


def test_trusted_proxy_client_address_in_events(
    servers: dict[str, int], proxy_client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Behind a trusted proxy, the event's source is the forwarded client, not the proxy."""
    with caplog.at_level(logging.DEBUG, logger="styku_crypto.web"):
        proxy_client.get(
            f"http://localhost:{servers['http']}/",
            headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http"},
        )
    events = [r.styku_event for r in caplog.records if hasattr(r, "styku_event")]
    assert any(e["event"] == "web.https_redirect" and e["source"] == "203.0.113.9" for e in events)


def test_app_sees_forwarded_scheme_and_client(
    servers: dict[str, int], proxy_client: httpx.Client
) -> None:
    """Behind the trusted proxy the ASGI app sees scheme https and the forwarded client."""
    r = proxy_client.get(
        f"http://localhost:{servers['http']}/whoami",
        headers={"Forwarded": "for=203.0.113.77;proto=https"},
    )
    assert r.json() == {"subject": None, "scheme": "https", "client": "203.0.113.77"}

"""HTTPSEnforcer: configuration validation, the decision, and the redirect target."""

from __future__ import annotations

import asyncio
import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.exceptions import InvalidInputError, InvalidPolicyError
from styku_crypto.tls import profiles
from styku_crypto.web import HSTS, ASGIMiddleware, HTTPSEnforcer, WSGIMiddleware
from styku_crypto.web._config import Action


def _enf(**kwargs: Any) -> HTTPSEnforcer:
    kwargs.setdefault("allowed_hosts", ["example.com", ".corp.example"])
    return HTTPSEnforcer(**kwargs)


def test_allowed_hosts_required_and_no_wildcards() -> None:
    """An empty list, a bare string, '*' and malformed names are refused."""
    for bad in ([], "example.com", ["*"], ["*.example.com"], ["exa mple.com"], [""]):
        with pytest.raises(InvalidInputError):
            HTTPSEnforcer(allowed_hosts=bad)


def test_bad_options_refused() -> None:
    """Unknown mode, redirect status, port and relative exempt paths are refused."""
    with pytest.raises(InvalidInputError):
        _enf(mode="warn")
    with pytest.raises(InvalidInputError):
        _enf(redirect_status=302)
    with pytest.raises(InvalidInputError):
        _enf(https_port=70000)
    with pytest.raises(InvalidInputError):
        _enf(exempt_paths=["health"])
    with pytest.raises(InvalidInputError):
        _enf(trusted_proxies="10.0.0.1")


def test_hsts_default_from_policy_minimum() -> None:
    """The default HSTS header is the intermediate policy's minimum with includeSubDomains."""
    enforcer = _enf(policy=profiles.MOZILLA_INTERMEDIATE)
    assert enforcer.hsts_header == "max-age=63072000; includeSubDomains"


def test_hsts_below_policy_minimum_refused() -> None:
    """An HSTS max-age below the policy's hsts_min_age is a configuration error."""
    with pytest.raises(InvalidPolicyError):
        _enf(hsts=HSTS(max_age=86400), policy=profiles.MOZILLA_INTERMEDIATE)


def test_preload_requires_list_requirements() -> None:
    """Preload needs max-age >= 1 year and includeSubDomains (hstspreload.org)."""
    with pytest.raises(InvalidPolicyError):
        HSTS(max_age=31536000 - 1, preload=True)
    with pytest.raises(InvalidPolicyError):
        HSTS(include_subdomains=False, preload=True)
    assert HSTS(preload=True).header_value() == "max-age=63072000; includeSubDomains; preload"


def test_preload_requires_redirect_on_same_host() -> None:
    """Preload with reject mode, a non-443 HTTPS port or an exempt root is refused."""
    hsts = HSTS(preload=True)
    with pytest.raises(InvalidPolicyError):
        _enf(hsts=hsts, mode="reject")
    with pytest.raises(InvalidPolicyError):
        _enf(hsts=hsts, https_port=8443)
    with pytest.raises(InvalidPolicyError):
        _enf(hsts=hsts, exempt_prefixes=["/"])
    assert "preload" in _enf(hsts=hsts, https_port=443).hsts_header


def test_decide_matrix() -> None:
    """Plain HTTP redirects, HTTPS passes, unknown hosts get BAD_HOST, reject mode rejects."""
    enforcer = _enf()
    common: dict[str, Any] = {"path": "/", "peer": "192.0.2.1", "forwarded": None}
    assert enforcer.decide(scheme="http", host_header="example.com", **common).action == (
        Action.REDIRECT
    )
    verdict = enforcer.decide(scheme="https", host_header="EXAMPLE.com.:443", **common)
    assert (verdict.action, verdict.secure, verdict.host) == (Action.PASS, True, "example.com")
    assert enforcer.decide(scheme="wss", host_header="a.b.corp.example", **common).secure
    for bad in ("evil.com", "example.com.evil.com", "xcorp.example", None, "", "[::1", "a:b:c"):
        assert enforcer.decide(scheme="http", host_header=bad, **common).action == Action.BAD_HOST
    rejecting = _enf(mode="reject")
    assert rejecting.decide(scheme="http", host_header="corp.example", **common).action == (
        Action.REJECT
    )


def test_location_includes_port_and_ipv6_brackets() -> None:
    """A non-443 HTTPS port is kept; IPv6 hosts are bracketed; ws becomes wss."""
    enforcer = HTTPSEnforcer(allowed_hosts=["::1", "example.com"], https_port=8443)
    v6 = enforcer.decide(
        scheme="http", host_header="[::1]:8080", path="/", peer=None, forwarded=None
    )
    assert enforcer.location(v6, websocket=False, raw_path="/a", query="") == "https://[::1]:8443/a"
    name = enforcer.decide(
        scheme="ws", host_header="example.com", path="/", peer=None, forwarded=None
    )
    assert enforcer.location(name, websocket=True, raw_path="/ws", query="x=1") == (
        "wss://example.com:8443/ws?x=1"
    )


_VISIBLE = set(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")


@given(st.text(max_size=80), st.text(max_size=80))
def test_location_is_always_safe(raw_path: str, query: str) -> None:
    """Any path and query give an ASCII Location without spaces or CR/LF, on the allowed host."""
    enforcer = _enf()
    verdict = enforcer.decide(
        scheme="http", host_header="example.com", path="/", peer=None, forwarded=None
    )
    location = enforcer.location(
        verdict, websocket=False, raw_path=raw_path.encode("utf-8").decode("latin-1"), query=query
    )
    assert location.startswith("https://example.com/")
    assert set(location) <= _VISIBLE
    assert location.split("/", 3)[2] == "example.com"


def test_repr_names_configuration() -> None:
    """The repr shows hosts, mode and HSTS (there are no secrets in the configuration)."""
    text = repr(_enf(trusted_proxies=["10.0.0.0/8"]))
    assert "example.com" in text
    assert "10.0.0.0/8" in text
    assert "max-age" in text


# --- the middleware shapes, called directly for the options not covered under servers ----


def _asgi_call(middleware: ASGIMiddleware, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return (
            {"type": "websocket.connect"}
            if scope["type"] == "websocket"
            else {
                "type": "http.request",
                "body": b"",
            }
        )

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return sent


async def _ok_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await send({"type": "lifespan.startup.complete"})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"strict-transport-security", b"max-age=1"),
                (b"Set-Cookie", b"a=b; Path=/"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


def _scope(scheme: str, kind: str = "http", **extra: Any) -> dict[str, Any]:
    scope = {
        "type": kind,
        "scheme": scheme,
        "path": "/p",
        "raw_path": b"/p",
        "query_string": b"",
        "headers": [(b"host", b"example.com")],
        "client": ("192.0.2.9", 5000),
    }
    scope.update(extra)
    return scope


def test_asgi_reject_mode_403_json() -> None:
    """Reject mode answers plain HTTP with 403 and a short JSON body."""
    sent = _asgi_call(ASGIMiddleware(_ok_app, enforcer=_enf(mode="reject")), _scope("http"))
    assert sent[0]["status"] == 403
    assert sent[1]["body"] == b'{"error":"https_required","detail":"use HTTPS"}'


def test_asgi_301_option() -> None:
    """redirect_status=301 is honoured."""
    sent = _asgi_call(ASGIMiddleware(_ok_app, enforcer=_enf(redirect_status=301)), _scope("http"))
    assert sent[0]["status"] == 301


def test_asgi_replaces_app_hsts_and_hardens_mixed_case_cookie_header() -> None:
    """The app's weaker HSTS is replaced by the policy's; 'Set-Cookie' in any case is hardened."""
    sent = _asgi_call(ASGIMiddleware(_ok_app, enforcer=_enf()), _scope("https"))
    headers = sent[0]["headers"]
    sts = [v for k, v in headers if k.lower() == b"strict-transport-security"]
    assert sts == [b"max-age=63072000; includeSubDomains"]
    cookie = next(v for k, v in headers if k.lower() == b"set-cookie")
    assert cookie == b"a=b; Path=/; Secure; HttpOnly; SameSite=Lax"


def test_asgi_lifespan_passes_through() -> None:
    """Non-HTTP scopes (lifespan) reach the app untouched."""
    sent = _asgi_call(ASGIMiddleware(_ok_app, enforcer=_enf()), {"type": "lifespan"})
    assert sent == [{"type": "lifespan.startup.complete"}]


def test_asgi_websocket_without_denial_extension_is_closed() -> None:
    """A ws:// upgrade on a server without the denial-response extension is closed (1008)."""
    sent = _asgi_call(ASGIMiddleware(_ok_app, enforcer=_enf()), _scope("ws", "websocket"))
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_middleware_requires_enforcer() -> None:
    """Passing anything but an HTTPSEnforcer is a TypeError."""
    with pytest.raises(TypeError):
        ASGIMiddleware(_ok_app, enforcer={"allowed_hosts": ["x"]})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        WSGIMiddleware(lambda e, s: [], enforcer=None)  # type: ignore[arg-type]


def test_wsgi_https_port_and_query_in_location() -> None:
    """WSGI redirects carry the configured HTTPS port and the original query string."""
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"] = status
        captured["headers"] = dict(headers)
        return lambda data: None

    middleware = WSGIMiddleware(lambda e, s: [b"never"], enforcer=_enf(https_port=8443))
    environ = {
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "example.com:8080",
        "REMOTE_ADDR": "192.0.2.1",
        "PATH_INFO": "/caf\xc3\xa9 x",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "q=%C3%A9&r=1",
    }
    body = b"".join(middleware(environ, start_response))
    assert captured["status"] == "308 Permanent Redirect"
    assert captured["headers"]["Location"] == "https://example.com:8443/caf%C3%A9%20x?q=%C3%A9&r=1"
    assert body == b"Redirecting to HTTPS\n"


@given(st.text(max_size=40))
def test_host_parsing_never_raises_and_only_admits_allowed(value: str) -> None:
    """Any Host text is either refused or normalised to an allowed name; parsing never raises."""
    enforcer = _enf()
    host = enforcer.host_allowed(value)
    assert host is None or host == "example.com" or host.endswith("corp.example")

"""ASGI and WSGI shapes decide identically from one HTTPSEnforcer (property test)."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.web import ASGIMiddleware, HTTPSEnforcer, WSGIMiddleware

ENFORCER = HTTPSEnforcer(
    allowed_hosts=["example.com", ".corp.example", "192.0.2.1"],
    exempt_prefixes=["/health"],
    trusted_proxies=["10.0.0.1"],
)

HOSTS = st.sampled_from(
    [
        "example.com",
        "EXAMPLE.COM:8080",
        "a.corp.example",
        "192.0.2.1",
        "evil.example",
        "example.com.evil.example",
        "example.com@evil",
        "",
        "[::1]",
    ]
)
PATHS = st.sampled_from(["/", "/health", "/health/../admin", "/a b", "/caf\u00e9", "/x?y"])
PROTOS = st.sampled_from([None, "https", "http", "HTTPS", "https, http", "bogus"])


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"set-cookie", b"a=b")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Set-Cookie", "a=b")])
    return [b"ok"]


def _asgi(scheme: str, host: str, path: str, peer: str, proto: str | None) -> tuple[Any, ...]:
    raw = path.encode("utf-8")
    headers = [(b"host", host.encode("latin-1"))] if host else []
    if proto is not None:
        headers.append((b"x-forwarded-proto", proto.encode()))
    scope = {
        "type": "http",
        "scheme": scheme,
        "path": path,
        "raw_path": raw,
        "query_string": b"q=1",
        "headers": headers,
        "client": (peer, 1234),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(ASGIMiddleware(_asgi_app, enforcer=ENFORCER)(scope, receive, send))
    headers_out = {k.decode().lower(): v.decode() for k, v in sent[0]["headers"]}
    return (
        sent[0]["status"],
        headers_out.get("location"),
        headers_out.get("strict-transport-security"),
        headers_out.get("set-cookie"),
    )


def _wsgi(scheme: str, host: str, path: str, peer: str, proto: str | None) -> tuple[Any, ...]:
    environ: dict[str, Any] = {
        "wsgi.url_scheme": scheme,
        "REMOTE_ADDR": peer,
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "SCRIPT_NAME": "",
        "QUERY_STRING": "q=1",
    }
    if host:
        environ["HTTP_HOST"] = host
    if proto is not None:
        environ["HTTP_X_FORWARDED_PROTO"] = proto
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"] = int(status.split()[0])
        captured["headers"] = {k.lower(): v for k, v in headers}
        return lambda data: None

    b"".join(WSGIMiddleware(_wsgi_app, enforcer=ENFORCER)(environ, start_response))
    h = captured["headers"]
    return (
        captured["status"],
        h.get("location"),
        h.get("strict-transport-security"),
        h.get("set-cookie"),
    )


@given(
    st.sampled_from(["http", "https"]),
    HOSTS,
    PATHS,
    st.sampled_from(["10.0.0.1", "198.51.100.9"]),
    PROTOS,
)
def test_asgi_and_wsgi_agree(
    scheme: str, host: str, path: str, peer: str, proto: str | None
) -> None:
    """Status, Location, HSTS and cookie hardening are the same from both shapes."""
    assert _asgi(scheme, host, path, peer, proto) == _wsgi(scheme, host, path, peer, proto)


@given(HOSTS, PATHS, PROTOS)
def test_untrusted_peer_never_gets_https_treatment_over_http(
    host: str, path: str, proto: str | None
) -> None:
    """Whatever X-Forwarded-Proto says, plain HTTP from an untrusted peer never gets HSTS."""
    status, location, hsts, _cookie = _asgi("http", host, path, "198.51.100.9", proto)
    assert hsts is None
    assert status in (200, 308, 400)
    if location is not None:
        assert location.startswith(
            ("https://example.com/", "https://a.corp.example/", "https://192.0.2.1/")
        )

"""The middleware's fast path decides exactly as its full decision does (property tests)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from styku_crypto.web import ASGIMiddleware, CookiePolicy, HTTPSEnforcer, WSGIMiddleware

ENFORCERS = [
    HTTPSEnforcer(
        allowed_hosts=["example.com", ".corp.example", "192.0.2.1"],
        exempt_prefixes=["/health"],
        trusted_proxies=["10.0.0.1", "10.0.0.2"],
    ),
    HTTPSEnforcer(allowed_hosts=["example.com"], mode="reject", exempt_paths=["/ping"]),
    HTTPSEnforcer(allowed_hosts=["example.com", "[::1]"], trusted_proxies=["10.0.0.0/8"]),
]
SCHEMES = st.sampled_from(["https", "http", None])
HOSTS = st.sampled_from(
    [None, "example.com", "EXAMPLE.com:443", "a.corp.example", "evil.example", "", "[::1]:8443"]
)
PEERS = st.sampled_from([None, "10.0.0.1", "10.0.0.2", "192.0.2.7", "::ffff:10.0.0.1"])
PATHS = st.sampled_from(["/", "/health", "/health/../admin", "/ping", "/account"])
TYPICAL = st.sampled_from(
    [
        [],
        [("x-forwarded-proto", "https"), ("x-forwarded-for", "198.51.100.1")],
        [("x-forwarded-proto", "https"), ("x-forwarded-for", "10.0.0.1")],
        [("x-forwarded-proto", "http"), ("x-forwarded-for", "198.51.100.1")],
        [("forwarded", "for=198.51.100.2;proto=https")],
        [("x-forwarded-proto", "https"), ("x-forwarded-host", "evil.example")],
    ]
)
FORWARDING = TYPICAL | st.lists(
    st.tuples(
        st.sampled_from(
            ["x-forwarded-proto", "x-forwarded-for", "x-forwarded-host", "forwarded", "host"]
        ),
        st.sampled_from(
            [
                "https",
                "http",
                "HTTPS",
                "198.51.100.1",
                "198.51.100.1, 10.0.0.2",
                "evil.example",
                "example.com",
                "for=198.51.100.2;proto=https",
                "for=198.51.100.2;proto=http;host=evil.example",
                "bogus;;=",
            ]
        ),
    ),
    max_size=4,
)
RESPONSE_HEADERS = st.sampled_from(
    [
        [],
        [("content-type", "text/plain")],
        [("Set-Cookie", "sid=abc; Path=/"), ("content-length", "2")],
        [("strict-transport-security", "max-age=1"), ("keep-alive", "5")],
    ]
)


def _run_asgi(
    mw: ASGIMiddleware, full: bool, scope: dict[str, Any], response: list[tuple[str, str]]
) -> tuple[Any, ...]:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scheme=scope.get("scheme"), client=scope.get("client"))
        headers = [(k.encode(), v.encode()) for k, v in response]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    mw.app = app
    call = mw._general if full else mw.__call__
    asyncio.run(call(scope, receive, send))
    return seen, [(m["type"], m.get("status"), m.get("headers"), m.get("body")) for m in sent]


def _run_wsgi(
    mw: WSGIMiddleware, full: bool, environ: dict[str, Any], response: list[tuple[str, str]]
) -> tuple[Any, ...]:
    seen: dict[str, Any] = {}
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        start_response("200 OK", list(response))
        return [b"ok"]

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append((status, headers))
        return None

    mw.app = app
    call = mw._general if full else mw.__call__
    body = list(call(environ, start_response))
    return seen, started, body


@settings(max_examples=400)
@given(
    st.sampled_from(range(len(ENFORCERS))),
    SCHEMES,
    HOSTS,
    PEERS,
    PATHS,
    FORWARDING,
    RESPONSE_HEADERS,
)
def test_asgi_fast_path_matches_full_decision(
    which: int,
    scheme: str | None,
    host: str | None,
    peer: str | None,
    path: str,
    forwarding: list[tuple[str, str]],
    response: list[tuple[str, str]],
) -> None:
    """ASGI: what the app sees and what is sent are the same with and without the fast path."""
    headers = [(b"host", host.encode())] if host is not None else []
    headers += [(k.encode(), v.encode()) for k, v in forwarding]
    scope: dict[str, Any] = {
        "type": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
    }
    if scheme is not None:
        scope["scheme"] = scheme
    if peer is not None:
        scope["client"] = (peer, 5000)
    mw = ASGIMiddleware(lambda s, r, w: None, enforcer=ENFORCERS[which])  # type: ignore[arg-type,return-value]
    for _ in range(2):  # the second call is answered from the caches
        fast = _run_asgi(mw, False, dict(scope), response)
        full = _run_asgi(mw, True, dict(scope), response)
        assert fast == full


@settings(max_examples=400)
@given(
    st.sampled_from(range(len(ENFORCERS))),
    SCHEMES,
    HOSTS,
    PEERS,
    PATHS,
    FORWARDING,
    RESPONSE_HEADERS,
)
def test_wsgi_fast_path_matches_full_decision(
    which: int,
    scheme: str | None,
    host: str | None,
    peer: str | None,
    path: str,
    forwarding: list[tuple[str, str]],
    response: list[tuple[str, str]],
) -> None:
    """WSGI: what the app sees and what is sent are the same with and without the fast path."""
    environ: dict[str, Any] = {"SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": ""}
    if scheme is not None:
        environ["wsgi.url_scheme"] = scheme
    if peer is not None:
        environ["REMOTE_ADDR"] = peer
    if host is not None:
        environ["HTTP_HOST"] = host
    for key, value in forwarding:
        name = "HTTP_" + key.upper().replace("-", "_")
        environ[name] = f"{environ[name]},{value}" if name in environ else value
    mw = WSGIMiddleware(lambda e, s: [], enforcer=ENFORCERS[which])
    for _ in range(2):  # the second call is answered from the caches
        fast = _run_wsgi(mw, False, dict(environ), response)
        full = _run_wsgi(mw, True, dict(environ), response)
        assert fast == full


def test_caches_stay_bounded() -> None:
    """Many distinct Host values never grow the middleware's caches past their limit."""
    from styku_crypto.web._config import CACHE_LIMIT

    mw = WSGIMiddleware(lambda e, s: [], enforcer=ENFORCERS[0])
    for i in range(CACHE_LIMIT * 2 + 7):
        environ = {"wsgi.url_scheme": "https", "HTTP_HOST": f"h{i}.example", "PATH_INFO": "/"}
        list(mw(environ, lambda status, headers, exc_info=None: None))
        assert len(mw._hosts) <= CACHE_LIMIT


def test_enforcer_is_immutable() -> None:
    """A built HTTPSEnforcer refuses changes, so cached fast-path decisions cannot go stale."""
    with pytest.raises(AttributeError):
        ENFORCERS[1].client_cert = None
    with pytest.raises(AttributeError):
        ENFORCERS[1].mode = "redirect"


COOKIE_POLICIES = [
    CookiePolicy(),
    CookiePolicy(httponly=False, samesite=None),
    CookiePolicy(samesite="Strict", script_readable=frozenset({"csrftoken", "sid"})),
]
COOKIE_TEXT = st.text(
    alphabet=st.sampled_from(list("abSsiId=;  \t/-_.HhTtpPoOnNlLyYeEcCuUrRmMxX1é")), max_size=60
)
COOKIE_VALUES = COOKIE_TEXT | st.builds(
    lambda name, value, attrs: f"{name}={value}{attrs}",
    st.sampled_from(["sid", "csrftoken", "session", " sid "]),
    st.text(alphabet="0123456789abcdef", max_size=16),
    st.sampled_from(
        [
            "",
            ";",
            "; Path=/",
            "; path=/;",
            "; Secure",
            "; HttpOnly; SameSite=None",
            "; secure; httponly; samesite=lax ",
            "; Path=/; Max-Age=3600; Domain=example.com",
        ]
    ),
)


@given(st.sampled_from(COOKIE_POLICIES), COOKIE_VALUES)
def test_cookie_harden_raw_equals_harden(policy: CookiePolicy, value: str) -> None:
    """The cached bytes hardening (ASGI hot path) gives the same bytes as harden(), twice."""
    raw = value.encode("latin-1")
    expected = policy.harden(value).encode("latin-1")
    assert policy.harden_raw(raw) == expected
    assert policy.harden_raw(raw) == expected  # second time from the cache

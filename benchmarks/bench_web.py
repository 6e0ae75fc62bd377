"""Per-request cost of the HTTPS middleware, in process (pytest-benchmark).

Each benchmark drives 1000 requests through a minimal app, with and without
the middleware, so the difference is the middleware's own cost per request.
The end-to-end requests/s comparison under a real server is
``benchmarks/compare_web.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from styku_crypto.web import ASGIMiddleware, HTTPSEnforcer, WSGIMiddleware

N = 1000
HEADERS = [(b"host", b"app.example.com"), (b"user-agent", b"bench"), (b"accept", b"*/*")]
ENFORCER = HTTPSEnforcer(allowed_hosts=["app.example.com"], trusted_proxies=["10.0.0.1"])


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def _send(message: Any) -> None:
    return None


def _scope(scheme: str, peer: str, extra: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": scheme,
        "path": "/account",
        "raw_path": b"/account",
        "query_string": b"",
        "headers": HEADERS + extra,
        "client": (peer, 50000),
    }


SCOPES = {
    "https": _scope("https", "192.0.2.10", []),
    "proxy": _scope(
        "http",
        "10.0.0.1",
        [(b"x-forwarded-proto", b"https"), (b"x-forwarded-for", b"198.51.100.1")],
    ),
    "redirect": _scope("http", "192.0.2.10", []),
}


def _asgi_runner(app: Any, scope: dict[str, Any]) -> Callable[[], None]:
    loop = asyncio.new_event_loop()

    async def many() -> None:
        for _ in range(N):
            await app(dict(scope), _receive, _send)

    return lambda: loop.run_until_complete(many())


@pytest.mark.parametrize("case", ["https", "proxy"])
def test_asgi_bare(benchmark: Any, case: str) -> None:
    """Baseline: 1000 requests straight to the app."""
    benchmark(_asgi_runner(_asgi_app, SCOPES[case]))


@pytest.mark.parametrize("case", ["https", "proxy", "redirect"])
def test_asgi_middleware(benchmark: Any, case: str) -> None:
    """1000 requests through ASGIMiddleware (HTTPS, trusted proxy, or a plain-HTTP redirect)."""
    benchmark(_asgi_runner(ASGIMiddleware(_asgi_app, enforcer=ENFORCER), SCOPES[case]))


def _wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def _environ(case: str) -> dict[str, Any]:
    environ = {
        "wsgi.url_scheme": "https",
        "HTTP_HOST": "app.example.com",
        "REMOTE_ADDR": "192.0.2.10",
        "PATH_INFO": "/account",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
    }
    if case == "proxy":
        environ.update(
            {
                "wsgi.url_scheme": "http",
                "REMOTE_ADDR": "10.0.0.1",
                "HTTP_X_FORWARDED_PROTO": "https",
                "HTTP_X_FORWARDED_FOR": "198.51.100.1",
            }
        )
    elif case == "redirect":
        environ["wsgi.url_scheme"] = "http"
    return environ


def _start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
    return None


def _wsgi_runner(app: Any, case: str) -> Callable[[], None]:
    environ = _environ(case)

    def many() -> None:
        for _ in range(N):
            b"".join(app(dict(environ), _start_response))

    return many


def test_wsgi_bare(benchmark: Any) -> None:
    """Baseline: 1000 WSGI requests straight to the app."""
    benchmark(_wsgi_runner(_wsgi_app, "https"))


@pytest.mark.parametrize("case", ["https", "proxy", "redirect"])
def test_wsgi_middleware(benchmark: Any, case: str) -> None:
    """1000 WSGI requests through WSGIMiddleware (HTTPS, trusted proxy, or a redirect)."""
    benchmark(_wsgi_runner(WSGIMiddleware(_wsgi_app, enforcer=ENFORCER), case))

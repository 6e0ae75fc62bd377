"""Typed usage of styku_crypto.web, checked by ``mypy --strict``."""

from __future__ import annotations

from typing import Any

from styku_crypto.passwords import PasswordHasher
from styku_crypto.tls import profiles
from styku_crypto.web import (
    HSTS,
    ASGIMiddleware,
    ClientCertPolicy,
    ClientCertResult,
    CookiePolicy,
    HTTPSEnforcer,
    LoginGuard,
    LoginResult,
    LoginThrottledError,
    WebCheckReport,
    WSGIMiddleware,
    check_url,
)


def build_enforcer() -> HTTPSEnforcer:
    return HTTPSEnforcer(
        allowed_hosts=["example.com", ".example.com"],
        mode="redirect",
        redirect_status=308,
        exempt_paths=["/healthz"],
        exempt_prefixes=["/.well-known/acme-challenge/"],
        hsts=HSTS(max_age=63072000, include_subdomains=True, preload=False),
        policy=profiles.MOZILLA_INTERMEDIATE,
        trusted_proxies=["10.0.0.0/8"],
        cookies=CookiePolicy(httponly=True, samesite="Lax", script_readable=frozenset({"csrf"})),
        client_cert=None,
    )


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    return None


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    return [b""]


def wrap() -> tuple[ASGIMiddleware, WSGIMiddleware]:
    enforcer = build_enforcer()
    return ASGIMiddleware(asgi_app, enforcer=enforcer), WSGIMiddleware(wsgi_app, enforcer=enforcer)


def client_cert_policy(trust: Any) -> bool:
    policy = ClientCertPolicy(
        policy=profiles.MOZILLA_INTERMEDIATE, trust=trust, proxy_header="x-ssl-client-cert"
    )
    result: ClientCertResult = policy.check(None)
    return result.accepted


async def login(guard: LoginGuard, stored: str | None, password: str) -> str | None:
    try:
        result: LoginResult = await guard.alogin(stored, password, source="192.0.2.1")
    except LoginThrottledError as exc:
        retry: int = exc.retry_after
        del retry
        return None
    return result.new_hash


def make_guard(hasher: PasswordHasher) -> LoginGuard:
    return LoginGuard(hasher, max_pending=16, retry_after=2)


def check(url: str) -> int:
    report: WebCheckReport = check_url(url, policy=profiles.MOZILLA_MODERN, timeout=5.0)
    return report.exit_code

"""LoginGuard: verify + rehash on success, dummy verify for unknown users, bounded queue."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from styku_crypto.exceptions import InvalidInputError, PasswordMismatchError
from styku_crypto.passwords import CHEAPEST, OWASP_M7168_T5, PasswordHasher
from styku_crypto.web import LoginGuard, LoginResult, LoginThrottledError
from tests._support import leaks
from tests.web._servers import run_uvicorn


def _password() -> str:
    value = "pw-" + secrets.token_urlsafe(18)
    leaks.register_secret(value)
    return value


@pytest.fixture
def cheap() -> Iterator[PasswordHasher]:
    """A CHEAPEST hasher (tests only) with two workers."""
    with PasswordHasher(profile=CHEAPEST, insecure_test_only=True, max_concurrency=2) as h:
        yield h


@pytest.fixture
def stronger() -> Iterator[PasswordHasher]:
    """A hasher at OWASP's m=7 MiB, t=5 profile: hashes made by CHEAPEST are weaker."""
    with PasswordHasher(profile=OWASP_M7168_T5, max_concurrency=1) as h:
        yield h


def test_login_success_returns_no_rehash_for_current_hash(cheap: PasswordHasher) -> None:
    """A correct password on a current hash logs in with nothing to store."""
    password = _password()
    guard = LoginGuard(cheap)
    result = guard.login(cheap.hash(password), password)
    assert result == LoginResult(None)
    assert asyncio.run(guard.alogin(cheap.hash(password), password)).new_hash is None


def test_login_rehashes_weaker_hash(cheap: PasswordHasher, stronger: PasswordHasher) -> None:
    """A hash weaker than the profile comes back re-hashed; the new hash verifies."""
    password = _password()
    old = cheap.hash(password)
    result = asyncio.run(LoginGuard(stronger).alogin(old, password))
    assert result.new_hash is not None
    assert result.new_hash != old
    assert stronger.verify(result.new_hash, password) is True
    assert repr(result) == "LoginResult(rehashed=True)"


def test_wrong_password_and_unknown_user_fail_alike(cheap: PasswordHasher) -> None:
    """Wrong password and unknown user raise the same error with the same message."""
    password = _password()
    guard = LoginGuard(cheap)
    stored = cheap.hash(password)
    with pytest.raises(PasswordMismatchError) as wrong:
        guard.login(stored, password + "x")
    with pytest.raises(PasswordMismatchError) as unknown:
        guard.login(None, password)
    assert str(wrong.value) == str(unknown.value)
    with pytest.raises(PasswordMismatchError) as aunknown:
        asyncio.run(guard.alogin(None, password))
    assert str(aunknown.value) == str(wrong.value)
    leaks.assert_no_secret_in("login errors", str(wrong.value) + repr(unknown.value))
    assert guard.pending == 0


def test_unknown_user_runs_dummy_verify(
    cheap: PasswordHasher, caplog: pytest.LogCaptureFixture
) -> None:
    """An unknown user costs a dummy verify (password.failed, reason unknown_user)."""
    with caplog.at_level(logging.INFO, logger="styku_crypto"), pytest.raises(PasswordMismatchError):
        asyncio.run(LoginGuard(cheap).alogin(None, _password(), source="198.51.100.2"))
    events = [r.styku_event for r in caplog.records if hasattr(r, "styku_event")]
    assert any(
        e["event"] == "password.failed" and e.get("reason") == "unknown_user" for e in events
    )


def test_async_burst_over_bound_is_throttled(
    cheap: PasswordHasher, caplog: pytest.LogCaptureFixture
) -> None:
    """With max_pending=2, a burst of 8 admits 2 and refuses 6 at once with web.login_throttled."""
    password = _password()
    stored = cheap.hash(password)
    guard = LoginGuard(cheap, max_pending=2, retry_after=3)

    async def burst() -> list[object]:
        return await asyncio.gather(
            *(guard.alogin(stored, password, source="203.0.113.1") for _ in range(8)),
            return_exceptions=True,
        )

    with caplog.at_level(logging.INFO, logger="styku_crypto.web"):
        results = asyncio.run(burst())
    ok = [r for r in results if isinstance(r, LoginResult)]
    throttled = [r for r in results if isinstance(r, LoginThrottledError)]
    assert len(ok) == 2
    assert len(throttled) == 6
    assert throttled[0].retry_after == 3
    assert guard.pending == 0
    events = [r.styku_event for r in caplog.records if hasattr(r, "styku_event")]
    assert sum(e["event"] == "web.login_throttled" for e in events) == 6
    assert all(
        e.get("source") == "203.0.113.1" for e in events if e["event"] == "web.login_throttled"
    )


def test_sync_threads_over_bound_are_throttled(stronger: PasswordHasher) -> None:
    """From threads, logins beyond max_pending are refused while the others run."""
    password = _password()
    stored = stronger.hash(password)
    guard = LoginGuard(stronger, max_pending=1)
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def worker() -> None:
        start.wait()
        try:
            guard.login(stored, password)
            outcome = "ok"
        except LoginThrottledError:
            outcome = "throttled"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes.count("ok") >= 1
    assert outcomes.count("ok") + outcomes.count("throttled") == 4
    assert guard.pending == 0


def test_max_pending_validated(cheap: PasswordHasher) -> None:
    """max_pending must be a positive integer."""
    for bad in (0, -1, True):
        with pytest.raises(InvalidInputError):
            LoginGuard(cheap, max_pending=bad)


def test_login_endpoint_under_uvicorn(cheap: PasswordHasher) -> None:
    """The documented recipe in a real Starlette app: 200, 401 alike, rehash stored, 429 shape."""
    password = _password()
    users = {"alice": cheap.hash(password)}
    guard = LoginGuard(cheap, max_pending=4)

    async def signin(request: Request) -> Response:
        form = await request.json()
        client = request.client.host if request.client else None
        try:
            result = await guard.alogin(
                users.get(form["user"]), form["password"], actor=form["user"], source=client
            )
        except PasswordMismatchError:
            return JSONResponse({"error": "invalid credentials"}, status_code=401)
        except LoginThrottledError as exc:
            return JSONResponse(
                {"error": "busy"}, status_code=429, headers={"Retry-After": str(exc.retry_after)}
            )
        if result.new_hash is not None:
            users[form["user"]] = result.new_hash
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/signin", signin, methods=["POST"])])
    with run_uvicorn(app) as port, httpx.Client(timeout=10) as client:
        url = f"http://127.0.0.1:{port}/signin"
        assert client.post(url, json={"user": "alice", "password": password}).status_code == 200
        bad = client.post(url, json={"user": "alice", "password": password + "!"})
        unknown = client.post(url, json={"user": "mallory", "password": password})
        assert bad.status_code == unknown.status_code == 401
        assert bad.content == unknown.content

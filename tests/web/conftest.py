"""Fixtures for the web tests: certificates, TLS contexts, apps under real servers."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from styku_crypto.web import ASGIMiddleware, HTTPSEnforcer


@dataclass
class TLSMaterial:
    """A CA and a server certificate for localhost / 127.0.0.1, on disk."""

    ca: trustme.CA
    ca_pem: Path
    cert_pem: Path
    key_pem: Path
    directory: Path

    def server_context(self, *, client_ca: Path | None = None) -> ssl.SSLContext:
        """Our hardened server context (intermediate profile)."""
        from styku_crypto.tls import profiles, server_context

        return server_context(
            policy=profiles.MOZILLA_INTERMEDIATE,
            certfile=self.cert_pem,
            keyfile=self.key_pem,
            client_ca=client_ca,
        )

    def client_context(self) -> ssl.SSLContext:
        """Our hardened client context trusting the test CA."""
        from styku_crypto.tls import client_context, profiles

        return client_context(policy=profiles.MOZILLA_INTERMEDIATE, cafile=self.ca_pem)


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    """A trustme CA and a localhost server certificate written to a temp dir."""
    directory = tmp_path_factory.mktemp("web-tls")
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1", "::1")
    ca_pem = directory / "ca.pem"
    cert_pem = directory / "server.pem"
    key_pem = directory / "server.key"
    ca.cert_pem.write_to_path(str(ca_pem))
    leaf.private_key_pem.write_to_path(str(key_pem))
    with cert_pem.open("wb") as fh:
        for blob in leaf.cert_chain_pems:
            fh.write(blob.bytes())
    return TLSMaterial(ca, ca_pem, cert_pem, key_pem, directory)


async def _home(request: Request) -> Response:
    return PlainTextResponse("home")


async def _login(request: Request) -> Response:
    response = PlainTextResponse("logged in")
    response.set_cookie("session", "opaque-session-value", httponly=False, samesite=None)
    response.set_cookie("prefs", "dark", samesite="strict")
    return response


async def _health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"method": request.method, "length": len(body)})


async def _whoami(request: Request) -> Response:
    cert = request.scope.get("styku_crypto.client_certificate")
    subject = cert.subject.rfc4514_string() if cert is not None else None
    client = request.client.host if request.client else None
    return JSONResponse({"subject": subject, "scheme": request.url.scheme, "client": client})


async def _ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


def starlette_app(enforcer: HTTPSEnforcer) -> Starlette:
    """A small Starlette app behind the HTTPS enforcer."""
    return Starlette(
        routes=[
            Route("/", _home),
            Route("/login", _login, methods=["GET", "POST"]),
            Route("/health", _health),
            Route("/echo", _echo, methods=["POST", "PUT"]),
            Route("/whoami", _whoami),
            WebSocketRoute("/ws", _ws),
        ],
        middleware=[Middleware(ASGIMiddleware, enforcer=enforcer)],
    )

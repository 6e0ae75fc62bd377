"""Real servers on loopback for the web tests: uvicorn (ASGI) and waitress (WSGI)."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from waitress.server import create_server


def _bound_socket(host: str = "127.0.0.1") -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets
    # only when it is explicit (else every response waits ~40 ms for an ACK).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


class TLSExtensionProtocol(H11Protocol):
    """uvicorn's h11 protocol, plus the ASGI TLS extension (``client_cert_chain``).

    uvicorn does not implement the extension; servers that do (and this one)
    put the verified peer certificate in ``scope["extensions"]["tls"]``.
    """

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        der = ssl_object.getpeercert(binary_form=True)
        chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
        extension = {
            "server_cert": None,
            "client_cert_chain": chain,
            "client_cert_name": None,
            "client_cert_error": None,
            "tls_version": None,
            "cipher_suite": None,
        }
        inner = self.app

        async def with_tls(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})["tls"] = extension
            await inner(scope, receive, send)

        self.app = with_tls


@contextlib.contextmanager
def run_uvicorn(
    app: Any,
    *,
    ssl_context: ssl.SSLContext | None = None,
    host: str = "127.0.0.1",
    http: Any = "h11",
) -> Iterator[int]:
    """Serve *app* with uvicorn on an ephemeral loopback port; yield the port."""
    kwargs: dict[str, Any] = {}
    if ssl_context is not None:
        kwargs["ssl_context_factory"] = lambda _config, _default: ssl_context
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # the middleware decides whom to trust
        http=http,
        ws="websockets-sansio",
        **kwargs,
    )
    server = uvicorn.Server(config)
    sock = _bound_socket(host)
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def raw_request(port: int, request: bytes, *, host: str = "127.0.0.1") -> tuple[int, bytes]:
    """Send *request* verbatim over plain TCP; return (status, raw response head)."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0]
    status = int(head.split(b" ", 2)[1])
    return status, head


@contextlib.contextmanager
def run_waitress(app: Callable[..., Any], *, host: str = "127.0.0.1") -> Iterator[int]:
    """Serve the WSGI *app* with waitress on an ephemeral loopback port; yield the port."""
    server = create_server(app, host=host, port=0, threads=2, clear_untrusted_proxy_headers=False)
    port = server.effective_port  # type: ignore[union-attr]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield int(port)
    finally:
        logging.getLogger("waitress").setLevel(logging.FATAL)
        server.close()
        # Wake and empty the asyncore map so run() returns.
        for channel in list(server._map.values()):  # type: ignore[union-attr]
            with contextlib.suppress(Exception):
                channel.handle_close()
        server.task_dispatcher.shutdown()  # type: ignore[union-attr]
        thread.join(10)

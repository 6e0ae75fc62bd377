"""moto's stand-alone server over real HTTP on loopback, plus a fault-injecting proxy.

``moto.server.ThreadedMotoServer`` runs the AWS API emulation (KMS, S3) as a
real HTTP server on ``127.0.0.1`` and a free port: clients talk to it through
botocore's real HTTP stack, exactly as to AWS (no in-process patching).

:class:`FaultProxy` is a tiny forwarding HTTP proxy that we control, placed
between a client and moto. It counts requests per API operation and can inject
the failures a KMS or bucket shows in production: throttling
(``ThrottlingException``), internal errors (HTTP 500), dropped connections, a
hang longer than the client's read timeout, a response trickled one byte per
``trickle_interval`` seconds (each socket read succeeds, so a per-read timeout
never fires), or being down (connection refused).
Failures can be permanent (``mode``) or for the next *n* requests
(``fail_next``), to exercise bounded retries.

Use it from a ``conftest.py``::

    from tests._support.moto_server import moto_server, fault_proxy  # noqa: F401
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = [
    "AWS_ENV",
    "FaultProxy",
    "MotoServer",
    "fault_proxy",
    "kms_client",
    "moto_server",
]

#: Dummy credentials and region for talking to moto (never real AWS).
AWS_ENV = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "region_name": "us-east-1",
}

MODES = ("ok", "throttle", "error", "reset", "hang", "down", "trickle")


class MotoServer:
    """moto's threaded server on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.host = host
        self.port = port
        self.endpoint = f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop the server thread."""
        self._server.stop()


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _ProxyHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _handle(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        target = self.headers.get("X-Amz-Target", "")
        operation = target.rsplit(".", 1)[-1] if target else f"{self.command} {self.path}"
        mode = proxy.take_mode(operation)
        proxy.count_bytes(up=len(body), down=0)
        if mode == "throttle":
            self._reply(
                400,
                {"__type": "ThrottlingException", "message": "Rate exceeded"},
                error="ThrottlingException",
            )
            return
        if mode == "error":
            self._reply(500, {"__type": "KMSInternalException", "message": "internal"})
            return
        if mode == "reset":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "hang":
            time.sleep(proxy.hang_seconds)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            headers["Host"] = f"{proxy.upstream_host}:{proxy.upstream_port}"
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            proxy.count_bytes(up=0, down=len(data))
            if mode == "trickle":
                self._trickle(resp, data, proxy.trickle_interval)
                return
            self.send_response(resp.status)
            for key, value in resp.getheaders():
                if key.lower() in {"content-length", "transfer-encoding", "connection"}:
                    continue
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        finally:
            conn.close()

    def _trickle(self, resp: http.client.HTTPResponse, data: bytes, interval: float) -> None:
        """Send the upstream response one byte at a time, *interval* seconds apart."""
        self.close_connection = True
        head = f"HTTP/1.1 {resp.status} {resp.reason}\r\n".encode()
        for key, value in resp.getheaders():
            if key.lower() not in {"content-length", "transfer-encoding", "connection"}:
                head += f"{key}: {value}\r\n".encode()
        head += f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
        with contextlib.suppress(OSError):
            for i in range(len(head + data)):
                self.wfile.write((head + data)[i : i + 1])
                self.wfile.flush()
                time.sleep(interval)

    def _reply(self, status: int, payload: dict[str, str], *, error: str | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        if error:
            self.send_header("x-amzn-ErrorType", error)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle  # noqa: N815


class _ProxyHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy


class FaultProxy:
    """A forwarding proxy in front of *upstream* that counts calls and injects faults.

    Attributes:
        endpoint: the URL clients use instead of the upstream's.
        calls: a :class:`collections.Counter` of requests per operation
            (KMS ``X-Amz-Target`` operation names, e.g. ``"Decrypt"``).
        bytes_up, bytes_down: request and response body bytes that crossed the
            proxy (what a client sent and received over the network).
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.calls: Counter[str] = Counter()
        self.bytes_up = 0
        self.bytes_down = 0
        self.mode = "ok"
        self.hang_seconds = 3.0
        self.trickle_interval = 0.2
        self._next: list[str] = []
        self._lock = threading.Lock()
        self._httpd: _ProxyHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self._serve(port=0)

    @property
    def endpoint(self) -> str:
        """The proxy's URL."""
        return f"http://127.0.0.1:{self.port}"

    def _serve(self, *, port: int) -> None:
        httpd = _ProxyHTTPServer(("127.0.0.1", port), _ProxyHandler)
        httpd.proxy = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        self._thread.start()

    def _shutdown(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def set_mode(self, mode: str) -> None:
        """Set the permanent behaviour: one of ``ok, throttle, error, reset, hang, down, trickle``.

        ``down`` closes the listening socket (connection refused) until another
        mode is set.
        """
        if mode not in MODES:
            raise ValueError(mode)
        with self._lock:
            self._next.clear()
            previous, self.mode = self.mode, mode
        if mode == "down" and previous != "down":
            self._shutdown()
        elif mode != "down" and previous == "down":
            self._serve(port=self.port)

    def fail_next(self, count: int, mode: str = "throttle") -> None:
        """Make the next *count* requests fail with *mode*, then behave per ``mode``."""
        with self._lock:
            self._next.extend([mode] * count)

    def take_mode(self, operation: str) -> str:
        """Record one request for *operation* and return how to treat it."""
        with self._lock:
            self.calls[operation] += 1
            if self._next:
                return self._next.pop(0)
            # A keep-alive connection accepted before "down" is dropped too.
            return "reset" if self.mode == "down" else self.mode

    def count_bytes(self, *, up: int, down: int) -> None:
        """Add body bytes sent up (requests) and down (responses)."""
        with self._lock:
            self.bytes_up += up
            self.bytes_down += down

    def reset_counts(self) -> None:
        """Zero the per-operation call counters and the byte counters."""
        with self._lock:
            self.calls.clear()
            self.bytes_up = self.bytes_down = 0

    def close(self) -> None:
        """Stop the proxy."""
        self._shutdown()


def kms_client(endpoint: str) -> Any:
    """A boto3 KMS client for *endpoint* with moto's dummy credentials."""
    import boto3

    return boto3.client("kms", endpoint_url=endpoint, **AWS_ENV)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server for the whole session (KMS, S3, ...), stopped at teardown."""
    server = MotoServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fault_proxy(moto_server: MotoServer) -> Iterator[FaultProxy]:
    """A fresh fault-injecting proxy in front of the session's moto server."""
    proxy = FaultProxy(moto_server.host, moto_server.port)
    try:
        yield proxy
    finally:
        proxy.close()

"""Real loopback TLS: a one-shot server thread and stdlib / pyOpenSSL clients."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

from OpenSSL import SSL

from styku_crypto.tls import pyopenssl_client_connection

TIMEOUT = 5.0


def _blocking_with_os_timeout(sock: socket.socket) -> None:
    """pyOpenSSL needs a blocking socket; bound it with kernel-level timeouts instead."""
    sock.settimeout(None)
    timeval = struct.pack("ll", int(TIMEOUT), 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


@dataclass
class ServerRun:
    port: int
    thread: threading.Thread
    error: list[BaseException] = field(default_factory=list)
    peer_cert: list[Any] = field(default_factory=list)

    def join(self) -> None:
        self.thread.join(TIMEOUT * 2)
        assert not self.thread.is_alive(), "server thread did not finish"


def serve_once(ctx: Any) -> ServerRun:
    """Accept one connection on 127.0.0.1 with *ctx* (stdlib or pyOpenSSL), echo one message."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(TIMEOUT)
    run = ServerRun(port=listener.getsockname()[1], thread=threading.Thread())

    def main() -> None:
        try:
            conn, _ = listener.accept()
            conn.settimeout(TIMEOUT)
            if isinstance(ctx, ssl.SSLContext):
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    run.peer_cert.append(tls.getpeercert())
                    data = tls.recv(64)
                    tls.sendall(b"pong:" + data)
            else:
                _blocking_with_os_timeout(conn)
                tls = SSL.Connection(ctx, conn)
                tls.set_accept_state()
                tls.do_handshake()
                run.peer_cert.append(tls.get_peer_certificate())
                data = tls.recv(64)
                tls.sendall(b"pong:" + data)
                tls.shutdown()
                conn.close()
        except BaseException as exc:
            run.error.append(exc)
        finally:
            listener.close()

    run.thread = threading.Thread(target=main, daemon=True)
    run.thread.start()
    return run


@dataclass(frozen=True)
class ClientResult:
    version: str
    cipher: str
    reply: bytes


def connect(ctx: Any, port: int, hostname: str = "localhost") -> ClientResult:
    """Connect with *ctx* (stdlib or pyOpenSSL), send ``ping``, return what was negotiated."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        if isinstance(ctx, ssl.SSLContext):
            with ctx.wrap_socket(sock, server_hostname=hostname) as tls:
                tls.sendall(b"ping")
                reply = tls.recv(64)
                cipher = tls.cipher()
                return ClientResult(str(tls.version()), cipher[0] if cipher else "", reply)
        _blocking_with_os_timeout(sock)
        conn = pyopenssl_client_connection(ctx, sock, hostname=hostname)
        conn.do_handshake()
        conn.sendall(b"ping")
        reply = conn.recv(64)
        return ClientResult(conn.get_protocol_version_name(), conn.get_cipher_name() or "", reply)
    finally:
        sock.close()


def raw_pyopenssl_client(
    *,
    versions: tuple[int, int] = (SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION),
    ciphers: bytes | None = None,
    tls13_suites: bytes | None = None,
    groups: bytes | None = None,
) -> Any:
    """An unverified pyOpenSSL client context offering exactly what is given."""
    from OpenSSL._util import lib

    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(versions[0])
    ctx.set_max_proto_version(versions[1])
    if ciphers is not None:
        ctx.set_cipher_list(ciphers)
    if tls13_suites is not None:
        ctx.set_tls13_ciphersuites(tls13_suites)
    if groups is not None:
        assert lib.SSL_CTX_set1_curves_list(ctx._context, groups) == 1
    ctx.set_verify(SSL.VERIFY_NONE, None)
    return ctx

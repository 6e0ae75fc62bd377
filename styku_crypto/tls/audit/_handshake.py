"""Full-handshake facts: the things only a completed handshake shows.

The scanner completes handshakes with the local OpenSSL (through pyOpenSSL
and the stdlib :mod:`ssl`) at security level 0 and with certificate
verification off: the goal is to *observe* the server, and the certificate is
judged afterwards by the certificate policy. Nothing here authenticates the
peer, and no data other than one ``GET /`` request is sent.

Facts gathered: the certificate chain (TLS 1.3-only servers encrypt it),
OCSP stapling under TLS 1.3, ALPN (h2, http/1.1), session resumption, client-
initiated renegotiation (TLS 1.2 and older) and the HSTS header. ALPN is
learnt from two handshakes: pyOpenSSL offers ``h2`` and ``http/1.1``, the
HTTPS ``GET`` offers only ``http/1.1``.

Each connection runs in a worker thread on a socket with a deadline; a server
that stalls costs at most the timeout.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from styku_crypto.tls.audit._model import Facts, Target
from styku_crypto.tls.audit._starttls import PreambleError, open_sync, protocol_for

__all__ = ["client_renegotiation", "fetch_hsts_and_resumption", "peer_facts"]

_T = TypeVar("_T")
_ALPN_LOCK = threading.Lock()
_SCAN_CIPHERS = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"
_MAX_HEADER_BYTES = 64 * 1024
_MAX_AGE = re.compile(r"(?:^|;)\s*max-age\s*=\s*\"?(\d{1,12})\"?\s*(?:;|$)", re.IGNORECASE)


class _Deadline:
    def __init__(self, timeout: float) -> None:
        self.end = time.monotonic() + timeout

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        return left


def _stdlib_context(*, alpn: bool = True) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # observing, not trusting: the chain is judged later
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers(_SCAN_CIPHERS)
    if alpn:
        ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _connect(target: Target, deadline: _Deadline) -> socket.socket:
    """A TCP connection with the target's preamble (STARTTLS...) done, ready for TLS."""
    sock = socket.create_connection((target.host, target.port), timeout=deadline.left())
    try:
        sock.settimeout(deadline.left())
        open_sync(protocol_for(target.protocol, target.port), target.server_name, sock)
        sock.settimeout(deadline.left())
    except BaseException:
        sock.close()
        raise
    return sock


def _http_get(tls: ssl.SSLSocket, target: Target, deadline: _Deadline) -> bytes:
    host = target.server_name if ":" not in target.server_name else f"[{target.server_name}]"
    request = (
        f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: styku-crypto-tls-audit\r\n"
        "Connection: close\r\n\r\n"
    )
    tls.settimeout(deadline.left())
    tls.sendall(request.encode("ascii"))
    data = b""
    while b"\r\n\r\n" not in data and len(data) < _MAX_HEADER_BYTES:
        tls.settimeout(deadline.left())
        try:
            chunk = tls.recv(8192)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n\r\n", 1)[0]


def parse_hsts(headers: bytes) -> tuple[str | None, int | None]:
    """Return the Strict-Transport-Security value and its max-age from raw headers.

    A header that is present but malformed yields ``(value, None)``.
    """
    lines = headers.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/"):
        return None, None
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == "strict-transport-security":
            value = value.strip()
            match = _MAX_AGE.search(value)
            return value, int(match.group(1)) if match else None
    return None, None


def fetch_hsts_and_resumption(target: Target, timeout: float, facts: Facts) -> None:
    """HTTPS ``GET /`` for the HSTS header, then reconnect offering the session."""
    protocol = protocol_for(target.protocol, target.port)
    ctx = _stdlib_context(alpn=protocol.http)
    deadline = _Deadline(timeout)
    session = None
    headers = b""
    try:
        with (
            _connect(target, deadline) as raw,
            ctx.wrap_socket(raw, server_hostname=_sni(target)) as tls,
        ):
            if tls.selected_alpn_protocol() == "http/1.1":
                _add_alpn(facts, "http/1.1")
            if protocol.http:
                headers = _http_get(tls, target, deadline)
            session = tls.session
        if protocol.http:
            facts.hsts, facts.hsts_max_age = parse_hsts(headers)
            if not headers.startswith(b"HTTP/"):
                facts.skip("hsts", "the server did not answer GET / with HTTP")
        else:
            facts.skip("hsts", f"not applicable: {protocol.title} is not HTTP")
    except (OSError, ssl.SSLError, TimeoutError, ValueError, PreambleError) as exc:
        if protocol.http:
            facts.skip("hsts", f"HTTPS GET failed: {_describe(exc)}")
        else:
            facts.skip("hsts", f"not applicable: {protocol.title} is not HTTP")
    if session is None:
        facts.skip("session_resumption", "no session from the first handshake")
        return
    deadline = _Deadline(timeout)
    try:
        with (
            _connect(target, deadline) as raw,
            ctx.wrap_socket(raw, server_hostname=_sni(target), session=session) as tls,
        ):
            facts.session_resumption = tls.session_reused
    except (OSError, ssl.SSLError, TimeoutError, PreambleError) as exc:
        facts.skip("session_resumption", f"second handshake failed: {_describe(exc)}")


def _add_alpn(facts: Facts, protocol: str) -> None:
    """Record an ALPN protocol the server selected (h2 first, then http/1.1)."""
    with _ALPN_LOCK:  # two worker threads report ALPN for the same target
        if protocol not in facts.alpn:
            facts.alpn.append(protocol)
            facts.alpn.sort(key=lambda p: (p != "h2", p))


def _sni(target: Target) -> str | None:
    import ipaddress

    try:
        ipaddress.ip_address(target.server_name)
    except ValueError:
        return target.server_name
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return text[:160]


def _retrying(conn: Any, sock: socket.socket, deadline: _Deadline, fn: Callable[[], _T]) -> _T:
    from OpenSSL import SSL

    while True:
        try:
            return fn()
        except SSL.WantReadError:
            ready = select.select([sock], [], [], deadline.left())[0]
            if not ready:
                raise TimeoutError("timed out") from None
        except SSL.WantWriteError:
            ready = select.select([], [sock], [], deadline.left())[1]
            if not ready:
                raise TimeoutError("timed out") from None


def _pyopenssl_connection(
    target: Target, deadline: _Deadline, *, max_version: int | None, ocsp: list[bytes] | None
) -> tuple[Any, socket.socket]:
    from OpenSSL import SSL

    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_VERSION)
    if max_version is not None:
        ctx.set_max_proto_version(max_version)
    ctx.set_cipher_list(_SCAN_CIPHERS.encode("ascii"))
    ctx.set_verify(SSL.VERIFY_NONE)  # observing, not trusting
    if protocol_for(target.protocol, target.port).http:
        ctx.set_alpn_protos([b"h2", b"http/1.1"])  # HTTP's ALPN ids mean nothing on SMTP...
    ctx.set_options(SSL.OP_LEGACY_SERVER_CONNECT)
    if ocsp is not None:

        def _ocsp(_conn: Any, data: bytes, _arg: Any) -> bool:
            ocsp.append(bytes(data))
            return True

        ctx.set_ocsp_client_callback(_ocsp)
    sock = _connect(target, deadline)
    sock.setblocking(False)
    conn = SSL.Connection(ctx, sock)
    sni = _sni(target)
    if sni:
        conn.set_tlsext_host_name(sni.encode("idna"))
    if ocsp is not None:
        conn.request_ocsp()
    conn.set_connect_state()
    _retrying(conn, sock, deadline, conn.do_handshake)
    return conn, sock


def peer_facts(target: Target, timeout: float, facts: Facts) -> None:
    """Chain, stapled OCSP, ALPN and the negotiated version/suite of a full handshake."""
    from OpenSSL import SSL

    protocol = protocol_for(target.protocol, target.port)
    if not protocol.http:
        facts.skip("alpn", f"not applicable: {protocol.title} does not use HTTP's ALPN ids")

    deadline = _Deadline(timeout)
    ocsp: list[bytes] = []
    try:
        conn, sock = _pyopenssl_connection(target, deadline, max_version=None, ocsp=ocsp)
    except (OSError, SSL.Error, TimeoutError, PreambleError) as exc:
        facts.skip("handshake", f"full handshake failed with the local OpenSSL: {_describe(exc)}")
        return
    try:
        chain = conn.get_peer_cert_chain(as_cryptography=True) or []
        if chain:
            from cryptography.hazmat.primitives.serialization import Encoding

            facts.certificates = [c.public_bytes(Encoding.DER) for c in chain]
        facts.negotiated_protocol = conn.get_protocol_version_name()
        facts.negotiated_suite = conn.get_cipher_name()
        alpn = conn.get_alpn_proto_negotiated()
        if alpn:
            _add_alpn(facts, alpn.decode("ascii", "replace"))
        # Either handshake seeing a staple is enough (the prober asks under TLS 1.2).
        facts.ocsp_stapling = bool(facts.ocsp_stapling) or bool(ocsp and ocsp[0])
    finally:
        with contextlib.suppress(Exception):
            conn.shutdown()
        sock.close()


def client_renegotiation(target: Target, timeout: float, facts: Facts) -> None:
    """Does the server accept a renegotiation the client starts (TLS 1.2 and older)?"""
    from OpenSSL import SSL

    deadline = _Deadline(timeout)
    try:
        conn, sock = _pyopenssl_connection(
            target, deadline, max_version=SSL.TLS1_2_VERSION, ocsp=None
        )
    except (OSError, SSL.Error, TimeoutError, PreambleError) as exc:
        facts.skip(
            "client_renegotiation",
            f"TLS 1.2 handshake failed with the local OpenSSL: {_describe(exc)}",
        )
        return
    try:
        if not conn.renegotiate():
            facts.skip("client_renegotiation", "the local OpenSSL refused to start renegotiation")
            return
        try:
            # A server that refuses answers the new ClientHello with an alert or
            # a hang-up: the handshake fails here.
            _retrying(conn, sock, deadline, conn.do_handshake)
        except (SSL.Error, OSError):
            facts.client_renegotiation = False
            return
        except TimeoutError:
            facts.skip("client_renegotiation", "no answer to the renegotiation within the timeout")
            return
        # Let records flow once so a renegotiation still pending settles. What
        # the server does with the application bytes afterwards (answer, or hang
        # up: slapd sometimes does) says nothing about the renegotiation itself.
        nudge = protocol_for(target.protocol, target.port).nudge
        with contextlib.suppress(SSL.Error, OSError, TimeoutError):
            _retrying(conn, sock, deadline, lambda: conn.send(nudge))
            _retrying(conn, sock, deadline, lambda: conn.recv(1))
        facts.client_renegotiation = not conn.renegotiate_pending()
    finally:
        with contextlib.suppress(Exception):
            conn.shutdown()
        sock.close()

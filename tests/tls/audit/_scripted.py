"""Scripted STARTTLS servers: the server side of every preamble, then real TLS.

Each server speaks its protocol's preamble by hand (the part that is plain
text or BER or a MySQL packet), then hands the socket to Python's ``ssl``
(OpenSSL) for a real TLS handshake. Modes:

* ``ok``: the preamble succeeds and TLS follows;
* ``refuse``: the server speaks the protocol but will not start TLS;
* ``silent``: accepts the connection and never sends a byte;
* ``garbage``: agrees to start TLS, then sends bytes that are not TLS;
* ``inject``: agrees and sends extra plaintext in the same write (the STARTTLS
  command-injection pattern);
* ``http``: a plain HTTP server (not the protocol at all).
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
import warnings

from tests.tls.audit._bed import Server, _serve

_XMPP_NS = "xmlns='urn:ietf:params:xml:ns:xmpp-tls'"

#: The protocols with a preamble.
PROTOCOLS = ("postgres", "mysql", "smtp", "imap", "pop3", "ldap", "ftp", "xmpp")


def oakley2_pem() -> bytes:
    """PEM DH parameters of RFC 2409's 1024-bit Oakley group 2 (generator 2)."""
    from cryptography.hazmat.primitives.asymmetric import dh
    from cryptography.hazmat.primitives.serialization import Encoding, ParameterFormat

    from styku_crypto.tls.audit._dhgroups import known_groups

    prime = next(p for p, g in known_groups().items() if g.name == "Oakley group 2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography deprecates FFDH; this is a test server
        params = dh.DHParameterNumbers(prime, 2).parameters()
    return params.parameter_bytes(Encoding.PEM, ParameterFormat.PKCS3)


def _read_until(conn: socket.socket, done: bytes, limit: int = 8192) -> bytes:
    data = b""
    while done not in data and len(data) < limit:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("client left")
        data += chunk
    return data


def _read_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("client left")
        data += chunk
    return data


def _ldap_response(code: int, diagnostic: bytes = b"") -> bytes:
    body = (
        b"\x0a\x01" + bytes([code]) + b"\x04\x00" + b"\x04" + bytes([len(diagnostic)]) + diagnostic
    )
    op = b"\x78" + bytes([len(body)]) + body
    message = b"\x02\x01\x01" + op
    return b"\x30" + bytes([len(message)]) + message


def _mysql_greeting(ssl_flag: bool) -> bytes:
    caps = 0xFFFF if ssl_flag else 0xFFFF & ~0x0800
    payload = (
        b"\x0a"
        + b"10.11.99-MariaDB-scripted\x00"
        + struct.pack("<I", 7)
        + b"abcdefgh\x00"
        + struct.pack("<H", caps)
        + b"\x21"
        + struct.pack("<H", 2)
        + struct.pack("<H", 0x81FF)
        + b"\x15"
        + b"\x00" * 10
        + b"ijklmnopqrst\x00"
        + b"mysql_native_password\x00"
    )
    return len(payload).to_bytes(3, "little") + b"\x00" + payload


class PreambleViolationError(Exception):
    """The client did not speak the preamble (e.g. sent a ClientHello straight away)."""


def _expect(data: bytes, prefix: bytes) -> None:
    if not data.startswith(prefix):
        raise PreambleViolationError(f"expected {prefix!r}, got {data[:16]!r}")


def _preamble(protocol: str, conn: socket.socket, refuse: bool) -> bytes:
    """Speak the server side; return the go-ahead to send (or raise to stop).

    Raises:
        PreambleViolationError: the client's bytes are not the protocol's next command.
    """
    if protocol == "smtp":
        conn.sendall(b"220 mx.test ESMTP scripted\r\n")
        _expect(_read_until(conn, b"\n"), b"EHLO ")
        ext = b"" if refuse else b"250-STARTTLS\r\n"
        conn.sendall(b"250-mx.test\r\n250-PIPELINING\r\n" + ext + b"250 8BITMIME\r\n")
        if refuse:
            raise ConnectionError("done")
        _expect(_read_until(conn, b"\n"), b"STARTTLS\r\n")
        return b"220 2.0.0 Ready to start TLS\r\n"
    if protocol == "imap":
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] scripted ready\r\n")
        _expect(_read_until(conn, b"\n"), b"S1 STARTTLS\r\n")
        if refuse:
            conn.sendall(b"S1 BAD STARTTLS not supported\r\n")
            raise ConnectionError("done")
        return b"S1 OK Begin TLS negotiation now\r\n"
    if protocol == "pop3":
        conn.sendall(b"+OK scripted POP3 ready\r\n")
        _expect(_read_until(conn, b"\n"), b"STLS\r\n")
        if refuse:
            conn.sendall(b"-ERR STLS not supported\r\n")
            raise ConnectionError("done")
        return b"+OK Begin TLS\r\n"
    if protocol == "ftp":
        conn.sendall(b"220-scripted FTP\r\n220 ready\r\n")
        _expect(_read_until(conn, b"\n"), b"AUTH TLS\r\n")
        if refuse:
            conn.sendall(b"502 AUTH TLS not implemented\r\n")
            raise ConnectionError("done")
        return b"234 Proceed with negotiation.\r\n"
    if protocol == "ldap":
        first = _read_exactly(conn, 2)
        _expect(first, b"\x30")
        _expect(_read_exactly(conn, first[1])[-22:], b"1.3.6.1.4.1.1466.20037")
        if refuse:
            conn.sendall(_ldap_response(2, b"unsupported extended operation"))
            raise ConnectionError("done")
        return _ldap_response(0)
    if protocol == "xmpp":
        _expect(_read_until(conn, b"version='1.0'>"), b"<?xml")
        starttls = b"" if refuse else f"<starttls {_XMPP_NS}><required/></starttls>".encode()
        conn.sendall(
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            b"xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='xmpp.test' "
            b"version='1.0'><stream:features>" + starttls + b"</stream:features>"
        )
        if refuse:
            raise ConnectionError("done")
        _expect(_read_until(conn, b"/>"), b"<starttls ")
        return f"<proceed {_XMPP_NS}/>".encode()
    if protocol == "postgres":
        _expect(_read_exactly(conn, 8), b"\x00\x00\x00\x08\x04\xd2\x16\x2f")
        if refuse:
            conn.sendall(b"N")
            raise ConnectionError("done")
        return b"S"
    if protocol == "mysql":
        conn.sendall(_mysql_greeting(not refuse))
        if refuse:
            _read_exactly(conn, 4)
            raise ConnectionError("done")
        header = _read_exactly(conn, 4)
        _expect(header, b"\x20\x00\x00\x01")  # a 32-byte SSLRequest, sequence 1
        _read_exactly(conn, int.from_bytes(header[:3], "little"))
        return b""
    raise ValueError(protocol)


#: Per scripted server: [connections whose preamble was right, connections that skipped it].
PREAMBLES: dict[str, list[int]] = {}


def scripted_server(name: str, protocol: str, ctx: ssl.SSLContext, mode: str = "ok") -> Server:
    """A server doing *protocol*'s preamble in *mode*, then TLS with *ctx*.

    For ``ok`` servers, :data:`PREAMBLES` counts connections that spoke the
    preamble correctly and those that did not.
    """
    counts = PREAMBLES.setdefault(name, [0, 0])

    def handle(conn: socket.socket) -> None:
        conn.settimeout(8)
        if mode == "silent":
            time.sleep(3)  # longer than the scan timeout (1.5 s), short for teardown
            return
        if mode == "http":
            if protocol in {"postgres", "ldap", "xmpp"}:
                conn.recv(4096)  # these clients speak first
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        try:
            go = _preamble(protocol, conn, refuse=mode == "refuse")
        except PreambleViolationError:
            counts[1] += 1
            raise
        counts[0] += 1
        if mode == "garbage":
            conn.sendall(go)
            if conn.recv(4096):  # the ClientHello: answer it with something that is not TLS
                conn.sendall(b"this is not TLS at all\r\n" * 4)
            return
        if mode == "inject":
            conn.sendall(go + b"250 injected\r\n")
            return
        if go:
            conn.sendall(go)
        with ctx.wrap_socket(conn, server_side=True) as tls:
            while True:
                chunk = tls.recv(4096)
                if not chunk:
                    return
                tls.sendall(b"OK\r\n")

    return _serve(name, handle)

"""Protocol-specific TLS entry: STARTTLS and friends, as small sans-I/O conversations.

Each protocol whose TLS does not start at the first byte (PostgreSQL's
SSLRequest, MySQL/MariaDB's SSL capability flag, SMTP/IMAP/POP3/FTP/XMPP
STARTTLS, LDAP's StartTLS extended operation) is one generator here: it yields
a :class:`Step` (bytes to send, and how to tell when the server's reply is
complete) and receives the reply. The generator never touches a socket, so
the asynchronous prober and the threaded full handshakes drive the very same
conversation (:func:`open_async`, :func:`open_sync`).

Guarantees:

* every reply is length-capped (:data:`MAX_REPLY`) and every wait happens
  under the caller's deadline, so a silent or drip-feeding server costs at most
  the probe's timeout;
* a refusal ("STARTTLS not supported", PostgreSQL's ``N``, a missing MySQL SSL
  flag), a reply that is not the protocol at all, or bytes sent after the
  server agreed to start TLS (the STARTTLS command-injection pattern,
  CVE-2011-0411 and CVE-2021-23214) raise :class:`PreambleError` with a
  message that quotes what the server said, printable characters only.

The table :data:`PROTOCOLS` is the one registry: a new protocol is one entry
and one generator.
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct
from collections.abc import Callable, Generator
from dataclasses import dataclass

__all__ = [
    "MAX_REPLY",
    "PROTOCOLS",
    "PreambleError",
    "Protocol",
    "Step",
    "describe_foreign",
    "open_async",
    "open_sync",
    "preamble_of",
    "protocol_for",
]

#: Longest reply any preamble step accepts (bytes).
MAX_REPLY = 64 * 1024

Frame = Callable[[bytes], int | None]


class PreambleError(Exception):
    """The server refused to start TLS, or did not speak the protocol.

    Attributes:
        kind: ``refused`` (it speaks the protocol but will not start TLS),
            ``foreign`` (it does not speak the protocol), ``closed`` (it hung up)
            or ``injection`` (bytes after its go-ahead).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Step:
    """One client turn: send *send*, then read until *frame* says the reply is whole.

    ``frame(buffer)`` returns the length of the complete reply at the start of
    *buffer*, ``None`` while more bytes are needed, or raises
    :class:`PreambleError`. ``frame=None`` means no reply is expected (TLS
    starts right after *send*).
    """

    send: bytes
    frame: Frame | None


Conversation = Generator[Step, bytes, None]


@dataclass(frozen=True)
class Protocol:
    """One way into TLS.

    Attributes:
        name: the ``--starttls`` / URL scheme name.
        port: the default port.
        preamble: builds the conversation for a server name, or ``None`` when
            TLS starts at the first byte.
        http: HTTP-only checks (HSTS) apply.
        nudge: application bytes sent after a handshake to make the server
            answer (the client-renegotiation check needs records to flow).
        title: the protocol's display name.
    """

    name: str
    port: int
    preamble: Callable[[str], Conversation] | None
    http: bool
    nudge: bytes
    title: str


# --- text helpers -------------------------------------------------------------------


def _printable(data: bytes, limit: int = 80) -> str:
    """Server text for a message: printable ASCII only, one line, truncated."""
    text = "".join(chr(b) if 32 <= b < 127 else " " for b in data[: limit * 2])
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


def describe_foreign(data: bytes) -> str | None:
    """Name the protocol a non-TLS answer looks like, or ``None`` if unrecognised."""
    head = data[:512]
    upper = head.upper()
    if head.startswith(b"HTTP/"):
        status = head.split(b"\r\n", 1)[0]
        return f"plain HTTP (it answered {_printable(status)!r})"
    if head.startswith(b"SSH-"):
        return "SSH"
    if head.startswith(b"220") and b"FTP" in upper:
        return "FTP (a 220 greeting: try --starttls ftp)"
    if head.startswith(b"220"):
        return "SMTP (a 220 greeting: try --starttls smtp)"
    if head.startswith((b"* OK", b"* PREAUTH")):
        return "IMAP (try --starttls imap)"
    if head.startswith(b"+OK"):
        return "POP3 (try --starttls pop3)"
    if head.startswith((b"<?xml", b"<stream")):
        return "XMPP (try --starttls xmpp)"
    if len(head) >= 5 and head[3] == 0 and head[4] == 0x0A:
        return "MySQL/MariaDB (a server greeting: try --starttls mysql)"
    if len(head) >= 3 and head[0] == 0x16 and head[1] == 3:
        return "TLS from the first byte (implicit TLS: drop --starttls)"
    if head and all(32 <= b < 127 or b in b"\r\n\t" for b in head):
        return f"a text protocol (it sent {_printable(head)!r})"
    return None


def _crlf_lines(buffer: bytes) -> list[bytes]:
    """The complete lines at the start of *buffer* (LF-terminated, CR stripped)."""
    lines = buffer.split(b"\n")
    return [line.rstrip(b"\r") for line in lines[:-1]]


def _foreign(protocol: str, buffer: bytes) -> PreambleError:
    what = describe_foreign(buffer)
    said = what if what else f"bytes {buffer[:8].hex()}"
    return PreambleError("foreign", f"not {protocol}: the server speaks {said}")


def _reply_code_frame(protocol: str) -> Frame:
    """SMTP/FTP replies: ``NNN-...`` continues, ``NNN ...`` ends (RFC 5321 4.2, RFC 959 4.2)."""

    def frame(buffer: bytes) -> int | None:
        consumed = 0
        for line in _crlf_lines(buffer):
            consumed = buffer.index(b"\n", consumed) + 1
            code = line[:3]
            if not code.isdigit() or (len(line) > 3 and line[3:4] not in b" -"):
                raise _foreign(protocol, buffer)
            if line[3:4] != b"-":
                return consumed
        if buffer and not buffer[:1].isdigit():
            raise _foreign(protocol, buffer)
        return None

    return frame


def _line_frame(buffer: bytes) -> int | None:
    end = buffer.find(b"\n")
    return None if end < 0 else end + 1


def _tagged_frame(tag: bytes, protocol: str) -> Frame:
    """IMAP: untagged ``*`` lines until the line carrying *tag* (RFC 9051 2.2.2)."""

    def frame(buffer: bytes) -> int | None:
        consumed = 0
        for line in _crlf_lines(buffer):
            consumed = buffer.index(b"\n", consumed) + 1
            if line.startswith(tag + b" "):
                return consumed
            if not line.startswith(b"* "):
                raise _foreign(protocol, buffer)
        return None

    return frame


def _code(reply: bytes) -> bytes:
    return reply[:3]


# --- the conversations ------------------------------------------------------------------


def _smtp(server_name: str) -> Conversation:
    frame = _reply_code_frame("SMTP")
    greeting = yield Step(b"", frame)
    if _code(greeting) != b"220":
        raise PreambleError("refused", f"SMTP greeting is not 220: {_printable(greeting)!r}")
    ehlo = yield Step(b"EHLO styku-tls-audit.invalid\r\n", frame)
    if _code(ehlo) != b"250":
        raise PreambleError("refused", f"SMTP EHLO refused: {_printable(ehlo)!r}")
    keywords = {line[4:].split(b" ", 1)[0].upper() for line in _crlf_lines(ehlo)}
    if b"STARTTLS" not in keywords:
        raise PreambleError("refused", "SMTP server does not offer STARTTLS in its EHLO reply")
    answer = yield Step(b"STARTTLS\r\n", frame)
    if _code(answer) != b"220":
        raise PreambleError("refused", f"SMTP STARTTLS refused: {_printable(answer)!r}")


def _ftp(server_name: str) -> Conversation:
    frame = _reply_code_frame("FTP")
    greeting = yield Step(b"", frame)
    if _code(greeting) != b"220":
        raise PreambleError("refused", f"FTP greeting is not 220: {_printable(greeting)!r}")
    answer = yield Step(b"AUTH TLS\r\n", frame)
    if _code(answer) != b"234":
        raise PreambleError("refused", f"FTP AUTH TLS refused: {_printable(answer)!r}")


def _imap(server_name: str) -> Conversation:
    greeting = yield Step(b"", _line_frame)
    if greeting.startswith(b"* BYE"):
        raise PreambleError("refused", f"IMAP server said BYE: {_printable(greeting)!r}")
    if not greeting.startswith(b"* OK"):
        raise _foreign("IMAP", greeting)
    answer = yield Step(b"S1 STARTTLS\r\n", _tagged_frame(b"S1", "IMAP"))
    last = _crlf_lines(answer)[-1]
    if not last.upper().startswith(b"S1 OK"):
        raise PreambleError("refused", f"IMAP STARTTLS refused: {_printable(last)!r}")


def _pop3(server_name: str) -> Conversation:
    greeting = yield Step(b"", _line_frame)
    if not greeting.startswith(b"+OK"):
        if greeting.startswith(b"-ERR"):
            raise PreambleError("refused", f"POP3 greeting is -ERR: {_printable(greeting)!r}")
        raise _foreign("POP3", greeting)
    answer = yield Step(b"STLS\r\n", _line_frame)
    if not answer.startswith(b"+OK"):
        raise PreambleError("refused", f"POP3 STLS refused: {_printable(answer)!r}")


_PG_SSL_REQUEST = struct.pack("!II", 8, 80877103)


def _postgres_frame(buffer: bytes) -> int | None:
    if buffer[:1] in {b"S", b"N"}:
        return 1
    if buffer[:1] == b"E":
        raise PreambleError(
            "refused", f"PostgreSQL answered SSLRequest with an error: {_printable(buffer[5:])!r}"
        )
    if len(buffer) < 16:
        return None
    raise _foreign("PostgreSQL", buffer)


def _postgres(server_name: str) -> Conversation:
    answer = yield Step(_PG_SSL_REQUEST, _postgres_frame)
    if answer != b"S":
        raise PreambleError(
            "refused", "PostgreSQL answered N to SSLRequest: TLS is off (ssl = off)"
        )


_MYSQL_CLIENT_SSL = 0x0800
_MYSQL_CAPS = 0x0001 | 0x0200 | 0x0800 | 0x8000  # LONG_PASSWORD, PROTOCOL_41, SSL, SECURE_CONN


def _mysql_frame(buffer: bytes) -> int | None:
    if len(buffer) < 4:
        return None
    length = int.from_bytes(buffer[:3], "little")
    if buffer[3] != 0 or length < 1 or length > 16384:
        raise _foreign("MySQL/MariaDB", buffer)
    return 4 + length if len(buffer) >= 4 + length else None


def _mysql(server_name: str) -> Conversation:
    packet = yield Step(b"", _mysql_frame)
    payload = packet[4:]
    if payload[:1] == b"\xff":
        raise PreambleError(
            "refused", f"MySQL/MariaDB refused the connection: {_printable(payload[3:])!r}"
        )
    if payload[:1] != b"\x0a":
        raise _foreign("MySQL/MariaDB", packet)
    version_end = payload.find(b"\x00", 1)
    caps_at = version_end + 1 + 4 + 8 + 1
    if version_end < 0 or len(payload) < caps_at + 2:
        raise PreambleError("foreign", "not MySQL/MariaDB: a truncated server greeting")
    caps = int.from_bytes(payload[caps_at : caps_at + 2], "little")
    version = _printable(payload[1:version_end], 40)
    if not caps & _MYSQL_CLIENT_SSL:
        raise PreambleError(
            "refused", f"MySQL/MariaDB {version} does not offer SSL (no CLIENT_SSL)"
        )
    body = struct.pack("<IIB23x", _MYSQL_CAPS, 1 << 24, 33)
    yield Step(len(body).to_bytes(3, "little") + b"\x01" + body, None)


_LDAP_STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"
_LDAP_WHOAMI_OID = b"1.3.6.1.4.1.4203.1.11.3"


def _ldap_extended(message_id: int, oid: bytes) -> bytes:
    """An LDAP ExtendedRequest (RFC 4511 4.12) carrying only its requestName."""
    name = b"\x80" + bytes([len(oid)]) + oid
    op = b"\x77" + bytes([len(name)]) + name
    body = b"\x02\x01" + bytes([message_id]) + op
    return b"\x30" + bytes([len(body)]) + body


def _ber_length(buffer: bytes, at: int) -> tuple[int, int] | None:
    """(length, offset of the content) of the BER element whose length starts at *at*."""
    if len(buffer) <= at:
        return None
    first = buffer[at]
    if first < 0x80:
        return first, at + 1
    count = first & 0x7F
    if count == 0 or count > 3:
        raise PreambleError("foreign", "not LDAP: an impossible BER length")
    if len(buffer) < at + 1 + count:
        return None
    return int.from_bytes(buffer[at + 1 : at + 1 + count], "big"), at + 1 + count


def _ldap_frame(buffer: bytes) -> int | None:
    if buffer[:1] != b"\x30":
        raise _foreign("LDAP", buffer)
    header = _ber_length(buffer, 1)
    if header is None:
        return None
    length, start = header
    return start + length if len(buffer) >= start + length else None


def _ldap_result(message: bytes) -> tuple[int, bytes]:
    """(resultCode, diagnosticMessage) of an LDAP ExtendedResponse."""
    try:
        _, at = _ber_length(message, 1) or (0, 0)
        if message[at] != 0x02:  # messageID INTEGER
            raise IndexError
        id_len, at = _ber_length(message, at + 1) or (0, 0)
        at += id_len
        if message[at] != 0x78:  # [APPLICATION 24] ExtendedResponse
            raise IndexError
        _, at = _ber_length(message, at + 1) or (0, 0)
        if message[at] != 0x0A:  # resultCode ENUMERATED
            raise IndexError
        code_len, at = _ber_length(message, at + 1) or (0, 0)
        code = int.from_bytes(message[at : at + code_len], "big")
        at += code_len
        dn_len, at = _ber_length(message, at + 1) or (0, 0)
        at += dn_len
        diag_len, at = _ber_length(message, at + 1) or (0, 0)
        return code, message[at : at + diag_len]
    except (IndexError, TypeError):
        raise PreambleError("foreign", "not LDAP: the answer is not an ExtendedResponse") from None


def _ldap(server_name: str) -> Conversation:
    answer = yield Step(_ldap_extended(1, _LDAP_STARTTLS_OID), _ldap_frame)
    code, diagnostic = _ldap_result(answer)
    if code != 0:
        said = f": {_printable(diagnostic)!r}" if diagnostic else ""
        raise PreambleError("refused", f"LDAP StartTLS refused with result code {code}{said}")


def _until(*markers: bytes, protocol: str) -> Frame:
    """XMPP: read until the first *marker* element is whole, or a stream error is.

    A ``<stream:error>`` is read to its end tag (or to the end of the stream),
    so the refusal can name its condition (RFC 6120 4.9.3) and text.
    """

    def frame(buffer: bytes) -> int | None:
        if buffer and buffer.lstrip()[:1] not in {b"<", b""}:
            raise _foreign(protocol, buffer)
        error = buffer.find(b"<stream:error")
        if error >= 0:
            for end_tag in (b"</stream:error>", b"</stream:stream>"):
                end = buffer.find(end_tag, error)
                if end >= 0:
                    return end + len(end_tag)
            return None
        for marker in markers:
            at = buffer.find(marker)
            if at >= 0:
                end = buffer.find(b">", at)
                return None if end < 0 else end + 1
        return None

    return frame


_XMPP_ERROR_CONDITION = re.compile(rb"<stream:error\b[^>]*>\s*<([A-Za-z-]{1,40})\b")
_XMPP_ERROR_TEXT = re.compile(rb"<text\b[^>]*>([^<]{0,200})</text>")


def _xmpp_stream_error(reply: bytes) -> PreambleError:
    """A refusal naming a ``<stream:error>``'s condition and text (printable only)."""
    condition = _XMPP_ERROR_CONDITION.search(reply)
    text = _XMPP_ERROR_TEXT.search(reply)
    said = condition.group(1).decode("ascii") if condition else "no condition given"
    if text:
        said += f" ({_printable(text.group(1))!r})"
    return PreambleError("refused", f"XMPP stream error: {said}")


def _xml_attr(text: str) -> str:
    return "".join(c for c in text if c.isalnum() or c in ".-:[]")


def _xmpp(server_name: str) -> Conversation:
    header = (
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' "
        f"to='{_xml_attr(server_name)}' version='1.0'>"
    ).encode("ascii")
    features = yield Step(header, _until(b"</stream:features", protocol="XMPP"))
    if b"<stream:error" in features:
        raise _xmpp_stream_error(features)
    if b"<starttls" not in features:
        raise PreambleError("refused", "XMPP server does not offer starttls in its features")
    answer = yield Step(
        b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        _until(b"<proceed", b"<failure", protocol="XMPP"),
    )
    if b"<stream:error" in answer:
        raise _xmpp_stream_error(answer)
    if b"<proceed" not in answer:
        raise PreambleError("refused", "XMPP server answered starttls with <failure/>")


#: Every way into TLS the scanner knows, by name (also the URL schemes).
PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("https", 443, None, True, b"GET / HTTP/1.0\r\n\r\n", "HTTPS"),
        Protocol("tls", 443, None, False, b"\r\n", "TLS"),
        Protocol(
            "postgres", 5432, _postgres, False, b"\x00\x00\x00\x08\x04\xd2\x16\x2f", "PostgreSQL"
        ),
        Protocol("mysql", 3306, _mysql, False, b"\x01\x00\x00\x02\x00", "MySQL/MariaDB"),
        Protocol("smtp", 25, _smtp, False, b"NOOP\r\n", "SMTP"),
        Protocol("smtps", 465, None, False, b"NOOP\r\n", "SMTP over TLS"),
        Protocol("imap", 143, _imap, False, b"S2 NOOP\r\n", "IMAP"),
        Protocol("imaps", 993, None, False, b"S2 NOOP\r\n", "IMAP over TLS"),
        Protocol("pop3", 110, _pop3, False, b"NOOP\r\n", "POP3"),
        Protocol("pop3s", 995, None, False, b"NOOP\r\n", "POP3 over TLS"),
        Protocol("ldap", 389, _ldap, False, _ldap_extended(2, _LDAP_WHOAMI_OID), "LDAP"),
        Protocol("ldaps", 636, None, False, _ldap_extended(2, _LDAP_WHOAMI_OID), "LDAP over TLS"),
        Protocol("ftp", 21, _ftp, False, b"NOOP\r\n", "FTP"),
        Protocol("ftps", 990, None, False, b"NOOP\r\n", "FTP over TLS"),
        Protocol("xmpp", 5222, _xmpp, False, b"<iq type='get' id='s'/>", "XMPP"),
    )
}

#: Aliases accepted as URL schemes.
_ALIASES = {"postgresql": "postgres", "mariadb": "mysql", "submission": "smtp", "ldap+tls": "ldap"}


def protocol_for(name: str, port: int | None = None) -> Protocol:
    """The protocol called *name* (or an alias); SMTP on port 465 is implicit TLS.

    Raises:
        KeyError: an unknown name.
    """
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key == "smtp" and port == 465:
        key = "smtps"
    return PROTOCOLS[key]


def preamble_of(name: str, port: int) -> Protocol | None:
    """The protocol to run before TLS for a target, or ``None`` when TLS starts at once."""
    protocol = protocol_for(name, port)
    return protocol if protocol.preamble is not None else None


# --- drivers -------------------------------------------------------------------------------


class _Driver:
    """Feeds replies to a conversation; the I/O is the caller's."""

    def __init__(self, protocol: Protocol, server_name: str) -> None:
        assert protocol.preamble is not None
        self.protocol = protocol
        self._gen = protocol.preamble(server_name)
        self._buffer = b""
        self._frame: Frame | None = None
        self.done = False

    def start(self) -> bytes:
        return self._take(next(self._gen))

    def _take(self, step: Step) -> bytes:
        self._frame = step.frame
        if step.frame is None:
            self.done = True
        return step.send

    def receive(self, chunk: bytes) -> bytes:
        """Add *chunk*; return the next bytes to send (empty while the reply is partial)."""
        if not chunk:
            raise PreambleError(
                "closed",
                f"{self.protocol.title}: the server closed the connection during the preamble"
                + (f" after {_printable(self._buffer)!r}" if self._buffer else ""),
            )
        self._buffer += chunk
        if len(self._buffer) > MAX_REPLY:
            raise PreambleError("foreign", f"{self.protocol.title}: a reply over {MAX_REPLY} bytes")
        assert self._frame is not None
        length = self._frame(self._buffer)
        if length is None:
            return b""
        reply, self._buffer = self._buffer[:length], self._buffer[length:]
        try:
            out = self._take(self._gen.send(reply))
        except StopIteration:
            self.done = True
            out = b""
        if self._buffer:
            # Checked after the conversation judged the reply, so a refusal or a
            # foreign greeting is named as such first.
            raise PreambleError(
                "injection",
                f"{self.protocol.title}: the server sent bytes it was not asked for after "
                f"{_printable(reply)!r} (STARTTLS injection pattern)",
            )
        return out


async def open_async(
    protocol: Protocol, server_name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Run *protocol*'s preamble on an open stream (the caller holds the deadline).

    Raises:
        PreambleError: refusal, foreign protocol, hang-up or injected bytes.
        OSError: the connection failed.
    """
    if protocol.preamble is None:
        return
    driver = _Driver(protocol, server_name)
    out = driver.start()
    while True:
        if out:
            writer.write(out)
            await writer.drain()
        if driver.done:
            return
        out = driver.receive(await reader.read(4096))


def open_sync(protocol: Protocol, server_name: str, sock: socket.socket) -> None:
    """Run *protocol*'s preamble on a blocking socket (its timeout bounds each read).

    Raises:
        PreambleError: refusal, foreign protocol, hang-up or injected bytes.
        OSError: the connection failed or timed out.
    """
    if protocol.preamble is None:
        return
    driver = _Driver(protocol, server_name)
    out = driver.start()
    while True:
        if out:
            sock.sendall(out)
        if driver.done:
            return
        out = driver.receive(sock.recv(4096))

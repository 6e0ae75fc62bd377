"""Hand-written TLS wire helpers for the tests: parse ClientHellos, build server answers.

Written independently of the scanner's builder so the tests pin the wire format.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field


@dataclass
class ParsedHello:
    """A ClientHello taken apart byte by byte."""

    record_version: int
    version: int
    suites: list[int]
    compression: list[int]
    extensions: dict[int, bytes] = field(default_factory=dict)
    sslv2: bool = False

    def groups(self) -> list[int]:
        """The supported_groups list."""
        data = self.extensions.get(10, b"")
        return [int.from_bytes(data[i : i + 2], "big") for i in range(2, len(data), 2)]

    def key_shares(self) -> dict[int, int]:
        """Group -> key-share length."""
        data = self.extensions.get(51, b"")
        out = {}
        pos = 2
        while pos + 4 <= len(data):
            group, length = struct.unpack("!HH", data[pos : pos + 4])
            out[group] = length
            pos += 4 + length
        return out

    def supported_versions(self) -> list[int]:
        """The supported_versions list (empty when absent)."""
        data = self.extensions.get(43, b"")
        return [int.from_bytes(data[i : i + 2], "big") for i in range(1, len(data), 2)]

    def sni(self) -> str | None:
        """The server name, if sent."""
        data = self.extensions.get(0)
        if not data:
            return None
        length = int.from_bytes(data[3:5], "big")
        return data[5 : 5 + length].decode()


def parse_client_hello(data: bytes) -> ParsedHello:
    """Parse one ClientHello (TLS record or SSLv2 format)."""
    if data[0] & 0x80:
        length = ((data[0] & 0x7F) << 8) | data[1]
        body = data[2 : 2 + length]
        assert body[0] == 1
        version, specs_len, sid_len, chal_len = struct.unpack("!HHHH", body[1:9])
        specs = body[9 : 9 + specs_len]
        assert len(body) == 9 + specs_len + sid_len + chal_len
        return ParsedHello(
            record_version=0x0002,
            version=version,
            suites=[int.from_bytes(specs[i : i + 3], "big") for i in range(0, specs_len, 3)],
            compression=[],
            sslv2=True,
        )
    payload = b""
    pos = 0
    record_version = int.from_bytes(data[1:3], "big")
    while pos < len(data):
        assert data[pos] == 22
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        payload += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
    assert payload[0] == 1
    hs_len = int.from_bytes(payload[1:4], "big")
    body = payload[4 : 4 + hs_len]
    assert len(body) == hs_len
    version = int.from_bytes(body[0:2], "big")
    p = 34
    p += 1 + body[p]
    suites_len = int.from_bytes(body[p : p + 2], "big")
    suites = [int.from_bytes(body[p + 2 + i : p + 4 + i], "big") for i in range(0, suites_len, 2)]
    p += 2 + suites_len
    compression = list(body[p + 1 : p + 1 + body[p]])
    p += 1 + body[p]
    extensions: dict[int, bytes] = {}
    if p < len(body):
        ext_len = int.from_bytes(body[p : p + 2], "big")
        end = p + 2 + ext_len
        assert end == len(body)
        p += 2
        while p < end:
            ext_type, length = struct.unpack("!HH", body[p : p + 4])
            assert ext_type not in extensions
            extensions[ext_type] = body[p + 4 : p + 4 + length]
            p += 4 + length
    return ParsedHello(record_version, version, suites, compression, extensions)


def read_client_hello(sock: object) -> bytes:
    """Read one complete ClientHello from a blocking socket."""
    data = b""
    recv = sock.recv  # type: ignore[attr-defined]
    while True:
        chunk = recv(65536)
        if not chunk:
            return data
        data += chunk
        if data[0] & 0x80 and len(data) >= 2:
            if len(data) >= 2 + (((data[0] & 0x7F) << 8) | data[1]):
                return data
            continue
        if len(data) >= 9:
            hs_len = int.from_bytes(data[6:9], "big")
            have, pos = 0, 0
            while pos + 5 <= len(data):
                length = int.from_bytes(data[pos + 3 : pos + 5], "big")
                have += min(length, len(data) - pos - 5)
                pos += 5 + length
            if have >= hs_len + 4:
                return data


def record(content_type: int, payload: bytes, version: int = 0x0303) -> bytes:
    """One TLS record."""
    return struct.pack("!BHH", content_type, version, len(payload)) + payload


def handshake(msg_type: int, body: bytes) -> bytes:
    """One handshake message."""
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def alert(description: int, version: int = 0x0303) -> bytes:
    """A fatal alert record."""
    return record(21, bytes([2, description]), version)


def ext(ext_type: int, data: bytes) -> bytes:
    """One extension."""
    return struct.pack("!HH", ext_type, len(data)) + data


HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


def server_hello(
    *,
    version: int,
    suite: int,
    compression: int = 0,
    extensions: bytes = b"",
    random: bytes | None = None,
    session_id: bytes = b"",
) -> bytes:
    """A ServerHello handshake message (body wrapped in its header)."""
    body = (
        struct.pack("!H", version)
        + (random if random is not None else os.urandom(32))
        + bytes([len(session_id)])
        + session_id
        + struct.pack("!HB", suite, compression)
    )
    if extensions:
        body += struct.pack("!H", len(extensions)) + extensions
    return handshake(2, body)


def certificate_message(ders: list[bytes]) -> bytes:
    """A TLS 1.2 Certificate message."""
    certs = b"".join(len(d).to_bytes(3, "big") + d for d in ders)
    return handshake(11, len(certs).to_bytes(3, "big") + certs)


def sslv2_server_hello(cert: bytes, specs: list[int]) -> bytes:
    """An SSLv2 SERVER-HELLO record."""
    spec_bytes = b"".join(s.to_bytes(3, "big") for s in specs)
    conn_id = os.urandom(16)
    body = (
        bytes([4, 0, 1])
        + struct.pack("!HHHH", 0x0002, len(cert), len(spec_bytes), len(conn_id))
        + cert
        + spec_bytes
        + conn_id
    )
    return struct.pack("!H", 0x8000 | len(body)) + body

"""A bounded, length-checked parser for what a TLS server says before encryption starts.

The scanner never trusts a length field: every read is checked against the bytes
actually present and against hard caps (:data:`MAX_RECORD`, :data:`MAX_HANDSHAKE`,
:data:`MAX_FLIGHT`). Anything malformed raises :class:`TLSParseError`, which the
scanner turns into a per-target error; nothing here can hang or allocate without
bound. The parser understands exactly what the prober needs: alerts, ServerHello
(including HelloRetryRequest), TLS 1.2 Certificate, ServerKeyExchange,
CertificateStatus and ServerHelloDone, and the SSLv2 SERVER-HELLO.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "HRR_RANDOM",
    "MAX_FLIGHT",
    "MAX_HANDSHAKE",
    "MAX_RECORD",
    "Alert",
    "HandshakeBuffer",
    "KeyExchange",
    "RecordBuffer",
    "SSLv2ServerHello",
    "ServerHello",
    "TLSParseError",
    "parse_alert",
    "parse_certificate_list",
    "parse_server_hello",
    "parse_server_key_exchange",
    "parse_sslv2_server_hello",
]

#: Largest TLSCiphertext fragment allowed by RFC 8446 section 5.2 (2^14 + 256),
#: with room for TLS 1.2 compression/MAC expansion (2^14 + 2048).
MAX_RECORD = 2**14 + 2048
#: Largest single handshake message accepted (a long certificate chain fits).
MAX_HANDSHAKE = 256 * 1024
#: Largest total number of bytes read from a server for one probe.
MAX_FLIGHT = 512 * 1024

#: RFC 8446 section 4.1.3: a ServerHello with this random is a HelloRetryRequest.
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

CONTENT_CHANGE_CIPHER_SPEC = 20
CONTENT_ALERT = 21
CONTENT_HANDSHAKE = 22
CONTENT_APPLICATION_DATA = 23
_CONTENT_TYPES = frozenset({20, 21, 22, 23, 24})

EXT_SUPPORTED_VERSIONS = 43
EXT_KEY_SHARE = 51


class TLSParseError(ValueError):
    """The server sent bytes that are not a well-formed TLS answer."""


class _Reader:
    """A cursor over bytes whose every read is bounds-checked."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or n > self.remaining():
            raise TLSParseError(f"truncated {what}: need {n} bytes, have {self.remaining()}")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def vector(self, len_size: int, what: str) -> bytes:
        return self.take(self.uint(len_size, f"{what} length"), what)

    def expect_end(self, what: str) -> None:
        if self.remaining():
            raise TLSParseError(f"{self.remaining()} trailing bytes after {what}")


@dataclass(frozen=True)
class Alert:
    """A TLS alert (RFC 8446 section 6)."""

    level: int
    description: int


@dataclass(frozen=True)
class ServerHello:
    """A parsed ServerHello or HelloRetryRequest.

    Attributes:
        legacy_version: the ``legacy_version`` / ``server_version`` field.
        random: the 32-byte server random.
        session_id: the echoed or new session id.
        cipher_suite: the selected cipher suite code point.
        compression: the selected compression method (0 = none).
        extensions: extension type -> raw extension data, in the order received.
        is_hrr: the random equals the HelloRetryRequest marker.
    """

    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression: int
    extensions: Mapping[int, bytes] = field(default_factory=lambda: MappingProxyType({}))
    is_hrr: bool = False

    @property
    def version(self) -> int:
        """The negotiated version: ``supported_versions`` when present, else legacy."""
        data = self.extensions.get(EXT_SUPPORTED_VERSIONS)
        if data is not None and len(data) == 2:
            return int.from_bytes(data, "big")
        return self.legacy_version

    @property
    def selected_group(self) -> int | None:
        """The key-share group a TLS 1.3 ServerHello or HRR selected, if any."""
        data = self.extensions.get(EXT_KEY_SHARE)
        if data is None or len(data) < 2:
            return None
        return int.from_bytes(data[:2], "big")


@dataclass(frozen=True)
class SSLv2ServerHello:
    """An SSLv2 SERVER-HELLO: the server speaks SSL 2.0."""

    version: int
    cipher_specs: tuple[int, ...]


@dataclass(frozen=True)
class KeyExchange:
    """What a TLS 1.2-and-older ServerKeyExchange revealed.

    Attributes:
        kind: ``"ecdhe"`` or ``"dhe"``.
        group: the named group (ECDHE) or ``None``.
        dh_bits: the bit length of the DH prime (DHE) or ``None``.
        dh_prime: the DH prime, big-endian without leading zeros (DHE) or empty.
    """

    kind: str
    group: int | None = None
    dh_bits: int | None = None
    dh_prime: bytes = b""


class RecordBuffer:
    """Accumulates bytes from a server and yields whole TLS records.

    Raises :class:`TLSParseError` as soon as a header is impossible (unknown
    content type, major version not 3, length over :data:`MAX_RECORD`) or the
    total exceeds :data:`MAX_FLIGHT`, so garbage is rejected after five bytes.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._total = 0

    def feed(self, data: bytes) -> None:
        """Add bytes read from the socket."""
        self._total += len(data)
        if self._total > MAX_FLIGHT:
            raise TLSParseError(f"server sent more than {MAX_FLIGHT} bytes")
        self._buf += data

    @property
    def pending(self) -> int:
        """Bytes received but not yet returned as a record."""
        return len(self._buf)

    def peek_sslv2(self) -> bool:
        """True when the buffered answer starts like an SSLv2 record (high bit set)."""
        return bool(self._buf) and bool(self._buf[0] & 0x80)

    def take_all(self) -> bytes:
        """Return and clear the buffered bytes (for the SSLv2 path)."""
        out = bytes(self._buf)
        self._buf.clear()
        return out

    def next_record(self) -> tuple[int, int, bytes] | None:
        """Return ``(content_type, version, fragment)`` or ``None`` when incomplete."""
        if len(self._buf) < 5:
            self._check_header_prefix()
            return None
        ctype = self._buf[0]
        version = int.from_bytes(self._buf[1:3], "big")
        length = int.from_bytes(self._buf[3:5], "big")
        self._check_header(ctype, version, length)
        if len(self._buf) < 5 + length:
            return None
        fragment = bytes(self._buf[5 : 5 + length])
        del self._buf[: 5 + length]
        return ctype, version, fragment

    def _check_header_prefix(self) -> None:
        if self._buf and self._buf[0] not in _CONTENT_TYPES:
            raise TLSParseError(f"not a TLS record: content type {self._buf[0]}")
        if len(self._buf) >= 2 and self._buf[1] != 3:
            raise TLSParseError(f"not a TLS record: major version {self._buf[1]}")

    @staticmethod
    def _check_header(ctype: int, version: int, length: int) -> None:
        if ctype not in _CONTENT_TYPES:
            raise TLSParseError(f"not a TLS record: content type {ctype}")
        if version >> 8 != 3:
            raise TLSParseError(f"not a TLS record: version 0x{version:04x}")
        if length == 0 and ctype != CONTENT_APPLICATION_DATA:
            raise TLSParseError("empty record")
        if length > MAX_RECORD:
            raise TLSParseError(f"record length {length} exceeds {MAX_RECORD}")


class HandshakeBuffer:
    """Reassembles handshake messages that span or share records."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, fragment: bytes) -> None:
        """Add the fragment of one handshake record."""
        self._buf += fragment
        if len(self._buf) > MAX_HANDSHAKE + 4:
            raise TLSParseError("handshake data exceeds the limit")

    def messages(self) -> Iterator[tuple[int, bytes]]:
        """Yield every complete ``(msg_type, body)`` buffered so far."""
        while len(self._buf) >= 4:
            length = int.from_bytes(self._buf[1:4], "big")
            if length > MAX_HANDSHAKE:
                raise TLSParseError(f"handshake message length {length} exceeds the limit")
            if len(self._buf) < 4 + length:
                return
            msg_type = self._buf[0]
            body = bytes(self._buf[4 : 4 + length])
            del self._buf[: 4 + length]
            yield msg_type, body

    @property
    def pending(self) -> int:
        """Bytes of an incomplete message still buffered."""
        return len(self._buf)


def parse_alert(fragment: bytes) -> Alert:
    """Parse an alert record fragment (exactly two bytes)."""
    if len(fragment) != 2:
        raise TLSParseError(f"alert of {len(fragment)} bytes")
    return Alert(level=fragment[0], description=fragment[1])


def parse_server_hello(body: bytes) -> ServerHello:
    """Parse a ServerHello (or HelloRetryRequest) handshake body.

    Raises:
        TLSParseError: malformed, truncated, or a duplicated extension.
    """
    r = _Reader(body)
    legacy_version = r.uint(2, "server_version")
    if legacy_version >> 8 != 3:
        raise TLSParseError(f"ServerHello version 0x{legacy_version:04x}")
    random = r.take(32, "server random")
    session_id = r.vector(1, "session id")
    if len(session_id) > 32:
        raise TLSParseError("session id longer than 32 bytes")
    cipher_suite = r.uint(2, "cipher suite")
    compression = r.uint(1, "compression method")
    extensions: dict[int, bytes] = {}
    if r.remaining():
        ext = _Reader(r.vector(2, "extensions"))
        while ext.remaining():
            ext_type = ext.uint(2, "extension type")
            data = ext.vector(2, "extension data")
            if ext_type in extensions:
                raise TLSParseError(f"duplicate extension {ext_type}")
            extensions[ext_type] = data
    r.expect_end("ServerHello")
    return ServerHello(
        legacy_version=legacy_version,
        random=random,
        session_id=session_id,
        cipher_suite=cipher_suite,
        compression=compression,
        extensions=MappingProxyType(extensions),
        is_hrr=random == HRR_RANDOM,
    )


def parse_certificate_list(body: bytes) -> tuple[bytes, ...]:
    """Parse a TLS 1.2-and-older Certificate body into DER certificates."""
    r = _Reader(body)
    chain = _Reader(r.vector(3, "certificate list"))
    r.expect_end("Certificate")
    certs: list[bytes] = []
    while chain.remaining():
        cert = chain.vector(3, "certificate")
        if not cert:
            raise TLSParseError("empty certificate")
        certs.append(cert)
    return tuple(certs)


def parse_server_key_exchange(body: bytes, kind: str) -> KeyExchange:
    """Read the group or DH prime size from a ServerKeyExchange.

    Args:
        body: the handshake body.
        kind: ``"ecdhe"`` or ``"dhe"``, from the negotiated cipher suite.

    Raises:
        TLSParseError: malformed or an explicit (non-named) curve.
    """
    r = _Reader(body)
    if kind == "ecdhe":
        curve_type = r.uint(1, "curve type")
        if curve_type != 3:
            raise TLSParseError(f"ECDHE curve type {curve_type} (only named curves accepted)")
        group = r.uint(2, "named curve")
        r.vector(1, "ECDH public key")
        return KeyExchange(kind="ecdhe", group=group)
    if kind == "dhe":
        prime = r.vector(2, "DH prime")
        r.vector(2, "DH generator")
        r.vector(2, "DH public key")
        stripped = prime.lstrip(b"\x00")
        bits = int.from_bytes(stripped, "big").bit_length() if stripped else 0
        return KeyExchange(kind="dhe", dh_bits=bits, dh_prime=stripped)
    raise TLSParseError(f"no ServerKeyExchange expected for {kind}")


def parse_sslv2_server_hello(data: bytes) -> SSLv2ServerHello:
    """Parse an SSLv2 record carrying SERVER-HELLO (RFC 6176's retired protocol).

    Raises:
        TLSParseError: not a complete, well-formed SERVER-HELLO.
    """
    r = _Reader(data)
    header = r.uint(2, "SSLv2 header")
    if not header & 0x8000:
        raise TLSParseError("not an SSLv2 two-byte header")
    length = header & 0x7FFF
    body = _Reader(r.take(length, "SSLv2 record"))
    msg_type = body.uint(1, "SSLv2 message type")
    if msg_type != 4:
        raise TLSParseError(f"SSLv2 message type {msg_type}, expected SERVER-HELLO")
    body.uint(1, "session id hit")
    body.uint(1, "certificate type")
    version = body.uint(2, "SSLv2 version")
    cert_len = body.uint(2, "certificate length")
    specs_len = body.uint(2, "cipher specs length")
    conn_len = body.uint(2, "connection id length")
    if specs_len % 3:
        raise TLSParseError("SSLv2 cipher specs not a multiple of 3")
    body.take(cert_len, "SSLv2 certificate")
    specs = body.take(specs_len, "SSLv2 cipher specs")
    body.take(conn_len, "SSLv2 connection id")
    body.expect_end("SSLv2 SERVER-HELLO")
    return SSLv2ServerHello(
        version=version,
        cipher_specs=tuple(
            int.from_bytes(specs[i : i + 3], "big") for i in range(0, len(specs), 3)
        ),
    )

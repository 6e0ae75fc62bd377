"""A pure-Python ClientHello builder for probing, independent of the local OpenSSL.

The prober never completes a handshake with these hellos: it reads the
ServerHello, HelloRetryRequest or alert and hangs up. That is why it can offer
anything the IANA registries list (SSLv3, export, NULL and anonymous suites,
FFDHE and post-quantum hybrid groups) whatever the local TLS library supports.

Key shares are well-formed so that a server answers with a ServerHello or a
HelloRetryRequest rather than an ``illegal_parameter`` alert: real ephemeral
public keys for X25519, X448 and the NIST curves (the private halves are
discarded, nothing is ever derived from them), the value 4 (a quadratic
residue, so inside the prime-order subgroup) for FFDHE, and an all-zero ML-KEM
encapsulation key (it passes the FIPS 203 modulus check) for ML-KEM and the
hybrids, e.g. a 1216-byte X25519MLKEM768 share.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Sequence

from styku_crypto.tls.audit import _catalog

__all__ = [
    "SSL3",
    "TLS10",
    "TLS11",
    "TLS12",
    "TLS13",
    "VERSION_NAMES",
    "client_hello",
    "key_share_for",
    "sslv2_client_hello",
]

SSL3 = 0x0300
TLS10 = 0x0301
TLS11 = 0x0302
TLS12 = 0x0303
TLS13 = 0x0304

VERSION_NAMES = {
    0x0002: "SSLv2",
    SSL3: "SSLv3",
    TLS10: "TLSv1.0",
    TLS11: "TLSv1.1",
    TLS12: "TLSv1.2",
    TLS13: "TLSv1.3",
}

TLS_FALLBACK_SCSV = 0x5600
TLS_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00FF

EXT_SERVER_NAME = 0
EXT_STATUS_REQUEST = 5
EXT_SUPPORTED_GROUPS = 10
EXT_EC_POINT_FORMATS = 11
EXT_SIGNATURE_ALGORITHMS = 13
EXT_ALPN = 16
EXT_HEARTBEAT = 15
EXT_PADDING = 21
EXT_EXTENDED_MASTER_SECRET = 23
EXT_SESSION_TICKET = 35
EXT_SUPPORTED_VERSIONS = 43
EXT_PSK_KEY_EXCHANGE_MODES = 45
EXT_KEY_SHARE = 51
EXT_RENEGOTIATION_INFO = 0xFF01

#: Every signature scheme a server might want, strongest first.
SIGNATURE_SCHEMES = (
    0x0403,
    0x0503,
    0x0603,
    0x0807,
    0x0808,
    0x0804,
    0x0805,
    0x0806,
    0x0809,
    0x080A,
    0x080B,
    0x081A,
    0x081B,
    0x081C,
    0x0401,
    0x0501,
    0x0601,
    0x0303,
    0x0301,
    0x0402,
    0x0502,
    0x0602,
    0x0302,
    0x0203,
    0x0201,
    0x0202,
)

_SSLV2_CIPHER_SPECS = (0x010080, 0x020080, 0x030080, 0x040080, 0x050080, 0x060040, 0x0700C0)

_MLKEM_KEY_SIZES = {"MLKEM512": 800, "MLKEM768": 1184, "MLKEM1024": 1568}


def _u8(data: bytes) -> bytes:
    return struct.pack("!B", len(data)) + data


def _u16(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def _u24(data: bytes) -> bytes:
    return struct.pack("!I", len(data))[1:] + data


def _ext(ext_type: int, data: bytes) -> bytes:
    return struct.pack("!H", ext_type) + _u16(data)


@functools.cache
def _ec_public(name: str) -> bytes:
    """A valid public key for an ECDH group (the private key is discarded)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519

    raw = serialization.Encoding.Raw
    point = serialization.Encoding.X962
    if name == "x25519":
        return (
            x25519.X25519PrivateKey.generate()
            .public_key()
            .public_bytes(raw, serialization.PublicFormat.Raw)
        )
    if name == "x448":
        return (
            x448.X448PrivateKey.generate()
            .public_key()
            .public_bytes(raw, serialization.PublicFormat.Raw)
        )
    curves: dict[str, ec.EllipticCurve] = {
        "secp256r1": ec.SECP256R1(),
        "secp384r1": ec.SECP384R1(),
        "secp521r1": ec.SECP521R1(),
        "secp256k1": ec.SECP256K1(),
        "secp224r1": ec.SECP224R1(),
        "secp192r1": ec.SECP192R1(),
        "brainpoolP256r1": ec.BrainpoolP256R1(),
        "brainpoolP384r1": ec.BrainpoolP384R1(),
        "brainpoolP512r1": ec.BrainpoolP512R1(),
    }
    curve = curves[name.removesuffix("tls13")]
    return (
        ec.generate_private_key(curve)
        .public_key()
        .public_bytes(point, serialization.PublicFormat.UncompressedPoint)
    )


def key_share_for(group: _catalog.Group) -> bytes | None:
    """A well-formed key share for *group*, or ``None`` if none can be made."""
    if group.kind == "ec":
        from cryptography.exceptions import UnsupportedAlgorithm

        try:
            return _ec_public(group.name)
        except (KeyError, ValueError, UnsupportedAlgorithm):  # a curve the local library lacks
            return None
    if group.kind == "ffdhe":
        return (4).to_bytes(group.share_size, "big")
    if group.kind == "pq":
        return bytes(_MLKEM_KEY_SIZES[group.name])
    if group.kind == "hybrid":
        if group.name == "X25519MLKEM768":
            return bytes(1184) + _ec_public("x25519")
        if group.name == "SecP256r1MLKEM768":
            return _ec_public("secp256r1") + bytes(1184)
        if group.name == "SecP384r1MLKEM1024":
            return _ec_public("secp384r1") + bytes(1568)
    return None


def client_hello(
    *,
    version: int,
    suites: Sequence[int],
    groups: Sequence[int] = (),
    key_shares: Sequence[int] = (),
    sni: str | None = None,
    ems: bool = True,
    renegotiation_info: bool = True,
    status_request: bool = False,
    alpn: Sequence[str] = (),
    compression: Sequence[int] = (0,),
    fallback_scsv: bool = False,
    session_ticket: bool = False,
    heartbeat: bool = False,
    signature_schemes: Sequence[int] = SIGNATURE_SCHEMES,
) -> bytes:
    """Build one ClientHello inside a TLS record.

    Args:
        version: the highest version offered (``SSL3`` .. ``TLS13``). For TLS 1.3
            the ``supported_versions`` extension offers only 1.3.
        suites: cipher suite code points in preference order.
        groups: ``supported_groups`` code points.
        key_shares: groups (a subset of *groups*) to send TLS 1.3 key shares for;
            groups for which no share can be built are left out of the shares.
        sni: the server name, or ``None`` to omit SNI (IP addresses are omitted).
        ems: offer the extended master secret extension.
        renegotiation_info: send the empty ``renegotiation_info`` extension.
        status_request: ask for OCSP stapling.
        alpn: protocol names to offer.
        compression: compression methods (0 = null, 1 = DEFLATE).
        fallback_scsv: append ``TLS_FALLBACK_SCSV``.
        session_ticket: send an empty session ticket extension.
        heartbeat: send the heartbeat extension (RFC 6520, peer allowed to send).
        signature_schemes: ``signature_algorithms`` code points.

    Returns:
        The complete record (header included), ready to write to the socket.
    """
    legacy = min(version, TLS12)
    suite_list = list(suites)
    if fallback_scsv:
        suite_list.append(TLS_FALLBACK_SCSV)
    exts: list[bytes] = []
    if version > SSL3:
        if sni and not _is_ip(sni):
            name = sni.encode("idna") if not sni.isascii() else sni.encode("ascii")
            exts.append(_ext(EXT_SERVER_NAME, _u16(b"\x00" + _u16(name))))
        if status_request:
            exts.append(_ext(EXT_STATUS_REQUEST, b"\x01\x00\x00\x00\x00"))
        if groups:
            exts.append(
                _ext(EXT_SUPPORTED_GROUPS, _u16(b"".join(struct.pack("!H", g) for g in groups)))
            )
            exts.append(_ext(EXT_EC_POINT_FORMATS, _u8(b"\x00")))
        if version >= TLS12:
            exts.append(
                _ext(
                    EXT_SIGNATURE_ALGORITHMS,
                    _u16(b"".join(struct.pack("!H", s) for s in signature_schemes)),
                )
            )
        if alpn:
            exts.append(_ext(EXT_ALPN, _u16(b"".join(_u8(p.encode("ascii")) for p in alpn))))
        if ems:
            exts.append(_ext(EXT_EXTENDED_MASTER_SECRET, b""))
        if session_ticket:
            exts.append(_ext(EXT_SESSION_TICKET, b""))
        if heartbeat:
            exts.append(_ext(EXT_HEARTBEAT, b"\x01"))
        if version >= TLS13:
            exts.append(_ext(EXT_SUPPORTED_VERSIONS, _u8(struct.pack("!H", TLS13))))
            exts.append(_ext(EXT_PSK_KEY_EXCHANGE_MODES, _u8(b"\x01")))
            shares = b""
            for code in key_shares:
                share = key_share_for(_catalog.group_by_code(code))
                if share is not None:
                    shares += struct.pack("!H", code) + _u16(share)
            exts.append(_ext(EXT_KEY_SHARE, _u16(shares)))
        if renegotiation_info:
            exts.append(_ext(EXT_RENEGOTIATION_INFO, b"\x00"))
    body = (
        struct.pack("!H", legacy)
        + os.urandom(32)
        + _u8(os.urandom(32) if version >= TLS13 else b"")
        + _u16(b"".join(struct.pack("!H", s) for s in suite_list))
        + _u8(bytes(compression))
    )
    if exts:
        ext_bytes = b"".join(exts)
        # Some middleboxes choke on hellos of 256..511 bytes (RFC 7685 padding).
        hello_len = 4 + len(body) + 2 + len(ext_bytes)
        if 256 <= hello_len < 512:
            ext_bytes += _ext(EXT_PADDING, bytes(max(1, 512 - hello_len - 4)))
        body += _u16(ext_bytes)
    handshake = b"\x01" + _u24(body)
    record_version = SSL3 if version == SSL3 else TLS10
    out = b""
    for i in range(0, len(handshake), 2**14):
        chunk = handshake[i : i + 2**14]
        out += struct.pack("!BHH", 22, record_version, len(chunk)) + chunk
    return out


def sslv2_client_hello() -> bytes:
    """An SSLv2 CLIENT-HELLO offering every SSLv2 cipher kind."""
    specs = b"".join(c.to_bytes(3, "big") for c in _SSLV2_CIPHER_SPECS)
    challenge = os.urandom(16)
    msg = b"\x01" + struct.pack("!HHHH", 0x0002, len(specs), 0, len(challenge)) + specs + challenge
    return struct.pack("!H", 0x8000 | len(msg)) + msg


def _is_ip(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True

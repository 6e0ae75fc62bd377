"""The record and handshake parser: exact on good input, only TLSParseError on anything else."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.tls.audit import _records
from styku_crypto.tls.audit._records import TLSParseError
from tests.tls.audit._hello import (
    HRR_RANDOM,
    certificate_message,
    ext,
    handshake,
    record,
    server_hello,
    sslv2_server_hello,
)


def _body(message: bytes) -> bytes:
    return message[4:]


def test_server_hello_fields_and_extensions() -> None:
    """Version, suite, compression, session id and extensions are read exactly."""
    msg = server_hello(
        version=0x0303,
        suite=0xC02F,
        compression=0,
        session_id=b"\x01" * 32,
        extensions=ext(0xFF01, b"\x00") + ext(23, b""),
    )
    hello = _records.parse_server_hello(_body(msg))
    assert hello.version == 0x0303
    assert hello.cipher_suite == 0xC02F
    assert hello.session_id == b"\x01" * 32
    assert dict(hello.extensions) == {0xFF01: b"\x00", 23: b""}
    assert not hello.is_hrr


def test_tls13_version_and_group_come_from_extensions() -> None:
    """supported_versions overrides legacy_version; key_share names the group; HRR is spotted."""
    msg = server_hello(
        version=0x0303,
        suite=0x1301,
        random=HRR_RANDOM,
        extensions=ext(43, b"\x03\x04") + ext(51, b"\x11\xec"),
    )
    hello = _records.parse_server_hello(_body(msg))
    assert hello.version == 0x0304
    assert hello.selected_group == 0x11EC
    assert hello.is_hrr


def test_duplicate_extension_is_rejected() -> None:
    """A ServerHello repeating an extension is malformed."""
    msg = server_hello(version=0x0303, suite=1, extensions=ext(23, b"") + ext(23, b""))
    with pytest.raises(TLSParseError, match="duplicate"):
        _records.parse_server_hello(_body(msg))


def test_trailing_bytes_are_rejected() -> None:
    """Bytes after the extensions block make the ServerHello malformed."""
    msg = server_hello(version=0x0303, suite=1, extensions=ext(23, b""))
    with pytest.raises(TLSParseError, match="trailing"):
        _records.parse_server_hello(_body(msg) + b"\x00")


def test_record_buffer_reassembles_split_input() -> None:
    """Records arriving a byte at a time come out whole and in order."""
    data = record(22, b"abc") + record(21, b"\x02\x28")
    buf = _records.RecordBuffer()
    out = []
    for byte in data:
        buf.feed(bytes([byte]))
        while (rec := buf.next_record()) is not None:
            out.append(rec)
    assert out == [(22, 0x0303, b"abc"), (21, 0x0303, b"\x02\x28")]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"HTTP/1.1 200", "content type"),
        (b"\x16\x02\x00\x00\x01", "version"),
        (b"\x16\x03\x03\xff\xff", "exceeds"),
        (b"\x16\x03\x03\x00\x00", "empty"),
    ],
)
def test_impossible_headers_fail_at_once(data: bytes, why: str) -> None:
    """Garbage, wrong versions, absurd and empty lengths are refused from the header alone."""
    buf = _records.RecordBuffer()
    buf.feed(data)
    with pytest.raises(TLSParseError, match=why):
        buf.next_record()


def test_flight_size_is_capped() -> None:
    """A server cannot make the scanner buffer more than MAX_FLIGHT bytes."""
    buf = _records.RecordBuffer()
    buf.feed(b"\x00" * _records.MAX_FLIGHT)
    with pytest.raises(TLSParseError, match="more than"):
        buf.feed(b"\x00")


def test_handshake_buffer_joins_messages_across_records() -> None:
    """A message split over records, and two messages in one record, both come out."""
    cert = certificate_message([b"\x30\x03\x02\x01\x01"])
    done = handshake(14, b"")
    buf = _records.HandshakeBuffer()
    buf.feed(cert[:5])
    assert list(buf.messages()) == []
    buf.feed(cert[5:] + done)
    msgs = list(buf.messages())
    assert [t for t, _ in msgs] == [11, 14]
    assert _records.parse_certificate_list(msgs[0][1]) == (b"\x30\x03\x02\x01\x01",)


def test_handshake_length_limit() -> None:
    """A handshake header announcing more than MAX_HANDSHAKE bytes is refused."""
    buf = _records.HandshakeBuffer()
    buf.feed(b"\x0b\xff\xff\xff")
    with pytest.raises(TLSParseError, match="exceeds"):
        list(buf.messages())


def test_server_key_exchange_ecdhe_and_dhe() -> None:
    """The named curve of ECDHE and the prime size of DHE are read; explicit curves refused."""
    ecdhe = b"\x03\x00\x1d\x20" + b"\x01" * 32 + b"sig"
    assert _records.parse_server_key_exchange(ecdhe, "ecdhe").group == 0x001D
    prime = b"\x00" + b"\xff" * 128
    dhe = struct.pack("!H", len(prime)) + prime + b"\x00\x01\x02" + b"\x00\x01\x05"
    assert _records.parse_server_key_exchange(dhe, "dhe").dh_bits == 1024
    with pytest.raises(TLSParseError, match="named curves"):
        _records.parse_server_key_exchange(b"\x01" + ecdhe[1:], "ecdhe")


def test_sslv2_server_hello() -> None:
    """An SSLv2 SERVER-HELLO yields its version and cipher kinds."""
    parsed = _records.parse_sslv2_server_hello(sslv2_server_hello(b"cert", [0x010080, 0x0700C0]))
    assert parsed.version == 0x0002
    assert parsed.cipher_specs == (0x010080, 0x0700C0)


def test_alert_must_be_two_bytes() -> None:
    """An alert of any other length is malformed."""
    assert _records.parse_alert(b"\x02\x46") == _records.Alert(2, 70)
    with pytest.raises(TLSParseError):
        _records.parse_alert(b"\x02")


# ------------------------------------------------------------------ fuzzing


@given(st.binary(max_size=600))
def test_fuzz_server_hello_parser_only_raises_parse_error(data: bytes) -> None:
    """Arbitrary bytes never crash the ServerHello parser: a result or TLSParseError."""
    try:
        hello = _records.parse_server_hello(data)
    except TLSParseError:
        return
    assert len(hello.random) == 32


@given(st.binary(max_size=600), st.sampled_from(["ecdhe", "dhe", "rsa"]))
def test_fuzz_key_exchange_and_certificates(data: bytes, kind: str) -> None:
    """ServerKeyExchange and Certificate parsers never raise anything but TLSParseError."""
    for parse in (
        lambda: _records.parse_server_key_exchange(data, kind),
        lambda: _records.parse_certificate_list(data),
        lambda: _records.parse_sslv2_server_hello(data),
    ):
        with contextlib.suppress(TLSParseError):
            parse()


@given(st.lists(st.binary(max_size=300), max_size=12))
def test_fuzz_record_stream(chunks: list[bytes]) -> None:
    """Any chunked byte stream yields well-formed records or TLSParseError, never more."""
    buf = _records.RecordBuffer()
    hs = _records.HandshakeBuffer()
    try:
        for chunk in chunks:
            buf.feed(chunk)
            while (rec := buf.next_record()) is not None:
                ctype, _version, fragment = rec
                assert len(fragment) <= _records.MAX_RECORD
                if ctype == 22:
                    hs.feed(fragment)
                    for _t, body in hs.messages():
                        assert len(body) <= _records.MAX_HANDSHAKE
    except TLSParseError:
        pass


@given(
    version=st.sampled_from([0x0300, 0x0301, 0x0302, 0x0303]),
    suite=st.integers(0, 0xFFFF),
    session_id=st.binary(max_size=32),
    ext_types=st.lists(st.integers(0, 0xFFFF), unique=True, max_size=8),
    payload=st.binary(max_size=40),
)
def test_server_hello_round_trip(
    version: int, suite: int, session_id: bytes, ext_types: list[int], payload: bytes
) -> None:
    """Any well-formed ServerHello parses back to exactly its fields."""
    exts = b"".join(ext(t, payload) for t in ext_types)
    msg = server_hello(version=version, suite=suite, session_id=session_id, extensions=exts)
    hello = _records.parse_server_hello(_body(msg))
    assert (hello.legacy_version, hello.cipher_suite, hello.session_id) == (
        version,
        suite,
        session_id,
    )
    assert dict(hello.extensions) == dict.fromkeys(ext_types, payload)

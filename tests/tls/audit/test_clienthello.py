"""The ClientHello builder, pinned by parsing its output by hand."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.tls.audit import _catalog
from styku_crypto.tls.audit import _clienthello as ch
from tests.tls.audit._hello import parse_client_hello

SHARE_SIZES = {
    0x001D: 32,
    0x001E: 56,
    0x0017: 65,
    0x0018: 97,
    0x0019: 133,
    0x0100: 256,
    0x0104: 1024,
    0x11EC: 1216,
    0x11EB: 1249,
    0x11ED: 1665,
    0x0201: 1184,
}


def test_tls13_hello_layout() -> None:
    """TLS 1.3: legacy 1.2, supported_versions [1.3], SNI, groups, shares, 32-byte session id."""
    raw = ch.client_hello(
        version=ch.TLS13,
        suites=[0x1301, 0x1302],
        groups=[0x001D, 0x11EC],
        key_shares=[0x001D, 0x11EC],
        sni="example.test",
    )
    assert raw[:3] == b"\x16\x03\x01"
    hello = parse_client_hello(raw)
    assert hello.version == 0x0303
    assert hello.suites == [0x1301, 0x1302]
    assert hello.supported_versions() == [0x0304]
    assert hello.sni() == "example.test"
    assert hello.groups() == [0x001D, 0x11EC]
    assert hello.key_shares() == {0x001D: 32, 0x11EC: 1216}
    assert hello.compression == [0]


def test_every_key_share_has_its_registered_size() -> None:
    """EC points, FFDHE values and ML-KEM (hybrid) keys have the sizes the RFCs/drafts fix."""
    for code, size in SHARE_SIZES.items():
        share = ch.key_share_for(_catalog.group_by_code(code))
        assert share is not None
        assert len(share) == size, hex(code)


def test_mlkem_share_is_a_valid_encoding_and_a_real_x25519_key() -> None:
    """The X25519MLKEM768 share is an all-zero ML-KEM key followed by a real X25519 key."""
    share = ch.key_share_for(_catalog.group_by_code(0x11EC))
    assert share is not None
    assert share[:1184] == bytes(1184)
    assert share[1184:] != bytes(32)


def test_legacy_hello_has_no_tls13_extensions_and_optional_scsv() -> None:
    """A TLS 1.1 hello carries its version, no supported_versions, and the fallback SCSV last."""
    hello = parse_client_hello(
        ch.client_hello(version=ch.TLS11, suites=[0x002F], fallback_scsv=True, compression=(1, 0))
    )
    assert hello.version == 0x0302
    assert hello.suites == [0x002F, 0x5600]
    assert 43 not in hello.extensions
    assert 13 not in hello.extensions  # signature_algorithms is TLS 1.2+
    assert hello.compression == [1, 0]
    assert hello.extensions[0xFF01] == b"\x00"


def test_ip_address_targets_send_no_sni() -> None:
    """RFC 6066 forbids IP literals in SNI, so none is sent for them."""
    hello = parse_client_hello(ch.client_hello(version=ch.TLS12, suites=[0xC02F], sni="127.0.0.1"))
    assert hello.sni() is None


def test_sslv2_hello_layout() -> None:
    """The SSLv2 CLIENT-HELLO has a 2-byte header, version 2 and 16-byte challenge."""
    raw = ch.sslv2_client_hello()
    assert raw[0] & 0x80
    hello = parse_client_hello(raw)
    assert hello.sslv2
    assert hello.version == 0x0002
    assert len(hello.suites) == 7


@given(
    version=st.sampled_from([ch.SSL3, ch.TLS10, ch.TLS11, ch.TLS12, ch.TLS13]),
    suites=st.lists(st.integers(1, 0xFEFF), min_size=1, max_size=400),
    alpn=st.lists(st.sampled_from(["h2", "http/1.1"]), max_size=2, unique=True),
    status=st.booleans(),
)
def test_any_hello_parses_back(
    version: int, suites: list[int], alpn: list[str], status: bool
) -> None:
    """Whatever is offered, the hello is well-formed and carries exactly those suites."""
    raw = ch.client_hello(
        version=version,
        suites=suites,
        groups=[0x001D, 0x0017],
        key_shares=[0x001D],
        alpn=alpn,
        status_request=status,
        sni="a.test",
    )
    hello = parse_client_hello(raw)
    assert hello.suites == suites
    assert hello.version == min(version, ch.TLS12)
    if version > ch.SSL3:
        assert (5 in hello.extensions) == status

"""Trusted-proxy handling: Forwarded (RFC 7239) and X-Forwarded-* only from configured peers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.web._proxy import TrustedProxies, parse_forwarded


def _resolve(proxies: TrustedProxies, peer: str, **headers: str) -> object:
    return proxies.resolve(
        peer=peer,
        forwarded=headers.get("forwarded"),
        x_forwarded_for=headers.get("xff"),
        x_forwarded_proto=headers.get("xfp"),
        x_forwarded_host=headers.get("xfh"),
    )


def test_untrusted_peer_headers_ignored() -> None:
    """Headers from a peer outside the trusted set produce no view at all."""
    proxies = TrustedProxies(["10.0.0.0/8"])
    assert _resolve(proxies, "192.0.2.1", xfp="https", forwarded="proto=https") is None


def test_no_proxies_configured_trusts_nobody() -> None:
    """With no trusted proxies, even loopback is not believed."""
    proxies = TrustedProxies([])
    assert not proxies
    assert _resolve(proxies, "127.0.0.1", xfp="https") is None


def test_trust_everyone_refused() -> None:
    """0.0.0.0/0 and ::/0 are refused: trusting every peer defeats the point."""
    for entry in ("0.0.0.0/0", "::/0"):
        with pytest.raises(InvalidInputError):
            TrustedProxies([entry])


def test_malformed_entry_refused() -> None:
    """Entries that are not addresses or networks are refused at configuration."""
    with pytest.raises(InvalidInputError):
        TrustedProxies(["proxy.internal"])


def test_forwarded_chain_walks_to_first_untrusted_hop() -> None:
    """With two trusted proxies, the client's element decides scheme and address."""
    proxies = TrustedProxies(["10.0.0.1", "10.0.0.2"])
    view = _resolve(
        proxies,
        "10.0.0.2",
        forwarded="for=198.51.100.4;proto=https, for=10.0.0.1;proto=http",
    )
    assert view is not None
    assert view.scheme == "https"  # type: ignore[attr-defined]
    assert view.client == "198.51.100.4"  # type: ignore[attr-defined]


def test_forwarded_client_spoofing_leftmost_is_not_believed() -> None:
    """A client-supplied leftmost element is ignored: the nearest untrusted hop decides."""
    proxies = TrustedProxies(["10.0.0.1"])
    view = _resolve(
        proxies,
        "10.0.0.1",
        forwarded="for=1.2.3.4;proto=https, for=203.0.113.5;proto=http",
    )
    assert view.scheme == "http"  # type: ignore[union-attr]
    assert view.client == "203.0.113.5"  # type: ignore[union-attr]


def test_forwarded_ipv6_node_and_quotes() -> None:
    """Quoted IPv6 nodes with ports parse; the port is dropped."""
    proxies = TrustedProxies(["::1"])
    view = _resolve(proxies, "::1", forwarded='For="[2001:db8:cafe::17]:4711";Proto=HTTPS')
    assert view.client == "2001:db8:cafe::17"  # type: ignore[union-attr]
    assert view.scheme == "https"  # type: ignore[union-attr]


def test_malformed_forwarded_fails_closed() -> None:
    """A malformed Forwarded header from a trusted proxy is ignored entirely (treated as HTTP)."""
    proxies = TrustedProxies(["127.0.0.1"])
    for bad in ("proto", "proto=https;proto=http", 'for="unterminated', "=x", "proto=https;;"):
        assert parse_forwarded(bad) is None, bad
        assert _resolve(proxies, "127.0.0.1", forwarded=bad) is None


def test_x_forwarded_for_walk_and_aligned_proto() -> None:
    """X-Forwarded-For is walked from the right; an aligned X-Forwarded-Proto follows it."""
    proxies = TrustedProxies(["10.0.0.0/24"])
    view = _resolve(
        proxies, "10.0.0.9", xff="6.6.6.6, 198.51.100.1, 10.0.0.3", xfp="http, https, http"
    )
    assert view.client == "198.51.100.1"  # type: ignore[union-attr]
    assert view.scheme == "https"  # type: ignore[union-attr]


def test_x_forwarded_proto_single_value_from_nearest_proxy() -> None:
    """A single X-Forwarded-Proto value (overwritten by the proxy) is used as is."""
    proxies = TrustedProxies(["10.0.0.9"])
    view = _resolve(proxies, "10.0.0.9", xff="198.51.100.1", xfp="HTTPS")
    assert view.scheme == "https"  # type: ignore[union-attr]


def test_ipv4_mapped_ipv6_peer_matches_ipv4_network() -> None:
    """'::ffff:10.0.0.1' (dual-stack sockets) matches a trusted 10.0.0.0/8."""
    proxies = TrustedProxies(["10.0.0.0/8"])
    assert proxies.is_trusted("::ffff:10.0.0.1")
    assert not proxies.is_trusted("::ffff:11.0.0.1")
    assert not proxies.is_trusted("unknown")
    assert not proxies.is_trusted(None)


def test_oversized_header_ignored() -> None:
    """A header over the size bound is ignored rather than parsed."""
    proxies = TrustedProxies(["127.0.0.1"])
    assert _resolve(proxies, "127.0.0.1", xff="1.1.1.1," * 5000, xfp="https") is None
    assert parse_forwarded("for=a," * 100) is None


@given(st.text(max_size=300))
def test_parse_forwarded_never_raises(value: str) -> None:
    """Any header text parses to elements or None; it never raises."""
    result = parse_forwarded(value)
    assert result is None or all(isinstance(e, dict) for e in result)


@given(
    st.lists(st.ip_addresses(v=4).map(str), min_size=1, max_size=5),
    st.sampled_from(["http", "https"]),
)
def test_untrusted_last_hop_always_decides(hops: list[str], proto: str) -> None:
    """Whatever a client prepends, the element added for the untrusted client decides."""
    proxies = TrustedProxies(["10.255.255.254"])
    elements = [f"for={h};proto=https" for h in hops]
    elements.append(f"for=192.0.2.200;proto={proto}")
    view = _resolve(proxies, "10.255.255.254", forwarded=", ".join(elements))
    assert view.scheme == proto  # type: ignore[union-attr]
    assert view.client == "192.0.2.200"  # type: ignore[union-attr]


def test_obfuscated_or_unknown_client_is_not_an_address() -> None:
    """'for=unknown' / obfuscated identifiers give no client address (the peer is kept)."""
    proxies = TrustedProxies(["127.0.0.1"])
    view = _resolve(proxies, "127.0.0.1", forwarded="for=unknown;proto=https")
    assert view.client is None  # type: ignore[union-attr]
    assert view.scheme == "https"  # type: ignore[union-attr]
    view = _resolve(proxies, "127.0.0.1", xff="_hidden", xfp="https")
    assert view.client is None  # type: ignore[union-attr]

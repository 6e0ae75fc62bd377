"""Explicit trust in reverse proxies: ``Forwarded`` (RFC 7239) and ``X-Forwarded-*``.

The forwarding headers say which scheme, host and address the *client* used,
but anyone can send them. They are read here only when the TCP peer is one of
the configured trusted proxies; from any other peer they are ignored, exactly
as if they were absent. A malformed header from a trusted proxy is also
ignored, which fails closed: the request is then treated as plain HTTP.

When several proxies are chained, the hops are walked from the nearest one
(the rightmost entry) towards the client, skipping entries whose address is a
trusted proxy; the first untrusted entry is the client and its scheme decides.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable

from styku_crypto.exceptions import InvalidInputError

__all__ = ["ForwardedView", "TrustedProxies", "parse_forwarded"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Bounds for header parsing: a trusted proxy never sends more than this.
_MAX_HEADER = 8192
_MAX_HOPS = 32


class ForwardedView:
    """What the forwarding headers of a trusted proxy say about the client.

    Attributes:
        scheme: the scheme the client used (``"http"``, ``"https"``, ``"ws"``,
            ``"wss"``), or ``None`` when the proxy did not say.
        client: the client's address as the proxy saw it, or ``None``.
        host: the Host the client asked for, or ``None`` when not forwarded.
    """

    __slots__ = ("client", "host", "scheme")

    def __init__(self, scheme: str | None, client: str | None, host: str | None) -> None:
        self.scheme = scheme
        self.client = client
        self.host = host

    def __repr__(self) -> str:
        return f"ForwardedView(scheme={self.scheme!r}, client={self.client!r}, host={self.host!r})"


class TrustedProxies:
    """A set of addresses and networks whose forwarding headers are believed.

    Args:
        entries: IP addresses or networks (``"10.0.0.0/8"``, ``"::1"``).

    Raises:
        InvalidInputError: an entry is not an address or network, or it
            trusts every address (``0.0.0.0/0``, ``::/0``): trusting everyone
            is the same as trusting no one and is refused.
    """

    __slots__ = ("_forwarded_cache", "_networks", "_trusted", "_x_forwarded_cache")

    def __init__(self, entries: Iterable[str]) -> None:
        networks: list[IPNetwork] = []
        for entry in entries:
            if not isinstance(entry, str):
                raise InvalidInputError("trusted proxies must be strings (addresses or networks)")
            try:
                network = ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise InvalidInputError(
                    f"trusted proxy {entry!r} is not an IP address or network"
                ) from None
            if network.prefixlen == 0:
                raise InvalidInputError(
                    "trusting every address as a proxy is refused: list the proxies' "
                    "addresses or networks"
                )
            networks.append(network)
        self._networks: tuple[IPNetwork, ...] = tuple(networks)
        self._trusted = functools.lru_cache(maxsize=1024)(self._lookup)
        # Views are immutable: identical headers from trusted proxies share one.
        self._forwarded_cache = functools.lru_cache(maxsize=1024)(self._from_forwarded)
        self._x_forwarded_cache = functools.lru_cache(maxsize=1024)(self._walk_x_forwarded)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __repr__(self) -> str:
        return f"TrustedProxies({[str(n) for n in self._networks]!r})"

    @property
    def networks(self) -> tuple[IPNetwork, ...]:
        """The trusted networks (single addresses are /32 or /128 networks)."""
        return self._networks

    def is_trusted(self, address: str | None) -> bool:
        """Whether *address* (an IP literal, optionally bracketed) is a trusted proxy."""
        if not address or not self._networks:
            return False
        return self._trusted(address)

    def _lookup(self, address: str) -> bool:
        text = address
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self._networks)

    def resolve(
        self,
        *,
        peer: str | None,
        forwarded: str | None,
        x_forwarded_for: str | None,
        x_forwarded_proto: str | None,
        x_forwarded_host: str | None,
    ) -> ForwardedView | None:
        """Read the forwarding headers if, and only if, *peer* is trusted.

        ``Forwarded`` takes precedence over the ``X-Forwarded-*`` family.

        Returns:
            The client's view, or ``None`` when the peer is not trusted, no
            forwarding header is present, or the headers are malformed.
        """
        if not self.is_trusted(peer):
            return None
        return self.resolve_trusted(forwarded, x_forwarded_for, x_forwarded_proto, x_forwarded_host)

    def resolve_trusted(
        self,
        forwarded: str | None,
        x_forwarded_for: str | None,
        x_forwarded_proto: str | None,
        x_forwarded_host: str | None,
    ) -> ForwardedView | None:
        """:meth:`resolve` for a peer already known to be trusted (results cached)."""
        if forwarded is not None:
            return self._forwarded_cache(forwarded)
        if x_forwarded_proto is None and x_forwarded_for is None and x_forwarded_host is None:
            return None
        return self._x_forwarded_cache(x_forwarded_for, x_forwarded_proto, x_forwarded_host)

    def _from_forwarded(self, forwarded: str) -> ForwardedView | None:
        elements = parse_forwarded(forwarded)
        if elements is None:
            return None
        return self._walk_forwarded(elements)

    def _walk_forwarded(self, elements: list[dict[str, str]]) -> ForwardedView | None:
        scheme: str | None = None
        client: str | None = None
        host: str | None = None
        for element in reversed(elements):
            scheme = element.get("proto")
            host = element.get("host")
            client = _strip_port(element["for"]) if "for" in element else None
            if client is not None and self.is_trusted(client):
                continue
            break
        return ForwardedView(
            scheme=scheme.lower() if scheme else None,
            client=_ip_or_none(client),
            host=host,
        )

    def _walk_x_forwarded(
        self, xff: str | None, xfp: str | None, xfh: str | None
    ) -> ForwardedView | None:
        hops = _split_list(xff)
        protos = _split_list(xfp)
        hosts = _split_list(xfh)
        if hops is None or protos is None or hosts is None:
            return None
        index = len(hops) - 1
        while index > 0 and self.is_trusted(hops[index]):
            index -= 1
        client = hops[index] if hops else None
        scheme: str | None = None
        if protos:
            # One value per hop: take the decisive hop's; otherwise the nearest
            # proxy overwrote the header and its value is the one it saw.
            scheme = protos[index] if len(protos) == len(hops) and hops else protos[-1]
        host = hosts[-1] if hosts else None
        return ForwardedView(
            scheme=scheme.lower() if scheme else None,
            client=_ip_or_none(_strip_port(client)) if client else None,
            host=host,
        )


def _split_list(value: str | None) -> list[str] | None:
    if value is None:
        return []
    if "," not in value:
        item = value.strip()
        return [item] if item and len(item) <= _MAX_HEADER else None
    if len(value) > _MAX_HEADER:
        return None
    items = [item.strip() for item in value.split(",")]
    if len(items) > _MAX_HOPS or "" in items:
        return None
    return items


def _ip_or_none(node: str | None) -> str | None:
    """Keep a client address only when it is an IP literal ("unknown", "_hidden" are not)."""
    if node is None:
        return None
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, node)
        except (OSError, ValueError):
            continue
        return node
    return None


def _strip_port(node: str) -> str:
    """``"[2001:db8::1]:4711"`` -> ``"2001:db8::1"``; ``"192.0.2.1:80"`` -> ``"192.0.2.1"``."""
    if node.startswith("["):
        end = node.find("]")
        return node[1:end] if end > 0 else node
    if node.count(":") == 1:
        return node.split(":", 1)[0]
    return node


_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def parse_forwarded(value: str) -> list[dict[str, str]] | None:
    """Parse an RFC 7239 ``Forwarded`` header into one dict per hop.

    Parameter names are lower-cased; values are unquoted. Returns ``None`` for
    a malformed or oversized header (callers then ignore it).
    """
    if len(value) > _MAX_HEADER:
        return None
    elements: list[dict[str, str]] = []
    current: dict[str, str] = {}
    i, n = 0, len(value)
    while True:
        while i < n and value[i] in " \t":
            i += 1
        start = i
        while i < n and value[i] in _TOKEN_CHARS:
            i += 1
        name = value[start:i].lower()
        if not name or i >= n or value[i] != "=":
            return None
        i += 1
        if i < n and value[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n and value[i] != '"':
                if value[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(value[i])
                i += 1
            if i >= n:
                return None
            i += 1
            item = "".join(chars)
        else:
            start = i
            while i < n and value[i] in _TOKEN_CHARS:
                i += 1
            item = value[start:i]
            if not item:
                return None
        if name in current:
            return None
        current[name] = item
        while i < n and value[i] in " \t":
            i += 1
        if i >= n:
            elements.append(current)
            break
        if value[i] == ";":
            i += 1
            continue
        if value[i] == ",":
            elements.append(current)
            current = {}
            if len(elements) >= _MAX_HOPS:
                return None
            i += 1
            continue
        return None
    return elements

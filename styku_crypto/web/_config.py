"""The one configuration object shared by the ASGI and WSGI middleware.

:class:`HTTPSEnforcer` holds the whole decision: given what a server tells us
about a request (scheme, Host header, path, peer address and, from trusted
proxies only, forwarding headers) it says whether to pass the request on,
redirect it to HTTPS, reject it, or refuse its Host. The two middleware
shapes only translate between their protocol and this decision, so ASGI and
WSGI behave the same by construction.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import urllib.parse
from collections.abc import Iterable
from typing import Literal

from styku_crypto.events import emit
from styku_crypto.exceptions import InvalidInputError, InvalidPolicyError
from styku_crypto.web._clientcert import ClientCertPolicy
from styku_crypto.web._cookies import CookiePolicy
from styku_crypto.web._hsts import DEFAULT_MAX_AGE, HSTS, HSTSMinimum
from styku_crypto.web._proxy import ForwardedView, TrustedProxies

__all__ = ["Action", "HTTPSEnforcer", "Verdict"]

Mode = Literal["redirect", "reject"]

_SECURE_SCHEMES = frozenset({"https", "wss"})
#: The logger :func:`~styku_crypto.events.emit` uses for ``capability="web"``.
_WEB_LOGGER = logging.getLogger("styku_crypto.web")
#: Entries kept by the middleware's per-request-shape caches before they are
#: cleared (bounded memory whatever clients send; clearing is atomic, so the
#: caches need no lock under threaded WSGI servers).
CACHE_LIMIT = 512
#: Header combinations longer than this are decided without being cached.
CACHE_KEY_MAX = 1024
_HOSTNAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62})(?:\.[a-z0-9](?:[a-z0-9-]{0,62}))*$")
_PORT = re.compile(r"^[0-9]{1,5}$")
# Characters kept as they are when re-encoding a path or query for Location:
# RFC 3986 unreserved and reserved characters, and '%' of existing escapes.
_URL_SAFE = "/:@!$&'()*+,;=-._~%?"


class Action:
    """What to do with a request (small ints, compared by identity)."""

    PASS = 0
    REDIRECT = 1
    REJECT = 2
    BAD_HOST = 3


_PASS, _REDIRECT, _REJECT, _BAD_HOST = Action.PASS, Action.REDIRECT, Action.REJECT, Action.BAD_HOST


class Verdict:
    """The decision for one request (a small slotted record, built per request).

    Attributes:
        action: one of :class:`Action`'s values.
        secure: the client reached us over HTTPS (directly or through a
            trusted proxy); HSTS and cookie hardening apply.
        client: the client's address (the peer, or what a trusted proxy said).
        host: the validated host name (no port), or ``None``.
        exempt: the path is exempt from redirects and host checks.
    """

    __slots__ = ("action", "client", "exempt", "host", "secure")

    def __init__(
        self, action: int, secure: bool, client: str | None, host: str | None, exempt: bool = False
    ) -> None:
        self.action = action
        self.secure = secure
        self.client = client
        self.host = host
        self.exempt = exempt

    def __repr__(self) -> str:
        return (
            f"Verdict(action={self.action}, secure={self.secure}, client={self.client!r}, "
            f"host={self.host!r}, exempt={self.exempt})"
        )


class HTTPSEnforcer:
    """How HTTPS is enforced, for :class:`ASGIMiddleware` and :class:`WSGIMiddleware`.

    Args:
        allowed_hosts: host names the service answers for (required).
            ``"example.com"`` matches exactly; ``".example.com"`` matches the
            domain and every subdomain; IP literals are allowed. A request for
            any other host gets ``400``, never a redirect to it.
        mode: ``"redirect"`` (default) sends plain-HTTP requests to HTTPS;
            ``"reject"`` answers them ``403`` with a short JSON body (APIs).
        redirect_status: ``308`` (default, keeps method and body) or ``301``.
        https_port: port of the HTTPS listener for redirects; ``None`` or
            ``443`` leaves it out of the URL.
        exempt_paths: paths served over plain HTTP as they are (health checks).
        exempt_prefixes: path prefixes served over plain HTTP as they are.
        hsts: the ``Strict-Transport-Security`` setting; by default the
            policy's minimum (two years) with ``includeSubDomains``.
        policy: the TLS policy whose HSTS minimum ``hsts`` must reach; by
            default ``styku_crypto.tls.profiles.MOZILLA_INTERMEDIATE``'s.
        trusted_proxies: addresses or networks whose ``Forwarded`` /
            ``X-Forwarded-*`` headers are believed. Empty by default: the
            headers are then ignored from everyone.
        cookies: defaults added to cookies set over HTTPS.
        client_cert: an optional client-certificate policy (mTLS).

    Raises:
        InvalidInputError: an argument is malformed (empty host list, ``*``
            as a host, bad status, bad port, relative exempt path, ...).
        InvalidPolicyError: HSTS below the policy's minimum, or preload asked
            for in a configuration the preload list would refuse.

    The configuration is immutable once built (setting an attribute raises
    ``AttributeError``): the middleware caches decisions derived from it.

    .. warning::
        Exempt paths are served in the clear and without a Host check: keep
        them to health checks that return nothing sensitive.
    """

    __slots__ = (
        "_allowed_exact",
        "_allowed_suffixes",
        "_exempt_paths",
        "_exempt_prefixes",
        "_frozen",
        "_host_cache",
        "allowed_hosts",
        "client_cert",
        "cookies",
        "hsts",
        "hsts_header",
        "https_port",
        "mode",
        "redirect_status",
        "trusted_proxies",
    )

    def __init__(
        self,
        *,
        allowed_hosts: Iterable[str],
        mode: Mode = "redirect",
        redirect_status: int = 308,
        https_port: int | None = None,
        exempt_paths: Iterable[str] = (),
        exempt_prefixes: Iterable[str] = (),
        hsts: HSTS | None = None,
        policy: HSTSMinimum | None = None,
        trusted_proxies: Iterable[str] = (),
        cookies: CookiePolicy | None = None,
        client_cert: ClientCertPolicy | None = None,
    ) -> None:
        if isinstance(allowed_hosts, str):
            raise InvalidInputError("allowed_hosts must be a list of host names, not a string")
        hosts = tuple(_normalise_allowed(h) for h in allowed_hosts)
        if not hosts:
            raise InvalidInputError("allowed_hosts must name at least one host")
        if mode not in ("redirect", "reject"):
            raise InvalidInputError("mode must be 'redirect' or 'reject'")
        if redirect_status not in (301, 308):
            raise InvalidInputError("redirect_status must be 308 or 301")
        if https_port is not None and (
            isinstance(https_port, bool) or not isinstance(https_port, int)
        ):
            raise InvalidInputError("https_port must be an integer")
        if https_port is not None and not 0 < https_port < 65536:
            raise InvalidInputError("https_port must be between 1 and 65535")
        paths = frozenset(_check_path(p) for p in _as_list(exempt_paths, "exempt_paths"))
        prefixes = tuple(_check_path(p) for p in _as_list(exempt_prefixes, "exempt_prefixes"))

        minimum = _policy_minimum(policy)
        if hsts is None:
            hsts = HSTS(max_age=max(DEFAULT_MAX_AGE, minimum))
        hsts.check_minimum(minimum)
        if hsts.preload:
            problems = []
            if mode != "redirect":
                problems.append("plain HTTP must redirect to HTTPS (mode='redirect')")
            if https_port not in (None, 443):
                problems.append("the redirect must go to the same host on port 443")
            if "/" in paths or "/" in prefixes or "" in prefixes:
                problems.append("the root path must not be exempt from the redirect")
            if problems:
                raise InvalidPolicyError("HSTS preload refused: " + "; ".join(problems))

        self.allowed_hosts: tuple[str, ...] = hosts
        self._allowed_exact = frozenset(h for h in hosts if not h.startswith("."))
        self._allowed_suffixes = tuple(h for h in hosts if h.startswith("."))
        self.mode: Mode = mode
        self.redirect_status = redirect_status
        self.https_port = None if https_port == 443 else https_port
        self._exempt_paths = paths
        self._exempt_prefixes = prefixes
        self.hsts = hsts
        self.hsts_header = hsts.header_value()
        self.trusted_proxies = TrustedProxies(_as_list(trusted_proxies, "trusted_proxies"))
        self.cookies = cookies if cookies is not None else CookiePolicy()
        self.client_cert = client_cert
        self._host_cache = functools.lru_cache(maxsize=512)(self._validate_host)
        self._frozen = True

    def __setattr__(self, name: str, value: object) -> None:
        # Immutable once built: the middleware caches decisions derived from
        # the configuration, so a later change could not take effect safely.
        if getattr(self, "_frozen", False):
            raise AttributeError("HTTPSEnforcer is immutable; build a new one")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return (
            f"HTTPSEnforcer(allowed_hosts={list(self.allowed_hosts)!r}, mode={self.mode!r}, "
            f"redirect_status={self.redirect_status}, hsts={self.hsts_header!r}, "
            f"trusted_proxies={[str(n) for n in self.trusted_proxies.networks]!r}, "
            f"client_cert={'on' if self.client_cert else 'off'})"
        )

    # -- the decision -------------------------------------------------------

    def host_allowed(self, host_header: str | None) -> str | None:
        """Validate a Host header value; return the host name without port, or ``None``."""
        if not host_header or len(host_header) > 300:
            return None
        return self._host_cache(host_header)

    def _validate_host(self, value: str) -> str | None:
        host = _parse_host(value)
        if host is None:
            return None
        if host in self._allowed_exact:
            return host
        for suffix in self._allowed_suffixes:
            if host.endswith(suffix) or host == suffix[1:]:
                return host
        return None

    def is_exempt(self, path: str) -> bool:
        """Whether *path* is exempt (exact or by prefix) and free of dot segments."""
        if path in self._exempt_paths:
            return _clean_path(path)
        for prefix in self._exempt_prefixes:
            if path.startswith(prefix):
                return _clean_path(path)
        return False

    def decide(
        self,
        *,
        scheme: str,
        host_header: str | None,
        path: str,
        peer: str | None,
        forwarded: ForwardedView | None,
    ) -> Verdict:
        """Decide what to do with one request.

        Args:
            scheme: the connection's scheme as the server reports it.
            host_header: the ``Host`` header (or ``:authority``).
            path: the decoded request path.
            peer: the TCP peer's address.
            forwarded: what a *trusted* proxy said (from
                :meth:`TrustedProxies.resolve`), or ``None``.
        """
        return self._decide(scheme, host_header, path, peer, forwarded)

    def _decide(
        self,
        scheme: str,
        host_header: str | None,
        path: str,
        peer: str | None,
        forwarded: ForwardedView | None,
    ) -> Verdict:
        client = peer
        if forwarded is not None:
            if forwarded.scheme is not None:
                scheme = forwarded.scheme
            if forwarded.client is not None:
                client = forwarded.client
            if forwarded.host is not None:
                host_header = forwarded.host
        secure = scheme in _SECURE_SCHEMES
        if (self._exempt_paths or self._exempt_prefixes) and self.is_exempt(path):
            return Verdict(_PASS, secure, client, None, True)
        host = self._host_cache(host_header) if host_header and len(host_header) <= 300 else None
        if host is None:
            return Verdict(_BAD_HOST, secure, client, None)
        if secure:
            return Verdict(_PASS, True, client, host)
        if self.mode == "reject":
            return Verdict(_REJECT, False, client, host)
        return Verdict(_REDIRECT, False, client, host)

    # -- fast-path helpers (results the middleware caches per request shape) --

    @property
    def fast_path(self) -> bool:
        """Whether a request that passes may skip the path and certificate checks.

        True without a client-certificate policy: then a request on an allowed
        host over HTTPS passes whatever its path (an exempt path only matters
        for plain HTTP or a refused host), so the middleware may decide it from
        the scheme and Host alone. Every other request takes :meth:`decide`.
        """
        return self.client_cert is None

    def _host_ok(self, host_header: str | None) -> bool:
        """Whether *host_header* names an allowed host (what :meth:`_decide` checks)."""
        if not host_header or len(host_header) > 300:
            return False
        return self._host_cache(host_header) is not None

    def _proxied(
        self,
        host: str | None,
        forwarded: str | None,
        x_forwarded_for: str | None,
        x_forwarded_proto: str | None,
        x_forwarded_host: str | None,
    ) -> tuple[bool, str | None, str | None, bool]:
        """What a trusted proxy's headers mean, as :meth:`_decide` would read them.

        Returns ``(has_view, scheme, client, host_ok)``: whether the headers
        gave a view, the forwarded scheme (``None``: the connection's), the
        forwarded client (``None``: the peer) and whether the effective host
        is allowed. Depends on the headers and the configuration only, so the
        middleware caches it per header combination.
        """
        view = self.trusted_proxies.resolve_trusted(
            forwarded, x_forwarded_for, x_forwarded_proto, x_forwarded_host
        )
        if view is None:
            return False, None, None, self._host_ok(host)
        if view.host is not None:
            host = view.host
        return True, view.scheme, view.client, self._host_ok(host)

    def location(self, verdict: Verdict, *, websocket: bool, raw_path: str, query: str) -> str:
        """The HTTPS URL a redirect points to (always on a validated host).

        *raw_path* and *query* are the request's bytes as latin-1 text (as
        PEP 3333 and ASGI's ``raw_path`` give them); they are re-encoded so
        that no control character, space or non-ASCII byte reaches the
        ``Location`` header.
        """
        host = verdict.host or ""
        if ":" in host:
            host = f"[{host}]"
        if self.https_port is not None:
            host = f"{host}:{self.https_port}"
        path = _quote(raw_path) or "/"
        if not path.startswith("/"):
            path = "/" + path
        url = f"{'wss' if websocket else 'https'}://{host}{path}"
        if query:
            url += "?" + _quote(query)
        return url

    # -- events -------------------------------------------------------------

    def report(self, verdict: Verdict) -> None:
        """Emit the event for a redirect, rejection or refused host."""
        if not _WEB_LOGGER.isEnabledFor(
            logging.INFO if verdict.action == _REDIRECT else logging.WARNING
        ):
            return
        if verdict.action == Action.REDIRECT:
            emit(
                "web.https_redirect",
                capability="web",
                outcome="success",
                source=verdict.client,
                attributes={"host": verdict.host, "status": self.redirect_status},
            )
        elif verdict.action == Action.REJECT:
            emit(
                "web.https_reject",
                capability="web",
                outcome="failure",
                level=logging.WARNING,
                source=verdict.client,
                reason="plain_http",
                attributes={"host": verdict.host, "status": 403},
            )
        elif verdict.action == Action.BAD_HOST:
            emit(
                "web.https_reject",
                capability="web",
                outcome="failure",
                level=logging.WARNING,
                source=verdict.client,
                reason="host_not_allowed",
                attributes={"status": 400},
            )


def _quote(text: str) -> str:
    """Percent-encode a PEP 3333 / ASGI latin-1 "bytes as str" value for a URL."""
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:  # a server that handed us real text
        raw = text.encode("utf-8")
    return urllib.parse.quote(raw, safe=_URL_SAFE)


def _policy_minimum(policy: HSTSMinimum | None) -> int:
    if policy is None:
        return DEFAULT_MAX_AGE
    minimum = getattr(policy, "hsts_min_age", None)
    if minimum is None or isinstance(minimum, bool) or not isinstance(minimum, int):
        raise InvalidInputError("policy has no integer hsts_min_age")
    return minimum


def _as_list(values: Iterable[str], what: str) -> list[str]:
    if isinstance(values, str):
        raise InvalidInputError(f"{what} must be a list of strings, not a string")
    out = list(values)
    if not all(isinstance(v, str) for v in out):
        raise InvalidInputError(f"{what} must contain strings only")
    return out


def _check_path(path: str) -> str:
    if not path.startswith("/"):
        raise InvalidInputError(f"exempt path {path!r} must start with '/'")
    return path


def _clean_path(path: str) -> bool:
    # "/health/../admin" must not ride on the "/health/" exemption.
    return not any(segment in (".", "..") for segment in path.split("/"))


def _normalise_allowed(entry: str) -> str:
    if not isinstance(entry, str) or not entry:
        raise InvalidInputError("allowed_hosts entries must be non-empty strings")
    host = entry.strip().lower().rstrip(".")
    if host in ("*", ".") or "*" in host:
        raise InvalidInputError(
            "wildcard hosts are refused: list the names, or '.example.com' for subdomains"
        )
    bare = host[1:] if host.startswith(".") else host
    if bare.startswith("[") and bare.endswith("]"):
        bare = bare[1:-1]
        host = bare
    if _parse_ip(bare) is None and not _HOSTNAME.match(bare):
        raise InvalidInputError(f"allowed host {entry!r} is not a host name or IP address")
    if ":" in bare and host.startswith("."):
        raise InvalidInputError(f"allowed host {entry!r}: an IP address has no subdomains")
    return host


def _parse_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _parse_host(value: str) -> str | None:
    """``"Example.COM.:8443"`` -> ``"example.com"``; ``"[::1]:80"`` -> ``"::1"``; bad -> None."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        rest = value[end + 1 :]
        if rest and (not rest.startswith(":") or not _PORT.match(rest[1:])):
            return None
        return _parse_ip(value[1:end]) if ":" in value[1:end] else None
    host, sep, port = value.partition(":")
    if sep and not _PORT.match(port):
        return None
    host = host.rstrip(".")
    if not host:
        return None
    if host[0].isdigit() and _parse_ip(host) is not None:
        return host
    if not _HOSTNAME.match(host):
        return None
    return host

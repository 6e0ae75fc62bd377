"""WSGI shape of the HTTPS enforcer (Flask, Django, any PEP 3333 app)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from styku_crypto.web._clientcert import decode_proxy_pem
from styku_crypto.web._config import (
    _SECURE_SCHEMES,
    CACHE_KEY_MAX,
    CACHE_LIMIT,
    Action,
    HTTPSEnforcer,
)
from styku_crypto.web._cookies import CookiePolicy

__all__ = ["CLIENT_CERT_ENVIRON_KEY", "PROXY_PEER_ENVIRON_KEY", "WSGIMiddleware"]

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIEnviron = dict[str, Any]
WSGIApp = Callable[[WSGIEnviron, StartResponse], Iterable[bytes]]

#: Environ key under which the accepted client certificate is exposed.
CLIENT_CERT_ENVIRON_KEY = "styku_crypto.client_certificate"
#: Environ key keeping the proxy's own address when REMOTE_ADDR is replaced.
PROXY_PEER_ENVIRON_KEY = "styku_crypto.proxy_peer"

_REJECT_BODY = b'{"error":"https_required","detail":"use HTTPS"}'
_CERT_BODY = b'{"error":"client_certificate_rejected"}'
_HOST_BODY = b"Bad Request: host not allowed\n"
_REDIRECT_BODY = b"Redirecting to HTTPS\n"
# Header-name lengths that need a look on the way out: Set-Cookie (10) and
# Strict-Transport-Security (25). Responses without either only gain HSTS.
_SPECIAL_LENGTHS = frozenset({10, 25})
_REASONS = {
    301: "301 Moved Permanently",
    308: "308 Permanent Redirect",
    400: "400 Bad Request",
    403: "403 Forbidden",
}


class WSGIMiddleware:
    """Enforce HTTPS in front of a WSGI application.

    Same behaviour as :class:`ASGIMiddleware`, from the same
    :class:`HTTPSEnforcer`: plain HTTP is redirected (or rejected), HTTPS
    responses gain HSTS and hardened cookies, unknown hosts get ``400``.

    A client certificate is read from ``SSL_CLIENT_CERT`` in the environ (set
    by the server itself, e.g. mod_wsgi with ``SSLOptions +ExportCertData``)
    or from the configured header of a trusted proxy.

    When a trusted proxy forwarded the request, the environ handed to the app
    carries what the proxy said: ``wsgi.url_scheme`` becomes ``https`` and
    ``REMOTE_ADDR`` the forwarded client (the proxy's address is kept under
    :data:`PROXY_PEER_ENVIRON_KEY`), so Django's ``request.is_secure()`` and
    Flask's ``url_for(..., _external=True)`` are right behind the proxy
    without ``SECURE_PROXY_SSL_HEADER`` or ``ProxyFix``.

    Args:
        app: the WSGI application (for Flask, ``app.wsgi_app``).
        enforcer: the configuration.

    .. warning::
        Do not also let the server or a framework rewrite the scheme from
        forwarding headers (waitress ``trusted_proxy``, werkzeug ``ProxyFix``,
        Django ``SECURE_PROXY_SSL_HEADER``) with a different trust list.
    """

    __slots__ = (
        "_cookies",
        "_fast",
        "_hosts",
        "_hsts",
        "_is_trusted",
        "_peers",
        "_proxied",
        "_proxy_cert_key",
        "app",
        "enforcer",
    )

    def __init__(self, app: WSGIApp, *, enforcer: HTTPSEnforcer) -> None:
        if not isinstance(enforcer, HTTPSEnforcer):
            raise TypeError("enforcer must be an HTTPSEnforcer")
        self.app = app
        self.enforcer = enforcer
        cert = enforcer.client_cert
        self._proxy_cert_key = (
            "HTTP_" + cert.header_key.upper().replace("-", "_")
            if cert and cert.header_key
            else None
        )
        self._hsts = ("Strict-Transport-Security", enforcer.hsts_header)
        self._cookies = enforcer.cookies
        self._fast = enforcer.fast_path
        proxies = enforcer.trusted_proxies
        self._is_trusted = proxies.is_trusted if proxies else None
        # Bounded per-request-shape caches (cleared when full): peer ->
        # trusted; Host -> allowed; forwarding headers -> their meaning.
        self._peers: dict[str, bool] = {}
        self._hosts: dict[str | None, bool] = {}
        self._proxied: dict[tuple[str | None, ...], tuple[bool, str | None, str | None, bool]] = {}

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        # Fast path: a request that passes over HTTPS (direct, or as a trusted
        # proxy says) on an allowed host, decided from cached results; without
        # a client-certificate policy the path cannot change the outcome.
        # Anything else takes _general, the full decision.
        if not self._fast:
            return self._general(environ, start_response)
        peer = environ.get("REMOTE_ADDR") or None
        if peer is None or self._is_trusted is None:
            trusted: bool | None = False
        else:
            trusted = self._peers.get(peer)
            if trusted is None:
                trusted = self._learn_peer(peer)
        if not trusted:
            if environ.get("wsgi.url_scheme") != "https":
                return self._general(environ, start_response)
            host = environ.get("HTTP_HOST")
            ok = self._hosts.get(host)
            if ok is None:
                ok = self._learn_host(host)
            if not ok:
                return self._general(environ, start_response)
        else:
            shape = (
                environ.get("HTTP_HOST"),
                environ.get("HTTP_FORWARDED"),
                environ.get("HTTP_X_FORWARDED_FOR"),
                environ.get("HTTP_X_FORWARDED_PROTO"),
                environ.get("HTTP_X_FORWARDED_HOST"),
            )
            entry = self._proxied.get(shape)
            if entry is None:
                entry = self._learn_proxied(shape)
            has_view, scheme, forwarded_client, ok = entry
            if scheme is None:
                scheme = environ.get("wsgi.url_scheme", "http")
            if not ok or scheme not in _SECURE_SCHEMES:
                return self._general(environ, start_response)
            if has_view:
                environ["wsgi.url_scheme"] = "https"
                if forwarded_client is not None and forwarded_client != peer:
                    environ[PROXY_PEER_ENVIRON_KEY] = peer
                    environ["REMOTE_ADDR"] = forwarded_client
        return self.app(environ, self._secure_start_response(start_response))

    def _learn_peer(self, peer: str) -> bool:
        assert self._is_trusted is not None
        trusted = self._is_trusted(peer)
        if len(peer) <= CACHE_KEY_MAX:
            if len(self._peers) >= CACHE_LIMIT:
                self._peers.clear()
            self._peers[peer] = trusted
        return trusted

    def _learn_host(self, host: str | None) -> bool:
        ok = self.enforcer._host_ok(host)
        if host is None or len(host) <= CACHE_KEY_MAX:
            if len(self._hosts) >= CACHE_LIMIT:
                self._hosts.clear()
            self._hosts[host] = ok
        return ok

    def _learn_proxied(
        self, shape: tuple[str | None, ...]
    ) -> tuple[bool, str | None, str | None, bool]:
        host, forwarded, xff, xfp, xfh = shape
        entry = self.enforcer._proxied(host, forwarded, xff, xfp, xfh)
        if sum(len(value) for value in shape if value is not None) <= CACHE_KEY_MAX:
            if len(self._proxied) >= CACHE_LIMIT:
                self._proxied.clear()
            self._proxied[shape] = entry
        return entry

    def _general(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        """The full decision for any request (the reference the fast path matches)."""
        enforcer = self.enforcer
        peer = environ.get("REMOTE_ADDR") or None
        view = None
        trusted = enforcer.trusted_proxies.is_trusted(peer)
        if trusted:
            view = enforcer.trusted_proxies.resolve_trusted(
                environ.get("HTTP_FORWARDED"),
                environ.get("HTTP_X_FORWARDED_FOR"),
                environ.get("HTTP_X_FORWARDED_PROTO"),
                environ.get("HTTP_X_FORWARDED_HOST"),
            )
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        verdict = enforcer.decide(
            scheme=environ.get("wsgi.url_scheme", "http"),
            host_header=environ.get("HTTP_HOST"),
            path=path or "/",
            peer=peer,
            forwarded=view,
        )
        action = verdict.action
        if action == Action.PASS:
            if view is not None:
                if verdict.secure:
                    environ["wsgi.url_scheme"] = "https"
                if verdict.client is not None and verdict.client != peer:
                    environ[PROXY_PEER_ENVIRON_KEY] = peer
                    environ["REMOTE_ADDR"] = verdict.client
            if not verdict.secure:
                return self.app(environ, start_response)
            if enforcer.client_cert is not None and not verdict.exempt:
                chain = self._client_chain(environ, trusted=trusted)
                result = enforcer.client_cert.check(chain)
                if not result.accepted:
                    enforcer.client_cert.report_rejection(result, source=verdict.client)
                    return self._respond(start_response, 403, _CERT_BODY, "application/json", True)
                if result.certificate is not None:
                    environ[CLIENT_CERT_ENVIRON_KEY] = result.certificate
            return self.app(environ, self._secure_start_response(start_response))
        enforcer.report(verdict)
        if action == Action.REDIRECT:
            raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
            if raw:
                raw_path, _, query = raw.partition("?")
                if not raw_path.startswith("/"):  # absolute-form request target
                    raw_path = path
                    query = environ.get("QUERY_STRING", "")
            else:
                raw_path, query = path, environ.get("QUERY_STRING", "")
            location = enforcer.location(verdict, websocket=False, raw_path=raw_path, query=query)
            return self._respond(
                start_response,
                enforcer.redirect_status,
                _REDIRECT_BODY,
                "text/plain; charset=utf-8",
                False,
                location=location,
            )
        if action == Action.REJECT:
            return self._respond(start_response, 403, _REJECT_BODY, "application/json", False)
        return self._respond(
            start_response, 400, _HOST_BODY, "text/plain; charset=utf-8", verdict.secure
        )

    def _client_chain(self, environ: WSGIEnviron, *, trusted: bool) -> list[str] | None:
        if trusted and self._proxy_cert_key is not None:
            value = environ.get(self._proxy_cert_key)
            if value:
                return decode_proxy_pem(value)
        server_cert = environ.get("SSL_CLIENT_CERT")
        return [server_cert] if server_cert else None

    def _secure_start_response(self, start_response: StartResponse) -> StartResponse:
        sts = self._hsts
        cookies = self._cookies

        def secure_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            new_headers = [*headers]
            for key, _ in new_headers:
                if len(key) in _SPECIAL_LENGTHS:
                    new_headers = _rewrite(new_headers, cookies)
                    break
            new_headers.append(sts)
            if exc_info is not None:
                return start_response(status, new_headers, exc_info)
            return start_response(status, new_headers)

        return secure_start_response

    def _respond(
        self,
        start_response: StartResponse,
        status: int,
        body: bytes,
        content_type: str,
        secure: bool,
        *,
        location: str | None = None,
    ) -> list[bytes]:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if location is not None:
            headers.append(("Location", location))
        if secure:
            headers.append(self._hsts)
        start_response(_REASONS[status], headers)
        return [body]


def _rewrite(headers: list[tuple[str, str]], cookies: CookiePolicy) -> list[tuple[str, str]]:
    """Drop the app's own HSTS header and harden its cookies."""
    out: list[tuple[str, str]] = []
    for key, value in headers:
        lower = key.lower()
        if lower == "strict-transport-security":
            continue
        if lower == "set-cookie":
            value = cookies.harden(value)
        out.append((key, value))
    return out

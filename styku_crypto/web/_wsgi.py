"""WSGI shape of the HTTPS enforcer (Flask, Django, any PEP 3333 app)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from styku_crypto.web._clientcert import decode_proxy_pem
from styku_crypto.web._config import Action, HTTPSEnforcer

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

    __slots__ = ("_proxy_cert_key", "app", "enforcer")

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

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        enforcer = self.enforcer
        peer = environ.get("REMOTE_ADDR") or None
        view = None
        trusted = enforcer.trusted_proxies.is_trusted(peer)
        if trusted:
            view = enforcer.trusted_proxies.resolve(
                peer=peer,
                forwarded=environ.get("HTTP_FORWARDED"),
                x_forwarded_for=environ.get("HTTP_X_FORWARDED_FOR"),
                x_forwarded_proto=environ.get("HTTP_X_FORWARDED_PROTO"),
                x_forwarded_host=environ.get("HTTP_X_FORWARDED_HOST"),
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
        hsts = self.enforcer.hsts_header
        cookies = self.enforcer.cookies

        def secure_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            new_headers: list[tuple[str, str]] = []
            for key, value in headers:
                lower = key.lower()
                if lower == "strict-transport-security":
                    continue
                if lower == "set-cookie":
                    value = cookies.harden(value)
                new_headers.append((key, value))
            new_headers.append(("Strict-Transport-Security", hsts))
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
            headers.append(("Strict-Transport-Security", self.enforcer.hsts_header))
        start_response(_REASONS[status], headers)
        return [body]

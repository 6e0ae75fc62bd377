"""ASGI shape of the HTTPS enforcer (Starlette, FastAPI, any ASGI 3 app)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from styku_crypto.web._clientcert import decode_proxy_pem
from styku_crypto.web._config import (
    _SECURE_SCHEMES,
    CACHE_KEY_MAX,
    CACHE_LIMIT,
    Action,
    HTTPSEnforcer,
    Verdict,
)

__all__ = ["CLIENT_CERT_SCOPE_KEY", "ASGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Scope key under which the accepted client certificate is exposed to the app.
CLIENT_CERT_SCOPE_KEY = "styku_crypto.client_certificate"

_HOST, _FORWARDED, _XFF, _XFP, _XFH = 0, 1, 2, 3, 4
# Request headers read from trusted proxies; repeated ones are joined with ", "
# (a repeated Host is kept as the first).
_PROXY_SLOTS = {
    b"host": _HOST,
    b"forwarded": _FORWARDED,
    b"x-forwarded-for": _XFF,
    b"x-forwarded-proto": _XFP,
    b"x-forwarded-host": _XFH,
}
_STS = b"strict-transport-security"
_SET_COOKIE = b"set-cookie"
_REJECT_BODY = b'{"error":"https_required","detail":"use HTTPS"}'
_CERT_BODY = b'{"error":"client_certificate_rejected"}'
_HOST_BODY = b"Bad Request: host not allowed\n"
_REDIRECT_BODY = b"Redirecting to HTTPS\n"


class ASGIMiddleware:
    """Enforce HTTPS in front of an ASGI application.

    Plain-HTTP requests are redirected (or rejected) according to the
    *enforcer*; HTTPS responses gain ``Strict-Transport-Security`` and
    hardened cookies; requests for a host outside the allow-list get ``400``.
    ``ws://`` upgrades are redirected to ``wss://`` where the server supports
    the ASGI WebSocket denial-response extension, and refused otherwise.
    Lifespan and other scope types pass through untouched.

    When a trusted proxy forwarded the request, the scope handed to the app
    carries what the proxy said: ``scheme`` becomes ``https`` (or ``wss``)
    and ``client`` the forwarded client address, so ``request.url`` and
    ``request.client`` are right behind the proxy.

    Args:
        app: the ASGI application.
        enforcer: the configuration (shared with :class:`WSGIMiddleware`).

    .. warning::
        Turn off the server's own forwarding-header handling (uvicorn:
        ``proxy_headers=False``), or it rewrites the scheme from
        ``X-Forwarded-Proto`` before this middleware can apply its own
        proxy trust.
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
        "_sts",
        "app",
        "enforcer",
    )

    def __init__(self, app: ASGIApp, *, enforcer: HTTPSEnforcer) -> None:
        if not isinstance(enforcer, HTTPSEnforcer):
            raise TypeError("enforcer must be an HTTPSEnforcer")
        self.app = app
        self.enforcer = enforcer
        self._hsts = enforcer.hsts_header.encode("latin-1")
        self._sts = (_STS, self._hsts)
        cert = enforcer.client_cert
        self._proxy_cert_key = (
            cert.header_key.encode("latin-1") if cert and cert.header_key else None
        )
        self._fast = enforcer.fast_path
        proxies = enforcer.trusted_proxies
        self._is_trusted = proxies.is_trusted if proxies else None
        # Bounded per-request-shape caches: raw Host -> allowed; raw
        # forwarding headers -> (has_view, scheme, client, host allowed).
        self._cookies = enforcer.cookies
        self._peers: dict[str, bool] = {}
        self._hosts: dict[bytes | None, bool] = {}
        self._proxied: dict[
            tuple[bytes | None, ...], tuple[bool, str | None, str | None, bool]
        ] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Fast path: an HTTP request that passes over HTTPS (direct, or as a
        # trusted proxy says) on an allowed host. It skips only work whose
        # result is known: Host and forwarding-header decisions are cached per
        # raw value, and without a client-certificate policy the path cannot
        # change the outcome. Anything else takes _general, the full decision.
        if scope["type"] != "http" or not self._fast:
            await self._general(scope, receive, send)
            return
        client = scope.get("client")
        peer = client[0] if client else None
        if peer is None or self._is_trusted is None:
            trusted: bool | None = False
        else:
            trusted = self._peers.get(peer)
            if trusted is None:
                trusted = self._learn_peer(peer)
        if not trusted:
            if scope.get("scheme") != "https":
                await self._general(scope, receive, send)
                return
            host = None
            for key, value in scope["headers"]:
                if key == b"host":
                    host = value
                    break
            ok = self._hosts.get(host)
            if ok is None:
                ok = self._learn_host(host)
            if not ok:
                await self._general(scope, receive, send)
                return
        else:
            found: list[bytes | None] = [None, None, None, None, None]
            for key, value in scope["headers"]:
                slot = _PROXY_SLOTS.get(key)
                if slot is not None:
                    prev = found[slot]
                    if prev is None:
                        found[slot] = value
                    elif slot != _HOST:
                        found[slot] = prev + b", " + value
            shape = tuple(found)
            entry = self._proxied.get(shape)
            if entry is None:
                entry = self._learn_proxied(shape)
            has_view, scheme, forwarded_client, ok = entry
            if scheme is None:
                scheme = scope.get("scheme") or "http"
            if not ok or scheme not in _SECURE_SCHEMES:
                await self._general(scope, receive, send)
                return
            if has_view:
                scope["scheme"] = "https"
                if forwarded_client is not None and forwarded_client != peer:
                    scope["client"] = (forwarded_client, 0)
        await self.app(scope, receive, self._secure_send(send))

    def _learn_peer(self, peer: str) -> bool:
        assert self._is_trusted is not None
        trusted = self._is_trusted(peer)
        if len(peer) <= CACHE_KEY_MAX:
            if len(self._peers) >= CACHE_LIMIT:
                self._peers.clear()
            self._peers[peer] = trusted
        return trusted

    def _learn_host(self, host: bytes | None) -> bool:
        ok = self.enforcer._host_ok(None if host is None else host.decode("latin-1"))
        if host is None or len(host) <= CACHE_KEY_MAX:
            if len(self._hosts) >= CACHE_LIMIT:
                self._hosts.clear()
            self._hosts[host] = ok
        return ok

    def _learn_proxied(
        self, shape: tuple[bytes | None, ...]
    ) -> tuple[bool, str | None, str | None, bool]:
        host, forwarded, xff, xfp, xfh = (
            None if value is None else value.decode("latin-1") for value in shape
        )
        entry = self.enforcer._proxied(host, forwarded, xff, xfp, xfh)
        if sum(len(value) for value in shape if value is not None) <= CACHE_KEY_MAX:
            if len(self._proxied) >= CACHE_LIMIT:
                self._proxied.clear()
            self._proxied[shape] = entry
        return entry

    async def _general(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The full decision for any request (the reference the fast path matches)."""
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        enforcer = self.enforcer
        client = scope.get("client")
        peer = client[0] if client else None
        trusted = enforcer.trusted_proxies.is_trusted(peer)
        host_header: str | None = None
        proxy_cert: str | None = None
        if trusted:
            found: dict[int, str] = {}
            for key, value in scope["headers"]:
                slot = _PROXY_SLOTS.get(key)
                if slot is not None:
                    text = value.decode("latin-1")
                    if slot not in found:
                        found[slot] = text
                    elif slot != _HOST:
                        found[slot] = f"{found[slot]}, {text}"
                elif key == self._proxy_cert_key:
                    proxy_cert = value.decode("latin-1")
            host_header = found.get(_HOST)
            view = enforcer.trusted_proxies.resolve_trusted(
                found.get(_FORWARDED), found.get(_XFF), found.get(_XFP), found.get(_XFH)
            )
        else:
            for key, value in scope["headers"]:
                if key == b"host":
                    host_header = value.decode("latin-1")
                    break
            view = None
        verdict = enforcer._decide(
            scope.get("scheme") or ("ws" if kind == "websocket" else "http"),
            host_header,
            scope.get("path", "/"),
            peer,
            view,
        )
        action = verdict.action
        if action == Action.PASS:
            if view is not None:
                _apply_forwarded(scope, verdict, kind)
            if verdict.secure:
                if enforcer.client_cert is not None and not verdict.exempt:
                    chain = _client_chain(scope, proxy_cert)
                    result = enforcer.client_cert.check(chain)
                    if not result.accepted:
                        enforcer.client_cert.report_rejection(result, source=verdict.client)
                        await self._respond(
                            scope, receive, send, 403, _CERT_BODY, b"application/json", True
                        )
                        return
                    if result.certificate is not None:
                        scope[CLIENT_CERT_SCOPE_KEY] = result.certificate
                if kind == "http":
                    await self.app(scope, receive, self._secure_send(send))
                    return
            await self.app(scope, receive, send)
            return
        enforcer.report(verdict)
        if action == Action.REDIRECT:
            location = self._location(scope, verdict, websocket=kind == "websocket")
            await self._respond(
                scope,
                receive,
                send,
                enforcer.redirect_status,
                _REDIRECT_BODY,
                b"text/plain; charset=utf-8",
                False,
                location=location,
            )
        elif action == Action.REJECT:
            await self._respond(scope, receive, send, 403, _REJECT_BODY, b"application/json", False)
        else:
            await self._respond(
                scope,
                receive,
                send,
                400,
                _HOST_BODY,
                b"text/plain; charset=utf-8",
                verdict.secure,
            )

    def _location(self, scope: Scope, verdict: Verdict, *, websocket: bool) -> str:
        raw = scope.get("raw_path")
        if raw:
            raw_path = raw.decode("latin-1")
        else:
            raw_path = scope.get("path", "/").encode("utf-8").decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        return self.enforcer.location(verdict, websocket=websocket, raw_path=raw_path, query=query)

    def _secure_send(self, send: Send) -> Send:
        """Wrap *send*: the response start gains HSTS, loses the app's own, cookies hardened.

        One pass over the response headers; used by the fast path and the full
        decision alike.
        """
        sts = self._sts
        harden = self._cookies.harden_raw

        def secure_send(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                headers = []
                for key, value in message.get("headers", ()):
                    length = len(key)
                    if length == 10 and key.lower() == _SET_COOKIE:
                        value = harden(value)
                    elif length == 25 and key.lower() == _STS:
                        continue
                    headers.append((key, value))
                headers.append(sts)
                message["headers"] = headers
            return send(message)

        return secure_send

    async def _respond(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        body: bytes,
        content_type: bytes,
        secure: bool,
        *,
        location: str | None = None,
    ) -> None:
        headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode("ascii")),
        ]
        if location is not None:
            headers.append((b"location", location.encode("ascii")))
        if secure:
            headers.append((_STS, self._hsts))
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        # WebSocket: wait for the handshake, then answer it with an HTTP
        # response where the server supports that, or refuse it.
        message = await receive()
        if message.get("type") != "websocket.connect":
            return
        if "websocket.http.response" in (scope.get("extensions") or {}):
            await send(
                {"type": "websocket.http.response.start", "status": status, "headers": headers}
            )
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})


def _apply_forwarded(scope: Scope, verdict: Verdict, kind: str) -> None:
    """Tell the app what the trusted proxy said: scheme and client address."""
    if verdict.secure:
        scope["scheme"] = "wss" if kind == "websocket" else "https"
    if verdict.client is not None and verdict.client != (scope.get("client") or (None,))[0]:
        scope["client"] = (verdict.client, 0)


def _client_chain(scope: Scope, proxy_cert: str | None) -> list[str] | None:
    if proxy_cert is not None:
        return decode_proxy_pem(proxy_cert)
    tls = (scope.get("extensions") or {}).get("tls")
    if not tls:
        return None
    if tls.get("client_cert_error"):
        return None
    chain = tls.get("client_cert_chain")
    return list(chain) if chain else None

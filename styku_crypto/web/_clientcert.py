"""Client-certificate policy for mTLS deployments.

Where the TLS handshake ends in the ASGI server, the server may expose the
peer's chain through the ASGI TLS extension (``scope["extensions"]["tls"]
["client_cert_chain"]``, PEM strings, leaf first). Where it ends in a reverse
proxy, the proxy can pass the certificate in a header, URL-escaped PEM as
nginx's ``$ssl_client_escaped_cert`` produces; that header is read only from
trusted proxies.

Either way the chain is checked in two steps:

1. :func:`styku_crypto.tls.check_certificate` applies the TLS policy's
   certificate rules (validity and expiry, lifetime, key type and size,
   signature algorithm, chain order, basic constraints). Its server-only
   rules (host name, ``serverAuth`` EKU, server path validation) are switched
   off for client certificates;
2. path validation as a *client* certificate to the configured client CA(s)
   with :mod:`cryptography.x509.verification`'s ``ClientVerifier``, with the
   ``clientAuth`` extended key usage required (the criticality of SAN and
   EKU, which private CAs often set, is not judged).

A request whose certificate fails either step gets ``403`` and
``web.client_cert_rejected``. Results are cached per chain for a short time
so that a keep-alive client does not pay for a full check on every request.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from styku_crypto.events import emit
from styku_crypto.exceptions import InvalidInputError

__all__ = ["ClientCertPolicy", "ClientCertResult", "decode_proxy_pem"]

_MAX_PEM = 64 * 1024
_HEADER_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
# check_certificate rules that only make sense for a server certificate.
_SERVER_ONLY_RULES = ("CERT-HOST-001", "CERT-HOST-002", "CERT-EKU-001", "CERT-CHAIN-003")
_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class ClientCertResult:
    """The outcome of a client-certificate check.

    Attributes:
        accepted: the certificate satisfied the policy.
        reason: why it did not (``"missing"``, ``"unparseable"``,
            ``"untrusted"`` or the failing rule ids), else ``None``.
        certificate: the accepted leaf (``cryptography.x509.Certificate``).
    """

    accepted: bool
    reason: str | None = None
    certificate: Any = None


@dataclass(frozen=True)
class ClientCertPolicy:
    """Which client certificates an mTLS service accepts.

    Args:
        policy: the TLS policy (``styku_crypto.tls.profiles.*``) whose
            certificate rules apply.
        trust: the client CA certificate(s) the chain must lead to: a PEM
            file path, PEM bytes, or a sequence of
            ``cryptography.x509.Certificate``.
        proxy_header: name of the header a trusted TLS-terminating proxy puts
            the URL-escaped PEM certificate in (e.g. ``"x-ssl-client-cert"``);
            ``None`` reads the certificate from the server only (ASGI TLS
            extension, or ``SSL_CLIENT_CERT`` in a WSGI environ). The header
            is ignored from peers that are not trusted proxies.
        required: refuse requests without a certificate (default). When
            ``False`` a missing certificate passes; a bad one is still refused.
        cache_seconds: how long a verdict for one chain is reused.

    Raises:
        InvalidInputError: the header name or the trust anchors are invalid.

    .. warning::
        A proxy header is only as trustworthy as the proxy: it must remove the
        header from client requests and set it from its own handshake.
    """

    policy: Any
    trust: Any
    proxy_header: str | None = None
    required: bool = True
    cache_seconds: float = 60.0
    _header_key: str | None = field(default=None, init=False, repr=False, compare=False)
    _roots: tuple[Any, ...] = field(default=(), init=False, repr=False, compare=False)
    _cert_policy: Any = field(default=None, init=False, repr=False, compare=False)
    _cache: OrderedDict[bytes, tuple[float, ClientCertResult]] = field(
        default_factory=OrderedDict, init=False, repr=False, compare=False
    )
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.proxy_header is not None:
            name = self.proxy_header.strip().lower()
            if not name or not set(name) <= _HEADER_NAME_CHARS:
                raise InvalidInputError("proxy_header must be an HTTP header name")
            object.__setattr__(self, "_header_key", name)
        object.__setattr__(self, "_roots", _load_roots(self.trust))
        from styku_crypto.tls import Severity

        overrides = tuple(self.policy.severities) + tuple(
            (rule_id, Severity.OFF) for rule_id in _SERVER_ONLY_RULES
        )
        object.__setattr__(self, "_cert_policy", self.policy.replace(severities=overrides))

    @property
    def header_key(self) -> str | None:
        """The proxy header name, lower-cased (``None`` when not configured)."""
        return self._header_key

    def check(
        self,
        chain_pem: Sequence[str | bytes] | None,
        *,
        now: datetime | None = None,
    ) -> ClientCertResult:
        """Check a client chain (PEM, leaf first) against the policy and client CAs.

        Never raises for a bad certificate: the result says why it was refused.
        """
        if not chain_pem:
            if self.required:
                return ClientCertResult(False, "missing")
            return ClientCertResult(True)
        blobs: list[bytes] = []
        for item in chain_pem:
            try:
                data = item.encode("ascii") if isinstance(item, str) else bytes(item)
            except UnicodeEncodeError:
                return ClientCertResult(False, "unparseable")
            if len(data) > _MAX_PEM:
                return ClientCertResult(False, "unparseable")
            blobs.append(data)
        key = hashlib.sha256(b"\0".join(blobs)).digest()
        if now is None:
            cached = self._cached(key)
            if cached is not None:
                return cached
        result = self._check(blobs, now or datetime.now(UTC))
        if now is None:
            self._store(key, result)
        return result

    def _check(self, blobs: list[bytes], moment: datetime) -> ClientCertResult:
        from cryptography import x509
        from cryptography.x509.verification import (
            ExtensionPolicy,
            PolicyBuilder,
            Store,
            VerificationError,
        )

        from styku_crypto.tls import check_certificate

        _ee = _client_ee_policy()

        certificates: list[x509.Certificate] = []
        try:
            for data in blobs:
                certificates.extend(x509.load_pem_x509_certificates(data))
        except ValueError:
            return ClientCertResult(False, "unparseable")
        if not certificates:
            return ClientCertResult(False, "unparseable")
        report = check_certificate(
            certificates,
            hostname=None,
            policy=self._cert_policy,
            now=moment,
            trust=list(self._roots),
            target="client-certificate",
        )
        failed = sorted({f.rule_id for f in report.active if str(f.severity) == "error"})
        if failed:
            return ClientCertResult(False, ",".join(failed))
        try:
            verifier = (
                PolicyBuilder()
                .store(Store(list(self._roots)))
                .time(moment)
                .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_ee)
                .build_client_verifier()
            )
            verifier.verify(certificates[0], certificates[1:])
        except (VerificationError, ValueError):
            return ClientCertResult(False, "untrusted")
        return ClientCertResult(True, None, certificates[0])

    def _cached(self, key: bytes) -> ClientCertResult | None:
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return None
            if entry[0] < time.monotonic():
                del self._cache[key]
                return None
            self._cache.move_to_end(key)
            return entry[1]

    def _store(self, key: bytes, result: ClientCertResult) -> None:
        if self.cache_seconds <= 0:
            return
        with self._lock:
            self._cache[key] = (time.monotonic() + self.cache_seconds, result)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)

    def report_rejection(self, result: ClientCertResult, *, source: str | None) -> None:
        """Emit ``web.client_cert_rejected`` for a refused certificate."""
        emit(
            "web.client_cert_rejected",
            capability="web",
            outcome="failure",
            level=logging.WARNING,
            source=source,
            reason=result.reason,
        )


def _require_client_auth(policy: Any, certificate: Any, eku: Any) -> None:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise ValueError("extendedKeyUsage lacks clientAuth")


def _client_ee_policy() -> Any:
    """Web PKI leaf rules, with clientAuth required and SAN/EKU criticality not judged.

    Private client CAs (trustme among them) often mark subjectAltName and
    extendedKeyUsage critical, which the CA/Browser profile forbids for
    public server certificates; criticality is no security property here,
    the clientAuth purpose is, and it is required.
    """
    from cryptography import x509
    from cryptography.x509.verification import Criticality, ExtensionPolicy

    return (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
        .require_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _require_client_auth)
    )


def _load_roots(trust: Any) -> tuple[Any, ...]:
    from cryptography import x509

    if isinstance(trust, (str, Path)):
        try:
            data = Path(trust).read_bytes()
        except OSError:
            raise InvalidInputError("client CA file cannot be read") from None
    elif isinstance(trust, (bytes, bytearray)):
        data = bytes(trust)
    elif isinstance(trust, Sequence) and all(isinstance(c, x509.Certificate) for c in trust):
        if not trust:
            raise InvalidInputError("trust must name at least one client CA")
        return tuple(trust)
    else:
        raise InvalidInputError("trust must be a PEM file path, PEM bytes or certificates")
    try:
        roots = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise InvalidInputError("client CA data is not PEM certificates") from None
    return tuple(roots)


def decode_proxy_pem(value: str) -> list[str] | None:
    """Decode a proxy header carrying URL-escaped PEM (or raw PEM); ``None`` if unusable."""
    if len(value) > 3 * _MAX_PEM:
        return None
    text = urllib.parse.unquote(value) if "%" in value else value
    if "-----BEGIN CERTIFICATE-----" not in text:
        return None
    return [text]

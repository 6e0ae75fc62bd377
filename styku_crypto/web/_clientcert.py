"""Client-certificate policy for mTLS deployments.

Where the TLS handshake ends in the ASGI server, the server may expose the
peer's chain through the ASGI TLS extension (``scope["extensions"]["tls"]
["client_cert_chain"]``, PEM strings, leaf first). Where it ends in a reverse
proxy, the proxy can pass the leaf (or chain) in a header, URL-escaped PEM as
nginx's ``$ssl_client_escaped_cert`` produces; that header is read only from
trusted proxies. Either way the chain is checked with
:func:`styku_crypto.tls.check_certificate` against the TLS policy and the
client CA(s), and a request whose certificate fails gets ``403``.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from styku_crypto.events import emit
from styku_crypto.exceptions import InvalidInputError

__all__ = ["ClientCertPolicy", "ClientCertResult"]

_MAX_PEM = 64 * 1024
_HEADER_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True, slots=True)
class ClientCertResult:
    """The outcome of a client-certificate check.

    Attributes:
        accepted: the certificate satisfied the policy.
        reason: why it did not (``"missing"``, ``"unparseable"``,
            ``"server_verify_failed"`` or the failing rule ids), else ``None``.
        certificate: the accepted leaf (``cryptography.x509.Certificate``).
    """

    accepted: bool
    reason: str | None = None
    certificate: Any = None


@dataclass(frozen=True, slots=True)
class ClientCertPolicy:
    """Which client certificates an mTLS service accepts.

    Args:
        policy: the TLS policy (``styku_crypto.tls.profiles.*``) the
            certificate must satisfy (key sizes, signature algorithms,
            validity, lifetime).
        trust: the client CA certificate(s) the chain must lead to, in the
            form :func:`styku_crypto.tls.check_certificate` accepts for
            ``trust``.
        proxy_header: name of the header a trusted TLS-terminating proxy puts
            the URL-escaped PEM certificate in (e.g. ``"x-ssl-client-cert"``);
            ``None`` reads the certificate from the ASGI TLS extension only.
            The header is ignored from untrusted peers.
        required: refuse requests without a certificate (default). When
            ``False`` a missing certificate passes, a bad one is still refused.

    .. warning::
        A proxy header is only as trustworthy as the proxy: it must strip the
        header from client requests and set it from its own handshake.
    """

    policy: Any
    trust: Any
    proxy_header: str | None = None
    required: bool = True
    _header_key: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.proxy_header is not None:
            name = self.proxy_header.strip().lower()
            if not name or not set(name) <= _HEADER_NAME_CHARS:
                raise InvalidInputError("proxy_header must be an HTTP header name")
            object.__setattr__(self, "_header_key", name)

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
        """Check a client chain (PEM, leaf first) against the policy.

        Never raises for a bad certificate: the result says why it was refused.
        """
        if not chain_pem:
            if self.required:
                return ClientCertResult(False, "missing")
            return ClientCertResult(True)
        from cryptography import x509

        certificates = []
        try:
            for item in chain_pem:
                data = item.encode("ascii") if isinstance(item, str) else bytes(item)
                if len(data) > _MAX_PEM:
                    return ClientCertResult(False, "unparseable")
                certificates.extend(x509.load_pem_x509_certificates(data))
        except (ValueError, UnicodeEncodeError):
            return ClientCertResult(False, "unparseable")
        if not certificates:
            return ClientCertResult(False, "unparseable")
        from styku_crypto.tls import check_certificate

        report = check_certificate(
            certificates,
            hostname=None,
            policy=self.policy,
            now=now or datetime.now(UTC),
            trust=self.trust,
        )
        failed = _failed_rules(report)
        if failed:
            return ClientCertResult(False, ",".join(sorted(set(failed))))
        return ClientCertResult(True, None, certificates[0])

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


def decode_proxy_pem(value: str) -> list[str] | None:
    """Decode a proxy header carrying URL-escaped PEM (or raw PEM); ``None`` if unusable."""
    if len(value) > 3 * _MAX_PEM:
        return None
    text = urllib.parse.unquote(value) if "%" in value else value
    if "-----BEGIN CERTIFICATE-----" not in text:
        return None
    return [text]


def _failed_rules(report: Any) -> list[str]:
    """Rule ids of failing findings in a ``check_certificate`` report."""
    findings = getattr(report, "findings", report)
    failed = []
    for finding in findings:
        severity = str(getattr(finding, "severity", "")).lower()
        if severity.endswith(("fail", "error")) or severity == "critical":
            failed.append(str(getattr(finding, "rule_id", getattr(finding, "rule", "unknown"))))
    return failed

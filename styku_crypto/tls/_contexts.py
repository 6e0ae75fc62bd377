"""Hardened stdlib and pyOpenSSL contexts built from a :class:`Policy`."""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import warnings
import weakref
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm

from styku_crypto._extras import require
from styku_crypto.exceptions import InvalidInputError, PolicyViolationError
from styku_crypto.tls._native import native
from styku_crypto.tls._policy import Policy
from styku_crypto.tls._registry import group_by_name
from styku_crypto.tls.profiles import DEFAULT

__all__ = [
    "CertificatePolicyError",
    "ContextFacts",
    "client_context",
    "context_facts",
    "pyopenssl_client_connection",
    "pyopenssl_client_context",
    "pyopenssl_server_context",
    "server_context",
]


def emit(event: str, **fields: Any) -> None:
    """Forward to :func:`styku_crypto.events.emit`, imported on first use (cheap import)."""
    from styku_crypto.events._emit import emit as forward

    forward(event, **fields)


#: OpenSSL security level appended to every cipher string: RSA/DH >= 2048 bits,
#: ECC >= 224 bits, no SHA-1 or MD5 in handshake signatures or certificates.
SECURITY_LEVEL = 2

_TLS_VERSION_PYOPENSSL = {
    "TLSv1": "TLS1_VERSION",
    "TLSv1.1": "TLS1_1_VERSION",
    "TLSv1.2": "TLS1_2_VERSION",
    "TLSv1.3": "TLS1_3_VERSION",
}


class CertificatePolicyError(ssl.SSLCertVerificationError, PolicyViolationError):
    """The peer's certificate verified but violates the TLS policy.

    Subclasses :class:`ssl.SSLCertVerificationError` (so HTTP clients treat it as
    a certificate failure) and :class:`~styku_crypto.exceptions.PolicyViolationError`.
    """


@dataclass(frozen=True)
class ContextFacts:
    """What a context built by this module enforces (see :func:`context_facts`).

    Attributes:
        api: ``"stdlib"`` or ``"pyopenssl"``.
        side: ``"server"`` or ``"client"``.
        policy: the policy name.
        openssl: the OpenSSL version the context runs on.
        groups: groups set on the context, OpenSSL names, in preference order.
        groups_unavailable: policy groups this OpenSSL does not support.
        groups_method: how the groups were set.
        tls13_suites_method: how the TLS 1.3 suites were set.
        mutual_tls: a client certificate is required and verified.
    """

    api: str
    side: str
    policy: str
    openssl: str
    groups: tuple[str, ...]
    groups_unavailable: tuple[str, ...]
    groups_method: str
    tls13_suites_method: str
    mutual_tls: bool


_FACTS: weakref.WeakKeyDictionary[Any, ContextFacts] = weakref.WeakKeyDictionary()


def context_facts(ctx: object) -> ContextFacts | None:
    """What this module recorded when it built *ctx*, or ``None`` for foreign contexts."""
    try:
        return _FACTS.get(ctx)
    except TypeError:
        return None


def _check_file(path: str | os.PathLike[str] | None, what: str) -> None:
    if path is not None and not os.path.isfile(path):
        raise InvalidInputError(f"{what}: no such file: {os.fspath(path)!r}")


class _EncryptedKeyError(Exception):
    """Raised from the password callback: the library never prompts on a terminal."""


def _refuse_password(*_args: object) -> bytes:
    raise _EncryptedKeyError


def _load_chain(
    ctx: ssl.SSLContext,
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None,
) -> None:
    """``load_cert_chain`` with typed errors and no passphrase prompt."""
    try:
        ctx.load_cert_chain(certfile, keyfile, password=_refuse_password)
    except _EncryptedKeyError:
        raise InvalidInputError(
            "the private key is encrypted; provide an unencrypted key file (keep it mode 0600)"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise InvalidInputError(
            f"cannot load the certificate chain or private key ({_ssl_reason(exc)})"
        ) from None


def _load_cas(ctx: ssl.SSLContext, cafile: str | os.PathLike[str]) -> None:
    """``load_verify_locations`` with a typed error."""
    try:
        ctx.load_verify_locations(cafile=os.fspath(cafile))
    except (ssl.SSLError, OSError) as exc:
        raise InvalidInputError(f"cannot load CA certificates ({_ssl_reason(exc)})") from None


def _ssl_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None)
    return str(reason) if reason else type(exc).__name__


def _pyopenssl_load_chain(
    ctx: Any,
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None,
    *,
    check: bool,
) -> None:
    """pyOpenSSL chain + key loading with typed errors and no passphrase prompt.

    The key is parsed with ``cryptography`` (no password), so an encrypted key is
    refused instead of OpenSSL asking for a passphrase on the terminal.
    """
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from OpenSSL import SSL

    path = keyfile if keyfile is not None else certfile
    try:
        with open(path, "rb") as fh:
            pem = fh.read()
        key = load_pem_private_key(pem, password=None)
    except TypeError:
        raise InvalidInputError(
            "the private key is encrypted; provide an unencrypted key file (keep it mode 0600)"
        ) from None
    except (ValueError, OSError, UnsupportedAlgorithm):
        raise InvalidInputError("cannot load the private key") from None
    try:
        ctx.use_certificate_chain_file(os.fspath(certfile))
        ctx.use_privatekey(key)
        if check:
            ctx.check_privatekey()
    except SSL.Error:
        raise InvalidInputError(
            "cannot load the certificate chain, or it does not match the private key"
        ) from None


def _pyopenssl_load_cas(ctx: Any, cafile: str | os.PathLike[str]) -> None:
    from OpenSSL import SSL

    try:
        ctx.load_verify_locations(os.fspath(cafile))
    except SSL.Error:
        raise InvalidInputError("cannot load CA certificates") from None


def _openssl_groups(policy: Policy) -> list[str]:
    return [group_by_name(g).openssl for g in policy.groups]


# ----------------------------------------------------------------- stdlib


def _apply_stdlib(
    ctx: ssl.SSLContext, policy: Policy
) -> tuple[tuple[str, ...], tuple[str, ...], str, str]:
    with warnings.catch_warnings():
        # Only the comparison "old" profiles reach TLS 1.0/1.1, whose enum
        # members the stdlib marks deprecated.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = policy.minimum_version
        ctx.maximum_version = policy.maximum_version
    # TLS 1.2 suites: the policy's list; for TLS 1.3-only policies a placeholder
    # list is still needed because OpenSSL refuses an empty TLS 1.2 list (it is
    # never used: the minimum version is 1.3).
    tls12 = policy.openssl_cipher_string or "ECDHE+AESGCM"
    ctx.set_ciphers(f"{tls12}:@SECLEVEL={SECURITY_LEVEL}")
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    if policy.server_preferred_order:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE

    binding = native()
    wanted = _openssl_groups(policy)
    if binding is not None:
        available = [g for g in wanted if binding.supports_group(g)]
        missing = tuple(g for g in wanted if g not in available)
        if not available or not binding.set_groups(ctx, available):
            raise PolicyViolationError(
                f"policy {policy.name}: none of its groups can be set on {ssl.OPENSSL_VERSION}"
            )
        if not binding.set_tls13_suites(ctx, policy.tls13_suites):
            raise PolicyViolationError(
                f"policy {policy.name}: TLS 1.3 suites refused by {ssl.OPENSSL_VERSION}"
            )
        return (
            tuple(available),
            missing,
            f"SSL_CTX_set1_groups_list via ctypes ({binding.path})",
            "SSL_CTX_set_ciphersuites via ctypes",
        )
    # Fallback: set_ecdh_curve restricts the context to exactly one group.
    for name in ("prime256v1", "secp384r1"):
        if any(group_by_name(g).name == group_by_name(name).name for g in policy.groups):
            ctx.set_ecdh_curve(name)
            chosen = group_by_name(name).openssl
            missing = tuple(g for g in wanted if g != chosen)
            return (chosen,), missing, "ssl.SSLContext.set_ecdh_curve (single group)", "not set"
    raise PolicyViolationError(f"policy {policy.name}: cannot restrict key-exchange groups here")


def _policy_socket_classes(
    policy: Policy,
) -> tuple[type[ssl.SSLSocket], type[ssl.SSLObject]]:
    from styku_crypto.tls._certs import enforce_handshake_certificate

    class PolicySSLSocket(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            super().do_handshake(block)
            der = self.getpeercert(binary_form=True)
            try:
                enforce_handshake_certificate(der, policy=policy, target=self.server_hostname)
            except CertificatePolicyError:
                self.close()
                raise

    class PolicySSLObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            super().do_handshake()
            enforce_handshake_certificate(
                self.getpeercert(binary_form=True), policy=policy, target=self.server_hostname
            )

    return PolicySSLSocket, PolicySSLObject


def _record(ctx: object, facts: ContextFacts) -> None:
    with contextlib.suppress(TypeError):  # every supported context type is weak-referenceable
        _FACTS[ctx] = facts
    emit(
        "tls.context_created",
        capability="tls",
        outcome="success",
        level=logging.INFO,
        attributes={
            "api": facts.api,
            "side": facts.side,
            "policy": facts.policy,
            "groups": ":".join(facts.groups),
            "groups_unavailable": ":".join(facts.groups_unavailable),
            "groups_method": facts.groups_method,
            "mutual_tls": facts.mutual_tls,
        },
    )


def server_context(
    *,
    policy: Policy = DEFAULT,
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None = None,
    client_ca: str | os.PathLike[str] | None = None,
) -> ssl.SSLContext:
    """Build a hardened server :class:`ssl.SSLContext` for *policy*.

    Sets the policy's protocol versions, TLS 1.2 suites, TLS 1.3 suites and
    key-exchange groups; OpenSSL security level 2; no compression; no
    renegotiation; server cipher preference as the policy says. With
    *client_ca*, a client certificate is required and verified against it (mTLS).

    Args:
        policy: the TLS policy (default: Mozilla intermediate, guideline 6.0).
        certfile: PEM certificate chain, leaf first.
        keyfile: PEM private key (``None`` if it is in *certfile*).
        client_ca: PEM bundle of CAs trusted to issue client certificates.

    Returns:
        The context. Groups and TLS 1.3 suites are set through the interpreter's
        libssl (see ``docs/tls.md``); :func:`context_facts` says how.

    Raises:
        InvalidInputError: a file does not exist, cannot be loaded, does not
            match its key, or the key is encrypted (the library never prompts).
        PolicyViolationError: the policy cannot be enforced on this OpenSSL.
    """
    _check_file(certfile, "certfile")
    _check_file(keyfile, "keyfile")
    _check_file(client_ca, "client_ca")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    groups, missing, how, how13 = _apply_stdlib(ctx, policy)
    _load_chain(ctx, certfile, keyfile)
    if client_ca is not None:
        _load_cas(ctx, client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    _record(
        ctx,
        ContextFacts(
            api="stdlib",
            side="server",
            policy=policy.name,
            openssl=ssl.OPENSSL_VERSION,
            groups=groups,
            groups_unavailable=missing,
            groups_method=how,
            tls13_suites_method=how13,
            mutual_tls=client_ca is not None,
        ),
    )
    return ctx


def client_context(
    *,
    policy: Policy = DEFAULT,
    cafile: str | os.PathLike[str] | None = None,
    use_truststore: bool = False,
    certfile: str | os.PathLike[str] | None = None,
    keyfile: str | os.PathLike[str] | None = None,
    enforce_certificate_policy: bool = True,
) -> ssl.SSLContext:
    """Build a hardened client :class:`ssl.SSLContext` for *policy*.

    Verifies the server certificate (``CERT_REQUIRED``) and host name with
    ``hostname_checks_common_name = False``, against certifi's roots by default,
    *cafile* if given, or the operating system's store through ``truststore``.

    Args:
        policy: the TLS policy (default: Mozilla intermediate, guideline 6.0).
        cafile: PEM bundle of trusted roots, instead of certifi's.
        use_truststore: trust the OS store (needs the ``truststore`` extra).
        certfile: client certificate chain for mTLS.
        keyfile: its private key.
        enforce_certificate_policy: after the handshake, refuse a server
            certificate that breaks the policy's essential certificate rules
            (SHA-1/MD5 signature, RSA key below the minimum, CA or non-serverAuth
            leaf) with :class:`CertificatePolicyError`. Not applied with
            *use_truststore* (the OS verifier owns the socket classes).

    Raises:
        InvalidInputError: a file does not exist or cannot be loaded, the key is
            encrypted, or both *cafile* and *use_truststore* were given.
        MissingExtraError: *use_truststore* without the ``truststore`` extra.
        PolicyViolationError: the policy cannot be enforced on this OpenSSL.

    .. warning::
       ``enforce_certificate_policy`` checks the leaf only (Python 3.11 cannot
       expose the verified chain); run :func:`~styku_crypto.tls.check_certificate`
       on the chain for a full audit.
    """
    _check_file(cafile, "cafile")
    _check_file(certfile, "certfile")
    _check_file(keyfile, "keyfile")
    if cafile is not None and use_truststore:
        raise InvalidInputError("pass either cafile or use_truststore, not both")
    ctx: ssl.SSLContext
    if use_truststore:
        truststore = require("truststore", extra="truststore")
        ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if cafile is not None:
            _load_cas(ctx, cafile)
        else:
            import certifi

            ctx.load_verify_locations(cafile=certifi.where())
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.hostname_checks_common_name = False
    inner = ctx._ctx if use_truststore else ctx  # type: ignore[attr-defined]
    groups, missing, how, how13 = _apply_stdlib(inner, policy)
    if certfile is not None:
        _load_chain(ctx, certfile, keyfile)
    if enforce_certificate_policy and not use_truststore:
        ctx.sslsocket_class, ctx.sslobject_class = _policy_socket_classes(policy)
    _record(
        ctx,
        ContextFacts(
            api="stdlib",
            side="client",
            policy=policy.name,
            openssl=ssl.OPENSSL_VERSION,
            groups=groups,
            groups_unavailable=missing,
            groups_method=how,
            tls13_suites_method=how13,
            mutual_tls=certfile is not None,
        ),
    )
    return ctx


# ----------------------------------------------------------------- pyOpenSSL


def _pyopenssl_base(
    policy: Policy, method_name: str
) -> tuple[Any, tuple[str, ...], tuple[str, ...]]:
    from OpenSSL import SSL
    from OpenSSL._util import lib

    ctx = SSL.Context(getattr(SSL, method_name))
    ctx.set_min_proto_version(getattr(SSL, _TLS_VERSION_PYOPENSSL[policy.protocols[0]]))
    ordered = [p for p in ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3") if p in policy.protocols]
    ctx.set_min_proto_version(getattr(SSL, _TLS_VERSION_PYOPENSSL[ordered[0]]))
    ctx.set_max_proto_version(getattr(SSL, _TLS_VERSION_PYOPENSSL[ordered[-1]]))
    tls12 = policy.openssl_cipher_string or "ECDHE+AESGCM"
    ctx.set_cipher_list(f"{tls12}:@SECLEVEL={SECURITY_LEVEL}".encode())
    ctx.set_tls13_ciphersuites(policy.tls13_cipher_string.encode())
    options = SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION
    if policy.server_preferred_order:
        options |= SSL.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_options(options)
    # pyOpenSSL has no public groups API; its own binding exposes
    # SSL_CTX_set1_curves_list (the same call as set1_groups_list).
    wanted = _openssl_groups(policy)
    available: list[str] = []
    for name in wanted:
        probe = SSL.Context(SSL.TLS_METHOD)
        if lib.SSL_CTX_set1_curves_list(probe._context, name.encode()) == 1:
            available.append(name)
    if (
        not available
        or lib.SSL_CTX_set1_curves_list(ctx._context, ":".join(available).encode()) != 1
    ):
        raise PolicyViolationError(f"policy {policy.name}: groups cannot be set via pyOpenSSL")
    missing = tuple(g for g in wanted if g not in available)
    return ctx, tuple(available), missing


def _pyopenssl_version() -> str:
    from OpenSSL import SSL

    return SSL.SSLeay_version(SSL.SSLEAY_VERSION).decode()


def pyopenssl_server_context(
    *,
    policy: Policy = DEFAULT,
    certfile: str | os.PathLike[str],
    keyfile: str | os.PathLike[str] | None = None,
    client_ca: str | os.PathLike[str] | None = None,
) -> Any:
    """The pyOpenSSL twin of :func:`server_context`; returns ``OpenSSL.SSL.Context``.

    pyOpenSSL runs on the OpenSSL bundled with ``cryptography``, which may be
    newer than the system's (hybrid post-quantum groups need OpenSSL 3.5+).

    Raises:
        InvalidInputError: a file does not exist, cannot be loaded, does not
            match its key, or the key is encrypted (the library never prompts).
        PolicyViolationError: the policy cannot be enforced.
    """
    from OpenSSL import SSL

    _check_file(certfile, "certfile")
    _check_file(keyfile, "keyfile")
    _check_file(client_ca, "client_ca")
    ctx, groups, missing = _pyopenssl_base(policy, "TLS_SERVER_METHOD")
    _pyopenssl_load_chain(ctx, certfile, keyfile, check=True)
    if client_ca is not None:
        _pyopenssl_load_cas(ctx, client_ca)
        ctx.load_client_ca(os.fspath(client_ca).encode())
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, None)
    _record(
        ctx,
        ContextFacts(
            api="pyopenssl",
            side="server",
            policy=policy.name,
            openssl=_pyopenssl_version(),
            groups=groups,
            groups_unavailable=missing,
            groups_method="SSL_CTX_set1_curves_list (pyOpenSSL binding)",
            tls13_suites_method="Context.set_tls13_ciphersuites",
            mutual_tls=client_ca is not None,
        ),
    )
    return ctx


def pyopenssl_client_context(
    *,
    policy: Policy = DEFAULT,
    cafile: str | os.PathLike[str] | None = None,
    certfile: str | os.PathLike[str] | None = None,
    keyfile: str | os.PathLike[str] | None = None,
    enforce_certificate_policy: bool = True,
) -> Any:
    """The pyOpenSSL twin of :func:`client_context`; returns ``OpenSSL.SSL.Context``.

    The context verifies the chain (certifi roots unless *cafile*); the host
    name is bound per connection: always connect through
    :func:`pyopenssl_client_connection`, which sets SNI and the host check. A
    connection made any other way fails closed: the verify callback refuses
    the server because no host name was bound.
    With *enforce_certificate_policy*, the verify callback refuses a leaf that
    breaks the policy's essential certificate rules during the handshake.

    Raises:
        InvalidInputError: a file does not exist.
        PolicyViolationError: the policy cannot be enforced.
    """
    from OpenSSL import SSL

    _check_file(cafile, "cafile")
    _check_file(certfile, "certfile")
    _check_file(keyfile, "keyfile")
    ctx, groups, missing = _pyopenssl_base(policy, "TLS_CLIENT_METHOD")
    if cafile is None:
        import certifi

        ctx.load_verify_locations(certifi.where())
    else:
        _pyopenssl_load_cas(ctx, cafile)
    if certfile is not None:
        _pyopenssl_load_chain(ctx, certfile, keyfile, check=True)

    def verify(conn: Any, cert: Any, errno: int, depth: int, ok: int) -> bool:
        if not ok:
            return False
        if depth != 0:
            return True
        from styku_crypto.tls._certs import enforce_handshake_certificate, leaf_matches_host

        # Fail closed when the connection was not made by
        # pyopenssl_client_connection: without it OpenSSL checks no host name.
        hostname = _bound_hostname(conn)
        leaf = cert.to_cryptography()
        if hostname is None or not leaf_matches_host(leaf, hostname):
            return False
        if enforce_certificate_policy:
            from cryptography.hazmat.primitives.serialization import Encoding

            try:
                enforce_handshake_certificate(
                    leaf.public_bytes(Encoding.DER), policy=policy, target=hostname
                )
            except CertificatePolicyError:
                return False
        return True

    ctx.set_verify(SSL.VERIFY_PEER, verify)
    _record(
        ctx,
        ContextFacts(
            api="pyopenssl",
            side="client",
            policy=policy.name,
            openssl=_pyopenssl_version(),
            groups=groups,
            groups_unavailable=missing,
            groups_method="SSL_CTX_set1_curves_list (pyOpenSSL binding)",
            tls13_suites_method="Context.set_tls13_ciphersuites",
            mutual_tls=certfile is not None,
        ),
    )
    return ctx


_HOSTNAME_KEY = "styku_crypto.hostname"


def _bound_hostname(conn: Any) -> str | None:
    data = conn.get_app_data()
    if isinstance(data, dict):
        value = data.get(_HOSTNAME_KEY)
        return value if isinstance(value, str) else None
    return None


def pyopenssl_client_connection(ctx: Any, sock: Any, *, hostname: str) -> Any:
    """Wrap *sock* in an ``OpenSSL.SSL.Connection`` that checks *hostname*.

    Sets SNI and binds the host name to the certificate check (DNS SAN or IP SAN
    only: the subject CN is never used). Call ``do_handshake()`` on the result.

    Raises:
        InvalidInputError: empty host name.
    """
    import ipaddress

    from OpenSSL import SSL
    from OpenSSL._util import lib

    if not hostname:
        raise InvalidInputError("hostname is required")
    conn = SSL.Connection(ctx, sock)
    param = lib.SSL_get0_param(conn._ssl)
    lib.X509_VERIFY_PARAM_set_hostflags(param, 0x20)  # X509_CHECK_FLAG_NEVER_CHECK_SUBJECT
    try:
        ip = ipaddress.ip_address(hostname)
    except ValueError:
        conn.set_tlsext_host_name(hostname.encode("idna"))
        ok = lib.X509_VERIFY_PARAM_set1_host(param, hostname.encode("idna"), 0)
    else:
        ok = lib.X509_VERIFY_PARAM_set1_ip(param, ip.packed, len(ip.packed))
    if ok != 1:
        raise InvalidInputError(f"cannot bind host name {hostname!r} to the connection")
    conn.set_app_data({_HOSTNAME_KEY: hostname})
    conn.set_connect_state()
    return conn

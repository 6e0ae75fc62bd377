"""Hardened stdlib :class:`ssl.SSLContext` objects built from a :class:`Policy`."""

from __future__ import annotations

import os
import ssl
import warnings

from styku_crypto._extras import require
from styku_crypto.exceptions import (
    CertificatePolicyError,
    InvalidInputError,
    PolicyViolationError,
)
from styku_crypto.tls._certs import enforce_handshake_certificate
from styku_crypto.tls._contexts import (
    SECURITY_LEVEL,
    ContextFacts,
    _check_file,
    _EncryptedKeyError,
    _openssl_groups,
    _refuse_password,
    _ssl_reason,
    record_facts,
)
from styku_crypto.tls._native import native
from styku_crypto.tls._policy import Policy
from styku_crypto.tls._registry import group_by_name
from styku_crypto.tls.profiles import DEFAULT

__all__ = ["client_context", "server_context"]


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
    record_facts(
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
    record_facts(
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

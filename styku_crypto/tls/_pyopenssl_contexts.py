"""Hardened pyOpenSSL contexts and connections built from a :class:`Policy`.

Two settings have no public pyOpenSSL API (the groups list, and binding the
expected host name to certificate verification); they go through
:mod:`._pyopenssl_internals`, the one documented shim that touches pyOpenSSL's
internals, with a version check.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm

from styku_crypto.exceptions import (
    CertificatePolicyError,
    InvalidInputError,
    PolicyViolationError,
)
from styku_crypto.tls._certs import enforce_handshake_certificate, leaf_matches_host
from styku_crypto.tls._contexts import (
    SECURITY_LEVEL,
    ContextFacts,
    _check_file,
    _openssl_groups,
    record_facts,
)
from styku_crypto.tls._policy import Policy
from styku_crypto.tls._pyopenssl_internals import (
    bind_peer_name,
    group_list_accepted,
    set_groups_list,
)
from styku_crypto.tls.profiles import DEFAULT

__all__ = [
    "pyopenssl_client_connection",
    "pyopenssl_client_context",
    "pyopenssl_server_context",
]

_TLS_VERSION_PYOPENSSL = {
    "TLSv1": "TLS1_VERSION",
    "TLSv1.1": "TLS1_1_VERSION",
    "TLSv1.2": "TLS1_2_VERSION",
    "TLSv1.3": "TLS1_3_VERSION",
}


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


def _pyopenssl_base(
    policy: Policy, method_name: str
) -> tuple[Any, tuple[str, ...], tuple[str, ...]]:
    from OpenSSL import SSL

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
    # pyOpenSSL has no public groups API: the internals shim sets the list.
    wanted = _openssl_groups(policy)
    available = [name for name in wanted if group_list_accepted(name)]
    if not available or not set_groups_list(ctx, ":".join(available)):
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
    record_facts(
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
    record_facts(
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
        InvalidInputError: empty host name, or OpenSSL refused to bind it.
        PolicyViolationError: pyOpenSSL's internals moved (see
            :mod:`._pyopenssl_internals`).
    """
    import ipaddress

    from OpenSSL import SSL

    if not hostname:
        raise InvalidInputError("hostname is required")
    conn = SSL.Connection(ctx, sock)
    try:
        ip = ipaddress.ip_address(hostname)
    except ValueError:
        conn.set_tlsext_host_name(hostname.encode("idna"))
        ok = bind_peer_name(conn, hostname=hostname)
    else:
        ok = bind_peer_name(conn, ip=ip.packed)
    if not ok:
        raise InvalidInputError(f"cannot bind host name {hostname!r} to the connection")
    conn.set_app_data({_HOSTNAME_KEY: hostname})
    conn.set_connect_state()
    return conn

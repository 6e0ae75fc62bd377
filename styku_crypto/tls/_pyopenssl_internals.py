"""The one place that reaches into pyOpenSSL's internals, behind a version check.

pyOpenSSL has no public API for two things the policy needs:

* the key-exchange groups list (``SSL_CTX_set1_groups_list``; pyOpenSSL only
  offers ``set_tmp_ecdh``, one curve);
* binding the expected host name or IP address to certificate verification
  (``X509_VERIFY_PARAM_set1_host`` / ``set1_ip`` with
  ``X509_CHECK_FLAG_NEVER_CHECK_SUBJECT``).

Both are reached through pyOpenSSL's own cffi binding (``OpenSSL._util.lib``)
and the raw pointers its objects hold (``Context._context``,
``Connection._ssl``). Nothing else in styku_crypto touches those names.

Guarantees: :func:`internals` checks, once, that the installed pyOpenSSL is in
:data:`TESTED_MAJORS` and that every attribute used exists; otherwise it raises
:class:`~styku_crypto.exceptions.PolicyViolationError` naming what moved, so a
pyOpenSSL upgrade that renames an internal fails loudly at context creation,
never silently without groups or host-name checks. Every call's OpenSSL
return code is checked by the callers. ``tests/tls/test_pyopenssl_internals.py``
fails when the installed pyOpenSSL leaves the tested range or an internal moves.
"""

from __future__ import annotations

import functools
from typing import Any

from styku_crypto.exceptions import PolicyViolationError

__all__ = [
    "TESTED_MAJORS",
    "bind_peer_name",
    "group_list_accepted",
    "internals",
    "set_groups_list",
]

#: pyOpenSSL major versions whose internals this shim was tested against.
TESTED_MAJORS = range(23, 27)

#: ``lib`` functions the shim calls.
_FUNCTIONS = (
    "SSL_CTX_set1_curves_list",
    "SSL_get0_param",
    "X509_VERIFY_PARAM_set_hostflags",
    "X509_VERIFY_PARAM_set1_host",
    "X509_VERIFY_PARAM_set1_ip",
)
_X509_CHECK_FLAG_NEVER_CHECK_SUBJECT = 0x20


@functools.cache
def internals() -> Any:
    """pyOpenSSL's cffi ``lib``, after checking the version and every internal used.

    Raises:
        PolicyViolationError: untested pyOpenSSL major version, or an internal
            (``OpenSSL._util.lib``, a function, ``Context._context``,
            ``Connection._ssl``) is missing.
    """
    import OpenSSL
    from OpenSSL import SSL

    version = str(getattr(OpenSSL, "__version__", "0"))
    try:
        major = int(version.split(".", 1)[0])
    except ValueError:
        major = -1
    if major not in TESTED_MAJORS:
        raise PolicyViolationError(
            f"pyOpenSSL {version} is outside the versions styku_crypto's internals shim was "
            f"tested with ({TESTED_MAJORS.start}..{TESTED_MAJORS.stop - 1}.x): upgrade "
            "styku-crypto or pin pyOpenSSL"
        )
    try:
        from OpenSSL._util import lib
    except ImportError:
        raise PolicyViolationError(f"pyOpenSSL {version}: OpenSSL._util.lib moved") from None
    missing = [name for name in _FUNCTIONS if not hasattr(lib, name)]
    ctx = SSL.Context(SSL.TLS_METHOD)
    if not hasattr(ctx, "_context"):
        missing.append("Context._context")
    elif not hasattr(SSL.Connection(ctx, None), "_ssl"):
        missing.append("Connection._ssl")
    if missing:
        raise PolicyViolationError(
            f"pyOpenSSL {version}: internals styku_crypto relies on moved: {', '.join(missing)}"
        )
    return lib


def set_groups_list(ctx: Any, groups: str) -> bool:
    """``SSL_CTX_set1_groups_list(ctx, groups)``; ``True`` when OpenSSL accepted it all."""
    return bool(internals().SSL_CTX_set1_curves_list(ctx._context, groups.encode()) == 1)


def group_list_accepted(groups: str) -> bool:
    """Would this OpenSSL accept *groups* (colon-separated names)? Tried on a scratch context."""
    from OpenSSL import SSL

    return set_groups_list(SSL.Context(SSL.TLS_METHOD), groups)


def bind_peer_name(conn: Any, *, hostname: str | None = None, ip: bytes | None = None) -> bool:
    """Make *conn*'s certificate check require *hostname* (DNS SAN) or *ip* (IP SAN).

    The subject CN is never consulted. Returns ``True`` when OpenSSL accepted it.
    """
    lib = internals()
    param = lib.SSL_get0_param(conn._ssl)
    lib.X509_VERIFY_PARAM_set_hostflags(param, _X509_CHECK_FLAG_NEVER_CHECK_SUBJECT)
    if ip is not None:
        return bool(lib.X509_VERIFY_PARAM_set1_ip(param, ip, len(ip)) == 1)
    if hostname is None:
        return False
    return bool(lib.X509_VERIFY_PARAM_set1_host(param, hostname.encode("idna"), 0) == 1)

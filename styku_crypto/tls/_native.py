"""Key-exchange groups and TLS 1.3 suites on a stdlib :class:`ssl.SSLContext`.

Python 3.11's :mod:`ssl` has no API for the groups list (``set_ecdh_curve`` sets
exactly one curve) nor for TLS 1.3 cipher suites. OpenSSL has both:
``SSL_CTX_set1_groups_list`` (a macro over ``SSL_CTX_ctrl`` with
``SSL_CTRL_SET_GROUPS_LIST``) and ``SSL_CTX_set_ciphersuites``. This module calls
them through :mod:`ctypes` on the ``SSL_CTX`` that backs the Python object,
using the very ``libssl`` the interpreter's ``_ssl`` module is linked against.

Soundness checks before any write (all must pass, else nothing is written and
the caller falls back):

* CPython only; the ``SSL_CTX *`` sits right after the object header of
  ``_ssl._SSLContext`` (``PySSLContext``), a layout stable since Python 3.7;
* symbols are resolved through the ``_ssl`` extension module's own handle
  (so in the libssl it links, whatever other copies are loaded), and
  ``OpenSSL_version_num()`` equals :data:`ssl.OPENSSL_VERSION_NUMBER`;
* reading ``SSL_CTX_get_options`` and ``SSL_CTX_get_verify_mode`` through the
  pointer returns what the Python object reports.

Every write's return code is checked. Groups the local OpenSSL does not know
(``X25519MLKEM768`` before OpenSSL 3.5) are left out and reported.
"""

from __future__ import annotations

import ctypes
import functools
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["NativeSSL", "native"]

_SSL_CTRL_SET_GROUPS_LIST = 92


class NativeSSL:
    """Access to the interpreter's libssl for the two settings the stdlib lacks."""

    def __init__(self, lib: ctypes.CDLL, path: str) -> None:
        self.path = path
        self._lib = lib
        lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        lib.SSL_CTX_ctrl.restype = ctypes.c_long
        lib.SSL_CTX_set_ciphersuites.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.SSL_CTX_set_ciphersuites.restype = ctypes.c_int
        lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_get_options.restype = ctypes.c_uint64
        lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int

    def _pointer(self, ctx: ssl.SSLContext) -> int:
        inner = ctx._ctx if hasattr(ctx, "_ctx") and isinstance(ctx._ctx, ssl.SSLContext) else ctx
        if not isinstance(inner, ssl.SSLContext):
            raise TypeError("not an ssl.SSLContext")
        pointer = ctypes.c_void_p.from_address(id(inner) + object.__basicsize__).value
        if not pointer:
            raise RuntimeError("SSL_CTX pointer not found")
        if int(self._lib.SSL_CTX_get_options(pointer)) != int(inner.options):
            raise RuntimeError("SSL_CTX options mismatch: unexpected object layout")
        if self._lib.SSL_CTX_get_verify_mode(pointer) != _openssl_verify_mode(inner):
            raise RuntimeError("SSL_CTX verify mode mismatch: unexpected object layout")
        return pointer

    def set_groups(self, ctx: ssl.SSLContext, groups: Sequence[str]) -> bool:
        """Set the groups list (OpenSSL names). Returns ``False`` if OpenSSL refused it."""
        pointer = self._pointer(ctx)
        text = ":".join(groups).encode("ascii")
        return int(self._lib.SSL_CTX_ctrl(pointer, _SSL_CTRL_SET_GROUPS_LIST, 0, text)) == 1

    def set_tls13_suites(self, ctx: ssl.SSLContext, suites: Sequence[str]) -> bool:
        """Set the TLS 1.3 suites. Returns ``False`` if OpenSSL refused them."""
        pointer = self._pointer(ctx)
        return int(self._lib.SSL_CTX_set_ciphersuites(pointer, ":".join(suites).encode())) == 1

    @functools.cache  # noqa: B019 - one instance per process
    def supports_group(self, name: str) -> bool:
        """Whether this libssl accepts *name* in a groups list."""
        scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            return self.set_groups(scratch, [name])
        except (RuntimeError, TypeError):
            return False


def _openssl_verify_mode(ctx: ssl.SSLContext) -> int:
    # _ssl.c: CERT_OPTIONAL -> SSL_VERIFY_PEER; CERT_REQUIRED adds FAIL_IF_NO_PEER_CERT.
    if ctx.verify_mode == ssl.CERT_NONE:
        return 0
    if ctx.verify_mode == ssl.CERT_OPTIONAL:
        return 1
    return 3


class _DlInfo(ctypes.Structure):
    _fields_ = (
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    )


def _provider_path(function: Any) -> str:
    """The file that provides *function* (``dladdr``), for the record."""
    try:
        libc = ctypes.CDLL(None)
        info = _DlInfo()
        address = ctypes.cast(function, ctypes.c_void_p)
        if libc.dladdr(address, ctypes.byref(info)) and info.dli_fname:
            return str(Path(info.dli_fname.decode()).resolve())
    except (OSError, AttributeError):
        pass
    return "libssl of the _ssl module"


@functools.cache
def native() -> NativeSSL | None:
    """The checked libssl binding, or ``None`` when it cannot be used soundly here.

    Symbols are looked up through the interpreter's ``_ssl`` extension module,
    so ``dlsym`` resolves them in the very libssl ``_ssl`` was linked against,
    even when other libssl copies are loaded in the process (wheels of
    database drivers often bundle one).
    """
    if sys.implementation.name != "cpython":
        return None
    import _ssl

    module_file = getattr(_ssl, "__file__", None)
    if not module_file:
        return None
    try:
        lib = ctypes.CDLL(module_file)
        lib.OpenSSL_version_num.restype = ctypes.c_ulong
        if int(lib.OpenSSL_version_num()) != ssl.OPENSSL_VERSION_NUMBER:
            return None
        binding = NativeSSL(lib, _provider_path(lib.SSL_CTX_ctrl))
        binding._pointer(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
        binding._pointer(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    except (OSError, AttributeError, RuntimeError, TypeError):
        return None
    return binding

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
* exactly one ``libssl`` is mapped in the process, and its
  ``OpenSSL_version_num()`` equals :data:`ssl.OPENSSL_VERSION_NUMBER`;
* reading ``SSL_CTX_get_options`` and ``SSL_CTX_get_verify_mode`` through the
  pointer returns what the Python object reports.

Every write's return code is checked. Groups the local OpenSSL does not know
(``X25519MLKEM768`` before OpenSSL 3.5) are left out and reported.
"""

from __future__ import annotations

import ctypes
import functools
import re
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

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


def _mapped_libssl() -> list[str]:
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return []
    found = set()
    for line in maps.read_text(encoding="utf-8", errors="replace").splitlines():
        path = line.split()[-1] if line.split() else ""
        name = path.rsplit("/", 1)[-1]
        if path.startswith("/") and re.match(r"libssl[\w.\-]*\.so", name):
            found.add(str(Path(path).resolve()))
    return sorted(found)


@functools.cache
def native() -> NativeSSL | None:
    """The checked libssl binding, or ``None`` when it cannot be used soundly here."""
    if sys.implementation.name != "cpython":
        return None
    paths = _mapped_libssl()
    if len(paths) != 1:
        return None
    try:
        lib = ctypes.CDLL(paths[0])
        lib.OpenSSL_version_num.restype = ctypes.c_ulong
        if int(lib.OpenSSL_version_num()) != ssl.OPENSSL_VERSION_NUMBER:
            return None
        binding = NativeSSL(lib, paths[0])
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        binding._pointer(probe)
        probe_client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        binding._pointer(probe_client)
    except (OSError, AttributeError, RuntimeError, TypeError):
        return None
    return binding

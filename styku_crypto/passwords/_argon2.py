"""Argon2 through ``argon2_ctx`` with pooled work buffers.

This drives the reference implementation through argon2-cffi's public
low-level API (:func:`argon2.low_level.core` over an ``argon2_context`` built
with :data:`argon2.low_level.ffi`) the way
:func:`argon2.low_level.hash_secret_raw` does (one thread per lane, capped at
the CPU count, default flags, version 0x13), except that Argon2's working
memory comes from a :class:`~styku_crypto.passwords._buffers.WorkBufferPool`
through the context's ``allocate_cbk``/``free_cbk`` callbacks. The output is
bit-for-bit what argon2-cffi computes for the same inputs. Nothing here
imports argon2-cffi-bindings directly: the project depends on argon2-cffi and
uses only what argon2-cffi documents.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from argon2.low_level import core, error_to_str, ffi

from styku_crypto.passwords._buffers import WorkBuffer, WorkBufferPool

__all__ = [
    "ARGON2D",
    "ARGON2I",
    "ARGON2ID",
    "Argon2Error",
    "argon2_raw",
    "memory_bytes",
    "threads_for",
]

ARGON2D = 0
ARGON2I = 1
ARGON2ID = 2

# argon2.h: ARGON2_OK and ARGON2_DEFAULT_FLAGS (argon2-cffi passes the same flags).
_ARGON2_OK = 0
_DEFAULT_FLAGS = 0
_BLOCK = 1024
_SYNC_POINTS = 4
# Threads per hash: one per lane, but never more than CPUs (the output depends on
# lanes only, so this changes speed, not results).
_THREADS = max(1, os.cpu_count() or 1)


class Argon2Error(Exception):
    """Argon2 reported an error code (internal; mapped by the hasher)."""


_tls = threading.local()


@ffi.callback("int(uint8_t **, size_t)", error=-1)  # type: ignore[untyped-decorator]
def _allocate(memory: Any, size: int) -> int:
    buf: WorkBuffer | None = getattr(_tls, "buffer", None)
    if buf is None or buf.capacity < size:
        return -1
    memory[0] = buf.address
    return 0


@ffi.callback("void(uint8_t *, size_t)")  # type: ignore[untyped-decorator]
def _free(memory: Any, size: int) -> None:
    # The region belongs to the pool; Argon2 has already wiped it.
    return None


def threads_for(lanes: int) -> int:
    """Threads Argon2 runs for *lanes* lanes on this host (one per lane, at most the CPUs)."""
    return max(1, min(lanes, _THREADS))


def memory_bytes(memory_kib: int, lanes: int) -> int:
    """Bytes Argon2 allocates for *memory_kib* and *lanes* (as ``argon2_ctx`` rounds it)."""
    memory_blocks = max(memory_kib, 2 * _SYNC_POINTS * lanes)
    segment = memory_blocks // (lanes * _SYNC_POINTS)
    return segment * lanes * _SYNC_POINTS * _BLOCK


def argon2_raw(
    password: bytes,
    *,
    salt: bytes,
    memory_kib: int,
    time_cost: int,
    lanes: int,
    hash_len: int,
    variant: int,
    version: int,
    pool: WorkBufferPool | None,
) -> bytes:
    """Compute a raw Argon2 tag; parameters must already be validated by the caller.

    Raises:
        Argon2Error: Argon2 returned an error (bad parameters, allocation failure).
    """
    out = ffi.new("uint8_t[]", hash_len)
    pwd = ffi.new("uint8_t[]", password)
    salt_c = ffi.new("uint8_t[]", salt)
    ctx = ffi.new("argon2_context *")
    ctx.out = out
    ctx.outlen = hash_len
    ctx.pwd = pwd
    ctx.pwdlen = len(password)
    ctx.salt = salt_c
    ctx.saltlen = len(salt)
    ctx.secret = ffi.NULL
    ctx.secretlen = 0
    ctx.ad = ffi.NULL
    ctx.adlen = 0
    ctx.t_cost = time_cost
    ctx.m_cost = memory_kib
    ctx.lanes = lanes
    ctx.threads = threads_for(lanes)
    ctx.version = version
    ctx.flags = _DEFAULT_FLAGS
    buf: WorkBuffer | None = None
    if pool is not None:
        buf = pool.acquire(memory_bytes(memory_kib, lanes))
        ctx.allocate_cbk = _allocate
        ctx.free_cbk = _free
        _tls.buffer = buf
    else:
        ctx.allocate_cbk = ffi.NULL
        ctx.free_cbk = ffi.NULL
    try:
        rc = core(ctx, variant)
    finally:
        if buf is not None and pool is not None:
            _tls.buffer = None
            pool.release(buf)
        # Best-effort wipe of our C copy of the password (Python's copy is immutable).
        ffi.memmove(pwd, b"\0" * len(password), len(password))
    if rc != _ARGON2_OK:
        raise Argon2Error(error_to_str(rc))
    return bytes(ffi.buffer(out, hash_len))

"""A bounded pool of reusable, pre-faulted Argon2 work buffers.

Argon2 needs ``m`` KiB of working memory per hash. Left to ``malloc``, every
hash maps fresh pages and takes one page fault per 4 KiB (about 16,000 faults
at m=64 MiB), and the C allocator may keep freed arenas, so resident memory
stays high after a burst. This pool hands Argon2 anonymous ``mmap`` regions that
were faulted in once (2 MiB-aligned and advised for transparent huge pages) and
are reused, and unmaps idle regions after a timeout, so resident memory returns
to baseline.

The pool never holds more than ``max_buffers`` regions, and the number leased
at once is bounded by the hasher's concurrency semaphore; peak memory is
therefore about ``max_buffers x m``.
"""

from __future__ import annotations

import contextlib
import mmap
import threading
import time
from typing import Any

from argon2.low_level import ffi

__all__ = ["WorkBuffer", "WorkBufferPool"]

_PAGE = mmap.PAGESIZE
_HUGE = 2 * 1024 * 1024


def _round_up(size: int) -> int:
    align = _HUGE if size >= _HUGE else _PAGE
    return (size + align - 1) // align * align


class WorkBuffer:
    """One anonymous, pre-faulted memory region (never holds a secret after use).

    Argon2 wipes its memory before handing it back (``clear_internal_memory``),
    so a pooled region holds no password-derived state between uses.
    """

    __slots__ = ("_map", "_view", "address", "capacity", "last_used")

    def __init__(self, capacity: int) -> None:
        huge = capacity >= _HUGE and hasattr(mmap, "MADV_HUGEPAGE")
        # Map 2 MiB extra so the usable range can start on a 2 MiB boundary, where
        # the kernel can back it with transparent huge pages (fewer TLB misses).
        size = capacity + (_HUGE if huge else 0)
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
        self._map = mmap.mmap(-1, size, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self._view: Any = ffi.from_buffer(self._map)
        offset = (-int(ffi.cast("uintptr_t", self._view))) % _HUGE if huge else 0
        if huge:
            with contextlib.suppress(OSError):  # kernels without THP
                self._map.madvise(mmap.MADV_HUGEPAGE, offset, capacity)
        # Pre-fault every page now (after madvise, so faults take huge pages).
        pages = len(range(offset, offset + capacity, _PAGE))
        self._map[offset : offset + capacity : _PAGE] = bytes(pages)
        self.capacity = capacity
        self.address: Any = ffi.cast("uint8_t *", self._view) + offset
        self.last_used = time.monotonic()

    def close(self) -> None:
        """Unmap the region (the pointer must no longer be in use)."""
        self.address = None
        ffi.release(self._view)
        self._map.close()

    def __repr__(self) -> str:
        return f"WorkBuffer(capacity={self.capacity})"


class WorkBufferPool:
    """Keeps up to ``max_buffers`` pre-faulted regions; unmaps idle ones.

    Args:
        max_buffers: most regions kept (idle or leased); normally the hasher's
            concurrency bound, which also bounds how many are leased at once.
        idle_seconds: regions unused for this long are unmapped by a timer, so
            resident memory returns to baseline after a burst.
    """

    def __init__(self, *, max_buffers: int, idle_seconds: float = 30.0) -> None:
        self._max = max_buffers
        self._idle = idle_seconds
        self._lock = threading.Lock()
        self._free: list[WorkBuffer] = []
        self._leased = 0
        self._timer: threading.Timer | None = None

    @property
    def resident_bytes(self) -> int:
        """Bytes currently mapped by idle pooled regions."""
        with self._lock:
            return sum(b.capacity for b in self._free)

    def acquire(self, size: int) -> WorkBuffer:
        """Lease a region of at least *size* bytes (mapping one if none fits)."""
        with self._lock:
            best: WorkBuffer | None = None
            for buf in self._free:
                if buf.capacity >= size and (best is None or buf.capacity < best.capacity):
                    best = buf
            if best is not None:
                self._free.remove(best)
                self._leased += 1
                return best
            # Make room: drop the smallest idle regions that cannot serve this size.
            while self._free and len(self._free) + self._leased >= self._max:
                victim = min(self._free, key=lambda b: b.capacity)
                self._free.remove(victim)
                victim.close()
            self._leased += 1
        try:
            return WorkBuffer(_round_up(size))
        except BaseException:
            with self._lock:
                self._leased -= 1
            raise

    def release(self, buf: WorkBuffer) -> None:
        """Return a leased region; it is kept for reuse or unmapped when over the bound."""
        buf.last_used = time.monotonic()
        with self._lock:
            self._leased -= 1
            if len(self._free) + self._leased >= self._max:
                buf.close()
                return
            self._free.append(buf)
            if self._timer is None and self._idle > 0:
                self._timer = threading.Timer(self._idle, self._on_timer)
                self._timer.daemon = True
                self._timer.start()

    def trim(self, *, older_than: float = 0.0) -> int:
        """Unmap idle regions unused for at least *older_than* seconds; return how many."""
        now = time.monotonic()
        with self._lock:
            keep = [b for b in self._free if now - b.last_used < older_than]
            drop = [b for b in self._free if now - b.last_used >= older_than]
            self._free = keep
        for buf in drop:
            buf.close()
        return len(drop)

    def _on_timer(self) -> None:
        self.trim(older_than=self._idle)
        with self._lock:
            self._timer = None
            if self._free:
                self._timer = threading.Timer(self._idle, self._on_timer)
                self._timer.daemon = True
                self._timer.start()

    def close(self) -> None:
        """Unmap every idle region and stop the idle timer."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self.trim()

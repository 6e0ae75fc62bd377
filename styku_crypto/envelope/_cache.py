"""Opt-in data-key cache: reuse one data key for many messages, within hard limits."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import weakref

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from styku_crypto.exceptions import InvalidInputError

__all__ = ["DataKeyCache"]

#: Upper bounds no configuration may exceed. 2**32 messages keeps the chance of
#: a random 96-bit GCM nonce collision under 2**-32 (NIST SP 800-38D, 8.3).
HARD_MAX_MESSAGES = 1 << 32
HARD_MAX_BYTES = 1 << 40
HARD_MAX_AGE = 24 * 3600.0

_caches: weakref.WeakSet[DataKeyCache] = weakref.WeakSet()
_monotonic = time.monotonic


class _Entry:
    """One cached data key set (one per layer) for a (tenant, data class, key versions)."""

    __slots__ = (
        "aad_heads",
        "aeads",
        "commit_head",
        "expires",
        "generation",
        "header",
        "messages",
        "nbytes",
        "versions",
    )

    def __init__(
        self,
        *,
        versions: tuple[int, ...],
        generation: int,
        header: bytes,
        aeads: tuple[AESGCM, ...],
        aad_heads: tuple[bytes, ...],
        commit_head: hashlib._Hash,
        expires: float,
    ) -> None:
        self.versions = versions
        # The key store's cache generation when the tenant keys were looked up: a
        # rotation, shred or close bumps it, which retires the entry.
        self.generation = generation
        self.header = header  # prefix + layers, without nonces
        self.aeads = aeads
        # Payload AAD per layer up to (and including) the tenant: the entry belongs to
        # one tenant, so only the encoded context is appended per message.
        self.aad_heads = aad_heads
        # SHA-256 state over the context-commitment domain, prefix and data keys: each
        # message copies it and adds its nonces, tenant and context (docs/format.md).
        self.commit_head = commit_head
        self.expires = expires
        self.messages = 0
        self.nbytes = 0

    def __repr__(self) -> str:
        return f"<_Entry versions={self.versions} messages={self.messages}>"


class DataKeyCache:
    """Reuse data keys across messages (token suite 3), bounded by hard limits.

    Off by default. With a cache, :class:`~styku_crypto.envelope.Envelope`
    encrypts many messages of one tenant and data class under the same data
    key(s), each with a fresh random 96-bit nonce, which saves the per-message
    key generation, wrap and AES key schedule (1 KiB records get close to raw
    AES-GCM speed).

    A cached key is retired at the first of: ``max_age`` seconds, ``max_messages``
    messages, ``max_bytes`` plaintext bytes, a rotation, shred or close through the
    key store, or the end of the key store's cached tenant key (its ``cache_ttl``;
    this is how a rotation or shred by another process is noticed). Entries are
    kept per key store, so one cache may serve several stores. Limits can never exceed
    2**32 messages, 2**40 bytes or 24 hours. The cache is cleared in a forked child.

    .. warning::
       Trade-offs: tokens sharing a data key carry identical wrapped keys, so
       they are linkable to each other; a process compromise exposes every
       message under the cached keys, not just one; and the data key lives in
       memory for up to ``max_age``. Use it for high-volume, low-latency paths
       only, with short limits.
    """

    __slots__ = (
        "__weakref__",
        "_entries",
        "_lock",
        "max_age",
        "max_bytes",
        "max_entries",
        "max_messages",
    )

    def __init__(
        self,
        *,
        max_age: float = 60.0,
        max_messages: int = 100_000,
        max_bytes: int = 1 << 30,
        max_entries: int = 1024,
    ) -> None:
        """Configure the limits.

        Raises:
            InvalidInputError: a limit is not positive or exceeds its hard bound.
        """
        if not 0 < max_age <= HARD_MAX_AGE:
            raise InvalidInputError(f"max_age must be in (0, {HARD_MAX_AGE:.0f}] seconds")
        if not 0 < max_messages <= HARD_MAX_MESSAGES:
            raise InvalidInputError("max_messages must be in [1, 2**32]")
        if not 0 < max_bytes <= HARD_MAX_BYTES:
            raise InvalidInputError("max_bytes must be in [1, 2**40]")
        if max_entries < 1:
            raise InvalidInputError("max_entries must be positive")
        self.max_age = float(max_age)
        self.max_messages = int(max_messages)
        self.max_bytes = int(max_bytes)
        self.max_entries = int(max_entries)
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, int, object], _Entry] = {}
        _caches.add(self)

    def __repr__(self) -> str:
        return (
            f"<DataKeyCache max_age={self.max_age} max_messages={self.max_messages}"
            f" max_bytes={self.max_bytes} entries={len(self._entries)}>"
        )

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("DataKeyCache cannot be pickled")

    def clear(self) -> None:
        """Forget every cached data key."""
        with self._lock:
            self._entries.clear()

    def _take(self, key: tuple[str, int, object], generation: int, size: int) -> _Entry | None:
        """Count one message of *size* bytes against the live entry of *key* and return it.

        *key* is ``(tenant, data class, key store)``; *generation* the key store's current
        cache generation. ``None`` when there is no entry, or when it is from an older
        generation (rotation, shred, close), expired, or would exceed a limit with this
        message (the entry is then dropped). The counters are updated under the lock, so
        the message and byte limits hold exactly under any number of threads.
        """
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.generation == generation and entry.expires > _monotonic():
            lock = self._lock
            lock.acquire()
            try:
                messages, nbytes = entry.messages + 1, entry.nbytes + size
                if messages <= self.max_messages and nbytes <= self.max_bytes:
                    entry.messages, entry.nbytes = messages, nbytes
                    return entry
            finally:
                lock.release()
        with self._lock:
            if self._entries.get(key) is entry:
                del self._entries[key]
        return None

    def _put(
        self, key: tuple[str, int, object], entry: _Entry, size: int, valid_until: float
    ) -> None:
        """Store a fresh entry for *key*, already counting its first message of *size* bytes.

        The entry expires after ``max_age`` or at *valid_until* (until when the key store
        vouches, from its cache, that the entry's tenant keys are the primary ones),
        whichever comes first.
        """
        entry.messages = 1
        entry.nbytes = size
        entry.expires = min(_monotonic() + self.max_age, valid_until)
        if size > self.max_bytes:
            return
        with self._lock:
            while len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = entry

    def _forget(self, tenant: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == tenant]:
                del self._entries[key]


def _clear_all_in_child() -> None:
    for cache in list(_caches):
        cache._entries.clear()
        cache._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_clear_all_in_child)

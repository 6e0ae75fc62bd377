"""A local breached-password blocklist in SHA-1 form, searched without loading it.

File format (the one Have I Been Pwned's "ordered by hash" downloads use): one
entry per line, ``SHA1HEX`` or ``SHA1HEX:COUNT``, the 40 hex digits in upper
or lower case, lines sorted by hash, ``\\n`` or ``\\r\\n`` line ends. The file
is memory-mapped and binary-searched, so a lookup touches about log2(lines)
pages and opening a list of hundreds of millions of entries costs nothing.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from pathlib import Path

from styku_crypto.exceptions import InvalidInputError

__all__ = ["Blocklist"]

_HEX = frozenset(b"0123456789ABCDEFabcdef")


class Blocklist:
    """A sorted SHA-1 blocklist file, opened read-only and memory-mapped.

    Args:
        path: the file.
        min_count: ignore entries whose count is below this (entries without a
            count count as 1).

    Raises:
        InvalidInputError: the file cannot be read or its first or last line
            is not a SHA-1 entry, or the sample of lines checked is not sorted.
    """

    def __init__(self, path: str | os.PathLike[str], *, min_count: int = 1) -> None:
        self._path = Path(path)
        self._min_count = min_count
        self._closed = False
        try:
            with self._path.open("rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                self._map: mmap.mmap | None = (
                    mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else None
                )
        except OSError as exc:
            raise InvalidInputError(
                f"cannot open blocklist {self._path.name!r}: {exc.strerror}"
            ) from None
        self._size = size
        self._check_shape()

    def _check_shape(self) -> None:
        if self._map is None:
            return
        first = self._line_at(0)
        last = self._line_at(self._size - 1)
        for line in (first, last):
            if len(line[0]) != 40 or not _HEX.issuperset(line[0]):
                raise InvalidInputError(
                    f"blocklist {self._path.name!r} is not in SHA1HEX[:COUNT] form"
                )
        # Spot-check ordering on a few probes (a full check would read the whole file).
        probes = [self._line_at(self._size * k // 16)[0].upper() for k in range(16)]
        probes.append(last[0].upper())
        if probes != sorted(probes):
            raise InvalidInputError(f"blocklist {self._path.name!r} is not sorted by hash")

    def _line_at(self, pos: int) -> tuple[bytes, int, int, int]:
        """The (hash, count, start, end) of the line containing byte *pos*."""
        if self._map is None:  # pragma: no cover - callers check
            return b"", 0, 0, 0
        start = self._map.rfind(b"\n", 0, pos) + 1
        end = self._map.find(b"\n", pos)
        if end < 0:
            end = self._size
        line = self._map[start:end].rstrip(b"\r")
        digest, _, count = line.partition(b":")
        try:
            n = int(count) if count else 1
        except ValueError:
            n = 1
        return digest, n, start, end

    def contains_digest(self, sha1_hex: str) -> bool:
        """True when the 40-hex-digit SHA-1 is listed (with at least ``min_count``).

        Raises:
            InvalidInputError: the blocklist was closed (a closed list must not
                silently stop blocking).
        """
        if self._closed:
            raise InvalidInputError(f"blocklist {self._path.name!r} is closed")
        if self._map is None:
            return False
        target = sha1_hex.upper().encode("ascii")
        lo, hi = 0, self._size
        # Invariant: every line starting before lo sorts below target; lines at
        # or after hi sort above. Bisect on byte offsets, snapping to lines.
        while lo < hi:
            mid = (lo + hi) // 2
            digest, count, start, end = self._line_at(mid)
            key = digest.upper()
            if key == target:
                return count >= self._min_count
            if key < target:
                lo = end + 1
            else:
                hi = start
        return False

    def __contains__(self, password: object) -> bool:
        """True when the SHA-1 of *password* (a str, UTF-8) is listed.

        Raises:
            InvalidInputError: the blocklist was closed.
        """
        if self._closed:
            raise InvalidInputError(f"blocklist {self._path.name!r} is closed")
        if not isinstance(password, str):
            return False
        try:
            data = password.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return self.contains_digest(hashlib.sha1(data, usedforsecurity=False).hexdigest())

    def close(self) -> None:
        """Unmap the file. Lookups afterwards raise instead of allowing everything."""
        self._closed = True
        if self._map is not None:
            self._map.close()
            self._map = None

    def __repr__(self) -> str:
        return f"Blocklist(path={self._path.name!r}, bytes={self._size})"

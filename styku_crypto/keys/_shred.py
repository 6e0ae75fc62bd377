"""Shred completion: prove the wrapped-key bytes left the store's files, or say what remains.

A shred deletes a tenant's rows in one transaction; the *bytes* of the wrapped
keys can survive in files the store controls: SQLite's main file and WAL while
another connection holds a read snapshot, PostgreSQL's table files while an
old snapshot can still see the deleted rows or a session blocks the rewrite.

Before deleting, the backend keeps a *marker* per wrap: its last 16 bytes (the
AEAD tag end of a ciphertext; useless without the root, and never the whole
wrap). The SQLite backend searches its files for the markers after purging; a
shred returns only when none is found, or raises
:class:`~styku_crypto.exceptions.ShredIncompleteError` within the backend's
``shred_timeout`` naming where copies remain and who blocks. The markers stay
in a pending record (metadata ``styku/shred-pending/<tenant>``) until
``finish_shred`` (``keys shred --finish``) succeeds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "MARKER_BYTES",
    "PENDING_PREFIX",
    "find_markers",
    "load_pending",
    "markers_of",
    "other_processes_with",
    "pending_record",
    "pending_since",
    "unique_markers",
]

PENDING_PREFIX = "styku/shred-pending/"
MARKER_BYTES = 16
_CHUNK = 1 << 20


def markers_of(wraps: Iterable[bytes]) -> list[bytes]:
    """The search markers of *wraps* (last :data:`MARKER_BYTES` bytes of each)."""
    return [bytes(w[-MARKER_BYTES:]) for w in wraps if len(w) >= 2 * MARKER_BYTES]


def unique_markers(markers: Sequence[bytes], live: Iterable[bytes]) -> list[bytes]:
    """*markers* minus any that also occur in a wrap that stays (it would be found forever)."""
    kept = list(markers)
    for wrap in live:
        kept = [m for m in kept if m not in wrap]
    return kept


def pending_record(markers: Sequence[bytes], *, since: str | None = None) -> bytes:
    """The pending-shred record stored in the metadata table (*since*: ISO time of the delete)."""
    return json.dumps({"v": 1, "markers": [m.hex() for m in markers], "since": since}).encode()


def pending_since(raw: bytes | None) -> str | None:
    """The ``since`` time of a pending record, if any."""
    try:
        since = json.loads(raw or b"{}").get("since")
    except (ValueError, AttributeError, RecursionError):
        return None
    return since if isinstance(since, str) else None


def load_pending(raw: bytes | None) -> list[bytes] | None:
    """Markers of a pending record (``None``: no pending shred; malformed: no markers)."""
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
        return [bytes.fromhex(m) for m in doc["markers"]]
    except (ValueError, KeyError, TypeError, RecursionError):
        return []


def find_markers(paths: Iterable[Path], markers: Sequence[bytes]) -> dict[str, int]:
    """``{file: copies}`` of any marker found in *paths* (missing files are skipped)."""
    found: dict[str, int] = {}
    if not markers:
        return found
    overlap = MARKER_BYTES - 1
    for path in paths:
        count = 0
        try:
            with open(path, "rb") as fh:
                tail = b""
                while chunk := fh.read(_CHUNK):
                    window = tail + chunk
                    count += sum(window.count(m) for m in markers)
                    tail = window[-overlap:]
        except FileNotFoundError:
            continue
        if count:
            found[str(path)] = count
    return found


def other_processes_with(paths: Sequence[Path]) -> list[str]:
    """``"pid N (comm)"`` for every *other* process with one of *paths* open (Linux /proc).

    Best effort: processes of other users are not visible without privileges.
    """
    targets = set()
    for p in paths:
        try:
            targets.add(os.path.realpath(p))
        except OSError:
            continue
    me = os.getpid()
    out: list[str] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return out
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in targets:
                    comm = (entry / "comm").read_text().strip()
                    out.append(f"pid {entry.name} ({comm})")
                    break
            except OSError:
                continue
    return sorted(out)

"""Crash-safe file writes: the one ``atomic_write`` and the one ``fsync_dir`` of the package.

Guarantee: after :func:`atomic_write` returns, *path* holds exactly the new bytes and
survives a power cut; if the process dies at any point before that, *path* holds its
old content (or still does not exist) and no half-written file is ever visible under
that name. The data goes to a uniquely named, owner-only (``0600``) temporary file in
the same directory, is ``fsync``'d, renamed over *path* with :func:`os.replace` (atomic
on POSIX), and the directory is ``fsync``'d so the rename itself is durable.

This module imports only the standard library: every floor of the package may use it.
Streaming outputs that cannot be held in memory (``envelope/_output.py``, the CLI's
``atomic_output``) keep their own publishers but share :func:`fsync_dir`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "fsync_dir"]

# Filesystems that cannot fsync a directory say so with one of these; anything else
# (EIO, ENOSPC...) is a real failure and propagates.
_DIR_FSYNC_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP})


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make the entries of *directory* (a create, rename or unlink inside it) durable.

    A no-op where directories cannot be opened (Windows) or where the filesystem
    does not support ``fsync`` on a directory.

    Raises:
        OSError: the ``fsync`` itself failed (for example ``EIO``).
    """
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _DIR_FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Replace *path* with *data* atomically and durably (see the module docstring).

    Args:
        path: the file to write; its directory must exist.
        data: the complete new content.
        mode: permission bits of the new file (owner-only by default; the file is
            never readable by others, not even briefly, unless *mode* says so).

    Raises:
        OSError: the write, fsync or rename failed; *path* is unchanged and the
            temporary file is removed.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode != 0o600:
                os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)

"""Publish a file only when it is complete; leave no plaintext behind when killed.

``decrypt_file`` writes plaintext. If the process dies (SIGKILL, power loss) half-way,
a named temporary file beside the destination would keep that plaintext on disk with
nothing to remove it. So, where the kernel and filesystem support it, output goes to an
*unnamed* file (``O_TMPFILE``): it has no directory entry until it is complete and
fsynced, and it is linked into place with ``linkat`` (through ``/proc/self/fd``). A
process killed before that leaves no name; the kernel frees the blocks.

Elsewhere (no ``O_TMPFILE``, no ``/proc``), output goes to a named ``.<name>.<rand>.part``
file that the writer holds an exclusive ``flock`` on. Every later run for the same
directory removes the parts whose lock nobody holds (their writer is dead), before it
writes anything; :func:`remove_stale_parts` does the same on demand.

Residual risk (documented in docs/streams.md): on the fallback path, plaintext of a
killed run stays on disk until the next run or :func:`remove_stale_parts`; with
``O_TMPFILE``, when the destination already exists the complete, authenticated output is
linked under a ``.part`` name and renamed over it, so a kill in between leaves that
(complete) file until the next run. Freed blocks are not overwritten by either path
(filesystems and SSDs do not guarantee that anyway: use encrypted storage).

Speed: the output is fsynced before it is published, and a large file's fsync is most of
its run time when the kernel has let every page stay dirty until then (a machine with
plenty of memory does). :class:`WriteBehind` asks the kernel to start writing each
finished stretch of output while the producer carries on, so the final fsync waits for
little (see docs/benchmarks.md, issue 15). Durability is unchanged: nothing is published
before the fsync returns.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

from styku_crypto._fs import fsync_dir

__all__ = ["WriteBehind", "publish", "remove_stale_parts"]

_O_TMPFILE: int = getattr(os, "O_TMPFILE", 0)
_PROC_FD = Path("/proc/self/fd")
#: errno values meaning "this filesystem or kernel cannot make unnamed files".
_NO_TMPFILE = frozenset(
    {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}
)


#: Output is handed to the kernel for write-back in stretches of this many bytes.
WRITEBACK_STEP = 8 << 20
_FADV_DONTNEED: int | None = getattr(os, "POSIX_FADV_DONTNEED", None)


class WriteBehind:
    """A binary file wrapper that starts the kernel's write-back of what was written.

    Why: ``publish`` fsyncs before it names the output. Without help, Linux keeps a
    large output's pages dirty until that fsync (the dirty limits scale with memory),
    so the disk sits idle while we read and encrypt and then does all the work at the
    end. Every :data:`WRITEBACK_STEP` bytes, the finished stretch is flushed and passed
    to ``posix_fadvise(POSIX_FADV_DONTNEED)``, which starts asynchronous write-back of
    dirty pages (and drops the clean ones: output is not read back). The bytes written
    are exactly those given to :meth:`write`; only *when* the disk sees them changes.
    Where ``posix_fadvise`` is missing or refused, it is a plain pass-through.
    """

    __slots__ = ("_fd", "_fh", "_mark", "_pos")

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._fd = fh.fileno() if _FADV_DONTNEED is not None else -1
        self._mark = 0
        self._pos = 0

    def write(self, data: Any) -> int:
        """Write all of *data*; return its length."""
        n: int = self._fh.write(data)
        self._pos += n
        if self._pos - self._mark >= WRITEBACK_STEP and self._fd >= 0:
            self._start_writeback()
        return n

    def _start_writeback(self) -> None:
        self._fh.flush()
        try:
            os.posix_fadvise(
                self._fd, self._mark, self._pos - self._mark, cast(int, _FADV_DONTNEED)
            )
        except OSError:  # e.g. a pipe: nothing to write back early, never an error
            self._fd = -1
        self._mark = self._pos

    def flush(self) -> None:
        """Flush Python's buffer to the kernel."""
        self._fh.flush()

    def fileno(self) -> int:
        """The underlying file descriptor."""
        return self._fh.fileno()


def _part_name(dst: Path) -> Path:
    return dst.parent / f".{dst.name}.{secrets.token_hex(8)}.part"


def remove_stale_parts(directory: str | os.PathLike[str], name: str | None = None) -> int:
    """Remove ``.part`` files in *directory* whose writer is gone; return how many.

    A part is stale when nobody holds its ``flock`` (a live writer always does). With
    *name*, only parts of that destination file name are considered.
    """
    removed = 0
    pattern = f".{name}.*.part" if name is not None else ".*.part"
    for path in Path(directory).glob(pattern):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live writer holds it
            # Still the same file under that name (not replaced since we opened it)?
            with contextlib.suppress(OSError):
                if os.path.samestat(os.fstat(fd), os.lstat(path)):
                    path.unlink()
                    removed += 1
        finally:
            os.close(fd)
    return removed


def publish(dst_path: Path, produce: Callable[[BinaryIO], None]) -> None:
    """Run ``produce(fh)``; make its output appear at *dst_path* only if it returns.

    The output is fsynced before it gets its name and the directory after. On any
    exception nothing new is left at *dst_path* (an existing file stays untouched).
    """
    directory = dst_path.parent
    remove_stale_parts(directory, dst_path.name)
    fd = _unnamed(directory)
    if fd is None:
        _publish_named(dst_path, produce)
    else:
        _publish_unnamed(fd, dst_path, produce)
    fsync_dir(directory)


def _unnamed(directory: Path) -> int | None:
    """An unnamed (``O_TMPFILE``) file in *directory*, or ``None`` where unsupported."""
    if not _O_TMPFILE or not _PROC_FD.is_dir():
        return None
    try:
        return os.open(directory, _O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno in _NO_TMPFILE:
            return None
        raise


def _publish_unnamed(fd: int, dst_path: Path, produce: Callable[[BinaryIO], None]) -> None:
    with os.fdopen(fd, "wb") as fh:
        # Held until the file is closed: a concurrent remove_stale_parts never takes
        # the (complete) file away between its link and its rename below.
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        produce(cast(BinaryIO, WriteBehind(fh)))
        fh.flush()
        os.fsync(fh.fileno())
        _link_unnamed(fh.fileno(), dst_path)


def _link_unnamed(fd: int, dst_path: Path) -> None:
    """Give the unnamed file *fd* the name *dst_path* (replacing an existing file)."""
    source = f"{_PROC_FD}/{fd}"
    dir_fd = os.open(dst_path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # With a dir fd, os.link calls linkat(..., AT_SYMLINK_FOLLOW), which links the
        # file behind the /proc magic link (plain link() would link the link itself).
        try:
            os.link(source, dst_path.name, dst_dir_fd=dir_fd, follow_symlinks=True)
            return  # atomic, and never replaces anything
        except FileExistsError:
            pass
        part = _part_name(dst_path)
        os.link(source, part.name, dst_dir_fd=dir_fd, follow_symlinks=True)
        try:
            os.replace(part.name, dst_path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            os.unlink(part.name, dir_fd=dir_fd)
            raise
    finally:
        os.close(dir_fd)


def _publish_named(dst_path: Path, produce: Callable[[BinaryIO], None]) -> None:
    part = _part_name(dst_path)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # marks the part as live
            produce(cast(BinaryIO, WriteBehind(fh)))
            fh.flush()
            os.fsync(fh.fileno())
            os.replace(part, dst_path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise

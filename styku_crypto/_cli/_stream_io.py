"""Streaming I/O for ``styku-crypto encrypt`` / ``decrypt``: constant memory, progress, ``-``.

Binary tokens are written as streamed tokens (suite 2), so files of any size are
encrypted and decrypted in 1 MiB blocks. A progress bar goes to stderr only when stderr
is a terminal (``rich`` from the ``cli`` extra when installed, else a plain line);
piped or redirected runs are quiet. Output files are written in the target directory
with no name (``O_TMPFILE``), fsynced and linked into place only on success: a failed
or killed decrypt leaves no output file. Decrypting to stdout streams authenticated
chunks as they verify; a failure there exits with status 1 after the bytes already
written (see docs/streams.md).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from styku_crypto.envelope._format import LAYER_LEN, PREFIX_LEN, SUITE_STREAM
from styku_crypto.envelope._output import publish

__all__ = [
    "Progress",
    "decrypt_streamed",
    "encrypt_streamed",
    "input_with_head",
    "is_streamed",
    "open_input",
    "publish_output",
]

BLOCK = 1 << 20


class Progress:
    """A progress display on *stream* (stderr) when it is a terminal; silent otherwise."""

    def __init__(self, label: str, total: int | None, stream: IO[str] | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = bool(getattr(self._stream, "isatty", lambda: False)())
        self._label = label
        self._total = total
        self._done = 0
        self._last = 0.0
        self._rich: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self._enabled:
            try:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    DownloadColumn,
                    TransferSpeedColumn,
                )
                from rich.progress import (
                    Progress as RichProgress,
                )
            except ImportError:
                self._rich = None
            else:
                self._rich = RichProgress(
                    "[progress.description]{task.description}",
                    BarColumn(),
                    DownloadColumn(),
                    TransferSpeedColumn(),
                    console=Console(file=self._stream),
                    transient=True,
                )
                self._rich.__enter__()
                self._task = self._rich.add_task(self._label, total=self._total)
        return self

    @property
    def enabled(self) -> bool:
        """True when output goes to a terminal."""
        return self._enabled

    def update(self, n: int) -> None:
        """Record *n* more bytes processed."""
        self._done += n
        if not self._enabled:
            return
        if self._rich is not None:
            self._rich.update(self._task, completed=self._done)
            return
        now = time.monotonic()
        if now - self._last >= 0.2:
            self._last = now
            self._plain()

    def _plain(self) -> None:
        mib = self._done / (1 << 20)
        if self._total:
            pct = 100.0 * self._done / self._total
            width = 30
            fill = int(width * min(self._done, self._total) / self._total)
            bar = "#" * fill + "-" * (width - fill)
            line = f"\r{self._label} [{bar}] {pct:5.1f}% {mib:,.1f} MiB"
        else:
            line = f"\r{self._label} {mib:,.1f} MiB"
        self._stream.write(line)
        self._stream.flush()

    def __exit__(self, *exc: object) -> None:
        if not self._enabled:
            return
        if self._rich is not None:
            self._rich.__exit__(None, None, None)
            return
        self._plain()
        self._stream.write("\n")
        self._stream.flush()


def open_input(path: str) -> tuple[BinaryIO, int | None]:
    """(binary stream, size when known) for *path*; ``-`` is stdin. Unreadable: usage error."""
    from styku_crypto._cli import usage_error

    if path == "-":
        return sys.stdin.buffer, None
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise usage_error(f"cannot read {path}: {exc.strerror}") from None
    try:
        size: int | None = os.fstat(fh.fileno()).st_size
    except OSError:
        size = None
    return fh, size


def publish_output(path: str, produce: Callable[[BinaryIO], None]) -> None:
    """Run ``produce(fh)``; its output appears at *path* (``-`` = stdout) only if it returns.

    Files go through :func:`styku_crypto.envelope._output.publish`: an unnamed
    (``O_TMPFILE``) file, written back as it grows, fsynced, then linked into place, so
    a failure or a SIGKILL never leaves partial output under any name. Errors about the
    output name *path*, never a hidden temporary file.
    """
    from styku_crypto._cli import usage_error

    if path == "-":
        produce(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if target.is_dir():
        # Checked first, so the error names the user's path (never our hidden temp file).
        raise usage_error(f"cannot write {path}: it is a directory")
    inside = False

    def run(fh: BinaryIO) -> None:
        nonlocal inside
        inside = True
        produce(fh)
        inside = False

    try:
        publish(target if str(target.parent) else Path(".") / target, run)
    except OSError as exc:
        if inside:
            raise  # the producer's own error (reading the input, ...)
        raise usage_error(f"cannot write {path}: {exc.strerror or type(exc).__name__}") from None


class _Prefixed:
    """A binary reader that first returns *head*, then the rest of *src*."""

    def __init__(self, head: bytes, src: BinaryIO) -> None:
        self._head = memoryview(head)
        self._src = src

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0:
                out = bytes(self._head) + self._src.read()
                self._head = memoryview(b"")
                return out
            out = bytes(self._head[:n])
            self._head = self._head[n:]
            return out
        return self._src.read(n)

    def readinto(self, buf: Any) -> int:
        view = memoryview(buf).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        readinto = getattr(self._src, "readinto", None)
        if readinto is not None:
            got: int = readinto(view) or 0
            return got
        data = self._src.read(len(view))
        view[: len(data)] = data
        return len(data)


def is_streamed(head: bytes) -> bool:
    """True when *head* starts a binary streamed token (not the text form)."""
    return len(head) >= 2 and head[0] == 1 and head[1] == SUITE_STREAM


def _read_head(src: BinaryIO) -> bytes:
    head = b""
    while len(head) < PREFIX_LEN:
        got = src.read(PREFIX_LEN - len(head))
        if not got:
            break
        head += got
    return head


def encrypt_streamed(
    env: Any,
    input_path: str,
    output_path: str,
    *,
    tenant: str,
    context: dict[str, str],
    data_class: Any,
) -> int:
    """Stream *input_path* into a streamed token at *output_path*; return plaintext bytes."""
    src, size = open_input(input_path)
    written = 0

    def produce(dst: BinaryIO) -> None:
        nonlocal written
        with Progress("encrypting", size) as progress:
            writer = env.encrypt_stream(dst, tenant=tenant, context=context, data_class=data_class)
            buf = bytearray(BLOCK)
            view = memoryview(buf)
            with writer:
                while n := _fill(src, buf):
                    writer.write(view[:n])
                    progress.update(n)
            written = writer.bytes_written

    try:
        publish_output(output_path, produce)
    finally:
        if src is not sys.stdin.buffer:
            src.close()
    return written


def _fill(src: BinaryIO, buf: bytearray) -> int:
    readinto = getattr(src, "readinto", None)
    if readinto is not None:
        got: int = readinto(buf) or 0
        return got
    data = src.read(len(buf))
    buf[: len(data)] = data
    return len(data)


@contextlib.contextmanager
def input_with_head(input_path: str) -> Iterator[tuple[BinaryIO, bytes, int | None]]:
    """Open *input_path* (``-`` = stdin) and read its first bytes.

    Yields ``(stream positioned after them, head, size or None)``; closes files after.
    """
    src, size = open_input(input_path)
    try:
        yield src, _read_head(src), size
    finally:
        if src is not sys.stdin.buffer:
            src.close()


def decrypt_streamed(
    env: Any,
    src: BinaryIO,
    head: bytes,
    size: int | None,
    output_path: str,
    *,
    tenant: str,
    context: dict[str, str],
    data_class: Any,
) -> int:
    """Decrypt the streamed token whose first bytes *head* were already read from *src*."""
    from styku_crypto.envelope._format import parse_header
    from styku_crypto.exceptions import DecryptionError

    layers = head[3] if len(head) >= PREFIX_LEN else 0
    rest = src.read(LAYER_LEN * layers) if layers <= 2 else b""
    header = parse_header(head + rest)
    if header.data_class != data_class:
        raise DecryptionError("the token's data class differs from --sensitive")
    joined = _Prefixed(head + rest, src)
    total = 0

    def produce(dst: BinaryIO) -> None:
        nonlocal total
        with Progress("decrypting", size) as progress:
            reader = env.decrypt_stream(joined, tenant=tenant, context=context)
            buf = bytearray(BLOCK)
            view = memoryview(buf)
            while n := reader.readinto(buf):
                dst.write(view[:n])
                total += n
                progress.update(n)

    publish_output(output_path, produce)
    return total

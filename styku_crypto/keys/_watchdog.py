"""A client-side deadline for blocking socket I/O that has none of its own.

A PostgreSQL server that is frozen (``SIGSTOP``, a stuck VM, a dead NAT entry)
keeps its TCP connections open: the kernel still acknowledges every packet, so
neither TCP keepalives nor ``statement_timeout`` (enforced by the frozen server
itself) ever fire, and libpq waits forever. :class:`SocketWatchdog` bounds such
an operation from outside: when the deadline passes while the operation is still
running, it shuts the connection's socket down (``shutdown(SHUT_RDWR)`` on a
duplicate of the descriptor), which makes the blocked read return at once with
a connection error. The connection is then broken and is replaced on next use.

One watchdog thread serves one owner, which runs one bounded operation at a
time (the key-store backends serialise their connection use with a lock).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator

__all__ = ["SocketWatchdog"]


class SocketWatchdog:
    """Shuts a socket down when the operation bounded by :meth:`bound` overruns."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._cond = threading.Condition()
        self._armed: tuple[int, float] | None = None  # (fd, monotonic deadline)
        self._fired = False
        self._stop = False
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def bound(self, fd: int, seconds: float) -> Iterator[None]:
        """Run the body with socket *fd* shut down if it lasts longer than *seconds*.

        Yields inside the bound; whether it fired is :attr:`fired` afterwards
        (the body itself sees the connection error the shutdown caused).
        """
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"styku-watchdog-{self._name}", daemon=True
                )
                self._thread.start()
            self._armed = (fd, time.monotonic() + seconds)
            self._fired = False
            self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._armed = None
                self._cond.notify()

    @property
    def fired(self) -> bool:
        """True when the last bounded operation was cut off."""
        return self._fired

    def close(self) -> None:
        """Stop the watchdog thread. Idempotent."""
        with self._cond:
            self._stop = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._stop:
                if self._armed is None:
                    self._cond.wait()
                    continue
                fd, deadline = self._armed
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                # Still armed past the deadline: the owner is blocked in I/O on fd,
                # which stays open until the owner disarms (under this lock).
                self._fired = True
                self._armed = None
                with contextlib.suppress(OSError):
                    dup = os.dup(fd)
                    with socket.socket(fileno=dup) as sock:
                        sock.shutdown(socket.SHUT_RDWR)

"""PostgreSQL connections for the key store: URLs, time bounds, failover (psycopg 3).

What this module guarantees (the backend in :mod:`styku_crypto.keys._postgres`
relies on it; the bounds are documented there and in ``docs/keys.md``):

* every connection carries libpq ``connect_timeout``, TCP keepalives,
  ``tcp_user_timeout`` and server-side ``statement_timeout``/``lock_timeout``,
  and every transaction runs under a client-side watchdog that cuts the socket
  when a frozen server never answers;
* reads go to the primary, or to the read-only secondary while the primary is
  marked down; a read that fails on the primary mid-transaction raises
  :class:`RetryOnSecondary` for :func:`failover_read` to run it again there;
* writes go to the primary only; a failure is a
  :class:`~styku_crypto.exceptions.KeyStoreError` that says the outcome is unknown;
* no URL is ever echoed with its password (:func:`describe`, :func:`check_url`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from styku_crypto.exceptions import InvalidInputError, KeyStoreError
from styku_crypto.keys._watchdog import SocketWatchdog

__all__ = [
    "BULK_FACTOR",
    "PgConnections",
    "RetryOnSecondary",
    "UnreachableError",
    "check_timeouts",
    "check_url",
    "describe",
    "failover_read",
    "split_url",
]

#: Whole-store reads (export_snapshot, check) get this many ``timeouts``.
BULK_FACTOR = 12
_F = TypeVar("_F", bound=Callable[..., Any])


class UnreachableError(KeyStoreError):
    """No server could be reached (a :class:`KeyStoreError` to callers)."""


class RetryOnSecondary(KeyStoreError):  # noqa: N818 - control flow
    """The primary failed in the middle of a read; run the read again on the secondary.

    :func:`failover_read` catches it; a read method without that decorator lets
    it out as the :class:`KeyStoreError` it also is (so every read method that
    uses :meth:`PgConnections.read` should carry the decorator).
    """


def failover_read(method: _F) -> _F:
    """Run a read method again (once) on the secondary when the primary fails mid-read."""

    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except RetryOnSecondary:
            return method(self, *args, **kwargs)

    return run  # type: ignore[return-value]


def split_url(url: str) -> tuple[str, str | None, str | None]:
    """Return (primary URL without our parameters, secondary URL or None, timeouts or None)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    secondary = timeouts = None
    kept = []
    for name, value in query:
        if name == "secondary":
            secondary = value
        elif name == "timeouts":
            timeouts = value
        else:
            kept.append((name, value))
    query_text = urllib.parse.urlencode(kept, quote_via=urllib.parse.quote)
    clean = urllib.parse.urlunsplit(parts._replace(query=query_text))
    return clean, secondary, timeouts


def check_timeouts(value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError("timeouts must be a number of seconds") from None
    if not 0.05 <= seconds <= 3600:
        raise InvalidInputError("timeouts must be 0.05..3600 seconds")
    return seconds


def check_url(psycopg: Any, url: str, what: str) -> None:
    """Refuse a malformed URL up front, without echoing it (it may hold a password).

    libpq's own parse errors quote the offending text (a password included), and
    a bad port makes :func:`urllib.parse.urlsplit` raise a bare ``ValueError``
    later, when a message is built; both become one typed, redacted error here.
    """
    if not url.startswith(("postgresql://", "postgres://")):
        raise InvalidInputError(f"a PostgreSQL {what} URL starts with postgresql://")
    try:
        _ = urllib.parse.urlsplit(url).port
        psycopg.conninfo.conninfo_to_dict(url)
    except (ValueError, psycopg.Error):
        raise InvalidInputError(
            f"malformed PostgreSQL {what} URL (check the host, port, percent-encoding"
            " and query parameters)"
        ) from None


def describe(url: str) -> str:
    """A URL without its password, for messages and ``location``."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


class PgConnections:
    """The primary and optional secondary connection of one backend, with their bounds.

    Args:
        psycopg: the imported ``psycopg`` module.
        primary_url: the primary's URL (without our query parameters).
        secondary_url: a read-only replica's URL, or ``None``.
        timeout: seconds bounding each step (see the module docstring).
        read_only: open the primary read-only and refuse every write.
        retry_after: seconds reads stay on the secondary after the primary failed.
    """

    def __init__(
        self,
        psycopg: Any,
        primary_url: str,
        secondary_url: str | None,
        *,
        timeout: float,
        read_only: bool,
        retry_after: float,
    ) -> None:
        self._psycopg = psycopg
        self.primary_url = primary_url
        self.secondary_url = secondary_url
        self.timeout = timeout
        self.read_only = read_only
        self._retry_after = retry_after
        #: Held for a whole transaction: one connection serves one transaction at a time.
        self.lock = threading.RLock()
        self._conn: Any = None
        self._sconn: Any = None
        self._primary_down_until = 0.0
        self._closed = False
        self._watchdog = SocketWatchdog("postgres")

    @property
    def connect_bound(self) -> float:
        """Seconds one connection attempt may take: max(2, timeouts)."""
        return float(max(2, math.ceil(self.timeout)))

    def connect(self, url: str, *, read_only: bool) -> Any:
        ms = max(1, int(self.timeout * 1000))
        options = f"-c statement_timeout={ms} -c lock_timeout={ms}"
        given = self._psycopg.conninfo.conninfo_to_dict(url).get("options")
        if given:  # the URL's own options (search_path...) are kept, ours come last
            options = f"{given} {options}"
        if read_only:
            options += " -c default_transaction_read_only=on"
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": int(self.connect_bound),
            "keepalives": 1,
            "keepalives_idle": max(1, int(self.timeout)),
            "keepalives_interval": 1,
            "keepalives_count": 3,
            "tcp_user_timeout": ms,
            "options": options,
        }
        return self._psycopg.connect(url, **kwargs)

    @contextlib.contextmanager
    def bounded(self, conn: Any, seconds: float | None = None) -> Iterator[None]:
        """Cut *conn* off (client side) if the body outlasts *seconds* (default: timeouts)."""
        # A little over the server-side timeouts, so a live server reports its own
        # QueryCanceled/LockNotAvailable first and keeps the connection usable.
        limit = (self.timeout if seconds is None else seconds) * 1.1 + 0.05
        with self._watchdog.bound(conn.pgconn.socket, limit):
            yield

    def primary(self) -> Any:
        if self._closed:
            raise KeyStoreError("key store is closed")
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = None
            try:
                self._conn = self.connect(self.primary_url, read_only=self.read_only)
            except self._psycopg.OperationalError:
                self._primary_down_until = time.monotonic() + self._retry_after
                raise
        return self._conn

    def secondary(self) -> Any:
        if self._sconn is None or self._sconn.closed or self._sconn.broken:
            self._sconn = None
            assert self.secondary_url is not None
            self._sconn = self.connect(self.secondary_url, read_only=True)
        return self._sconn

    @contextlib.contextmanager
    def read(
        self, *, bulk: bool = False, before: Callable[[Any], object] | None = None
    ) -> Iterator[Any]:
        """A read transaction: on the primary, or on the secondary when the primary is down.

        The ``BEGIN`` doubles as the liveness probe: if it fails on the primary,
        the read goes to the secondary (when configured). If the primary fails
        *during* the body, :class:`RetryOnSecondary` is raised for
        :func:`failover_read` to run the whole read method again (on the
        secondary). The transaction is bounded by ``timeouts`` (``bulk``: 12x).
        """
        psycopg = self._psycopg
        begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        limit = self.timeout * (BULK_FACTOR if bulk else 1)
        with self.lock:
            cur = None
            on_primary = False
            use_secondary = (
                self.secondary_url is not None and time.monotonic() < self._primary_down_until
            )
            if not use_secondary:
                try:
                    conn = self.primary()
                    with self.bounded(conn):
                        cur = conn.cursor()
                        cur.execute(begin)
                    on_primary = True
                except psycopg.OperationalError:
                    self._primary_down_until = time.monotonic() + self._retry_after
                    if self.secondary_url is None:
                        raise UnreachableError(
                            f"key store {describe(self.primary_url)} is unreachable"
                        ) from None
                    cur = None
                except psycopg.Error as exc:
                    raise KeyStoreError(f"key store read failed ({type(exc).__name__})") from None
            if cur is None:
                try:
                    conn = self.secondary()
                    with self.bounded(conn):
                        cur = conn.cursor()
                        cur.execute(begin)
                except psycopg.OperationalError:
                    raise UnreachableError(
                        f"key store {describe(self.primary_url)} and its secondary"
                        f" {describe(self.secondary_url or '')} are unreachable"
                    ) from None
                except psycopg.Error as exc:
                    raise KeyStoreError(f"key store read failed ({type(exc).__name__})") from None
            try:
                with self.bounded(conn, limit):
                    if bulk:
                        ms = max(1, int(limit * 1000))
                        cur.execute(f"SET LOCAL statement_timeout = {ms}")
                    if before is not None:
                        before(cur)
                    yield cur
                    cur.execute("COMMIT")
            except psycopg.OperationalError:
                with contextlib.suppress(psycopg.Error):
                    cur.execute("ROLLBACK")
                if on_primary:
                    self._primary_down_until = time.monotonic() + self._retry_after
                    if self.secondary_url is not None:
                        raise RetryOnSecondary(
                            f"key store {describe(self.primary_url)} failed during a read"
                        ) from None
                    raise KeyStoreError(
                        f"key store {describe(self.primary_url)} failed or timed out"
                        f" during a read (bound {limit:g}s)"
                    ) from None
                raise KeyStoreError(
                    f"key store secondary {describe(self.secondary_url or '')} failed or"
                    f" timed out during a read (bound {limit:g}s)"
                ) from None
            except psycopg.Error as exc:
                with contextlib.suppress(psycopg.Error):
                    cur.execute("ROLLBACK")
                raise KeyStoreError(f"key store read failed ({type(exc).__name__})") from None
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    cur.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def write(
        self, *, bound: float | None = None, before: Callable[[Any], object] | None = None
    ) -> Iterator[Any]:
        """A write transaction on the primary (never the secondary), bounded by ``timeouts``.

        Creates the schema first when no call has confirmed it yet (lazily, on
        the first write after an open that could not reach any server).
        """
        psycopg = self._psycopg
        with self.lock:
            if self.read_only:
                raise KeyStoreError("key store is open read-only")
            try:
                conn = self.primary()
            except psycopg.OperationalError:
                raise UnreachableError(
                    f"key store primary {describe(self.primary_url)} is unreachable;"
                    " writes are refused (a secondary is read-only)"
                ) from None
            except psycopg.Error as exc:
                raise KeyStoreError(f"key store write failed ({type(exc).__name__})") from None
            try:
                with self.bounded(conn, bound), conn.transaction():
                    cur = conn.cursor()
                    if bound is not None:
                        cur.execute(f"SET LOCAL statement_timeout = {max(1, int(bound * 1000))}")
                    if before is not None:
                        before(cur)
                    yield cur
            except psycopg.errors.UniqueViolation:
                raise KeyStoreError("key store constraint violated (duplicate)") from None
            except psycopg.errors.ReadOnlySqlTransaction:
                raise KeyStoreError("key store database is read-only") from None
            except psycopg.OperationalError as exc:
                if not isinstance(
                    exc, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable
                ):
                    self._primary_down_until = time.monotonic() + self._retry_after
                raise KeyStoreError(
                    f"key store primary {describe(self.primary_url)} failed or timed out"
                    f" during a write ({type(exc).__name__}, bound"
                    f" {self.timeout if bound is None else bound:g}s); the transaction was"
                    " not committed or its outcome is unknown"
                ) from None
            except psycopg.Error as exc:
                raise KeyStoreError(f"key store write failed ({type(exc).__name__})") from None

    def close(self) -> None:
        """Close both connections and the watchdog. Idempotent."""
        with self.lock:
            self._closed = True
            self._watchdog.close()
            for conn in (self._conn, self._sconn):
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
            self._conn = self._sconn = None

"""Password checks in request paths: verify, rehash on success, no enumeration.

:class:`LoginGuard` wraps a :class:`styku_crypto.passwords.PasswordHasher`
for login handlers. It gives every handler the same three steps:

1. a known user's password is verified (off the event loop, in the hasher's
   bounded worker pool, for the async form);
2. on success, a hash that is legacy, weaker than the profile or on an old
   pepper is returned re-hashed, for the caller to store;
3. an unknown user costs :meth:`~styku_crypto.passwords.PasswordHasher.dummy_verify`,
   which costs what the most expensive failed verify of a current hash costs
   under the hasher's configuration (two Argon2 runs for a password NFKC
   changes, one otherwise; failed verifies of peppered hashes are padded to
   the same count), and fails with the same
   :class:`~styku_crypto.exceptions.PasswordMismatchError`, so response time
   and error do not reveal which accounts exist.

On top of the hasher's own bound on concurrent hashes, the guard bounds how
many logins may *wait*: when ``max_pending`` are already queued a new one is
refused at once with :class:`LoginThrottledError` (answer ``429``) and
``web.login_throttled`` is emitted, so a burst cannot pile up coroutines,
passwords in memory, and latency without limit.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from styku_crypto.events import emit
from styku_crypto.exceptions import InvalidInputError, PasswordMismatchError, StykuCryptoError

if TYPE_CHECKING:
    from styku_crypto.passwords import PasswordHasher

__all__ = ["LoginGuard", "LoginResult", "LoginThrottledError"]


class LoginThrottledError(StykuCryptoError):
    """Too many logins are already waiting; answer ``429 Too Many Requests``.

    Attributes:
        retry_after: seconds a client should wait (for ``Retry-After``).
    """

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__("too many logins in progress; retry later")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A successful login.

    Attributes:
        new_hash: the password re-hashed with the current profile and pepper,
            to store in place of the old hash; ``None`` when the stored hash
            is current.
    """

    new_hash: str | None

    def __repr__(self) -> str:
        return f"LoginResult(rehashed={self.new_hash is not None})"


class LoginGuard:
    """Bounded, enumeration-safe password checks for login handlers.

    Args:
        hasher: a :class:`styku_crypto.passwords.PasswordHasher` (its worker
            pool bounds how many hashes run at once, and so memory).
        max_pending: how many logins may be in progress or waiting at once;
            one more is refused with :class:`LoginThrottledError`.
        retry_after: the ``Retry-After`` seconds carried by that error.

    Raises:
        InvalidInputError: ``max_pending`` is not a positive integer.
    """

    __slots__ = (
        "_async_pending",
        "_hasher",
        "_lock",
        "_sync_pending",
        "max_pending",
        "retry_after",
    )

    def __init__(
        self, hasher: PasswordHasher, *, max_pending: int = 32, retry_after: int = 1
    ) -> None:
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise InvalidInputError("max_pending must be a positive integer")
        self._hasher = hasher
        self.max_pending = max_pending
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._sync_pending = 0
        self._async_pending = 0

    def __repr__(self) -> str:
        return f"LoginGuard(max_pending={self.max_pending}, pending={self.pending})"

    @property
    def pending(self) -> int:
        """Logins in progress or waiting right now."""
        with self._lock:
            return self._sync_pending + self._async_pending

    def _enter(self, *, actor: str | None, source: str | None, sync: bool) -> None:
        with self._lock:
            if self._sync_pending + self._async_pending >= self.max_pending:
                full = True
            else:
                full = False
                if sync:
                    self._sync_pending += 1
                else:
                    self._async_pending += 1
        if full:
            emit(
                "web.login_throttled",
                capability="web",
                outcome="failure",
                level=logging.WARNING,
                actor=actor,
                source=source,
                attributes={"max_pending": self.max_pending},
            )
            raise LoginThrottledError(self.retry_after)

    def _leave(self, *, sync: bool) -> None:
        with self._lock:
            if sync:
                self._sync_pending -= 1
            else:
                self._async_pending -= 1

    async def alogin(
        self,
        stored_hash: str | None,
        password: str,
        *,
        actor: str | None = None,
        source: str | None = None,
    ) -> LoginResult:
        """Check *password* against *stored_hash* without blocking the event loop.

        Args:
            stored_hash: the user's stored hash, or ``None`` for an unknown
                user (a dummy verify of the same cost runs, then the same
                error as a wrong password is raised).
            password: the submitted password.
            actor: the account name, for events (never the password).
            source: the client address, for events.

        Returns:
            :class:`LoginResult`; store ``new_hash`` when it is not ``None``.

        Raises:
            PasswordMismatchError: wrong password or unknown user.
            LoginThrottledError: ``max_pending`` logins are already waiting.
            InvalidHashError: the stored hash is malformed or over the limits.
        """
        self._enter(actor=actor, source=source, sync=False)
        try:
            if stored_hash is None:
                await self._hasher.adummy_verify(password, actor=actor, source=source)
                raise PasswordMismatchError("password does not match")  # pragma: no cover
            new_hash = await self._hasher.averify_and_update(
                stored_hash, password, actor=actor, source=source
            )
            return LoginResult(new_hash)
        finally:
            self._leave(sync=False)

    def login(
        self,
        stored_hash: str | None,
        password: str,
        *,
        actor: str | None = None,
        source: str | None = None,
    ) -> LoginResult:
        """The synchronous twin of :meth:`alogin` (WSGI handlers, threads).

        Raises:
            PasswordMismatchError: wrong password or unknown user.
            LoginThrottledError: ``max_pending`` logins are already running.
            InvalidHashError: the stored hash is malformed or over the limits.
        """
        self._enter(actor=actor, source=source, sync=True)
        try:
            if stored_hash is None:
                self._hasher.dummy_verify(password, actor=actor, source=source)
                raise PasswordMismatchError("password does not match")  # pragma: no cover
            return LoginResult(
                self._hasher.verify_and_update(stored_hash, password, actor=actor, source=source)
            )
        finally:
            self._leave(sync=True)

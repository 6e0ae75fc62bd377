"""Timeouts and bounded retries with backoff and jitter for root-key provider calls.

Root-key providers talk to things that fail in production: a KMS throttles or
times out, an HSM's session drops. Every provider call goes through
:func:`call_with_retries`, which

* retries only errors the provider classifies as *transient* (throttling,
  connection and timeout errors), never integrity failures;
* makes at most :attr:`RetryPolicy.attempts` attempts and never starts a new one
  after :attr:`RetryPolicy.deadline` seconds have passed since the first;
* sleeps between attempts with capped exponential backoff and *full jitter*
  (a uniformly random delay between 0 and the capped exponential), so many
  clients retrying together do not synchronise;
* raises :class:`~styku_crypto.exceptions.RootKeyUnavailableError` naming the
  provider, the operation and the last error's *type* (never its text, which
  may echo request data) when it gives up.

:func:`run_with_timeout` bounds a blocking call that has no timeout of its own
(a PKCS#11 C call) by running it on a worker thread.
"""

from __future__ import annotations

import concurrent.futures
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from styku_crypto.exceptions import InvalidInputError, RootKeyUnavailableError

__all__ = ["RetryPolicy", "call_with_retries", "run_with_timeout"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a provider call is retried.

    Attributes:
        attempts: total attempts including the first (at least 1).
        base_delay: backoff before the second attempt, in seconds (doubled each time).
        max_delay: cap on any one backoff, in seconds.
        deadline: no new attempt starts this many seconds after the first began;
            the KMS and PKCS#11 providers also cut the attempt in flight at the
            deadline, so it bounds the whole call.
        timeout: bound on one attempt, in seconds, for calls without their own
            timeout (PKCS#11); network providers use their client's
            connect/read timeouts instead.
    """

    attempts: int = 3
    base_delay: float = 0.05
    max_delay: float = 1.0
    deadline: float = 10.0
    timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise InvalidInputError("attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.deadline <= 0 or self.timeout <= 0:
            raise InvalidInputError("delays must be non-negative and deadline/timeout positive")

    def backoff(self, retry: int) -> float:
        """The jittered sleep before retry number *retry* (1-based)."""
        cap = min(self.max_delay, self.base_delay * (2 ** (retry - 1)))
        return random.uniform(0.0, cap)  # noqa: S311 - jitter, not a secret


def call_with_retries(
    func: Callable[[], T],
    *,
    policy: RetryPolicy,
    is_transient: Callable[[BaseException], bool],
    provider: str,
    operation: str,
    describe: Callable[[BaseException], str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call *func* with bounded retries of transient failures.

    Args:
        func: the call to make; it raises on failure.
        policy: attempts, backoff and deadline.
        is_transient: classifies an exception raised by *func*: ``True`` means
            retry (and finally :class:`RootKeyUnavailableError`); ``False``
            means re-raise it unchanged at once.
        provider: the provider id, for the error message.
        operation: ``"wrap"`` or ``"unwrap"``, for the error message.
        describe: names an error for the message (default: its type name);
            must not return anything secret.
        sleep: the sleep function (tests may pass a recorder).

    Returns:
        What *func* returned.

    Raises:
        RootKeyUnavailableError: every attempt failed transiently, or the deadline passed.
        Exception: whatever non-transient exception *func* raised.
    """
    start = time.monotonic()
    last: BaseException | None = None
    attempt = 0
    for attempt in range(1, policy.attempts + 1):
        try:
            return func()
        except Exception as exc:
            if not is_transient(exc):
                raise
            last = exc
        if attempt == policy.attempts:
            break
        delay = policy.backoff(attempt)
        if time.monotonic() - start + delay >= policy.deadline:
            break
        sleep(delay)
    if last is None:
        kind = "deadline"
    else:
        kind = describe(last) if describe is not None else type(last).__name__
    raise RootKeyUnavailableError(
        f"root key provider {provider!r} unavailable for {operation} "
        f"after {attempt} attempt(s) ({kind})"
    ) from last


_executor_lock = threading.Lock()
_executor: concurrent.futures.ThreadPoolExecutor | None = None


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=8, thread_name_prefix="styku-provider"
            )
        return _executor


class CallTimeoutError(TimeoutError):
    """A bounded call did not finish in time (transient for retry purposes)."""


def run_with_timeout(
    func: Callable[[], T],
    *,
    timeout: float,
    pool: concurrent.futures.ThreadPoolExecutor | None = None,
) -> T:
    """Run *func* on a worker thread (of *pool*, default a shared one) and wait at most *timeout*.

    .. warning::
        A call that times out keeps running on its worker thread (Python cannot
        cancel a blocked C call or socket read); its result is discarded.

    Raises:
        CallTimeoutError: the call did not finish in time.
    """
    future = (pool or _pool()).submit(func)
    try:
        return future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise CallTimeoutError(f"call exceeded {timeout:.3g}s") from None

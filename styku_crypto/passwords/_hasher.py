"""The password hasher: Argon2id with profiles, peppers, limits and legacy upgrade.

Security properties: every stored hash is parsed by an allowlist and checked
against structural limits and a cost ceiling (``work_budget`` x the profile's
own verify) before any allocation or hashing; a password over the policy's
byte cap is refused before any work, in verify as in hash; with
``require_pepper`` nothing verifies without a pepper; and a failed verify of an
Argon2 hash costs as many Argon2 runs as :meth:`PasswordHasher.dummy_verify`,
so timing does not tell known accounts from unknown ones.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hmac
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, NoReturn, TypeVar

from styku_crypto._extras import require
from styku_crypto.events import emit
from styku_crypto.exceptions import (
    InvalidHashError,
    InvalidInputError,
    PasswordMismatchError,
    PasswordPolicyError,
    UnpepperedHashError,
)
from styku_crypto.passwords._argon2 import ARGON2ID, Argon2Error, argon2_raw
from styku_crypto.passwords._buffers import WorkBufferPool
from styku_crypto.passwords._cost import Ceiling
from styku_crypto.passwords._formats import (
    Argon2Hash,
    LegacyHash,
    RefusedHashError,
    WrappedHash,
    parse,
    wrap_mac_input,
)
from styku_crypto.passwords._limits import HashLimits
from styku_crypto.passwords._pepper import Pepper, PepperSet
from styku_crypto.passwords._plan import Plan, attempts_for, plan
from styku_crypto.passwords._plan import candidates as plan_candidates
from styku_crypto.passwords._policy import HARD_MAX_BYTES, PasswordPolicy, normalize
from styku_crypto.passwords._wrap import wrap
from styku_crypto.passwords.profiles import RFC_9106_LOW_MEMORY, Argon2Profile, meets_owasp_floor

__all__ = ["PasswordHasher"]

_T = TypeVar("_T")
_CAPABILITY = "passwords"
_VERSION = 0x13
_WORKER_NICE = 5


@dataclass(frozen=True, slots=True)
class _Outcome:
    scheme: str
    legacy: bool
    reason: str | None  # why the stored hash should be replaced, or None
    normalised: str


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


class PasswordHasher:
    """Hash and verify passwords with Argon2id; verify and upgrade legacy hashes.

    All arguments are keyword-only.

    Args:
        profile: the Argon2id parameters for new hashes (default
            :data:`~styku_crypto.passwords.profiles.RFC_9106_LOW_MEMORY`).
        pepper: a :class:`Pepper` or a :class:`PepperSet` (current + old ids);
            ``None`` for no pepper.
        max_concurrency: most Argon2 computations at once (sync and async
            together), and the size of the dedicated worker pool used by the
            async methods. Peak working memory is about ``max_concurrency x m``.
            Default: the number of CPUs, at most 8.
        policy: the input policy for :meth:`hash` (default
            :class:`PasswordPolicy()`: NFKC, 15..128 characters, 1024 bytes).
        limits: ceilings for parameters read from stored hashes (default
            :class:`HashLimits()`, raised to admit ``profile``); its
            ``work_budget`` bounds every verify at that multiple of the
            profile's own verify.
        require_pepper: refuse unpeppered Argon2 and legacy hashes that were
            never pepper-wrapped, with :class:`UnpepperedHashError`. Default:
            the :class:`PepperSet`'s ``required`` policy (False without one).
        reuse_buffers: keep pre-faulted Argon2 work buffers between hashes
            (faster; memory returns to baseline after ``buffer_idle_seconds``).
        buffer_idle_seconds: unmap work buffers idle for this long.
        insecure_test_only: allow profiles below OWASP's floor such as
            :data:`~styku_crypto.passwords.profiles.CHEAPEST`.

    Raises:
        InvalidInputError: a profile below OWASP's floor without
            ``insecure_test_only=True``, ``max_concurrency < 1``, or
            ``require_pepper=True`` without a pepper.

    .. danger::
       ``insecure_test_only=True`` makes hashes that can be brute-forced in
       moments. It exists for test suites; never set it in production code.
    """

    def __init__(
        self,
        *,
        profile: Argon2Profile = RFC_9106_LOW_MEMORY,
        pepper: Pepper | PepperSet | None = None,
        max_concurrency: int | None = None,
        policy: PasswordPolicy | None = None,
        limits: HashLimits | None = None,
        require_pepper: bool | None = None,
        reuse_buffers: bool = True,
        buffer_idle_seconds: float = 30.0,
        insecure_test_only: bool = False,
    ) -> None:
        if not isinstance(profile, Argon2Profile):
            raise TypeError("profile must be an Argon2Profile")
        if not insecure_test_only and not meets_owasp_floor(profile):
            raise InvalidInputError(
                f"profile {profile.name!r} is below OWASP's Argon2id floor "
                "(m >= 7168 KiB and m x t >= 35840); insecure_test_only=True allows it in tests"
            )
        if max_concurrency is None:
            max_concurrency = min(os.cpu_count() or 1, 8)
        if max_concurrency < 1:
            raise InvalidInputError("max_concurrency must be at least 1")
        self._profile = profile
        if pepper is not None and not isinstance(pepper, Pepper | PepperSet):
            # Never echo the value: a raw key passed here by mistake is a secret.
            raise TypeError("pepper must be a Pepper, a PepperSet or None")
        self._peppers = PepperSet(pepper) if isinstance(pepper, Pepper) else pepper
        if require_pepper is None:
            require_pepper = self._peppers is not None and self._peppers.required
        if require_pepper and self._peppers is None:
            raise InvalidInputError("require_pepper=True needs a pepper")
        self._require_pepper = bool(require_pepper)
        self._max_concurrency = max_concurrency
        self._policy = policy if policy is not None else PasswordPolicy()
        self._limits = (limits if limits is not None else HashLimits()).raised_to(
            memory_kib=profile.memory_cost,
            time_cost=profile.time_cost,
            parallelism=profile.parallelism,
        )
        self._ceiling = Ceiling(profile, self._limits.work_budget)
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._pool = (
            WorkBufferPool(max_buffers=max_concurrency, idle_seconds=buffer_idle_seconds)
            if reuse_buffers
            else None
        )
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    # ------------------------------------------------------------------ public

    @property
    def profile(self) -> Argon2Profile:
        """The profile used for new hashes."""
        return self._profile

    @property
    def max_concurrency(self) -> int:
        """The bound on simultaneous Argon2 computations."""
        return self._max_concurrency

    @property
    def limits(self) -> HashLimits:
        """The effective stored-hash limits."""
        return self._limits

    @property
    def require_pepper(self) -> bool:
        """Whether unpeppered and unwrapped legacy hashes are refused."""
        return self._require_pepper

    def hash(self, password: str) -> str:
        """Hash a *new* password after checking it against the input policy.

        The password is NFKC-normalised, checked against the
        :class:`PasswordPolicy`, peppered when a pepper is configured, and
        hashed with the profile and a fresh 16-byte random salt.

        Returns:
            A PHC string ``$argon2id$v=19$m=..,t=..,p=..[,pepper=ID]$salt$tag``.

        Raises:
            PasswordPolicyError: too short, too long, not text, or blocklisted
                (emits ``password.policy_rejected``).
            TypeError: *password* is not a str.
        """
        try:
            normalised = self._policy.check(password)
            self._check_bytes(password, normalised)
        except PasswordPolicyError as exc:
            emit(
                "password.policy_rejected",
                capability=_CAPABILITY,
                outcome="failure",
                reason=getattr(exc, "rule", "policy"),
            )
            raise
        return self._hash_normalised(normalised)

    def verify(
        self, stored: str, password: str, *, actor: str | None = None, source: str | None = None
    ) -> Literal[True]:
        """Check *password* against *stored*; return True or raise.

        Accepts this library's hashes (peppered, unpeppered or pepper-wrapped),
        plain argon2-cffi hashes and every legacy format listed in the docs.
        The input policy is *not* applied, except its byte cap: a password
        whose typed or NFKC form is over ``policy.max_bytes`` could never have
        been set, and is refused before any work.

        Args:
            stored: the stored hash string.
            password: the candidate password.
            actor, source: optional, copied into the emitted event.

        Returns:
            True.

        Raises:
            PasswordMismatchError: wrong password (emits ``password.failed``).
            InvalidHashError: *stored* is malformed, of an unknown scheme, over
                a configured limit or the cost ceiling, or names an unknown
                pepper; raised before any hashing work (emits
                ``password.hash_refused``). The message names the parameter
                and the limit, never the hash.
            UnpepperedHashError: ``require_pepper`` is set and *stored* is
                unpeppered (a subclass of InvalidHashError).
            PasswordPolicyError: *password* is over the policy's byte cap or
                not valid text (checked before any work).
            MissingExtraError: a bcrypt hash without the ``legacy`` extra.
        """
        outcome = self._verify(stored, password, actor=actor, source=source)
        del outcome
        return True

    def needs_rehash(self, stored: str) -> bool:
        """Whether *stored* should be replaced by a hash under the current settings.

        True for legacy formats, Argon2 variants other than Argon2id or version
        0x13, Django's ``argon2$`` wrapper, hashes weaker than the profile
        (less memory, less memory x passes, shorter salt or tag) and hashes on
        an old (or no) pepper. A hash *stronger* than the profile is left alone:
        this never downgrades.

        Raises:
            InvalidHashError: as for :meth:`verify`.
        """
        plan = self._plan(stored, actor=None, source=None)
        return self._upgrade_reason(plan) is not None

    def verify_and_update(
        self, stored: str, password: str, *, actor: str | None = None, source: str | None = None
    ) -> str | None:
        """Verify, and return a replacement hash when the stored one should change.

        Returns:
            A new hash to store when *stored* is legacy, weaker than the
            profile, on an old pepper, or matched only by the un-normalised
            password; otherwise None. The input policy is not applied to the
            new hash (the password is already in use).

        Raises:
            PasswordMismatchError, InvalidHashError, PasswordPolicyError,
            MissingExtraError: as for :meth:`verify`.
        """
        outcome = self._verify(stored, password, actor=actor, source=source)
        if outcome.reason is None:
            return None
        new = self._hash_normalised(outcome.normalised)
        emit(
            "password.upgraded_legacy" if outcome.legacy else "password.rehashed",
            capability=_CAPABILITY,
            outcome="success",
            actor=actor,
            source=source,
            reason=outcome.reason,
            attributes={"scheme": outcome.scheme, "profile": self._profile.name},
        )
        return new

    def dummy_verify(
        self, password: str, *, actor: str | None = None, source: str | None = None
    ) -> NoReturn:
        """Spend what a real :meth:`verify` would on a current hash, then fail.

        Call it when the user does not exist, so response time does not reveal
        which accounts exist. It does the same checks, the same pepper HMAC and
        the same Argon2 work as the most expensive failed verify of a hash
        made with the current profile: two Argon2 runs for a password that
        NFKC changes (an unpeppered or pepper-wrapped hash tries both forms,
        and a failed verify of a peppered hash is padded to the same count),
        one otherwise.

        Raises:
            PasswordMismatchError: always (emits ``password.failed`` with reason
                ``unknown_user``).
            PasswordPolicyError: as for :meth:`verify`.
        """
        raw, normalised = self._encode_candidate(password)
        nraw = normalised.encode("utf-8")
        attempts = attempts_for(raw, nraw)
        if self._peppers is not None:
            nraw = self._peppers.current.mac(nraw)
        self._bounded(lambda: self._pad(nraw, attempts))
        emit(
            "password.failed",
            level=logging.WARNING,
            capability=_CAPABILITY,
            outcome="failure",
            actor=actor,
            source=source,
            reason="unknown_user",
            attributes={"scheme": "argon2id"},
        )
        raise PasswordMismatchError("password does not match")

    def pepper_wrap(self, stored: str) -> str:
        """Wrap an unpeppered or legacy hash under the current pepper, offline.

        No password is needed, so a whole table can be migrated at once and
        ``require_pepper=True`` switched on without waiting for logins. The
        result keeps the inner hash's parameters, replaces its tag with zeros
        and stores ``HMAC-SHA256(pepper, label || inner || 0 || tag)``
        (onion style; see ``docs/passwords.md``). It verifies with the same
        password as before and is upgraded to peppered Argon2id by
        :meth:`verify_and_update` at the next login. A hash that is already
        peppered or wrapped is returned unchanged, so a migration can be
        re-run after an interruption.

        Raises:
            InvalidInputError: the hasher has no pepper.
            InvalidHashError: *stored* is malformed, unknown, over a limit or
                the cost ceiling, or names an unknown pepper (as for
                :meth:`verify`; nothing is wrapped that would not verify).
        """
        if self._peppers is None:
            raise InvalidInputError("pepper_wrap needs a hasher with a pepper")
        plan = self._plan(stored, actor=None, source=None, wrapping=True)
        if plan.pepper is not None:
            return stored  # already peppered or wrapped
        wrapped = wrap(plan.inner, self._peppers.current)
        try:
            parse(wrapped, self._limits)
        except RefusedHashError as exc:
            raise InvalidHashError(
                f"stored password hash cannot be wrapped ({plan.inner.scheme}): {exc.detail}"
            ) from None
        return wrapped

    # ------------------------------------------------------------------ async

    async def ahash(self, password: str) -> str:
        """:meth:`hash` on the hasher's dedicated worker pool (never blocks the loop)."""
        return await self._offload(self.hash, password)

    async def averify(
        self, stored: str, password: str, *, actor: str | None = None, source: str | None = None
    ) -> Literal[True]:
        """:meth:`verify` on the hasher's dedicated worker pool."""
        return await self._offload(
            functools.partial(self.verify, actor=actor, source=source), stored, password
        )

    async def averify_and_update(
        self, stored: str, password: str, *, actor: str | None = None, source: str | None = None
    ) -> str | None:
        """:meth:`verify_and_update` on the hasher's dedicated worker pool."""
        return await self._offload(
            functools.partial(self.verify_and_update, actor=actor, source=source),
            stored,
            password,
        )

    async def adummy_verify(
        self, password: str, *, actor: str | None = None, source: str | None = None
    ) -> NoReturn:
        """:meth:`dummy_verify` on the hasher's dedicated worker pool."""
        await self._offload(
            functools.partial(self.dummy_verify, actor=actor, source=source), password
        )
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------- lifecycle

    def trim(self) -> int:
        """Unmap every idle work buffer now; return how many were unmapped."""
        return self._pool.trim() if self._pool is not None else 0

    def close(self) -> None:
        """Stop the worker pool and unmap idle work buffers. Idempotent."""
        with self._executor_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> PasswordHasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        pepper = self._peppers.current.id if self._peppers is not None else None
        return (
            f"PasswordHasher(profile={self._profile.name!r}, pepper={pepper!r}, "
            f"max_concurrency={self._max_concurrency})"
        )

    def __reduce__(self) -> NoReturn:
        raise TypeError("PasswordHasher objects cannot be pickled")

    # --------------------------------------------------------------- internals

    def _encode_candidate(self, password: str) -> tuple[bytes, str]:
        if not isinstance(password, str):
            raise TypeError("password must be a str")
        try:
            raw = password.encode("utf-8")
        except UnicodeEncodeError:
            raise PasswordPolicyError("password is not valid Unicode text") from None
        if len(raw) > HARD_MAX_BYTES:
            raise _too_long(HARD_MAX_BYTES)
        normalised = normalize(password)
        self._check_bytes(password, normalised, raw=raw)
        return raw, normalised

    def _check_bytes(self, password: str, normalised: str, *, raw: bytes | None = None) -> None:
        """Refuse a password whose typed or NFKC form is over the policy's byte cap.

        The same cap applies in :meth:`hash` and :meth:`verify`, so a password
        that could never have been set is refused before any work, and the
        refusal depends on the password alone (never on the account).
        """
        cap = self._policy.max_bytes
        try:
            sizes = (
                len(raw if raw is not None else password.encode("utf-8")),
                len(normalised.encode("utf-8")),
            )
        except UnicodeEncodeError:
            raise PasswordPolicyError("password is not valid Unicode text") from None
        if max(sizes) > cap:
            raise _too_long(cap)

    def _hash_normalised(self, normalised: str) -> str:
        profile = self._profile
        data = normalised.encode("utf-8")
        pepper_param = ""
        if self._peppers is not None:
            current = self._peppers.current
            data = current.mac(data)
            pepper_param = f",pepper={current.id}"
        salt = os.urandom(profile.salt_len)
        tag = self._bounded(
            lambda: self._argon2(
                data,
                salt=salt,
                memory_kib=profile.memory_cost,
                time_cost=profile.time_cost,
                lanes=profile.parallelism,
                hash_len=profile.hash_len,
                variant=ARGON2ID,
                version=_VERSION,
            )
        )
        return (
            f"$argon2id$v=19$m={profile.memory_cost},t={profile.time_cost},"
            f"p={profile.parallelism}{pepper_param}${_b64(salt)}${_b64(tag)}"
        )

    def _argon2(
        self,
        data: bytes,
        *,
        salt: bytes,
        memory_kib: int,
        time_cost: int,
        lanes: int,
        hash_len: int,
        variant: int,
        version: int,
    ) -> bytes:
        try:
            return argon2_raw(
                data,
                salt=salt,
                memory_kib=memory_kib,
                time_cost=time_cost,
                lanes=lanes,
                hash_len=hash_len,
                variant=variant,
                version=version,
                pool=self._pool,
            )
        except Argon2Error as exc:
            raise InvalidHashError(f"Argon2 refused the parameters: {exc}") from None

    def _bounded(self, fn: Callable[[], _T]) -> _T:
        with self._slots:
            return fn()

    def _plan(
        self, stored: str, *, actor: str | None, source: str | None, wrapping: bool = False
    ) -> Plan:
        """:func:`plan` with this hasher's settings; a refusal emits and raises our error."""
        try:
            return plan(
                stored,
                limits=self._limits,
                peppers=self._peppers,
                require_pepper=self._require_pepper and not wrapping,
                ceiling=self._ceiling,
                max_bytes=self._policy.max_bytes,
            )
        except RefusedHashError as exc:
            error = UnpepperedHashError if exc.reason == "unpeppered" else InvalidHashError
            self._refuse(
                exc.reason, exc.scheme, exc.detail, actor=actor, source=source, error=error
            )

    def _refuse(
        self,
        reason: str,
        scheme: str,
        detail: str,
        *,
        actor: str | None,
        source: str | None,
        error: type[InvalidHashError] = InvalidHashError,
    ) -> NoReturn:
        emit(
            "password.hash_refused",
            level=logging.WARNING,
            capability=_CAPABILITY,
            outcome="failure",
            actor=actor,
            source=source,
            reason=reason,
            attributes={"scheme": scheme},
        )
        raise error(f"stored password hash refused ({scheme}): {detail}")

    def _upgrade_reason(self, plan: Plan) -> str | None:
        if isinstance(plan.parsed, WrappedHash):
            return "wrapped"
        if isinstance(plan.parsed, LegacyHash):
            return "legacy_format"
        return self._argon2_upgrade_reason(plan.parsed)

    def _argon2_upgrade_reason(self, parsed: Argon2Hash) -> str | None:
        profile = self._profile
        if parsed.django:
            return "format"
        if parsed.variant != ARGON2ID or parsed.version != _VERSION:
            return "variant"
        if (
            parsed.memory_kib < profile.memory_cost
            or parsed.memory_kib * parsed.time_cost < profile.memory_cost * profile.time_cost
            or len(parsed.tag) < profile.hash_len
            or len(parsed.salt) < profile.salt_len
        ):
            return "weaker_parameters"
        current = self._peppers.current.id if self._peppers is not None else None
        if parsed.pepper_id != current:
            return "pepper"
        return None

    def _verify(
        self, stored: str, password: str, *, actor: str | None, source: str | None
    ) -> _Outcome:
        raw, normalised = self._encode_candidate(password)
        plan = self._plan(stored, actor=actor, source=source)
        parsed, inner = plan.parsed, plan.inner
        nraw = normalised.encode("utf-8")
        candidates = plan_candidates(plan, raw, nraw)
        bcrypt_module = (
            require("bcrypt", extra="legacy")
            if isinstance(inner, LegacyHash) and inner.needs_bcrypt
            else None
        )
        padding = attempts_for(raw, nraw) - len(candidates)
        pad_input = plan.pepper.mac(nraw) if plan.pepper is not None else nraw

        def work() -> int | None:
            for index, candidate in enumerate(candidates):
                if self._attempt(plan, candidate, bcrypt_module):
                    return index
            if isinstance(inner, Argon2Hash) and padding > 0:
                self._pad(pad_input, padding)
            return None

        try:
            index = self._bounded(work)
        except RefusedHashError as exc:
            self._refuse(exc.reason, exc.scheme, exc.detail, actor=actor, source=source)
        reason = self._upgrade_reason(plan)
        legacy = isinstance(parsed, LegacyHash | WrappedHash) or (
            isinstance(parsed, Argon2Hash) and parsed.django
        )
        if index is None:
            emit(
                "password.failed",
                level=logging.WARNING,
                capability=_CAPABILITY,
                outcome="failure",
                actor=actor,
                source=source,
                reason="mismatch",
                attributes={"scheme": parsed.scheme},
            )
            raise PasswordMismatchError("password does not match")
        if reason is None and candidates[index] == raw and raw != nraw:
            reason = "normalisation"
        emit(
            "password.verified",
            capability=_CAPABILITY,
            outcome="success",
            actor=actor,
            source=source,
            attributes={"scheme": parsed.scheme, "needs_update": reason is not None},
        )
        return _Outcome(scheme=parsed.scheme, legacy=legacy, reason=reason, normalised=normalised)

    def _attempt(self, plan: Plan, candidate: bytes, bcrypt_module: object) -> bool:
        """One verifier run; True on a match (constant-time comparison)."""
        inner = plan.inner
        tag: bytes | None
        if isinstance(inner, Argon2Hash):
            tag = self._argon2(
                candidate,
                salt=inner.salt,
                memory_kib=inner.memory_kib,
                time_cost=inner.time_cost,
                lanes=inner.lanes,
                hash_len=len(inner.tag),
                variant=inner.variant,
                version=inner.version,
            )
        else:
            tag = inner.compute(candidate, bcrypt_module)
        if tag is None:
            return False
        if isinstance(plan.parsed, WrappedHash) and plan.pepper is not None:
            mac = plan.pepper.mac(wrap_mac_input(inner.zeroed(), tag))
            return hmac.compare_digest(mac, plan.parsed.mac)
        return hmac.compare_digest(tag, inner.tag)

    def _pad(self, data: bytes, attempts: int) -> None:
        """*attempts* Argon2 runs at the profile's cost on a random salt (timing parity)."""
        profile = self._profile
        salt = os.urandom(profile.salt_len)
        for _ in range(attempts):
            self._argon2(
                data,
                salt=salt,
                memory_kib=profile.memory_cost,
                time_cost=profile.time_cost,
                lanes=profile.parallelism,
                hash_len=profile.hash_len,
                variant=ARGON2ID,
                version=_VERSION,
            )

    def _executor_or_new(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self._max_concurrency,
                    thread_name_prefix="styku-passwords",
                    initializer=_lower_priority,
                )
            return self._executor

    async def _offload(self, fn: Callable[..., _T], *args: str) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor_or_new(), fn, *args)


def _lower_priority() -> None:
    """Run this worker (and the Argon2 threads it starts) at a lower CPU priority.

    Hashing is throughput work; the event loop and request threads are latency
    work. At nice +5 the kernel schedules the loop first when cores are busy,
    which keeps loop stalls short, while hashing still gets about a third of a
    contended core. Linux-only (threads have their own nice value there);
    silently skipped elsewhere.
    """
    with contextlib.suppress(AttributeError, OSError):
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + _WORKER_NICE))


def _too_long(cap: int) -> PasswordPolicyError:
    error = PasswordPolicyError(f"password is longer than {cap} bytes")
    error.rule = "too_long"  # type: ignore[attr-defined]
    return error

"""A root key inside a PKCS#11 token (a hardware security module, or SoftHSM2).

Needs the ``pkcs11`` extra (``python-pkcs11``), imported lazily.

The root key is a non-extractable, sensitive AES-256 secret key object in the
token. Tenant keys are wrapped and unwrapped *inside* the token with
``CKM_AES_GCM`` (SoftHSM2 2.6 and most HSMs implement it, including the
associated data), so the root key never reaches this process:

    wrapped = 0x01 || nonce(12) || AES-256-GCM_root(tenant key, aad') || tag(16)
    aad'    = "styku-crypto/pkcs11-root/v1" || 0x00 || aad

The 96-bit nonce comes from the token's random generator (``C_GenerateRandom``);
wraps are rare (one per tenant key version), far below the 2^32 random-nonce
limit for one GCM key.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import queue
import re
import secrets
import threading
import time
import urllib.parse
from typing import Any, ClassVar

from styku_crypto._extras import require
from styku_crypto.exceptions import (
    DecryptionError,
    InvalidInputError,
    KeyDestroyedError,
    KeyStoreError,
    RootKeyUnavailableError,
)
from styku_crypto.keys._provider import TENANT_ROOT_MARK, RootKeyProvider
from styku_crypto.keys._resilience import (
    CallTimeoutError,
    RetryPolicy,
    call_with_retries,
    run_with_timeout,
)
from styku_crypto.keys._schemes import register_root_scheme

__all__ = ["Pkcs11RootKey"]

_WRAP_VERSION = 0x01
_NONCE_LEN = 12
_TAG_LEN = 16
_AAD_PREFIX = b"styku-crypto/pkcs11-root/v1\x00"
#: Labels of per-tenant root objects: this prefix and 24 random hex digits. Only such
#: labels are ever destroyed, so no reference can name the shared root key.
_TENANT_LABEL = re.compile(r"styku-tenant-[0-9a-f]{24}\Z")

# python-pkcs11 exception names, classified. Looked up by name so the module
# imports without the extra.
_INTEGRITY = frozenset(
    {
        "EncryptedDataInvalid",
        "EncryptedDataLenRange",
        "DataInvalid",
        "DataLenRange",
        # SoftHSM2 reports a GCM tag mismatch on C_Decrypt as CKR_GENERAL_ERROR.
        "GeneralError",
    }
)
_TRANSIENT = frozenset(
    {
        "SessionHandleInvalid",
        "SessionClosed",
        "SessionCount",
        "DeviceError",
        "DeviceMemory",
        "DeviceRemoved",
        "TokenNotPresent",
        "ObjectHandleInvalid",
        "KeyHandleInvalid",
        "UserNotLoggedIn",
        "OperationActive",
        "FunctionFailed",
        "HostMemory",
    }
)


# python-pkcs11 calls C_Initialize(NULL): the module is told the application
# will not call it from several threads at once, and SoftHSM2 then runs without
# internal locking (concurrent calls crash it). Every call into one module is
# therefore serialised by this process-wide lock per module path.
_module_locks: dict[str, threading.RLock] = {}
_module_locks_guard = threading.Lock()


def _module_lock(module: str) -> threading.RLock:
    with _module_locks_guard:
        lock = _module_locks.get(module)
        if lock is None:
            lock = _module_locks[module] = threading.RLock()
        return lock


# PIN failures: never retried (each wrong C_Login counts towards the token's lockout).
_PIN_ERRORS = frozenset(
    {
        "PinIncorrect",
        "PinInvalid",
        "PinLenRange",
        "PinExpired",
        "PinLocked",
        "PinTooWeak",
        "UserPinNotInitialized",
    }
)


class _PinRefusedError(Exception):
    """This provider's PIN was refused (by the token, or by comparison with the verified PIN)."""


class _Login:
    """The one logged-in session per (module, token) in this process.

    PKCS#11 login state belongs to the application, not to a session: the first
    session logs in, further sessions share it, and closing the logged-in
    session logs every session out. So one anchor session stays open while any
    provider for the token is in use (reference-counted).

    Because a later ``C_Login`` on a logged-in token succeeds without looking at
    the PIN, the PIN a login *succeeded* with is remembered (``verified``): a
    token has exactly one user PIN, so any other PIN is refused by a
    constant-time comparison, without calling ``C_Login`` (which would count
    towards the token's lockout).
    """

    _registry: ClassVar[dict[tuple[str, str], _Login]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, module: str, token: Any) -> None:
        self.module = module
        self.token = token
        self.verified: bytes | None = None
        self.attempts = 0  # C_Login calls made (diagnostics and tests)
        self.refs = 0
        self.anchor: Any = None
        self.lock = threading.Lock()

    @classmethod
    def acquire(cls, module: str, token_label: str) -> _Login:
        pkcs11 = require("pkcs11", extra="pkcs11")
        with cls._registry_lock, _module_lock(module):
            login = cls._registry.get((module, token_label))
            if login is None:
                lib = pkcs11.lib(module)
                token = lib.get_token(token_label=token_label)
                login = cls(module, token)
                cls._registry[(module, token_label)] = login
            login.refs += 1
            return login

    def ensure(self, pin: str) -> None:
        """(Re-)establish the logged-in anchor session, authenticating *pin*.

        Raises:
            _PinRefusedError: *pin* differs from the PIN this token was logged in with,
                or the token is logged in by someone else in this process (unverifiable).
            pkcs11.exceptions.PKCS11Error: ``C_Login`` failed (``PinIncorrect``...).
        """
        pkcs11 = require("pkcs11", extra="pkcs11")
        given = pin.encode("utf-8")
        with self.lock:
            if self.verified is not None and not hmac.compare_digest(self.verified, given):
                raise _PinRefusedError("PinIncorrect")
            if self.anchor is not None:
                return
            self.attempts += 1
            try:
                self.anchor = self.token.open(user_pin=pin)
            except pkcs11.exceptions.UserAlreadyLoggedIn:
                if self.verified is None:
                    # Logged in outside this class: the PIN cannot be checked.
                    raise _PinRefusedError("UserAlreadyLoggedIn") from None
                self.anchor = self.token.open()
            self.verified = given

    def reset(self) -> None:
        """Drop the anchor (after the token logged us out); the next use re-logs in."""
        with _module_lock(self.module), self.lock:
            anchor, self.anchor = self.anchor, None
            if anchor is not None:
                with contextlib.suppress(Exception):
                    anchor.close()

    def release(self, module: str, token_label: str) -> None:
        with self._registry_lock:
            self.refs -= 1
            if self.refs > 0:
                return
            self._registry.pop((module, token_label), None)
        self.reset()


class Pkcs11RootKey(RootKeyProvider):
    """Root key provider backed by an AES-256 key inside a PKCS#11 token.

    Connection is lazy: constructing the provider does not touch the token, so a
    store can be configured while one of its providers is down. :meth:`check`
    opens a session and verifies the key's attributes.

    Sessions come from a thread-safe pool of at most *pool_size*; each call runs
    with a timeout (a hung token cannot hang the caller) and bounded retries of
    transient failures (lost session, device error, timeout), after which
    :class:`~styku_crypto.exceptions.RootKeyUnavailableError` is raised.

    Args:
        module: path of the PKCS#11 module, e.g. ``/usr/lib/softhsm/libsofthsm2.so``.
        token_label: label of the token holding the root key.
        pin: the token's user PIN (kept in memory, never shown).
        key_label: label of the root key object.
        pool_size: maximum concurrent sessions.
        retry: attempts, backoff, deadline and per-call timeout.
        provider_id: override the stable id (default ``pkcs11:<token>/<key label>``).

    Each provider authenticates with its own *pin*: the first use logs in
    (``C_Login``) or, when the token is already logged in from this process,
    compares the PIN with the one that login succeeded with. A refused PIN fails
    that provider only, at once and for good (every later call raises
    :class:`~styku_crypto.exceptions.RootKeyUnavailableError` without calling the
    token again); other providers on the same token are unaffected.

    .. warning::
       **PIN lockout.** HSMs count failed logins and lock the user PIN after a
       few (often 3-10; SoftHSM2 does not). A provider tries a PIN at most once
       in its lifetime and never retries a PIN failure, but every *new* provider
       or process with a wrong PIN spends one attempt: fix the configuration
       before restarting workers in a loop. After the token's PIN is changed,
       restart the process (a process remembers the PIN its login succeeded
       with, and refuses any other while providers for the token stay open).

    .. warning::
       The provider id names the token and key labels; re-creating a different
       key under the same labels makes existing wraps undecryptable
       (:class:`~styku_crypto.exceptions.DecryptionError`). Never delete a root
       key object while any backup still needs it.
    """

    def __init__(
        self,
        *,
        module: str,
        token_label: str,
        pin: str,
        key_label: str = "styku-root",
        pool_size: int = 4,
        retry: RetryPolicy | None = None,
        provider_id: str | None = None,
    ) -> None:
        if pool_size < 1:
            raise InvalidInputError("pool_size must be at least 1")
        self._module = module
        self._token_label = token_label
        self._pin = pin
        self._key_label = key_label
        self._retry = retry or RetryPolicy()
        self._id = provider_id or f"pkcs11:{token_label}/{key_label}"
        self._slots = threading.BoundedSemaphore(pool_size)
        self._idle: queue.LifoQueue[tuple[Any, Any]] = queue.LifoQueue()
        self._login: _Login | None = None
        self._lock = threading.Lock()
        self._auth_lock = threading.Lock()
        self._auth_error: str | None = None
        self._closed = False
        self._generation = 0

    # -- key management -----------------------------------------------------
    @classmethod
    def create_key(
        cls,
        *,
        module: str,
        token_label: str,
        pin: str,
        key_label: str = "styku-root",
    ) -> None:
        """Generate the root key in the token: AES-256, non-extractable, sensitive.

        Raises:
            KeyStoreError: a key with *key_label* already exists.
            RootKeyUnavailableError: the token cannot be opened.
        """
        provider = cls(module=module, token_label=token_label, pin=pin, key_label=key_label)
        try:
            provider._generate(key_label)
        finally:
            provider.close()

    def _generate(self, label: str) -> None:
        """Generate an AES-256 key object labelled *label*: token, private, sensitive,
        non-extractable, encrypt/decrypt only.

        Raises:
            KeyStoreError: a key with *label* already exists.
            RootKeyUnavailableError: the token cannot be opened or refused the PIN.
        """
        pkcs11 = require("pkcs11", extra="pkcs11")
        attr = pkcs11.Attribute
        lock = _module_lock(self._module)
        lock.acquire()
        try:
            session = self._open_session(rw=True)
            try:
                existing = list(
                    session.get_objects(
                        {attr.LABEL: label, attr.CLASS: pkcs11.ObjectClass.SECRET_KEY}
                    )
                )
                if existing:
                    raise KeyStoreError(f"a key labelled {label!r} already exists")
                session.generate_key(
                    pkcs11.KeyType.AES,
                    256,
                    label=label,
                    store=True,
                    capabilities=pkcs11.MechanismFlag.ENCRYPT | pkcs11.MechanismFlag.DECRYPT,
                    template={
                        attr.TOKEN: True,
                        attr.PRIVATE: True,
                        attr.SENSITIVE: True,
                        attr.EXTRACTABLE: False,
                        attr.WRAP: False,
                        attr.UNWRAP: False,
                    },
                )
            finally:
                session.close()
        except _PinRefusedError as exc:
            raise RootKeyUnavailableError(
                f"PKCS#11 token {self._token_label!r} refused the PIN ({exc}); not retried"
            ) from None
        except pkcs11.exceptions.PKCS11Error as exc:
            raise RootKeyUnavailableError(
                f"PKCS#11 token {self._token_label!r}: {type(exc).__name__}"
            ) from None
        finally:
            lock.release()

    # -- per-tenant root objects -------------------------------------------------
    supports_tenant_roots = True

    def create_tenant_root(self, tenant: str) -> str:
        """A new AES-256 object (sensitive, non-extractable) for one tenant's keys.

        Its label is ``styku-tenant-`` and 24 random hex digits (the tenant name
        is not written to the token).

        Raises:
            RootKeyUnavailableError: the token cannot be reached.
        """
        label = "styku-tenant-" + secrets.token_hex(12)
        self._generate(label)
        return label

    def tenant_root(self, ref: str) -> RootKeyProvider:
        """The provider wrapping under the per-tenant object labelled *ref* (same token, PIN).

        Raises:
            InvalidInputError: *ref* is not a per-tenant object label.
        """
        _check_tenant_label(ref)
        return _Pkcs11TenantRoot(
            module=self._module,
            token_label=self._token_label,
            pin=self._pin,
            key_label=ref,
            pool_size=1,
            retry=self._retry,
            provider_id=self._id + TENANT_ROOT_MARK + ref,
        )

    def destroy_tenant_root(self, ref: str) -> str:
        """``C_DestroyObject`` on every secret-key object labelled *ref*; idempotent.

        Raises:
            InvalidInputError: *ref* is not a per-tenant object label (the shared
                root key can never be destroyed this way).
            RootKeyUnavailableError: the token cannot be reached.
        """
        _check_tenant_label(ref)
        pkcs11 = require("pkcs11", extra="pkcs11")
        attr = pkcs11.Attribute
        lock = _module_lock(self._module)
        if not lock.acquire(timeout=self._retry.deadline):
            raise RootKeyUnavailableError(f"root key provider {self._id!r}: PKCS#11 module busy")
        try:
            session = self._open_session(rw=True)
            try:
                found = list(
                    session.get_objects(
                        {attr.LABEL: ref, attr.CLASS: pkcs11.ObjectClass.SECRET_KEY}
                    )
                )
                for obj in found:
                    obj.destroy()
            finally:
                session.close()
        except _PinRefusedError:
            raise self._pin_refused("destroy") from None
        except pkcs11.exceptions.PKCS11Error as exc:
            raise RootKeyUnavailableError(
                f"root key provider {self._id!r} failed destroy ({type(exc).__name__})"
            ) from None
        finally:
            lock.release()
        return "destroyed (C_DestroyObject)" if found else "already destroyed"

    # -- provider interface --------------------------------------------------
    @property
    def provider_id(self) -> str:
        """``pkcs11:<token label>/<key label>`` unless overridden."""
        return self._id

    def wrap(self, key: bytes, *, aad: bytes) -> bytes:
        """Wrap *key* with AES-256-GCM inside the token, bound to *aad*.

        Raises:
            RootKeyUnavailableError: the token cannot be reached or keeps failing.
        """
        mech = require("pkcs11", extra="pkcs11")

        def op(session: Any, root: Any) -> bytes:
            nonce = bytes(session.generate_random(_NONCE_LEN * 8))
            params = mech.mechanisms.GCMParams(nonce, _AAD_PREFIX + aad, _TAG_LEN * 8)
            sealed = root.encrypt(key, mechanism=mech.Mechanism.AES_GCM, mechanism_param=params)
            return bytes([_WRAP_VERSION]) + nonce + bytes(sealed)

        result: bytes = self._call(op, "wrap")
        return result

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        """Unwrap inside the token; the GCM tag authenticates *wrapped* and *aad*.

        Raises:
            DecryptionError: *wrapped* or *aad* do not authenticate (opaque).
            RootKeyUnavailableError: the token cannot be reached or keeps failing.
        """
        if len(wrapped) < 1 + _NONCE_LEN + _TAG_LEN + 1 or wrapped[0] != _WRAP_VERSION:
            raise DecryptionError("wrapped key does not authenticate")
        mech = require("pkcs11", extra="pkcs11")
        nonce = wrapped[1 : 1 + _NONCE_LEN]
        body = wrapped[1 + _NONCE_LEN :]

        def op(session: Any, root: Any) -> bytes:
            params = mech.mechanisms.GCMParams(nonce, _AAD_PREFIX + aad, _TAG_LEN * 8)
            try:
                out = root.decrypt(body, mechanism=mech.Mechanism.AES_GCM, mechanism_param=params)
            except mech.exceptions.PKCS11Error as exc:
                if type(exc).__name__ in _INTEGRITY:
                    raise DecryptionError("wrapped key does not authenticate") from None
                raise
            return bytes(out)

        result: bytes = self._call(op, "unwrap")
        return result

    def check(self) -> None:
        """Open a session, find the root key and verify it is sensitive and non-extractable.

        Raises:
            RootKeyUnavailableError: the token or the key cannot be reached.
            KeyStoreError: the key is extractable or not sensitive (refused).
        """
        attr = require("pkcs11", extra="pkcs11").Attribute

        def op(session: Any, root: Any) -> None:
            if root[attr.EXTRACTABLE] or not root[attr.SENSITIVE]:
                raise KeyStoreError(
                    f"root key {self._key_label!r} is extractable or not sensitive; refused"
                )

        self._call(op, "check")

    def close(self) -> None:
        """Close every pooled session and release the token login. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            login, self._login = self._login, None
        self._drain()
        if login is not None:
            login.release(self._module, self._token_label)

    def __repr__(self) -> str:
        return f"<Pkcs11RootKey {self._id}>"

    # -- internals -------------------------------------------------------------
    def _drain(self) -> None:
        with _module_lock(self._module):
            self._drain_locked()

    def _drain_locked(self) -> None:
        while True:
            try:
                session, _ = self._idle.get_nowait()
            except queue.Empty:
                return
            with contextlib.suppress(Exception):
                session.close()

    def _login_state(self) -> _Login:
        with self._lock:
            if self._closed:
                raise RootKeyUnavailableError(f"root key provider {self._id!r} is closed")
            if self._login is None:
                self._login = _Login.acquire(self._module, self._token_label)
            return self._login

    def _open_session(self, *, rw: bool = False) -> Any:
        login = self._login_state()
        with self._auth_lock:  # one login attempt per provider, even from many threads
            if self._auth_error is not None:
                raise _PinRefusedError(self._auth_error)
            try:
                login.ensure(self._pin)
            except _PinRefusedError as exc:
                self._auth_error = str(exc)
                raise
            except Exception as exc:
                if type(exc).__name__ in _PIN_ERRORS:
                    self._auth_error = type(exc).__name__
                    raise _PinRefusedError(self._auth_error) from None
                raise
        return login.token.open(rw=rw)

    def _find_key(self, session: Any) -> Any:
        pkcs11 = require("pkcs11", extra="pkcs11")
        return session.get_key(
            label=self._key_label,
            key_type=pkcs11.KeyType.AES,
            object_class=pkcs11.ObjectClass.SECRET_KEY,
        )

    def _one_attempt(self, op: Any) -> Any:
        pkcs11 = require("pkcs11", extra="pkcs11")
        if not self._slots.acquire(timeout=self._retry.timeout):
            raise CallTimeoutError("no PKCS#11 session free in time")
        module_lock = _module_lock(self._module)
        if not module_lock.acquire(timeout=self._retry.timeout):
            self._slots.release()
            raise CallTimeoutError("PKCS#11 module busy")
        try:
            try:
                session, root = self._idle.get_nowait()
            except queue.Empty:
                session = self._open_session()
                try:
                    root = self._find_key(session)
                except Exception:
                    session.close()
                    raise
            try:
                result = op(session, root)
            except pkcs11.exceptions.PKCS11Error as exc:
                with contextlib.suppress(Exception):
                    session.close()
                if type(exc).__name__ in {"UserNotLoggedIn", "ObjectHandleInvalid"}:
                    self._drain_locked()
                    if self._login is not None:
                        self._login.reset()
                raise
            except BaseException:
                self._idle.put((session, root))
                raise
            self._idle.put((session, root))
            return result
        finally:
            module_lock.release()
            self._slots.release()

    def _call(self, op: Any, operation: str) -> Any:
        pkcs11 = require("pkcs11", extra="pkcs11")

        deadline = time.monotonic() + self._retry.deadline

        def attempt() -> Any:
            # Each attempt gets at most its timeout and never outlives the call's deadline.
            left = deadline - time.monotonic()
            if left <= 0:
                raise CallTimeoutError("deadline passed")
            return run_with_timeout(
                lambda: self._one_attempt(op), timeout=min(self._retry.timeout, left)
            )

        def transient(exc: BaseException) -> bool:
            if isinstance(exc, CallTimeoutError):
                return True
            return isinstance(exc, pkcs11.exceptions.PKCS11Error) and (
                type(exc).__name__ in _TRANSIENT
            )

        if self._auth_error is not None:
            raise self._pin_refused(operation)
        try:
            return call_with_retries(
                attempt,
                policy=self._retry,
                is_transient=transient,
                provider=self._id,
                operation=operation,
            )
        except _PinRefusedError:
            raise self._pin_refused(operation) from None
        except (RuntimeError, OSError) as exc:  # PKCS11Error, a missing module
            raise RootKeyUnavailableError(
                f"root key provider {self._id!r} failed {operation} ({type(exc).__name__})"
            ) from None

    def _pin_refused(self, operation: str) -> RootKeyUnavailableError:
        return RootKeyUnavailableError(
            f"root key provider {self._id!r} failed {operation}: the token refused this"
            f" provider's PIN ({self._auth_error}); not retried (HSMs lock a PIN after"
            " repeated failures): create a provider with the right PIN"
        )


def _check_tenant_label(ref: str) -> None:
    if not isinstance(ref, str) or not _TENANT_LABEL.match(ref):
        raise InvalidInputError("not a per-tenant PKCS#11 object label (styku-tenant-<24 hex>)")


class _Pkcs11TenantRoot(Pkcs11RootKey):
    """Wraps under one tenant's own object; a missing object means it was destroyed."""

    supports_tenant_roots = False

    def create_tenant_root(self, tenant: str) -> str:
        raise self._no_tenant_roots()

    def tenant_root(self, ref: str) -> RootKeyProvider:
        raise self._no_tenant_roots()

    def destroy_tenant_root(self, ref: str) -> str:
        raise self._no_tenant_roots()

    def _find_key(self, session: Any) -> Any:
        pkcs11 = require("pkcs11", extra="pkcs11")
        try:
            return super()._find_key(session)
        except pkcs11.exceptions.NoSuchKey:
            raise KeyDestroyedError(
                f"per-tenant root object {self._key_label!r} was destroyed (tenant shredded)"
            ) from None


PIN_ENV = "STYKU_CRYPTO_PKCS11_PIN"


def _from_spec(spec: str) -> Pkcs11RootKey:
    """``pkcs11:MODULE#token=LABEL&key=LABEL`` with the PIN from ``$STYKU_CRYPTO_PKCS11_PIN``."""
    module, _, frag = spec.partition(":")[2].partition("#")
    opts = dict(urllib.parse.parse_qsl(frag))
    if not module or "token" not in opts:
        raise InvalidInputError("pkcs11 root spec: pkcs11:MODULE#token=LABEL&key=LABEL")
    unknown = sorted(set(opts) - {"token", "key"})
    if unknown:
        raise InvalidInputError(f"pkcs11 root spec: unknown option(s) {', '.join(unknown)}")
    pin = os.environ.get(PIN_ENV)
    if not pin:
        raise InvalidInputError(f"a pkcs11 root needs the token PIN in ${PIN_ENV}")
    return Pkcs11RootKey(
        module=module, token_label=opts["token"], pin=pin, key_label=opts.get("key", "styku-root")
    )


register_root_scheme("pkcs11", _from_spec)

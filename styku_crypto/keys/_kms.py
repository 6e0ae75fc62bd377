"""A root key in AWS KMS (or any KMS speaking its API).

Needs the ``aws`` extra (``boto3``), imported lazily.

Tenant keys are wrapped with KMS ``Encrypt`` and unwrapped with ``Decrypt``
under one KMS key id. The store's associated data travels as the KMS
*encryption context*, which KMS authenticates (and logs in CloudTrail)::

    EncryptionContext = {"styku:aad-sha256": base64(SHA-256(domain || aad))}
    domain            = "styku-crypto/kms-root/v1" || 0x00
    wrapped           = 0x01 || CiphertextBlob

The context holds a digest, not the associated data itself, so tenant names do
not end up in KMS audit logs. ``Decrypt`` also names the key id, so KMS refuses a
ciphertext made under another key.

Resilience: botocore's own retries are disabled; each call has connect and read
timeouts, and throttling, internal and connection errors are retried a bounded
number of times with jittered backoff (:mod:`~styku_crypto.keys._resilience`),
then reported as :class:`~styku_crypto.exceptions.RootKeyUnavailableError`.
botocore's ``read_timeout`` bounds each socket *read*, so a server trickling
one byte per second never trips it: the whole call (every attempt, the request
in flight included) is therefore bounded by ``RetryPolicy.deadline``, by
running each attempt on a worker thread of the provider's own pool and waiting
at most the time left. A request abandoned at the deadline finishes (or hits
``read_timeout``) in the background; its result is discarded.
``InvalidCiphertextException`` and ``IncorrectKeyException`` are integrity
failures: :class:`~styku_crypto.exceptions.DecryptionError`, never retried.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import logging
import threading
import time
import urllib.parse
from typing import Any

from styku_crypto._extras import require
from styku_crypto.exceptions import (
    DecryptionError,
    InvalidInputError,
    KeyDestroyedError,
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

__all__ = ["AwsKmsRootKey"]

# botocore logs whole request and response bodies at DEBUG level, and the bodies
# of KMS Encrypt/Decrypt carry the tenant key being wrapped, in base64. These are
# the loggers that do it; a filter on each replaces such records' text.
_BODY_LOGGERS = ("botocore.endpoint", "botocore.parsers", "botocore.awsrequest")

_WRAP_VERSION = 0x01
_CONTEXT_KEY = "styku:aad-sha256"
_AAD_DOMAIN = b"styku-crypto/kms-root/v1\x00"

_TENANT_DOMAIN = b"styku-crypto/kms-tenant-root/v1\x00"
#: KMS key states in which a per-tenant key counts as destroyed.
_DELETED_STATES = frozenset({"PendingDeletion", "PendingReplicaDeletion"})

_INTEGRITY_CODES = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})
_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "KMSInternalException",
        "InternalFailure",
        "DependencyTimeoutException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def encryption_context(aad: bytes) -> dict[str, str]:
    """The KMS encryption context that binds a wrap to *aad*."""
    digest = hashlib.sha256(_AAD_DOMAIN + aad).digest()
    return {_CONTEXT_KEY: base64.b64encode(digest).decode("ascii")}


class _WithholdKmsBodies(logging.Filter):
    """Withholds botocore DEBUG records that could carry KMS ``Plaintext`` fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a record that cannot render is withheld too
            text = "Plaintext"
        if "Plaintext" in text or "CiphertextBlob" in text:
            record.msg = "[request/response body withheld by styku_crypto: KMS key material]"
            record.args = ()
        return True


_BODY_FILTER = _WithholdKmsBodies()


def _install_body_filter() -> None:
    """Make sure the withholding filter is on botocore's body-logging loggers.

    Checked on every KMS call, not once per process: a logging reconfiguration
    (``dictConfig``, a framework resetting loggers) that drops the filter must
    not let the next DEBUG record show a tenant key. ``addFilter`` is
    idempotent for the same object, so this is a list scan per logger.
    """
    for name in _BODY_LOGGERS:
        logging.getLogger(name).addFilter(_BODY_FILTER)


class AwsKmsRootKey(RootKeyProvider):
    """Root key provider backed by a KMS key.

    The client is created lazily on first use, so a store can be configured
    while the KMS is unreachable.

    Args:
        key_id: the KMS key id or ARN (an alias works for wrap; use the key ARN
            so unwraps name the same key).
        region: the AWS region (default: boto3's configuration).
        endpoint_url: a non-default endpoint (VPC endpoint, FIPS endpoint, a test server).
        connect_timeout: seconds to establish a connection.
        read_timeout: seconds to wait for a response.
        retry: attempts, backoff and overall deadline: ``deadline`` bounds the
            whole call, the request in flight included (then
            :class:`~styku_crypto.exceptions.RootKeyUnavailableError`, and the
            store fails over to its next root).
        provider_id: override the stable id (default ``aws-kms:<key id>``).
        client: a ready boto3 KMS client (its own connect/read timeouts and
            retries then apply as configured by the caller; the whole-call
            deadline and the DEBUG body redaction apply whoever built it).
        client_kwargs: extra keyword arguments for ``boto3.client("kms", ...)``
            (credentials, profile-less setups).
    """

    def __init__(
        self,
        *,
        key_id: str,
        region: str | None = None,
        endpoint_url: str | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        provider_id: str | None = None,
        client: Any = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(key_id, str) or not key_id:
            raise InvalidInputError("key_id is required")
        self._key_id = key_id
        self._region = region
        self._endpoint = endpoint_url
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._retry = retry or RetryPolicy()
        self._id = provider_id or f"aws-kms:{key_id}"
        self._client = client
        self._client_kwargs = dict(client_kwargs or {})
        self._lock = threading.Lock()
        self._closed = False
        self._workers: concurrent.futures.ThreadPoolExecutor | None = None
        # Installed here, not when we build a client: a caller's ``client=`` logs
        # the same request bodies through the same botocore loggers.
        _install_body_filter()

    @property
    def provider_id(self) -> str:
        """``aws-kms:<key id>`` unless overridden."""
        return self._id

    @property
    def key_id(self) -> str:
        """The KMS key id."""
        return self._key_id

    def _kms(self) -> Any:
        with self._lock:
            if self._closed:
                raise RootKeyUnavailableError(f"root key provider {self._id!r} is closed")
            if self._client is None:
                boto3 = require("boto3", extra="aws")
                botocore_config = require("botocore.config", extra="aws")
                config = botocore_config.Config(
                    connect_timeout=self._connect_timeout,
                    read_timeout=self._read_timeout,
                    retries={"total_max_attempts": 1, "mode": "standard"},
                )
                kwargs: dict[str, Any] = {"config": config, **self._client_kwargs}
                if self._region:
                    kwargs["region_name"] = self._region
                if self._endpoint:
                    kwargs["endpoint_url"] = self._endpoint
                exceptions = require("botocore.exceptions", extra="aws")
                try:
                    self._client = boto3.client("kms", **kwargs)
                except (ValueError, exceptions.BotoCoreError) as exc:  # bad endpoint, region
                    raise RootKeyUnavailableError(
                        f"root key provider {self._id!r}: cannot create the KMS client"
                        f" ({type(exc).__name__})"
                    ) from None
            return self._client

    def wrap(self, key: bytes, *, aad: bytes) -> bytes:
        """Encrypt *key* under the KMS key with an encryption context bound to *aad*.

        Raises:
            RootKeyUnavailableError: KMS unreachable, throttling, or the key unusable.
        """
        return self._encrypt(self._key_id, key, aad)

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        """Decrypt *wrapped* with KMS; the encryption context must match *aad*.

        Raises:
            DecryptionError: KMS says the ciphertext or context do not authenticate.
            RootKeyUnavailableError: KMS unreachable, throttling, or the key unusable.
        """
        return self._decrypt(self._key_id, wrapped, aad, tenant_root=False)

    def _encrypt(self, key_id: str, key: bytes, aad: bytes) -> bytes:
        def op() -> bytes:
            _install_body_filter()
            resp = self._kms().encrypt(
                KeyId=key_id, Plaintext=key, EncryptionContext=encryption_context(aad)
            )
            return bytes([_WRAP_VERSION]) + bytes(resp["CiphertextBlob"])

        result: bytes = self._call(op, "wrap")
        return result

    def _decrypt(self, key_id: str, wrapped: bytes, aad: bytes, *, tenant_root: bool) -> bytes:
        if len(wrapped) < 2 or wrapped[0] != _WRAP_VERSION:
            raise DecryptionError("wrapped key does not authenticate")
        blob = wrapped[1:]

        def op() -> bytes:
            _install_body_filter()
            kms = self._kms()
            if tenant_root:
                # KMS itself refuses Decrypt under a key pending deletion; asking first
                # makes the refusal typed (KeyDestroyedError, never failed over) and holds
                # even against KMS-compatible servers that do not enforce the state.
                self._raise_if_deleted(kms, key_id)
            resp = kms.decrypt(
                KeyId=key_id, CiphertextBlob=blob, EncryptionContext=encryption_context(aad)
            )
            return bytes(resp["Plaintext"])

        result: bytes = self._call(op, "unwrap")
        return result

    @staticmethod
    def _raise_if_deleted(kms: Any, key_id: str) -> None:
        exceptions = require("botocore.exceptions", extra="aws")
        try:
            meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        except exceptions.ClientError as exc:
            if _code(exc) == "NotFoundException":
                raise KeyDestroyedError(
                    f"per-tenant KMS key {key_id} was deleted (tenant shredded)"
                ) from None
            raise
        if meta.get("KeyState") in _DELETED_STATES:
            when = meta.get("DeletionDate")
            raise KeyDestroyedError(
                f"per-tenant KMS key {key_id} is scheduled for deletion"
                + (f" on {_iso(when)}" if when is not None else "")
                + " (tenant shredded)"
            )

    # -- per-tenant root keys ----------------------------------------------------
    supports_tenant_roots = True
    #: The pending window of a per-tenant key's deletion: the shortest KMS allows (days).
    PENDING_WINDOW_DAYS = 7

    def create_tenant_root(self, tenant: str) -> str:
        """``CreateKey`` (symmetric, encrypt/decrypt) for one tenant; returns the key ARN.

        The key is tagged ``styku:tenant-root`` = a domain-separated SHA-256 of
        the tenant name (first 32 hex digits), so tenant names stay out of KMS
        and CloudTrail while an operator can still find a tenant's key.

        Raises:
            RootKeyUnavailableError: KMS unreachable or refused ``CreateKey``.
        """
        digest = hashlib.sha256(_TENANT_DOMAIN + tenant.encode("utf-8")).hexdigest()[:32]

        def op() -> str:
            meta = self._kms().create_key(
                Description="styku-crypto per-tenant root key",
                KeyUsage="ENCRYPT_DECRYPT",
                KeySpec="SYMMETRIC_DEFAULT",
                Tags=[{"TagKey": "styku:tenant-root", "TagValue": digest}],
            )["KeyMetadata"]
            return str(meta["Arn"])

        result: str = self._call(op, "create tenant root")
        return result

    def tenant_root(self, ref: str) -> RootKeyProvider:
        """The provider wrapping under the per-tenant KMS key *ref* (shares this client)."""
        self._check_tenant_ref(ref)
        return _KmsTenantRoot(self, ref)

    def destroy_tenant_root(self, ref: str) -> str:
        """``ScheduleKeyDeletion`` with the shortest pending window (7 days); idempotent.

        KMS never deletes a key at once: until the deletion date the key is
        ``PendingDeletion`` (every ``Decrypt`` refused, and this provider reports
        it as destroyed), but whoever may call ``CancelKeyDeletion`` can bring it
        back. The returned note says when the key material is gone for good.

        Raises:
            InvalidInputError: *ref* is this provider's own (shared) root key.
            RootKeyUnavailableError: KMS unreachable or refused.
        """
        self._check_tenant_ref(ref)
        exceptions = require("botocore.exceptions", extra="aws")
        days = self.PENDING_WINDOW_DAYS

        def op() -> str:
            kms = self._kms()
            try:
                # ScheduleKeyDeletion works in the key's own account only, where the
                # bare key id names it (some KMS-compatible servers take nothing else).
                key = ref.rpartition(":key/")[2] if ref.startswith("arn:") else ref
                when = kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=days)[
                    "DeletionDate"
                ]
            except exceptions.ClientError as exc:
                code = _code(exc)
                if code == "NotFoundException":
                    return "already deleted"
                if code != "KMSInvalidStateException":
                    raise
                meta = kms.describe_key(KeyId=ref)["KeyMetadata"]
                if meta.get("KeyState") not in _DELETED_STATES:
                    raise
                when = meta.get("DeletionDate")
            return (
                f"deletion scheduled for {_iso(when)} (KMS pending window {days} days;"
                " until then CancelKeyDeletion could undo it)"
            )

        result: str = self._call(op, "destroy tenant root")
        return result

    def _check_tenant_ref(self, ref: str) -> None:
        if not isinstance(ref, str) or not ref or ref == self._key_id:
            raise InvalidInputError("not a per-tenant KMS key reference")

    def check(self) -> None:
        """Ask KMS to describe the key; raise unless it is enabled.

        Raises:
            RootKeyUnavailableError: KMS unreachable or the key not enabled.
        """

        def op() -> None:
            meta = self._kms().describe_key(KeyId=self._key_id)["KeyMetadata"]
            if meta.get("KeyState") != "Enabled":
                raise RootKeyUnavailableError(
                    f"root key provider {self._id!r}: key state {meta.get('KeyState')!r}"
                )

        self._call(op, "check")

    def close(self) -> None:
        """Close the HTTP connection pool. Idempotent."""
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
            workers, self._workers = self._workers, None
        if workers is not None:
            workers.shutdown(wait=False, cancel_futures=True)
        if client is not None:
            close = getattr(client, "close", None)
            if close is not None:
                close()

    def __repr__(self) -> str:
        return f"<AwsKmsRootKey {self._id}>"

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        # The provider's own workers: a stalled KMS cannot starve other providers.
        with self._lock:
            if self._closed:
                raise RootKeyUnavailableError(f"root key provider {self._id!r} is closed")
            if self._workers is None:
                self._workers = concurrent.futures.ThreadPoolExecutor(
                    max_workers=8, thread_name_prefix="styku-kms"
                )
            return self._workers

    def _call(self, op: Any, operation: str) -> Any:
        exceptions = require("botocore.exceptions", extra="aws")
        pool = self._pool()
        deadline = time.monotonic() + self._retry.deadline

        def attempt() -> Any:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CallTimeoutError("deadline passed")
            try:
                return run_with_timeout(op, timeout=left, pool=pool)
            except RuntimeError:
                if self._closed:  # the pool was shut down by close()
                    raise RootKeyUnavailableError(
                        f"root key provider {self._id!r} is closed"
                    ) from None
                raise

        def transient(exc: BaseException) -> bool:
            if isinstance(exc, CallTimeoutError):
                return True
            if isinstance(exc, exceptions.ClientError):
                return _code(exc) in _TRANSIENT_CODES or _status(exc) >= 500
            return isinstance(
                exc,
                exceptions.ConnectionError
                | exceptions.HTTPClientError
                | exceptions.ConnectTimeoutError
                | exceptions.ReadTimeoutError,
            )

        try:
            return call_with_retries(
                attempt,
                policy=self._retry,
                is_transient=transient,
                provider=self._id,
                operation=operation,
                describe=lambda e: (
                    _code(e)
                    if isinstance(e, exceptions.ClientError)
                    else f"deadline {self._retry.deadline:g}s"
                    if isinstance(e, CallTimeoutError)
                    else type(e).__name__
                ),
            )
        except exceptions.ClientError as exc:
            code = _code(exc)
            if code in _INTEGRITY_CODES:
                raise DecryptionError("wrapped key does not authenticate") from None
            raise RootKeyUnavailableError(
                f"root key provider {self._id!r} refused {operation} ({code})"
            ) from None
        except exceptions.BotoCoreError as exc:
            raise RootKeyUnavailableError(
                f"root key provider {self._id!r} failed {operation} ({type(exc).__name__})"
            ) from None


class _KmsTenantRoot(RootKeyProvider):
    """Wraps under one tenant's own KMS key through the parent provider's client and pool."""

    def __init__(self, parent: AwsKmsRootKey, key_id: str) -> None:
        self._parent = parent
        self._key_id = key_id
        self._id = parent.provider_id + TENANT_ROOT_MARK + key_id

    @property
    def provider_id(self) -> str:
        """The parent's id, ``#tenant=`` and the per-tenant key ARN."""
        return self._id

    def wrap(self, key: bytes, *, aad: bytes) -> bytes:
        """``Encrypt`` under the tenant's key (format as :class:`AwsKmsRootKey`)."""
        return self._parent._encrypt(self._key_id, key, aad)

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        """``Decrypt`` under the tenant's key; :class:`KeyDestroyedError` once it is deleted."""
        return self._parent._decrypt(self._key_id, wrapped, aad, tenant_root=True)


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _from_spec(spec: str) -> AwsKmsRootKey:
    """``aws-kms:KEY_ID[?region=R&endpoint=URL]`` (credentials from the AWS environment)."""
    key_id, _, query = spec.partition(":")[2].partition("?")
    if not key_id:
        raise InvalidInputError("aws-kms root spec: aws-kms:KEY_ID[?region=R&endpoint=URL]")
    opts = dict(urllib.parse.parse_qsl(query))
    unknown = sorted(set(opts) - {"region", "endpoint"})
    if unknown:
        raise InvalidInputError(f"aws-kms root spec: unknown option(s) {', '.join(unknown)}")
    return AwsKmsRootKey(
        key_id=key_id, region=opts.get("region"), endpoint_url=opts.get("endpoint")
    )


register_root_scheme("aws-kms", _from_spec)

"""The AWS KMS root-key provider against moto's server over real HTTP, with injected faults."""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Iterator

import pytest

from styku_crypto.exceptions import DecryptionError, RootKeyUnavailableError
from styku_crypto.keys import AwsKmsRootKey, RetryPolicy
from styku_crypto.keys._kms import encryption_context
from tests._support import leaks
from tests._support.moto_server import AWS_ENV, FaultProxy, MotoServer, kms_client

RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, deadline=5.0)


@pytest.fixture
def kms_key(moto_server: MotoServer) -> str:
    """A fresh symmetric KMS key (ARN) on the moto server."""
    arn: str = kms_client(moto_server.endpoint).create_key()["KeyMetadata"]["Arn"]
    return arn


@pytest.fixture
def kms_root(kms_key: str, fault_proxy: FaultProxy) -> Iterator[AwsKmsRootKey]:
    """A KMS root provider that reaches moto through the fault-injecting proxy."""
    provider = AwsKmsRootKey(
        key_id=kms_key,
        endpoint_url=fault_proxy.endpoint,
        connect_timeout=0.5,
        read_timeout=0.5,
        retry=RETRY,
        client_kwargs=dict(AWS_ENV),
    )
    yield provider
    provider.close()


def _key() -> bytes:
    key = os.urandom(32)
    leaks.register_secret(key)
    return key


def test_roundtrip_and_format(kms_root: AwsKmsRootKey, kms_key: str) -> None:
    """Encrypt/Decrypt through KMS round-trips; the wrap is versioned and names the key id."""
    key = _key()
    wrapped = kms_root.wrap(key, aad=b"tenant=acme")
    assert wrapped[0] == 0x01
    assert key not in wrapped
    assert kms_root.unwrap(wrapped, aad=b"tenant=acme") == key
    assert kms_root.provider_id == f"aws-kms:{kms_key}"
    kms_root.check()


def test_encryption_context_binds_aad_digest(
    kms_root: AwsKmsRootKey, moto_server: MotoServer
) -> None:
    """KMS enforces the AAD: the blob decrypts only with the digest context, never without."""
    key = _key()
    wrapped = kms_root.wrap(key, aad=b"tenant=acme")
    direct = kms_client(moto_server.endpoint)
    ctx = encryption_context(b"tenant=acme")
    assert list(ctx) == ["styku:aad-sha256"]
    assert "acme" not in next(iter(ctx.values()))
    assert direct.decrypt(CiphertextBlob=wrapped[1:], EncryptionContext=ctx)["Plaintext"] == key
    with pytest.raises(direct.exceptions.InvalidCiphertextException):
        direct.decrypt(CiphertextBlob=wrapped[1:])


def test_wrong_aad_or_tamper_is_decryption_error_without_retry(
    kms_root: AwsKmsRootKey, fault_proxy: FaultProxy
) -> None:
    """InvalidCiphertextException maps to DecryptionError after exactly one call (never retried)."""
    wrapped = kms_root.wrap(_key(), aad=b"a")
    fault_proxy.reset_counts()
    with pytest.raises(DecryptionError):
        kms_root.unwrap(wrapped, aad=b"b")
    assert fault_proxy.calls["Decrypt"] == 1
    bad = bytearray(wrapped)
    bad[-5] ^= 1
    with pytest.raises(DecryptionError):
        kms_root.unwrap(bytes(bad), aad=b"a")
    with pytest.raises(DecryptionError):
        kms_root.unwrap(b"\x02" + wrapped[1:], aad=b"a")


def test_other_kms_key_cannot_unwrap(
    kms_root: AwsKmsRootKey, moto_server: MotoServer, fault_proxy: FaultProxy
) -> None:
    """Decrypt names the configured key id, so a wrap under another key is refused.

    AWS answers IncorrectKeyException (mapped to DecryptionError); moto answers
    AccessDeniedException (an availability-class refusal). Either way: no key.
    """
    other_arn = kms_client(moto_server.endpoint).create_key()["KeyMetadata"]["Arn"]
    other = AwsKmsRootKey(
        key_id=other_arn, endpoint_url=fault_proxy.endpoint, client_kwargs=dict(AWS_ENV)
    )
    with pytest.raises((DecryptionError, RootKeyUnavailableError)):
        other.unwrap(kms_root.wrap(_key(), aad=b""), aad=b"")
    other.close()


def test_transient_throttling_is_retried(kms_root: AwsKmsRootKey, fault_proxy: FaultProxy) -> None:
    """Two throttled responses then success: the call succeeds on the third bounded attempt."""
    key = _key()
    wrapped = kms_root.wrap(key, aad=b"a")
    fault_proxy.reset_counts()
    fault_proxy.fail_next(2, "throttle")
    assert kms_root.unwrap(wrapped, aad=b"a") == key
    assert fault_proxy.calls["Decrypt"] == 3


@pytest.mark.parametrize("mode", ["throttle", "error", "reset", "hang", "down"])
def test_persistent_faults_become_unavailable(
    kms_root: AwsKmsRootKey, fault_proxy: FaultProxy, mode: str
) -> None:
    """Throttling, 5xx, resets, timeouts and outages end in RootKeyUnavailableError, bounded."""
    wrapped = kms_root.wrap(_key(), aad=b"a")
    fault_proxy.hang_seconds = 1.0
    fault_proxy.set_mode(mode)
    fault_proxy.reset_counts()
    start = time.monotonic()
    with pytest.raises(RootKeyUnavailableError) as err:
        kms_root.unwrap(wrapped, aad=b"a")
    elapsed = time.monotonic() - start
    assert kms_root.provider_id in str(err.value)
    assert "3 attempt" in str(err.value)
    if mode != "down":
        assert fault_proxy.calls["Decrypt"] == 3
    assert elapsed < 5.0  # 3 attempts x 0.5 s read timeout + jitter, far below the deadline
    fault_proxy.set_mode("ok")


def test_disabled_key_fails_check(
    kms_root: AwsKmsRootKey, kms_key: str, moto_server: MotoServer
) -> None:
    """check() reports a disabled KMS key as unavailable (moto does not refuse Decrypt for it)."""
    kms_root.check()
    kms_client(moto_server.endpoint).disable_key(KeyId=kms_key.rsplit("/", 1)[1])
    with pytest.raises(RootKeyUnavailableError, match="Disabled"):
        kms_root.check()


def test_lazy_client_and_close(kms_key: str) -> None:
    """Construction never connects (a store can be configured while KMS is down); close is final."""
    provider = AwsKmsRootKey(
        key_id=kms_key,
        endpoint_url="http://127.0.0.1:9",
        connect_timeout=0.2,
        retry=RetryPolicy(attempts=1),
        client_kwargs=dict(AWS_ENV),
    )
    with pytest.raises(RootKeyUnavailableError):
        provider.wrap(b"k" * 32, aad=b"")
    provider.close()
    with pytest.raises(RootKeyUnavailableError, match="closed"):
        provider.wrap(b"k" * 32, aad=b"")
    with pytest.raises(TypeError):
        pickle.dumps(provider)
    with pytest.raises(ValueError):
        AwsKmsRootKey(key_id="")


def test_botocore_debug_logs_never_carry_the_wrapped_key(kms_root: AwsKmsRootKey) -> None:
    """With botocore at DEBUG, no request/response body log shows the key being wrapped."""
    import base64
    import logging

    records: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    botocore_logger = logging.getLogger("botocore")
    handler = Capture(level=logging.DEBUG)
    previous = botocore_logger.level
    botocore_logger.addHandler(handler)
    botocore_logger.setLevel(logging.DEBUG)
    try:
        key = _key()
        wrapped = kms_root.wrap(key, aad=b"tenant=acme")
        assert kms_root.unwrap(wrapped, aad=b"tenant=acme") == key
    finally:
        botocore_logger.removeHandler(handler)
        botocore_logger.setLevel(previous)
    texts = [r.getMessage() for r in records]
    assert any("withheld by styku_crypto" in t for t in texts)
    encoded = base64.b64encode(key).decode()
    for text in texts:
        assert encoded not in text
        assert key.hex() not in text


_LOG_PROBE = r"""
import base64, logging, sys
import boto3
from styku_crypto.keys import AwsKmsRootKey

endpoint, arn, mode, key_hex = sys.argv[1:5]
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
creds = dict(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
if mode == "caller":
    client = boto3.client("kms", endpoint_url=endpoint, **creds)
    provider = AwsKmsRootKey(key_id=arn, client=client)
else:
    provider = AwsKmsRootKey(key_id=arn, endpoint_url=endpoint, client_kwargs=creds)
key = bytes.fromhex(key_hex)
wrapped = provider.wrap(key, aad=b"tenant=acme")
assert provider.unwrap(wrapped, aad=b"tenant=acme") == key
print("ok")
"""


@pytest.mark.parametrize("who", ["caller", "provider"])
def test_debug_logs_redacted_whoever_built_the_client(
    kms_key: str, moto_server: MotoServer, who: str
) -> None:
    """Issue 21 item 5: a caller's ``client=`` with root DEBUG logging leaks no tenant key.

    Runs in a fresh interpreter, so no earlier test can have installed the
    botocore filter already (which hid the bug: 58 lines of base64 key material).
    """
    import base64
    import subprocess
    import sys

    key = _key()
    proc = subprocess.run(
        [sys.executable, "-c", _LOG_PROBE, moto_server.endpoint, kms_key, who, key.hex()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"
    log = proc.stderr
    assert "DEBUG:botocore" in log  # DEBUG logging really was on
    assert "withheld by styku_crypto" in log
    for form in (base64.b64encode(key).decode(), key.hex(), repr(key)[2:-1]):
        assert form not in log


def test_botocore_body_filter_survives_a_logging_reset(kms_root: AwsKmsRootKey) -> None:
    """A logging reconfiguration that drops botocore's filters does not unmask key material.

    Found by a whole-suite run: the docs harness restored loggers' filters after a page
    had created the first KMS provider, the once-per-process flag said "installed", and
    the next DEBUG record carried the base64 Plaintext of a tenant key.
    """
    import base64
    import logging

    records: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    for name in ("botocore", "botocore.endpoint", "botocore.parsers", "botocore.hooks"):
        logging.getLogger(name).filters.clear()  # e.g. a framework resetting loggers
    botocore_logger = logging.getLogger("botocore")
    handler = Capture(level=logging.DEBUG)
    previous = botocore_logger.level
    botocore_logger.addHandler(handler)
    botocore_logger.setLevel(logging.DEBUG)
    try:
        key = _key()
        wrapped = kms_root.wrap(key, aad=b"tenant=acme")
        assert kms_root.unwrap(wrapped, aad=b"tenant=acme") == key
    finally:
        botocore_logger.removeHandler(handler)
        botocore_logger.setLevel(previous)
    texts = "\n".join(r.getMessage() for r in records)
    assert "withheld by styku_crypto" in texts
    assert base64.b64encode(key).decode() not in texts
    assert key.hex() not in texts

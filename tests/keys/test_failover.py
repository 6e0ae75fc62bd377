"""Multi-wrap failover across real providers (moto KMS behind a fault proxy, SoftHSM2); retries."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.envelope import Envelope
from styku_crypto.exceptions import (
    KeyStoreError,
    RootKeyUnavailableError,
    StykuCryptoError,
)
from styku_crypto.keys import AwsKmsRootKey, KeyStore, Pkcs11RootKey, RetryPolicy, SQLiteBackend
from styku_crypto.keys._resilience import call_with_retries
from tests._support import leaks
from tests._support.moto_server import AWS_ENV, FaultProxy, MotoServer, kms_client
from tests._support.softhsm import SoftHSMToken

FAST = RetryPolicy(attempts=2, base_delay=0.005, max_delay=0.01, deadline=3.0, timeout=2.0)
CTX = {"table": "scans", "id": "7"}


def _kms(moto: MotoServer, proxy: FaultProxy) -> AwsKmsRootKey:
    arn = kms_client(moto.endpoint).create_key()["KeyMetadata"]["Arn"]
    return AwsKmsRootKey(
        key_id=arn,
        endpoint_url=proxy.endpoint,
        connect_timeout=0.3,
        read_timeout=0.3,
        retry=FAST,
        client_kwargs=dict(AWS_ENV),
    )


def _hsm(token: SoftHSMToken) -> Pkcs11RootKey:
    label = f"fo-{secrets.token_hex(5)}"
    Pkcs11RootKey.create_key(
        module=token.module, token_label=token.label, pin=token.pin, key_label=label
    )
    return Pkcs11RootKey(
        module=token.module, token_label=token.label, pin=token.pin, key_label=label, retry=FAST
    )


@pytest.fixture
def second_proxy(moto_server: MotoServer) -> Iterator[FaultProxy]:
    """Another fault proxy, standing for a KMS in a second region."""
    proxy = FaultProxy(moto_server.host, moto_server.port)
    yield proxy
    proxy.close()


def _events(name: str) -> list[logging.LogRecord]:
    return [r for r in leaks.captured_records() if r.getMessage() == name]


def _secret_payload() -> bytes:
    data = b"scan-" + secrets.token_bytes(24)
    leaks.register_secret(data)
    return data


def test_one_provider_down_still_decrypts(
    tmp_path: Path, moto_server: MotoServer, fault_proxy: FaultProxy, softhsm_token: SoftHSMToken
) -> None:
    """KMS down (connection refused): tokens still decrypt via the HSM wrap; failover is logged."""
    kms, hsm = _kms(moto_server, fault_proxy), _hsm(softhsm_token)
    backend = SQLiteBackend(tmp_path / "k.db")
    backend.initialize()
    with KeyStore(backend, root=[kms, hsm], cache_ttl=0) as store:
        store.create_tenant("acme")
        env = Envelope(store)
        data = _secret_payload()
        token = env.encrypt(data, tenant="acme", context=CTX)
        fault_proxy.set_mode("down")
        before = len(_events("key.root_failover"))
        assert env.decrypt(token, tenant="acme", context=CTX) == data
        failovers = _events("key.root_failover")[before:]
        assert failovers
        event = failovers[-1].styku_event  # type: ignore[attr-defined]
        assert event["provider"] == kms.provider_id
        assert event["tenant"] == "acme"
        assert failovers[-1].levelno == logging.WARNING


def test_throttled_primary_region_fails_over(
    tmp_path: Path,
    moto_server: MotoServer,
    fault_proxy: FaultProxy,
    second_proxy: FaultProxy,
) -> None:
    """Two KMS regions: the first throttles persistently, the second answers after retries."""
    east, west = _kms(moto_server, fault_proxy), _kms(moto_server, second_proxy)
    backend = SQLiteBackend(tmp_path / "k.db")
    backend.initialize()
    with KeyStore(backend, root=[east, west], cache_ttl=0) as store:
        store.create_tenant("acme")
        env = Envelope(store)
        data = _secret_payload()
        token = env.encrypt(data, tenant="acme", context=CTX)
        fault_proxy.set_mode("throttle")
        fault_proxy.reset_counts()
        second_proxy.reset_counts()
        assert env.decrypt(token, tenant="acme", context=CTX) == data
        assert fault_proxy.calls["Decrypt"] == FAST.attempts
        assert second_proxy.calls["Decrypt"] == 1


def test_all_providers_down_names_each(
    tmp_path: Path,
    moto_server: MotoServer,
    fault_proxy: FaultProxy,
    second_proxy: FaultProxy,
) -> None:
    """Every provider down: one RootKeyUnavailableError that names every provider tried."""
    east, west = _kms(moto_server, fault_proxy), _kms(moto_server, second_proxy)
    backend = SQLiteBackend(tmp_path / "k.db")
    backend.initialize()
    with KeyStore(backend, root=[east, west], cache_ttl=0) as store:
        store.create_tenant("acme")
        env = Envelope(store)
        token = env.encrypt(_secret_payload(), tenant="acme", context=CTX)
        fault_proxy.set_mode("down")
        second_proxy.set_mode("hang")
        second_proxy.hang_seconds = 0.6
        with pytest.raises(RootKeyUnavailableError) as err:
            env.decrypt(token, tenant="acme", context=CTX)
        message = str(err.value)
        assert east.provider_id in message
        assert west.provider_id in message


def test_tampered_wrap_never_fails_over(
    tmp_path: Path, moto_server: MotoServer, fault_proxy: FaultProxy, softhsm_token: SoftHSMToken
) -> None:
    """A tampered HSM wrap is an integrity failure: KMS (second in order) is never asked."""
    hsm, kms = _hsm(softhsm_token), _kms(moto_server, fault_proxy)
    backend = SQLiteBackend(tmp_path / "k.db")
    backend.initialize()
    with KeyStore(backend, root=[hsm, kms], cache_ttl=0) as store:
        store.create_tenant("acme")
        env = Envelope(store)
        token = env.encrypt(_secret_payload(), tenant="acme", context=CTX)
        rec = backend.get_key("acme", "customer", 1)
        wraps = dict(rec.wraps)
        bad = bytearray(wraps[hsm.provider_id])
        bad[20] ^= 0x40
        wraps[hsm.provider_id] = bytes(bad)
        backend.replace_wraps(
            [
                type(rec)(
                    rec.tenant,
                    rec.purpose,
                    rec.version,
                    rec.key_id,
                    tuple(wraps.items()),
                    rec.created_at,
                )
            ]
        )
        fault_proxy.reset_counts()
        with pytest.raises(StykuCryptoError) as err:
            env.decrypt(token, tenant="acme", context=CTX)
        assert not isinstance(err.value, RootKeyUnavailableError)
        assert isinstance(err.value, KeyStoreError)
        assert fault_proxy.calls["Decrypt"] == 0


def test_store_opens_while_a_provider_is_down(
    tmp_path: Path, moto_server: MotoServer, fault_proxy: FaultProxy, softhsm_token: SoftHSMToken
) -> None:
    """Providers connect lazily: a store configured with a dead KMS opens and serves via the HSM."""
    kms, hsm = _kms(moto_server, fault_proxy), _hsm(softhsm_token)
    backend = SQLiteBackend(tmp_path / "k.db")
    backend.initialize()
    with KeyStore(backend, root=[kms, hsm]) as store:
        store.create_tenant("acme")
    fault_proxy.set_mode("down")
    backend2 = SQLiteBackend(tmp_path / "k.db")
    kms2, hsm2 = (
        AwsKmsRootKey(
            key_id=kms.key_id,
            endpoint_url=fault_proxy.endpoint,
            connect_timeout=0.3,
            retry=FAST,
            client_kwargs=dict(AWS_ENV),
        ),
        Pkcs11RootKey(
            module=softhsm_token.module,
            token_label=softhsm_token.label,
            pin=softhsm_token.pin,
            key_label=hsm.provider_id.split("/", 1)[1],
        ),
    )
    with KeyStore(backend2, root=[kms2, hsm2]) as store:
        assert store._tenant_key("acme", "customer").version == 1


# -- the retry policy itself --------------------------------------------------------


class FlakyError(Exception):
    """A transient failure for the retry tests."""


@given(
    attempts=st.integers(1, 6),
    failures=st.integers(0, 8),
    base=st.floats(0.0, 0.5),
    cap=st.floats(0.0, 1.0),
)
def test_retries_are_bounded_and_jittered(
    attempts: int, failures: int, base: float, cap: float
) -> None:
    """At most `attempts` calls; each sleep in [0, min(cap, base*2^(n-1))]; success if possible."""
    policy = RetryPolicy(attempts=attempts, base_delay=base, max_delay=cap, deadline=1e6)
    calls = 0
    sleeps: list[float] = []

    def func() -> str:
        nonlocal calls
        calls += 1
        if calls <= failures:
            raise FlakyError()
        return "ok"

    message = ""
    try:
        result = call_with_retries(
            func,
            policy=policy,
            is_transient=lambda e: isinstance(e, FlakyError),
            provider="p",
            operation="unwrap",
            sleep=sleeps.append,
        )
    except RootKeyUnavailableError as err:
        result, message = "unavailable", str(err)
    if failures < attempts:
        assert result == "ok"
    else:
        assert result == "unavailable"
        assert f"{attempts} attempt" in message
    assert calls == min(failures + 1, attempts)
    assert len(sleeps) == calls - 1
    for n, delay in enumerate(sleeps, start=1):
        assert 0.0 <= delay <= min(cap, base * 2 ** (n - 1)) + 1e-12


def test_deadline_stops_retrying() -> None:
    """No new attempt starts once the deadline would be exceeded."""
    policy = RetryPolicy(attempts=50, base_delay=0.2, max_delay=0.2, deadline=0.3)
    calls = 0

    def func() -> None:
        nonlocal calls
        calls += 1
        raise FlakyError()

    with pytest.raises(RootKeyUnavailableError):
        call_with_retries(
            func, policy=policy, is_transient=lambda e: True, provider="p", operation="wrap"
        )
    assert calls < 50


def test_non_transient_errors_are_not_retried() -> None:
    """An error classified as non-transient propagates unchanged after one call."""
    calls = 0

    def func() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("integrity")

    with pytest.raises(ValueError, match="integrity"):
        call_with_retries(
            func, policy=RetryPolicy(), is_transient=lambda e: False, provider="p", operation="x"
        )
    assert calls == 1


def test_policy_validation() -> None:
    """Nonsensical retry policies are refused at construction."""
    for bad in ({"attempts": 0}, {"deadline": 0}, {"base_delay": -1}, {"timeout": 0}):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("fault", ["trickle", "hang", "reset"])
def test_kms_deadline_bounds_the_whole_call(
    tmp_path: Path, moto_server: MotoServer, fault_proxy: FaultProxy, fault: str
) -> None:
    """Issue 21 item 2: a trickling, stalled or resetting KMS ends each call within 2x its deadline.

    botocore's read_timeout (5 s here) is per socket read, so a server sending one
    byte every 0.2 s never trips it (before the fix: unwrap hung 90 s with a 10 s
    deadline). The deadline now covers the request in flight; the store then fails
    over to its next root, also within the bound.
    """
    policy = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, deadline=1.0)
    arn = kms_client(moto_server.endpoint).create_key()["KeyMetadata"]["Arn"]
    kms = AwsKmsRootKey(
        key_id=arn,
        endpoint_url=fault_proxy.endpoint,
        connect_timeout=5,
        read_timeout=5,
        retry=policy,
        client_kwargs=dict(AWS_ENV),
    )
    from styku_crypto.keys import LocalRootKey

    local = LocalRootKey(tmp_path / "second.rootkey")
    backend = SQLiteBackend(tmp_path / "k.db")
    backend.initialize()
    with KeyStore(backend, root=[kms, local], cache_ttl=0) as store:
        store.create_tenant("acme")
        env = Envelope(store)
        data = _secret_payload()
        token = env.encrypt(data, tenant="acme", context=CTX)
        wrapped = store.backend.get_primary("acme", "customer").wraps[0][1]
        fault_proxy.trickle_interval = 0.2
        fault_proxy.hang_seconds = 10.0
        fault_proxy.set_mode(fault)
        t0 = time.monotonic()
        with pytest.raises(RootKeyUnavailableError, match=kms.provider_id):
            kms.unwrap(wrapped, aad=b"x")
        assert time.monotonic() - t0 < 2 * policy.deadline
        t0 = time.monotonic()
        assert env.decrypt(token, tenant="acme", context=CTX) == data  # via the local root
        assert time.monotonic() - t0 < 2 * policy.deadline
        t0 = time.monotonic()
        store.create_tenant("beta")  # quorum 1: the KMS wraps are recorded as missing
        assert time.monotonic() - t0 < 2 * 2 * policy.deadline  # one KMS wrap per purpose
        assert any("missing" in p for p in store.check())
        fault_proxy.set_mode("ok")


_TOKEN_REMOVED_PROBE = r"""
import shutil, sys, time
from pathlib import Path
from styku_crypto.envelope import Envelope
from styku_crypto.keys import KeyStore, LocalRootKey, Pkcs11RootKey, RetryPolicy, SQLiteBackend

module, label, pin, tokens, tmp = sys.argv[1:6]
policy = RetryPolicy(attempts=2, base_delay=0.01, deadline=2.0, timeout=1.0)
Pkcs11RootKey.create_key(module=module, token_label=label, pin=pin, key_label="k")
hsm = Pkcs11RootKey(module=module, token_label=label, pin=pin, key_label="k", retry=policy)
backend = SQLiteBackend(Path(tmp) / "k.db")
backend.initialize()
store = KeyStore(backend, root=[hsm, LocalRootKey(Path(tmp) / "local.rootkey")], cache_ttl=0)
store.create_tenant("acme")
env = Envelope(store)
token = env.encrypt(b"payload", tenant="acme", context={"id": "1"})
assert env.decrypt(token, tenant="acme", context={"id": "1"}) == b"payload"  # HSM session pooled
shutil.rmtree(tokens)  # the token disappears mid-run
for _ in range(3):
    t0 = time.monotonic()
    assert env.decrypt(token, tenant="acme", context={"id": "1"}) == b"payload"
    assert time.monotonic() - t0 < 2 * policy.deadline, time.monotonic() - t0
t0 = time.monotonic()
store.rotate("acme")  # quorum 1: the HSM wrap is missing, the write proceeds
assert time.monotonic() - t0 < 2 * 2 * policy.deadline
assert any("missing" in p for p in store.check())
store.close()
print("ok")
"""


def test_softhsm_token_removed_mid_run_fails_over(tmp_path: Path) -> None:
    """Issue 21: the SoftHSM2 token directory vanishes mid-run; decrypt and rotate go on, bounded.

    Runs in a fresh interpreter with its own token directory (SoftHSM2 reads its
    configuration once per process).
    """
    import os
    import subprocess
    import sys

    from tests._support.softhsm import _UTIL, SOFTHSM_MODULE

    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n",
        encoding="utf-8",
    )
    label, pin = f"rm-{secrets.token_hex(3)}", secrets.token_hex(8)
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    subprocess.run(
        [_UTIL, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", pin],
        check=True,
        capture_output=True,
        env=env,
        timeout=60,
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _TOKEN_REMOVED_PROBE,
            SOFTHSM_MODULE,
            label,
            pin,
            str(tokens),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok"

"""The PKCS#11 root-key provider against a real SoftHSM2 token."""

from __future__ import annotations

import os
import pickle
import secrets
import threading

import pkcs11
import pytest

from styku_crypto.exceptions import DecryptionError, KeyStoreError, RootKeyUnavailableError
from styku_crypto.keys import Pkcs11RootKey, RetryPolicy
from tests._support import leaks
from tests._support.softhsm import SoftHSMToken

FAST = RetryPolicy(attempts=2, base_delay=0.01, deadline=2.0, timeout=2.0)


@pytest.fixture
def hsm_root(softhsm_token: SoftHSMToken) -> Pkcs11RootKey:
    """A fresh root key in the session token, and a provider for it."""
    leaks.register_secret(softhsm_token.pin)
    label = f"t-{secrets.token_hex(6)}"
    Pkcs11RootKey.create_key(
        module=softhsm_token.module,
        token_label=softhsm_token.label,
        pin=softhsm_token.pin,
        key_label=label,
    )
    provider = Pkcs11RootKey(
        module=softhsm_token.module,
        token_label=softhsm_token.label,
        pin=softhsm_token.pin,
        key_label=label,
        retry=FAST,
    )
    yield provider
    provider.close()


def _key() -> bytes:
    key = os.urandom(32)
    leaks.register_secret(key)
    return key


def test_root_key_is_non_extractable_and_sensitive(
    hsm_root: Pkcs11RootKey, softhsm_token: SoftHSMToken
) -> None:
    """The generated root key is an AES-256 token object marked sensitive and non-extractable."""
    hsm_root.check()
    lib = pkcs11.lib(softhsm_token.module)
    token = lib.get_token(token_label=softhsm_token.label)
    # The provider's anchor session holds the login; this session shares it.
    with token.open() as session:
        key = session.get_key(label=hsm_root.provider_id.split("/", 1)[1])
        assert key[pkcs11.Attribute.EXTRACTABLE] is False
        assert key[pkcs11.Attribute.SENSITIVE] is True
        assert key[pkcs11.Attribute.VALUE_LEN] == 32
        with pytest.raises(pkcs11.exceptions.PKCS11Error):
            key[pkcs11.Attribute.VALUE]


def test_wrap_unwrap_roundtrip_inside_token(hsm_root: Pkcs11RootKey) -> None:
    """A wrap made inside the HSM unwraps to the same key with the same AAD; format versioned."""
    key = _key()
    wrapped = hsm_root.wrap(key, aad=b"tenant=acme")
    assert wrapped[0] == 0x01
    assert len(wrapped) == 1 + 12 + 32 + 16
    assert key not in wrapped
    assert hsm_root.unwrap(wrapped, aad=b"tenant=acme") == key
    assert hsm_root.wrap(key, aad=b"x") != hsm_root.wrap(key, aad=b"x")


@pytest.mark.parametrize("where", [0, 1, 13, 40, -1])
def test_tampered_wrap_is_decryption_error(hsm_root: Pkcs11RootKey, where: int) -> None:
    """Any flipped byte (version, nonce, ciphertext, tag) is an integrity failure."""
    wrapped = bytearray(hsm_root.wrap(_key(), aad=b"a"))
    wrapped[where] ^= 0x01
    with pytest.raises(DecryptionError):
        hsm_root.unwrap(bytes(wrapped), aad=b"a")


def test_wrong_aad_and_truncation_are_decryption_errors(hsm_root: Pkcs11RootKey) -> None:
    """A different AAD or a truncated wrap fails authentication inside the token."""
    wrapped = hsm_root.wrap(_key(), aad=b"tenant=acme")
    with pytest.raises(DecryptionError):
        hsm_root.unwrap(wrapped, aad=b"tenant=evil")
    with pytest.raises(DecryptionError):
        hsm_root.unwrap(wrapped[:20], aad=b"tenant=acme")


def test_other_root_key_cannot_unwrap(hsm_root: Pkcs11RootKey, softhsm_token: SoftHSMToken) -> None:
    """A wrap under one token key does not unwrap under another key of the same token."""
    other_label = f"o-{secrets.token_hex(4)}"
    Pkcs11RootKey.create_key(
        module=softhsm_token.module,
        token_label=softhsm_token.label,
        pin=softhsm_token.pin,
        key_label=other_label,
    )
    with (
        Pkcs11RootKey(
            module=softhsm_token.module,
            token_label=softhsm_token.label,
            pin=softhsm_token.pin,
            key_label=other_label,
        ) as other,
        pytest.raises(DecryptionError),
    ):
        other.unwrap(hsm_root.wrap(_key(), aad=b""), aad=b"")


def test_create_key_refuses_duplicate_label(
    hsm_root: Pkcs11RootKey, softhsm_token: SoftHSMToken
) -> None:
    """Creating a root key under an existing label is refused (never silently replaced)."""
    label = hsm_root.provider_id.split("/", 1)[1]
    with pytest.raises(KeyStoreError, match="already exists"):
        Pkcs11RootKey.create_key(
            module=softhsm_token.module,
            token_label=softhsm_token.label,
            pin=softhsm_token.pin,
            key_label=label,
        )


def test_extractable_key_refused_by_check(softhsm_token: SoftHSMToken) -> None:
    """check() refuses a root key that is extractable (someone made it outside this library)."""
    lib = pkcs11.lib(softhsm_token.module)
    token = lib.get_token(token_label=softhsm_token.label)
    label = f"weak-{secrets.token_hex(4)}"
    provider = Pkcs11RootKey(
        module=softhsm_token.module,
        token_label=softhsm_token.label,
        pin=softhsm_token.pin,
        key_label=label,
    )
    try:
        with pytest.raises((KeyStoreError, RootKeyUnavailableError)):
            provider.check()  # no such key yet
        with token.open(rw=True) as session:
            session.generate_key(
                pkcs11.KeyType.AES,
                256,
                label=label,
                store=True,
                template={pkcs11.Attribute.EXTRACTABLE: True, pkcs11.Attribute.SENSITIVE: False},
            )
        with pytest.raises(KeyStoreError, match="extractable"):
            provider.check()
    finally:
        provider.close()


def test_unreachable_token_is_unavailable_without_secrets(softhsm_token: SoftHSMToken) -> None:
    """A missing token or module is RootKeyUnavailableError; the message names it, never the PIN."""
    pin = "pin-" + secrets.token_hex(8)
    leaks.register_secret(pin)
    for module, label in ((softhsm_token.module, "no-such-token"), ("/nonexistent.so", "x")):
        provider = Pkcs11RootKey(module=module, token_label=label, pin=pin, retry=FAST)
        with pytest.raises(RootKeyUnavailableError) as err:
            provider.wrap(b"k" * 32, aad=b"")
        leaks.assert_no_secret_in("pkcs11 error", str(err.value))
        assert label in str(err.value)
        provider.close()


def test_closed_provider_refuses(hsm_root: Pkcs11RootKey) -> None:
    """After close() the provider raises RootKeyUnavailableError instead of touching the token."""
    hsm_root.close()
    with pytest.raises(RootKeyUnavailableError):
        hsm_root.wrap(b"k" * 32, aad=b"")
    hsm_root.close()


def test_session_pool_is_thread_safe(hsm_root: Pkcs11RootKey) -> None:
    """Eight threads wrapping and unwrapping concurrently all succeed (serialised per module)."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(25):
                key = os.urandom(32)
                aad = f"t{i}".encode()
                assert hsm_root.unwrap(hsm_root.wrap(key, aad=aad), aad=aad) == key
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def test_two_providers_share_the_login(
    hsm_root: Pkcs11RootKey, softhsm_token: SoftHSMToken
) -> None:
    """Closing one provider on a token does not log the other out (login is reference-counted)."""
    label = hsm_root.provider_id.split("/", 1)[1]
    wrapped = hsm_root.wrap(b"k" * 32, aad=b"")
    second = Pkcs11RootKey(
        module=softhsm_token.module,
        token_label=softhsm_token.label,
        pin=softhsm_token.pin,
        key_label=label,
    )
    assert second.unwrap(wrapped, aad=b"") == b"k" * 32
    second.close()
    assert hsm_root.unwrap(wrapped, aad=b"") == b"k" * 32


def test_repr_and_pickle(hsm_root: Pkcs11RootKey, softhsm_token: SoftHSMToken) -> None:
    """repr names token and key labels only; the provider cannot be pickled."""
    text = repr(hsm_root)
    assert softhsm_token.label in text
    leaks.assert_no_secret_in("pkcs11 repr", text)
    with pytest.raises(TypeError):
        pickle.dumps(hsm_root)


def test_lost_sessions_are_replaced(hsm_root: Pkcs11RootKey) -> None:
    """Pooled sessions closed behind the provider's back: the next call retries on a new one."""
    key = _key()
    wrapped = hsm_root.wrap(key, aad=b"a")
    pooled = list(hsm_root._idle.queue)
    assert pooled
    for session, _ in pooled:
        session.close()
    assert hsm_root.unwrap(wrapped, aad=b"a") == key
    assert hsm_root.wrap(key, aad=b"b")


# Runs in a fresh interpreter: SoftHSM2 sees only the tokens that existed at its
# C_Initialize, and "wrong PIN first" needs a process with no login on the token yet.
_PIN_PROBE = r"""
import secrets, sys, threading, time
from styku_crypto.exceptions import RootKeyUnavailableError
from styku_crypto.keys import Pkcs11RootKey, RetryPolicy
from styku_crypto.keys._pkcs11 import _Login

module, label, pin, order = sys.argv[1:5]
FAST = RetryPolicy(attempts=2, base_delay=0.01, deadline=2.0, timeout=2.0)
key_label = "k-" + order
wrong_pin = "0" * 8


def make(p):
    return Pkcs11RootKey(module=module, token_label=label, pin=p, key_label=key_label, retry=FAST)


def refused(provider, call):
    t0 = time.monotonic()
    try:
        call(provider)
    except RootKeyUnavailableError as exc:
        assert "PIN" in str(exc) and pin not in str(exc) and wrong_pin not in str(exc), str(exc)
        assert time.monotonic() - t0 < 2 * FAST.deadline
        return
    raise AssertionError("a wrong PIN was accepted")


key = secrets.token_bytes(32)
if order == "wrong-first":
    wrong = make(wrong_pin)
    refused(wrong, lambda p: p.wrap(key, aad=b"a"))
    Pkcs11RootKey.create_key(module=module, token_label=label, pin=pin, key_label=key_label)
    right = make(pin)
elif order == "right-first":
    Pkcs11RootKey.create_key(module=module, token_label=label, pin=pin, key_label=key_label)
    right = make(pin)
    right.wrap(key, aad=b"a")
    wrong = make(wrong_pin)
else:  # "threads": eight threads on a wrong-PIN provider make one C_Login in total
    wrong = make(wrong_pin)
    threads = [threading.Thread(target=refused, args=(wrong, lambda p: p.wrap(key, aad=b"")))
               for _ in range(8)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert _Login._registry[(module, label)].attempts == 1
    print("ok")
    sys.exit(0)

wrapped = right.wrap(key, aad=b"a")
login = right._login
attempts = login.attempts
for _ in range(5):
    refused(wrong, lambda p: p.unwrap(wrapped, aad=b"a"))
    refused(wrong, lambda p: p.wrap(key, aad=b"a"))
assert login.attempts == attempts, (login.attempts, attempts)  # no C_Login per call
assert right.unwrap(wrapped, aad=b"a") == key
wrong.close()
assert right.unwrap(wrapped, aad=b"a") == key
again = make("1234")
refused(again, lambda p: p.unwrap(wrapped, aad=b"a"))
assert login.attempts == attempts
again.close()
right.close()
print("ok")
"""


@pytest.mark.parametrize("order", ["right-first", "wrong-first", "threads"])
def test_each_provider_authenticates_with_its_own_pin(order: str) -> None:
    """Issue 21 item 4: a wrong PIN fails only its provider, once; the right one always works.

    Real SoftHSM2, both creation orders in one process: the wrong-PIN provider
    never rides on the right one's login (refused at once, no ``C_Login`` per
    call), a wrong-PIN provider created first never poisons the right one, and
    eight threads on a wrong-PIN provider spend one login attempt in total.
    """
    import subprocess
    import sys

    from tests._support.softhsm import init_token

    token = init_token()
    leaks.register_secret(token.pin)
    env = dict(os.environ, SOFTHSM2_CONF=str(token.conf))
    proc = subprocess.run(
        [sys.executable, "-c", _PIN_PROBE, token.module, token.label, token.pin, order],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok"
    leaks.assert_no_secret_in("pin probe output", proc.stdout + proc.stderr)


def test_hung_token_call_is_cut_at_the_deadline(
    hsm_root: Pkcs11RootKey, softhsm_token: SoftHSMToken
) -> None:
    """Issue 21 item 2: a C call that hangs (holding the module) ends the call at its deadline.

    A hung ``C_Decrypt`` holds the process-wide module lock; another thread holds
    that lock here for 8 s. With a 5 s per-attempt timeout and a 1 s deadline
    the call gives up within 2x the deadline (before: one full 5 s attempt).
    """
    import time

    from styku_crypto.keys._pkcs11 import _module_lock

    key = _key()
    wrapped = hsm_root.wrap(key, aad=b"a")
    policy = RetryPolicy(attempts=3, base_delay=0.01, deadline=1.0, timeout=5.0)
    provider = Pkcs11RootKey(
        module=softhsm_token.module,
        token_label=softhsm_token.label,
        pin=softhsm_token.pin,
        key_label=hsm_root.provider_id.split("/", 1)[1],
        retry=policy,
    )
    held = threading.Event()
    release = threading.Event()

    def hang() -> None:
        with _module_lock(softhsm_token.module):
            held.set()
            release.wait(8)

    hanger = threading.Thread(target=hang)
    hanger.start()
    held.wait(5)
    try:
        t0 = time.monotonic()
        with pytest.raises(RootKeyUnavailableError):
            provider.unwrap(wrapped, aad=b"a")
        assert time.monotonic() - t0 < 2 * policy.deadline
    finally:
        release.set()
        hanger.join(10)
    assert provider.unwrap(wrapped, aad=b"a") == key
    provider.close()

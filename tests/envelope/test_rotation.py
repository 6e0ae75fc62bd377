"""Rotation, needs_rewrap, rewrap (header only) and bulk rewrap with progress."""

from __future__ import annotations

import pytest

from styku_crypto.envelope import DataClass, Envelope, RewrapProgress
from styku_crypto.exceptions import DecryptionError, KeyDestroyedError
from styku_crypto.keys import KeyStore

CTX = {"table": "scans", "id": "7"}


@pytest.mark.parametrize("data_class", list(DataClass))
def test_rewrap_touches_only_the_header(keystore: KeyStore, data_class: DataClass) -> None:
    """rewrap moves every layer to the primary version and leaves payload bytes identical."""
    env = Envelope(keystore)
    token = env.encrypt(b"old record", tenant="acme", context=CTX, data_class=data_class)
    assert not env.needs_rewrap(token, tenant="acme")
    assert env.rewrap(token, tenant="acme") is token
    keystore.rotate("acme")
    assert env.needs_rewrap(token, tenant="acme")
    assert env.decrypt(token, tenant="acme", context=CTX) == b"old record"
    new = env.rewrap(token, tenant="acme")
    hlen = 4 + 85 * len(data_class.purposes)
    assert len(new) == len(token)
    assert new[hlen:] == token[hlen:]
    assert new[:hlen] != token[:hlen]
    assert not env.needs_rewrap(new, tenant="acme")
    assert env.decrypt(new, tenant="acme", context=CTX) == b"old record"
    for i in range(len(data_class.purposes)):
        assert int.from_bytes(new[5 + 85 * i : 9 + 85 * i], "big") == 2


def test_rewrap_in_place_and_text(env: Envelope, keystore: KeyStore) -> None:
    """A bytearray is rewrapped in place; a text token gives a text token."""
    token = env.encrypt(b"in place", tenant="acme", context=CTX)
    text = env.encrypt_text(b"as text", tenant="acme", context=CTX)
    keystore.rotate("acme")
    buf = bytearray(token)
    assert env.rewrap(buf, tenant="acme") is buf
    assert env.decrypt(bytes(buf), tenant="acme", context=CTX) == b"in place"
    new_text = env.rewrap(text, tenant="acme")
    assert isinstance(new_text, str)
    assert not env.needs_rewrap(new_text, tenant="acme")
    assert env.decrypt_text(new_text, tenant="acme", context=CTX) == b"as text"


def test_rewrap_partial_rotation(env: Envelope, keystore: KeyStore) -> None:
    """Rotating only the sensitive hierarchy rewraps only the inner layer."""
    token = env.encrypt(b"s", tenant="acme", context=CTX, data_class=DataClass.SENSITIVE)
    keystore.rotate("acme", purpose="sensitive")
    new = env.rewrap(token, tenant="acme")
    assert new[:89] == token[:89]
    assert new[89:174] != token[89:174]
    assert env.decrypt(new, tenant="acme", context=CTX) == b"s"


def test_rewrap_rejects_tampered_header(env: Envelope, keystore: KeyStore) -> None:
    """rewrap authenticates the header: a flipped wrap or commitment bit raises DecryptionError."""
    token = env.encrypt(b"x", tenant="acme", context=CTX)
    keystore.rotate("acme")
    for pos in (10, 50, 88):
        bad = bytearray(token)
        bad[pos] ^= 0x01
        with pytest.raises(DecryptionError):
            env.rewrap(bytes(bad), tenant="acme")
    with pytest.raises(DecryptionError):
        env.rewrap(token, tenant="beta")


def test_rewrap_does_not_launder_a_tampered_payload(env: Envelope, keystore: KeyStore) -> None:
    """A payload tampered before rewrap still fails decryption after rewrap."""
    token = bytearray(env.encrypt(b"payload", tenant="acme", context=CTX))
    token[-3] ^= 0x80
    keystore.rotate("acme")
    new = env.rewrap(bytes(token), tenant="acme")
    with pytest.raises(DecryptionError):
        env.decrypt(new, tenant="acme", context=CTX)


def test_rewrap_many_reports_progress(env: Envelope, keystore: KeyStore) -> None:
    """rewrap_many yields in order, rewraps only old tokens and reports progress."""
    old = [env.encrypt(bytes([i]) * 9, tenant="acme", context=CTX) for i in range(5)]
    keystore.rotate("acme")
    current = [env.encrypt(b"new" * 3, tenant="acme", context=CTX) for _ in range(2)]
    seen: list[RewrapProgress] = []
    out = list(
        env.rewrap_many(old + current, tenant="acme", progress=seen.append, progress_every=3)
    )
    assert [env.decrypt(t, tenant="acme", context=CTX) for t in out[:5]] == [
        bytes([i]) * 9 for i in range(5)
    ]
    assert out[5:] == current
    assert seen[-1] == RewrapProgress(done=7, rewrapped=5, current=2)
    assert [p.done for p in seen] == [3, 6, 7]
    assert not any(env.needs_rewrap(t, tenant="acme") for t in out)


def test_shredded_tenant(env: Envelope, keystore: KeyStore) -> None:
    """After shred every token of the tenant raises KeyDestroyedError, distinct from tampering."""
    c = env.encrypt(b"gone", tenant="acme", context=CTX)
    s = env.encrypt(b"gone too", tenant="acme", context=CTX, data_class=DataClass.SENSITIVE)
    other = env.encrypt(b"stays", tenant="beta", context=CTX)
    keystore.shred("acme")
    for token in (c, s):
        with pytest.raises(KeyDestroyedError):
            env.decrypt(token, tenant="acme", context=CTX)
        with pytest.raises(KeyDestroyedError):
            env.rewrap(token, tenant="acme")
    with pytest.raises(KeyDestroyedError):
        env.encrypt(b"new", tenant="acme", context=CTX)
    assert env.decrypt(other, tenant="beta", context=CTX) == b"stays"
    assert not issubclass(KeyDestroyedError, DecryptionError)


def test_rewrap_cached_key_tokens(keystore: KeyStore) -> None:
    """Suite-3 (cached data key) tokens rewrap header-only, keep their nonces and decrypt."""
    from styku_crypto.envelope import DataKeyCache

    cached = Envelope(keystore, data_key_cache=DataKeyCache())
    env = Envelope(keystore)
    tokens = [
        cached.encrypt(b"cached", tenant="acme", context=CTX, data_class=dc) for dc in DataClass
    ]
    keystore.rotate("acme")
    for token in tokens:
        new = env.rewrap(token, tenant="acme")
        hlen = 4 + 85 * (token[3])
        assert new[hlen:] == token[hlen:]
        assert env.decrypt(new, tenant="acme", context=CTX) == b"cached"
        bad = bytearray(token)
        bad[hlen - 1] ^= 1  # last byte of the (last) wrapped data key
        with pytest.raises(DecryptionError):
            env.rewrap(bytes(bad), tenant="acme")

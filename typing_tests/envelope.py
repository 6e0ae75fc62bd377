"""Typed usage of styku_crypto.envelope and styku_crypto.keys (``mypy --strict``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from styku_crypto.envelope import DataClass, DataKeyCache, Envelope, RewrapProgress
from styku_crypto.exceptions import DecryptionError, KeyDestroyedError, UnsupportedFormatError
from styku_crypto.keys import (
    PURPOSES,
    KeyInfo,
    KeyStore,
    LocalRootKey,
    RootKeyProvider,
    SQLiteBackend,
    TenantInfo,
)


def lifecycle(path: Path) -> bytes:
    """The issue's public contract, fully typed."""
    store: KeyStore = KeyStore.open(path)
    info: TenantInfo = store.create_tenant("acme")
    first: KeyInfo = info.keys[0]
    assert first.purpose in PURPOSES
    env = Envelope(store)
    ctx = {"table": "scans", "id": "42"}
    token: bytes = env.encrypt(b"...", tenant="acme", context=ctx)
    plain: bytes = env.decrypt(token, tenant="acme", context=ctx)
    sensitive: bytes = env.encrypt(
        b"...", tenant="acme", context=ctx, data_class=DataClass.SENSITIVE
    )
    text: str = env.encrypt_text(b"...", tenant="acme", context=ctx)
    again: bytes = env.decrypt_text(text, tenant="acme", context=ctx)
    store.rotate("acme")
    needs: bool = env.needs_rewrap(token, tenant="acme")
    new_token: bytes = env.rewrap(token, tenant="acme")
    in_place: bytearray = env.rewrap(bytearray(sensitive), tenant="acme")
    new_text: str = env.rewrap(text, tenant="acme")

    def report(p: RewrapProgress) -> None:
        print(p.done, p.rewrapped, p.current)

    many: Iterator[bytes] = env.rewrap_many([token], tenant="acme", progress=report)
    buf = bytearray(env.ciphertext_length(3))
    written: int = env.encrypt_into(b"abc", buf, tenant="acme", context=ctx)
    plain_buf = bytearray(env.plaintext_length(bytes(buf)))
    read: int = env.decrypt_into(bytes(buf), plain_buf, tenant="acme", context=ctx)
    problems: list[str] = store.check()
    store.reseal()
    store.shred("acme")
    store.finish_shred("acme")
    try:
        env.decrypt(new_token, tenant="acme", context=ctx)
    except KeyDestroyedError:
        pass
    except (DecryptionError, UnsupportedFormatError):
        raise
    store.close()
    _ = (needs, in_place, new_text, list(many), written, read, again, problems)
    return plain


def custom_store(tmp: Path) -> KeyStore:
    """A store built from explicit parts, with a data-key cache."""
    root: RootKeyProvider = LocalRootKey(tmp / "root.key")
    backend = SQLiteBackend(tmp / "k.db")
    backend.initialize()
    store = KeyStore(backend, root=[root], cache_ttl=60.0, cache_size=128)
    Envelope(store, data_key_cache=DataKeyCache(max_age=30.0, max_messages=10_000))
    return store

"""Opening and sealing envelope layers: shared by one-shot tokens, streams and records.

The layer helpers (:func:`fresh_layers`, :func:`open_layers`) build and check the
token header of ``docs/format.md`` against a key store; :func:`seal` and
:func:`seal_in_one_allocation` produce exactly the bytes of the general path
(``tests/envelope/test_fast_paths.py`` proves it with hypothesis). Nothing here
imports :class:`~styku_crypto.envelope.Envelope`: the envelope and the streams both
build on this module.
"""

from __future__ import annotations

import hmac
import io
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn, TypeAlias

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from styku_crypto.envelope._format import (
    PURPOSE_CODES,
    PURPOSE_NAMES,
    SUITE_CACHED,
    DataClass,
    Header,
    build_layer,
    commitment,
    context_commitment,
    lp,
    prefix,
    wrap_aad,
)
from styku_crypto.exceptions import (
    DecryptionError,
    InvalidInputError,
    InvalidInputTypeError,
    KeyNotFoundError,
)
from styku_crypto.keys._store import check_tenant

if TYPE_CHECKING:
    from styku_crypto.keys import KeyStore
    from styku_crypto.keys._material import TenantKey

__all__ = [
    "ONE_ALLOCATION_FROM",
    "check_data_class",
    "encode_tenant",
    "fresh_layers",
    "no_such_version",
    "open_layers",
    "seal",
    "seal_in_one_allocation",
]

Buffer: TypeAlias = bytes | bytearray | memoryview

#: From this payload size on, :func:`seal` builds the token in one allocation. It is
#: glibc's default mmap threshold: below it, concatenating is cheaper than the setup.
ONE_ALLOCATION_FROM = 128 << 10
_TAG_LEN = 16


def seal(aead: AESGCM, nonce: bytes, head: bytes, data: Buffer, aad: bytes) -> bytes:
    """``head + aead.encrypt(nonce, data, aad)``: a token from its header and payload."""
    if len(data) < ONE_ALLOCATION_FROM:
        return head + aead.encrypt(nonce, data, aad)
    return seal_in_one_allocation(aead, nonce, head, data, aad)


def seal_in_one_allocation(
    aead: AESGCM, nonce: bytes, head: bytes, data: Buffer, aad: bytes
) -> bytes:
    """``head + aead.encrypt(nonce, data, aad)``, built in one allocation with no copy.

    Why this exists: concatenating allocates the token while the ciphertext is still
    alive. From glibc's mmap threshold (128 KiB) on, two live buffers of the payload's
    size make the allocator hand the memory back to the kernel once both are freed,
    so every call page-faults fresh memory, and ``encrypt`` ran at about 1 GB/s from
    256 KiB on while raw AES-GCM ran several times faster (issue 15). ``io.BytesIO``
    lets AES-GCM write straight into what becomes the token (``getbuffer``), and
    ``getvalue`` hands that exactly-sized, unshared buffer out as ``bytes`` without
    copying it (CPython; elsewhere it copies once, which is still correct).
    """
    size = memoryview(data).nbytes
    head_len = len(head)
    need = head_len + size + _TAG_LEN
    out = io.BytesIO()
    out.seek(need - 1)
    out.write(b"\x00")  # sizes the buffer once
    with out.getbuffer() as view:
        view[:head_len] = head
        with view[head_len:] as body:
            aead.encrypt_into(nonce, data, aad, body)
    return out.getvalue()


def encode_tenant(tenant: object) -> bytes:
    """``lp(tenant)`` of a valid tenant name (bound into every wrap and payload AAD).

    Raises:
        InvalidInputTypeError: not a str.
        InvalidInputError: not a valid tenant name (e.g. ``-bad``).
    """
    if not isinstance(tenant, str):
        raise InvalidInputTypeError("tenant must be a str")
    check_tenant(tenant)
    return lp(tenant.encode("ascii"))


def check_data_class(data_class: object) -> DataClass:
    """*data_class* itself, if it is ``DataClass.CUSTOMER`` or ``DataClass.SENSITIVE``.

    Raises:
        InvalidInputError: anything else.
    """
    if data_class is DataClass.CUSTOMER or data_class is DataClass.SENSITIVE:
        return data_class
    raise InvalidInputError("data_class must be DataClass.CUSTOMER or DataClass.SENSITIVE")


def fresh_layers(
    store: KeyStore,
    tenant: str,
    tenant_lp: bytes,
    data_class: DataClass,
    suite: int,
    layer_ctx: bytes,
    deks: Sequence[bytes] | None = None,
) -> tuple[bytes, bytes, list[bytes], list[TenantKey]]:
    """Header (prefix + layers), concatenated commitments, the data keys, the tenant keys.

    Draws one fresh data key per layer (or takes *deks*: tests and golden vectors),
    commits to it and wraps it under the tenant's primary key of that layer's purpose.
    *layer_ctx*: the encoded context (suites 1 and 2) or ``b""`` (suite 3), as bound by
    each layer's commitment.
    """
    pre = prefix(suite, data_class)
    purposes = data_class.purposes
    keys = [store._tenant_key(tenant, p) for p in purposes]
    if deks is None:
        deks = [os.urandom(32) for _ in purposes]
    elif len(deks) != len(purposes) or any(len(d) != 32 for d in deks):
        raise InvalidInputError("one 32-byte data key per layer")
    commits = [commitment(pre, i, d, tenant_lp, layer_ctx) for i, d in enumerate(deks)]
    parts = [pre]
    for i, (tk, dek, c) in enumerate(zip(keys, deks, commits, strict=True)):
        code = PURPOSE_CODES[purposes[i]]
        wrapped = tk.wrapper.encrypt(dek, [wrap_aad(pre, i, code, tk.version, c, tenant_lp)])
        parts.append(build_layer(code, tk.version, c, wrapped))
    return b"".join(parts), b"".join(commits), list(deks), keys


def no_such_version(store: KeyStore, tenant: str, purpose: str) -> NoReturn:
    """A token names a key version the tenant does not have: refuse it opaquely.

    Such a token belongs to another tenant (or was forged); reporting the missing
    version would tell the caller which versions another tenant has, so it is a
    :class:`DecryptionError`, like any other token that does not authenticate.
    An unknown tenant, or a tenant without this key hierarchy (a customer-only
    store), is still :class:`KeyNotFoundError`: that is a fact about the store.
    """
    store._tenant_key(tenant, purpose)  # KeyNotFoundError / KeyDestroyedError
    raise DecryptionError()


def open_layers(
    store: KeyStore, header: Header, tenant: str, tenant_lp: bytes, ctx: bytes | None
) -> list[bytes]:
    """Unwrap and check every layer's data key (routes by key version; one attempt each).

    *ctx*: the encoded context, whose commitments are checked (suite 3: the layer
    commitments and the context commitment). ``None`` only for rewrap, which does not
    know the context: the AES-SIV wrap then authenticates the data key together with
    its commitment, and rewrap keeps both unchanged.
    """
    pre = prefix(header.suite, header.data_class)
    layer_ctx = b"" if header.suite == SUITE_CACHED else ctx
    deks = []
    for i, layer in enumerate(header.layers):
        purpose = PURPOSE_NAMES[layer.purpose]
        try:
            tk = store._tenant_key(tenant, purpose, layer.key_version)
        except KeyNotFoundError:
            no_such_version(store, tenant, purpose)
        aad = wrap_aad(pre, i, layer.purpose, layer.key_version, layer.commitment, tenant_lp)
        try:
            dek = tk.wrapper.decrypt(layer.wrapped, [aad])
        except InvalidTag:
            raise DecryptionError() from None
        if layer_ctx is not None and not hmac.compare_digest(
            commitment(pre, i, dek, tenant_lp, layer_ctx), layer.commitment
        ):
            raise DecryptionError()
        deks.append(dek)
    if header.suite == SUITE_CACHED and ctx is not None:
        expected = context_commitment(pre, b"".join(deks), b"".join(header.nonces), tenant_lp, ctx)
        if not hmac.compare_digest(expected, header.context_commitment):
            raise DecryptionError()
    return deks

"""The :class:`Envelope` recipe: layered envelope encryption of records for tenants."""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from hashlib import sha256
from hmac import compare_digest
from typing import TYPE_CHECKING, NamedTuple, NoReturn, TypeAlias, overload

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from styku_crypto.envelope import _events, _stream
from styku_crypto.envelope._cache import DataKeyCache, _Entry
from styku_crypto.envelope._format import (
    CONTEXT_COMMIT_DOMAIN,
    LAYER,
    LAYER_LEN,
    NONCE_LEN,
    PREFIX_LEN,
    PURPOSE_NAMES,
    SHAPES,
    SUITE_CACHED,
    SUITE_ONESHOT,
    SUITE_STREAM,
    TAG_LEN,
    U32,
    WRAP_DOMAIN,
    DataClass,
    Header,
    build_layer,
    check_class,
    context_commitment,
    encode_context,
    from_text,
    parse_header,
    payload_aad,
    prefix,
    to_text,
    wrap_aad,
)
from styku_crypto.envelope._info import TokenInfo, token_info
from styku_crypto.envelope._layers import (
    ONE_ALLOCATION_FROM,
    check_data_class,
    encode_tenant,
    fresh_layers,
    no_such_version,
    open_layers,
    seal,
    seal_in_one_allocation,
)
from styku_crypto.exceptions import (
    DecryptionError,
    InvalidInputError,
    InvalidInputTypeError,
    KeyDestroyedError,
    KeyNotFoundError,
    UnsupportedFormatError,
)

if TYPE_CHECKING:
    from typing import BinaryIO

    from styku_crypto.keys import KeyStore
    from styku_crypto.keys._material import TenantKey

__all__ = ["Envelope", "RewrapProgress"]

Buffer: TypeAlias = bytes | bytearray | memoryview

_LOG = logging.getLogger("styku_crypto.envelope")
_ZERO_NONCE = bytes(NONCE_LEN)
#: Module-level so that tests can inject fixed data keys (test_fast_paths).
_urandom = os.urandom

# The fast paths below handle the three token shapes that carry nearly all traffic.
# Their constant bytes come from format.SHAPES (one table keyed by suite and data
# class); each layer's LayerBytes holds the leading bytes of its wrap AAD, commitment
# input and payload AAD.
_ONESHOT_CUSTOMER = SHAPES[SUITE_ONESHOT, DataClass.CUSTOMER]
_ONESHOT_SENSITIVE = SHAPES[SUITE_ONESHOT, DataClass.SENSITIVE]
_CACHED_CUSTOMER = SHAPES[SUITE_CACHED, DataClass.CUSTOMER]
#: The only layer of a one-shot customer token.
_CUSTOMER_LAYER = _ONESHOT_CUSTOMER.layers[0]
#: The outer (customer key) and inner (sensitive key) layers of a one-shot sensitive token.
_OUTER_LAYER, _INNER_LAYER = _ONESHOT_SENSITIVE.layers
#: The only layer of a cached-data-key customer token.
_CACHED_LAYER = _CACHED_CUSTOMER.layers[0]
_CUSTOMER = DataClass.CUSTOMER
_SENSITIVE = DataClass.SENSITIVE
#: From this token size on, decrypt() reads the payload through a memoryview instead
#: of slicing it out of the token. A slice copies the payload into a fresh allocation,
#: and from glibc's mmap threshold (128 KiB) on that allocation page-faults on every
#: call (decrypt ran at ~1 GB/s from 256 KiB to 1 MiB, issue 15); below 16 KiB the
#: slice is cheaper than building the view.
_VIEW_FROM = 16 << 10
_DEBUG = logging.DEBUG
#: Prefix and layer-0 purpose (5 bytes), key version, commitment, wrapped data key: the
#: 89-byte header of a one-layer token, or the first 89 bytes of any suite 1/3 token.
_HEAD = struct.Struct(">5sI32s48s")
#: Data-key wrap AAD up to the commitment: domain + prefix + index + purpose (one of the
#: _WRAP_* constants, all the same length), key version, commitment. The tenant follows.
_WRAP_HEAD = struct.Struct(f">{len(WRAP_DOMAIN) + PREFIX_LEN + 2}sI32s")
_MAX_TENANT_CACHE = 4096


class RewrapProgress(NamedTuple):
    """Progress of :meth:`Envelope.rewrap_many`: tokens seen, re-wrapped, already current."""

    done: int
    rewrapped: int
    current: int


class Envelope:
    """Layered envelope encryption of records for tenants.

    Every message gets a fresh random 256-bit data key (unless an opt-in
    :class:`DataKeyCache` says otherwise), encrypted with AES-256-GCM; the data
    key is wrapped with AES-256-SIV under the tenant's current key version and
    committed to with SHA-256, so a token decrypts under exactly one key. The
    tenant, the data class and the canonical encryption context are bound as
    associated data: a token presented with another tenant, context or data
    class fails with :class:`~styku_crypto.exceptions.DecryptionError`.

    ``DataClass.SENSITIVE`` adds an inner layer under the tenant's separate
    sensitive key; reading it needs both keys.

    Thread-safe; holds no secret itself (tenant keys are cached by the
    :class:`~styku_crypto.keys.KeyStore`). See ``docs/format.md`` for the
    token layout and the security argument.
    """

    __slots__ = ("_cache", "_store", "_tenants")

    def __init__(self, store: KeyStore, *, data_key_cache: DataKeyCache | None = None) -> None:
        """Encrypt and decrypt with the tenant keys of *store*.

        Args:
            store: the key store holding the tenants' key hierarchies.
            data_key_cache: opt-in data-key reuse (see :class:`DataKeyCache`
                for the trade-offs). ``None`` (default): one fresh data key per message.
        """
        if data_key_cache is not None and not isinstance(data_key_cache, DataKeyCache):
            raise InvalidInputError("data_key_cache must be a DataKeyCache or None")
        self._store = store
        self._cache = data_key_cache
        self._tenants: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"<Envelope store={self._store!r} data_key_cache={self._cache is not None}>"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("Envelope cannot be pickled")

    @property
    def store(self) -> KeyStore:
        """The key store."""
        return self._store

    # -- helpers ------------------------------------------------------------

    def _tenant_lp(self, tenant: str) -> bytes:
        encoded = self._tenants.get(tenant)
        if encoded is None:
            encoded = encode_tenant(tenant)  # InvalidInputError: not a valid tenant name
            if len(self._tenants) >= _MAX_TENANT_CACHE:
                self._tenants.clear()
            self._tenants[tenant] = encoded
        return encoded

    @staticmethod
    def _data_class(data_class: object) -> DataClass:
        return check_data_class(data_class)

    @staticmethod
    def _check_data(data: object, what: str = "data") -> None:
        """Refuse a non-buffer *data* (``str``, ``int``...) with :class:`InvalidInputTypeError`.

        Called only when ``type(data) is not bytes`` (the common case costs one check).
        """
        if isinstance(data, str):
            raise InvalidInputTypeError(f"{what} must be bytes-like, not str (encode it first)")
        try:
            memoryview(data)  # type: ignore[arg-type]
        except TypeError:
            raise InvalidInputTypeError(f"{what} must be a bytes-like object") from None

    @staticmethod
    def _wanted_class(data_class: object) -> DataClass | None:
        """Validate a reader's ``data_class=`` argument (``None``: any class)."""
        if data_class is None or data_class is _CUSTOMER or data_class is _SENSITIVE:
            return data_class
        raise InvalidInputError("data_class must be a DataClass or None")

    def _fresh_layers(
        self,
        tenant: str,
        tenant_lp: bytes,
        data_class: DataClass,
        suite: int,
        layer_ctx: bytes,
        deks: Sequence[bytes] | None = None,
    ) -> tuple[bytes, bytes, list[bytes], list[TenantKey]]:
        """:func:`~styku_crypto.envelope._layers.fresh_layers` with this envelope's store."""
        return fresh_layers(self._store, tenant, tenant_lp, data_class, suite, layer_ctx, deks)

    def _no_such_version(self, tenant: str, purpose: str) -> NoReturn:
        """:func:`~styku_crypto.envelope._layers.no_such_version` with this store."""
        no_such_version(self._store, tenant, purpose)

    def _open_layers(
        self, header: Header, tenant: str, tenant_lp: bytes, ctx: bytes | None
    ) -> list[bytes]:
        """:func:`~styku_crypto.envelope._layers.open_layers` with this envelope's store."""
        return open_layers(self._store, header, tenant, tenant_lp, ctx)

    @staticmethod
    def _failed(exc: BaseException, tenant: object) -> None:
        _events.failed(exc, tenant)

    @staticmethod
    def _encrypted(tenant: str, data_class: DataClass, suite: int, version: int) -> None:
        _events.encrypted(tenant, data_class, suite, version)

    # -- encryption ---------------------------------------------------------

    def encrypt(
        self,
        data: Buffer,
        *,
        tenant: str,
        context: Mapping[str, str],
        data_class: DataClass = DataClass.CUSTOMER,
    ) -> bytes:
        """Encrypt *data* for *tenant*, bound to *context*.

        Args:
            data: the plaintext (any bytes-like object).
            tenant: the tenant whose keys protect the record.
            context: the encryption context, e.g. ``{"table": "scans", "id": "42"}``;
                required, and the very same mapping must be given to decrypt.
            data_class: ``CUSTOMER`` (one layer) or ``SENSITIVE`` (two layers).

        Returns:
            The binary token (version 1). Customer tokens are 105 bytes longer
            than *data*, sensitive ones 206 (with a data-key cache: 149 and 262).

        Raises:
            KeyNotFoundError: unknown tenant.
            KeyDestroyedError: the tenant was shredded.
            InvalidInputError: malformed tenant, context or data class.
            RootKeyUnavailableError: the tenant key is not cached and no root is reachable.
        """
        if type(data) is not bytes:
            self._check_data(data)
        ctx = encode_context(context)
        tenant_lp = self._tenants.get(tenant) or self._tenant_lp(tenant)
        cache = self._cache
        if cache is not None and data_class is _CUSTOMER:
            # Data-key cache hit, inlined (the common case with a cache).
            store = self._store
            entry = cache._take((tenant, _CUSTOMER, store), store._generation, len(data))
            if entry is None:
                return self._encrypt_cached(cache, data, tenant, tenant_lp, ctx, _CUSTOMER)
            nonce = _urandom(NONCE_LEN)
            committed = entry.commit_head.copy()
            committed.update(nonce + tenant_lp + ctx)
            token = seal(
                entry.aeads[0],
                nonce,
                entry.header + nonce + committed.digest(),
                data,
                entry.aad_heads[0] + ctx,
            )
            if _LOG.isEnabledFor(_DEBUG):
                self._encrypted(tenant, _CUSTOMER, SUITE_CACHED, entry.versions[0])
            return token
        if cache is None and data_class is _CUSTOMER:
            tk = self._store._tenant_key(tenant, "customer")
            v = tk.version
            dek = _urandom(32)
            c = sha256(_CUSTOMER_LAYER.commitment + dek + tenant_lp + ctx).digest()
            wrapped = tk.wrapper.encrypt(
                dek, [_WRAP_HEAD.pack(_CUSTOMER_LAYER.wrap_aad, v, c) + tenant_lp]
            )
            head = _HEAD.pack(_ONESHOT_CUSTOMER.lead, v, c, wrapped)
            aad = _CUSTOMER_LAYER.payload_aad + c + tenant_lp + ctx
            if len(data) < ONE_ALLOCATION_FROM:
                token = head + AESGCM(dek).encrypt(_ZERO_NONCE, data, aad)
            else:
                token = seal_in_one_allocation(AESGCM(dek), _ZERO_NONCE, head, data, aad)
            if _LOG.isEnabledFor(_DEBUG):
                self._encrypted(tenant, _CUSTOMER, SUITE_ONESHOT, v)
            return token
        dc = self._data_class(data_class)
        if cache is not None:
            return self._encrypt_cached(cache, data, tenant, tenant_lp, ctx, dc)
        return self._encrypt_sensitive(data, tenant, tenant_lp, ctx)

    def _encrypt_sensitive(self, data: Buffer, tenant: str, tenant_lp: bytes, ctx: bytes) -> bytes:
        store = self._store
        tko = store._tenant_key(tenant, "customer")
        tki = store._tenant_key(tenant, "sensitive")
        vo, vi = tko.version, tki.version
        seed = _urandom(64)
        outer_dek, inner_dek = seed[:32], seed[32:]
        bound = tenant_lp + ctx  # what both commitments and payload AADs end with
        co = sha256(_OUTER_LAYER.commitment + outer_dek + bound).digest()
        ci = sha256(_INNER_LAYER.commitment + inner_dek + bound).digest()
        wo = tko.wrapper.encrypt(
            outer_dek, [_WRAP_HEAD.pack(_OUTER_LAYER.wrap_aad, vo, co) + tenant_lp]
        )
        wi = tki.wrapper.encrypt(
            inner_dek, [_WRAP_HEAD.pack(_INNER_LAYER.wrap_aad, vi, ci) + tenant_lp]
        )
        tail = co + ci + bound  # commitments, tenant, context: both payload AADs end so
        inner = AESGCM(inner_dek).encrypt(_ZERO_NONCE, data, _INNER_LAYER.payload_aad + tail)
        head = _HEAD.pack(_ONESHOT_SENSITIVE.lead, vo, co, wo) + LAYER.pack(2, vi, ci, wi)
        aad = _OUTER_LAYER.payload_aad + tail
        if len(inner) < ONE_ALLOCATION_FROM:
            token = head + AESGCM(outer_dek).encrypt(_ZERO_NONCE, inner, aad)
        else:
            token = seal_in_one_allocation(AESGCM(outer_dek), _ZERO_NONCE, head, inner, aad)
        if _LOG.isEnabledFor(_DEBUG):
            self._encrypted(tenant, _SENSITIVE, SUITE_ONESHOT, vo)
        return token

    def _encrypt_cached(
        self,
        cache: DataKeyCache,
        data: Buffer,
        tenant: str,
        tenant_lp: bytes,
        ctx: bytes,
        data_class: DataClass,
    ) -> bytes:
        # An entry stays valid while the key store's cache generation is unchanged (no
        # rotation, shred or close) and the store still serves the same primary keys from
        # its cache (the entry's expiry never passes theirs): no tenant-key lookup per hit.
        store = self._store
        size = len(data)
        key = (tenant, data_class, store)
        entry = cache._take(key, store._generation, size)
        if entry is None:
            generation = store._generation
            header, commits, deks, keys = self._fresh_layers(
                tenant, tenant_lp, data_class, SUITE_CACHED, b""
            )
            pre = header[:PREFIX_LEN]
            entry = _Entry(
                versions=tuple(k.version for k in keys),
                generation=generation,
                header=header,
                aeads=tuple(AESGCM(d) for d in deks),
                aad_heads=tuple(
                    payload_aad(pre, i, commits, tenant_lp, b"") for i in range(len(deks))
                ),
                commit_head=sha256(CONTEXT_COMMIT_DOMAIN + pre + b"".join(deks)),
                expires=0.0,
            )
            cache._put(key, entry, size, store._cached_until(keys))
        committed = entry.commit_head.copy()
        if data_class is _CUSTOMER:
            nonce = _urandom(NONCE_LEN)
            committed.update(nonce + tenant_lp + ctx)
            head = entry.header + nonce + committed.digest()
            token = seal(entry.aeads[0], nonce, head, data, entry.aad_heads[0] + ctx)
        else:
            nonces = _urandom(2 * NONCE_LEN)
            committed.update(nonces + tenant_lp + ctx)
            aeads, heads = entry.aeads, entry.aad_heads
            inner = aeads[1].encrypt(nonces[NONCE_LEN:], data, heads[1] + ctx)
            head = entry.header + nonces + committed.digest()
            token = seal(aeads[0], nonces[:NONCE_LEN], head, inner, heads[0] + ctx)
        if _LOG.isEnabledFor(_DEBUG):
            self._encrypted(tenant, data_class, SUITE_CACHED, entry.versions[0])
        return token

    def encrypt_into(
        self,
        data: Buffer,
        out: bytearray | memoryview,
        *,
        tenant: str,
        context: Mapping[str, str],
        data_class: DataClass = DataClass.CUSTOMER,
    ) -> int:
        """Encrypt into a caller-supplied buffer (no extra copy of a large payload).

        *out* must be at least :meth:`ciphertext_length` bytes; the token is
        written at its start and its length returned. Always suite 1 (a fresh
        data key), even when a data-key cache is configured.

        Raises:
            InvalidInputError: *out* is too small; otherwise as :meth:`encrypt`.
        """
        if type(data) is not bytes:
            self._check_data(data)
        ctx = encode_context(context)
        tenant_lp = self._tenant_lp(tenant)
        dc = self._data_class(data_class)
        need = self.ciphertext_length(len(data), data_class=dc)
        view = memoryview(out)
        if view.readonly or view.nbytes < need:
            raise InvalidInputError(f"out must be a writable buffer of at least {need} bytes")
        view = view.cast("B")
        header, commits, deks, keys = self._fresh_layers(tenant, tenant_lp, dc, SUITE_ONESHOT, ctx)
        hlen = len(header)
        view[:hlen] = header
        pre = header[:PREFIX_LEN]
        if dc is _CUSTOMER:
            AESGCM(deks[0]).encrypt_into(
                _ZERO_NONCE, data, payload_aad(pre, 0, commits, tenant_lp, ctx), view[hlen:need]
            )
        else:
            inner = AESGCM(deks[1]).encrypt(
                _ZERO_NONCE, data, payload_aad(pre, 1, commits, tenant_lp, ctx)
            )
            AESGCM(deks[0]).encrypt_into(
                _ZERO_NONCE, inner, payload_aad(pre, 0, commits, tenant_lp, ctx), view[hlen:need]
            )
        if _LOG.isEnabledFor(logging.DEBUG):
            self._encrypted(tenant, dc, SUITE_ONESHOT, keys[0].version)
        return need

    @staticmethod
    def ciphertext_length(
        plaintext_length: int, *, data_class: DataClass = DataClass.CUSTOMER
    ) -> int:
        """Length of a one-shot (suite 1) token for *plaintext_length* bytes."""
        layers = len(Envelope._data_class(data_class).purposes)
        return PREFIX_LEN + layers * (LAYER_LEN + TAG_LEN) + plaintext_length

    def encrypt_text(
        self,
        data: Buffer,
        *,
        tenant: str,
        context: Mapping[str, str],
        data_class: DataClass = DataClass.CUSTOMER,
    ) -> str:
        """:meth:`encrypt`, returning the text form (``stk1.`` + unpadded base64url)."""
        return to_text(self.encrypt(data, tenant=tenant, context=context, data_class=data_class))

    # -- decryption ---------------------------------------------------------

    def decrypt(
        self,
        token: Buffer,
        *,
        tenant: str,
        context: Mapping[str, str],
        data_class: DataClass | None = None,
    ) -> bytes:
        """Authenticate and decrypt *token* for *tenant* and *context*.

        Returns the plaintext or raises; never returns partial plaintext.

        Args:
            token: the binary token.
            tenant: the tenant the token was encrypted for.
            context: the very same encryption context as at encryption.
            data_class: the class the caller requires. When given, a token of any
                other class raises :class:`~styku_crypto.exceptions.DecryptionError`
                before any key is used (a reader of SENSITIVE data passes
                ``DataClass.SENSITIVE`` so that a CUSTOMER token written in its place
                by a holder of the customer key alone is refused).

        Raises:
            DecryptionError: tampered or truncated token, wrong tenant, context
                or data class (or not the required *data_class*), a key version the
                tenant does not have, failed key or context commitment (deliberately
                opaque).
            UnsupportedFormatError: unknown format version, suite or data class
                (checked before any key is used).
            KeyNotFoundError: the tenant is unknown, or the store has no keys of a
                layer's purpose (a customer-only store reading SENSITIVE data).
            KeyDestroyedError: the tenant was shredded.
            InvalidInputError: malformed tenant or context.
        """
        if type(token) is not bytes:
            if isinstance(token, str):  # type: ignore[unreachable]  # untyped callers
                raise InvalidInputTypeError("text tokens are decrypted with decrypt_text()")
            self._check_data(token, "token")
        if data_class is not None and data_class is not _CUSTOMER and data_class is not _SENSITIVE:
            raise InvalidInputError("data_class must be a DataClass or None")
        ctx = encode_context(context)
        tenant_lp = self._tenants.get(tenant) or self._tenant_lp(tenant)
        try:
            n = len(token)
            if n < _ONESHOT_CUSTOMER.header_len + TAG_LEN:
                return self._decrypt_general(token, tenant, tenant_lp, ctx, data_class)
            head, v, c, wrapped = _HEAD.unpack_from(token)
            if head == _ONESHOT_CUSTOMER.lead:
                if data_class is _SENSITIVE:
                    raise DecryptionError()
                try:
                    tk = self._store._tenant_key(tenant, "customer", v)
                except KeyNotFoundError:
                    self._no_such_version(tenant, "customer")
                try:
                    dek = tk.wrapper.decrypt(
                        wrapped, [_WRAP_HEAD.pack(_CUSTOMER_LAYER.wrap_aad, v, c) + tenant_lp]
                    )
                    # The data key is used only after its commitment (to the key, the
                    # tenant and this context) matched.
                    if not compare_digest(
                        sha256(_CUSTOMER_LAYER.commitment + dek + tenant_lp + ctx).digest(), c
                    ):
                        raise DecryptionError()
                    body = (
                        memoryview(token)[_ONESHOT_CUSTOMER.header_len :]
                        if n >= _VIEW_FROM
                        else token[_ONESHOT_CUSTOMER.header_len :]
                    )
                    return AESGCM(dek).decrypt(
                        _ZERO_NONCE, body, _CUSTOMER_LAYER.payload_aad + c + tenant_lp + ctx
                    )
                except InvalidTag:
                    raise DecryptionError() from None
            if head == _CACHED_CUSTOMER.lead and n >= _CACHED_CUSTOMER.header_len + TAG_LEN:
                if data_class is _SENSITIVE:
                    raise DecryptionError()
                try:
                    tk = self._store._tenant_key(tenant, "customer", v)
                except KeyNotFoundError:
                    self._no_such_version(tenant, "customer")
                try:
                    dek = tk.wrapper.decrypt(
                        wrapped, [_WRAP_HEAD.pack(_CACHED_LAYER.wrap_aad, v, c) + tenant_lp]
                    )
                    if not compare_digest(
                        sha256(_CACHED_LAYER.commitment + dek + tenant_lp).digest(), c
                    ):
                        raise DecryptionError()
                    nonce = bytes(
                        token[
                            _ONESHOT_CUSTOMER.header_len : _ONESHOT_CUSTOMER.header_len + NONCE_LEN
                        ]
                    )
                    ctx_c = sha256(
                        _CACHED_CUSTOMER.context_commitment + dek + nonce + tenant_lp + ctx
                    ).digest()
                    if not compare_digest(
                        ctx_c,
                        bytes(
                            token[
                                _ONESHOT_CUSTOMER.header_len
                                + NONCE_LEN : _CACHED_CUSTOMER.header_len
                            ]
                        ),
                    ):
                        raise DecryptionError()
                    body = memoryview(token)[_CACHED_CUSTOMER.header_len :]
                    return AESGCM(dek).decrypt(
                        nonce, body, _CACHED_LAYER.payload_aad + c + tenant_lp + ctx
                    )
                except InvalidTag:
                    raise DecryptionError() from None
            if head == _ONESHOT_SENSITIVE.lead and n >= _ONESHOT_SENSITIVE.header_len + 2 * TAG_LEN:
                if data_class is _CUSTOMER:
                    raise DecryptionError()
                return self._decrypt_sensitive(token, tenant, tenant_lp, ctx, v, c, wrapped)
            return self._decrypt_general(token, tenant, tenant_lp, ctx, data_class)
        except (
            DecryptionError,
            UnsupportedFormatError,
            KeyNotFoundError,
            KeyDestroyedError,
        ) as exc:
            self._failed(exc, tenant)
            raise

    def _decrypt_sensitive(
        self,
        token: Buffer,
        tenant: str,
        tenant_lp: bytes,
        ctx: bytes,
        vo: int,
        co: bytes,
        wo: bytes,
    ) -> bytes:
        """Suite 1, two layers: unwrap both data keys, open the outer then the inner layer.

        *vo*, *co*, *wo*: the outer layer's key version, commitment and wrapped key.
        """
        pi, vi, ci, wi = LAYER.unpack_from(token, _ONESHOT_CUSTOMER.header_len)
        if pi != 2:
            raise DecryptionError()
        store = self._store
        try:
            tko = store._tenant_key(tenant, "customer", vo)
        except KeyNotFoundError:
            self._no_such_version(tenant, "customer")
        try:
            tki = store._tenant_key(tenant, "sensitive", vi)
        except KeyNotFoundError:
            self._no_such_version(tenant, "sensitive")
        try:
            outer_dek = tko.wrapper.decrypt(
                wo, [_WRAP_HEAD.pack(_OUTER_LAYER.wrap_aad, vo, co) + tenant_lp]
            )
            inner_dek = tki.wrapper.decrypt(
                wi, [_WRAP_HEAD.pack(_INNER_LAYER.wrap_aad, vi, ci) + tenant_lp]
            )
            bound = tenant_lp + ctx
            ok_o = compare_digest(sha256(_OUTER_LAYER.commitment + outer_dek + bound).digest(), co)
            ok_i = compare_digest(sha256(_INNER_LAYER.commitment + inner_dek + bound).digest(), ci)
            if not (ok_o and ok_i):
                raise DecryptionError()
            tail = co + ci + bound
            body = (
                memoryview(token)[_ONESHOT_SENSITIVE.header_len :]
                if len(token) >= _VIEW_FROM
                else token[_ONESHOT_SENSITIVE.header_len :]
            )
            inner = AESGCM(outer_dek).decrypt(_ZERO_NONCE, body, _OUTER_LAYER.payload_aad + tail)
            return AESGCM(inner_dek).decrypt(_ZERO_NONCE, inner, _INNER_LAYER.payload_aad + tail)
        except InvalidTag:
            raise DecryptionError() from None

    def _decrypt_general(
        self, token: Buffer, tenant: str, tenant_lp: bytes, ctx: bytes, data_class: DataClass | None
    ) -> bytes:
        header = parse_header(token)
        check_class(header, data_class)
        if header.suite == SUITE_STREAM:
            return _stream.decrypt_token(self._store, token, header, tenant, tenant_lp, ctx)
        n = len(header.layers)
        if len(token) < header.length + TAG_LEN * n:
            raise DecryptionError()
        deks = self._open_layers(header, tenant, tenant_lp, ctx)
        pre = prefix(header.suite, header.data_class)
        commits = header.commitments
        payload: Buffer = memoryview(token)[header.length :]
        nonces = header.nonces or (_ZERO_NONCE,) * n
        try:
            for i in range(n):
                payload = AESGCM(deks[i]).decrypt(
                    nonces[i], payload, payload_aad(pre, i, commits, tenant_lp, ctx)
                )
        except InvalidTag:
            raise DecryptionError() from None
        return bytes(payload)

    def decrypt_into(
        self,
        token: Buffer,
        out: bytearray | memoryview,
        *,
        tenant: str,
        context: Mapping[str, str],
        data_class: DataClass | None = None,
    ) -> int:
        """Decrypt into a caller-supplied buffer (no allocation for the plaintext).

        *out* must hold at least :meth:`plaintext_length` bytes; the plaintext is
        written at its start and its length returned. On any failure the
        written region is zeroed before the error propagates, so *out* never
        holds unauthenticated plaintext.

        Raises:
            InvalidInputError: *out* is too small or read-only; otherwise as :meth:`decrypt`.
        """
        if type(token) is not bytes:
            self._check_data(token, "token")
        wanted = self._wanted_class(data_class)
        ctx = encode_context(context)
        tenant_lp = self._tenant_lp(tenant)
        view = memoryview(out)
        if view.readonly:
            raise InvalidInputError("out must be a writable buffer")
        view = view.cast("B")
        try:
            header = parse_header(token)
            check_class(header, wanted)
            if header.suite == SUITE_STREAM:
                raise UnsupportedFormatError(
                    "streamed token (suite 2): use decrypt_stream() or decrypt_file()"
                )
            n = len(header.layers)
            size = len(token) - header.length - TAG_LEN * n
            if size < 0:
                raise DecryptionError()
            if view.nbytes < size:
                raise InvalidInputError(f"out must hold at least {size} bytes")
            deks = self._open_layers(header, tenant, tenant_lp, ctx)
            pre = prefix(header.suite, header.data_class)
            commits = header.commitments
            nonces = header.nonces or (_ZERO_NONCE,) * n
            payload: Buffer = memoryview(token)[header.length :]
            target = view[:size]
            try:
                for i in range(n - 1):
                    aad = payload_aad(pre, i, commits, tenant_lp, ctx)
                    payload = AESGCM(deks[i]).decrypt(nonces[i], payload, aad)
                aad = payload_aad(pre, n - 1, commits, tenant_lp, ctx)
                AESGCM(deks[n - 1]).decrypt_into(nonces[n - 1], payload, aad, target)
            except InvalidTag:
                target[:] = bytes(size)  # never leave unauthenticated plaintext behind
                raise DecryptionError() from None
            return size
        except (
            DecryptionError,
            UnsupportedFormatError,
            KeyNotFoundError,
            KeyDestroyedError,
        ) as exc:
            self._failed(exc, tenant)
            raise

    def decrypt_text(
        self,
        text: str,
        *,
        tenant: str,
        context: Mapping[str, str],
        data_class: DataClass | None = None,
    ) -> bytes:
        """:meth:`decrypt` of a text-form token (*data_class* as there).

        Raises:
            UnsupportedFormatError: not a ``stk1.`` text token; otherwise as :meth:`decrypt`.
        """
        try:
            token = from_text(text)
        except (DecryptionError, UnsupportedFormatError) as exc:
            self._failed(exc, tenant)
            raise
        return self.decrypt(token, tenant=tenant, context=context, data_class=data_class)

    @staticmethod
    def inspect(token: Buffer | str) -> TokenInfo:
        """What *token*'s header says: suite, data class, key version per layer, sizes.

        Reads the header only: no key is looked up or used, nothing is authenticated
        (a token that inspects fine may still fail to decrypt). Accepts the binary or
        the text form.

        Raises:
            UnsupportedFormatError: unknown format version, suite, data class or text prefix.
            DecryptionError: truncated or structurally invalid header.
        """
        return token_info(token)

    def plaintext_length(self, token: Buffer) -> int:
        """The plaintext length a well-formed token decrypts to (unauthenticated).

        Raises:
            UnsupportedFormatError, DecryptionError: as :func:`parse_header`.
        """
        header = parse_header(token)
        if header.suite == SUITE_STREAM:
            raise UnsupportedFormatError("streamed token (suite 2): use the streaming API")
        n = len(header.data_class.purposes)
        size = len(token) - header.length - TAG_LEN * n
        if size < 0:
            raise DecryptionError()
        return size

    # -- streams and files (implemented in styku_crypto.envelope._stream) ----

    def encrypt_stream(
        self,
        dst: BinaryIO,
        *,
        tenant: str,
        context: Mapping[str, str],
        data_class: DataClass = DataClass.CUSTOMER,
    ) -> _stream.EncryptingWriter:
        """A writable file object that encrypts into *dst* as a streamed token (suite 2).

        Memory stays bounded (16 KiB chunks, 1 MiB I/O blocks) whatever the size.
        Closing the writer writes the final chunk; if the ``with`` block raises, the
        final chunk is never written and the output cannot decrypt. *dst* is not closed.

        Raises:
            KeyNotFoundError, KeyDestroyedError, InvalidInputError: as :meth:`encrypt`.
        """
        return _stream.encrypt_stream(
            self._store, dst, tenant=tenant, context=context, data_class=data_class
        )

    def decrypt_stream(
        self,
        src: BinaryIO,
        *,
        tenant: str,
        context: Mapping[str, str],
        data_class: DataClass | None = None,
    ) -> _stream.DecryptingReader:
        """A readable file object over the plaintext of the streamed token in *src*.

        *data_class*: as for :meth:`decrypt` (another class: ``DecryptionError``).

        Plaintext of a chunk is released only after it authenticated; truncation,
        extension, reordering and a missing final chunk raise
        :class:`~styku_crypto.exceptions.DecryptionError` from the ``read`` that reaches
        them (never a clean end-of-file). See ``docs/streams.md``.

        Raises:
            UnsupportedFormatError, DecryptionError, KeyNotFoundError, KeyDestroyedError.
        """
        return _stream.decrypt_stream(
            self._store,
            src,
            tenant=tenant,
            context=context,
            data_class=self._wanted_class(data_class),
        )

    def encrypt_file(
        self,
        src_path: str | os.PathLike[str],
        dst_path: str | os.PathLike[str],
        *,
        tenant: str,
        context: Mapping[str, str],
        data_class: DataClass = DataClass.CUSTOMER,
    ) -> int:
        """Encrypt a file to a streamed token file (temp file, fsync, rename); bytes read."""
        return _stream.encrypt_file(
            self._store, src_path, dst_path, tenant=tenant, context=context, data_class=data_class
        )

    def decrypt_file(
        self,
        src_path: str | os.PathLike[str],
        dst_path: str | os.PathLike[str],
        *,
        tenant: str,
        context: Mapping[str, str],
        data_class: DataClass | None = None,
    ) -> int:
        """Decrypt a streamed token file; *dst_path* appears only if all of it authenticated.

        *data_class*: as for :meth:`decrypt` (another class: ``DecryptionError``).

        Decrypts into a temporary file beside *dst_path*, fsyncs, and renames only after
        the final chunk authenticated; on any failure the temporary file is removed and
        an existing *dst_path* is left untouched. Returns the plaintext size.
        """
        return _stream.decrypt_file(
            self._store,
            src_path,
            dst_path,
            tenant=tenant,
            context=context,
            data_class=self._wanted_class(data_class),
        )

    def decrypt_range(
        self,
        src: BinaryIO | str | os.PathLike[str],
        offset: int,
        length: int,
        *,
        tenant: str,
        context: Mapping[str, str],
        data_class: DataClass | None = None,
    ) -> bytes:
        """Plaintext ``[offset, offset + length)`` of a streamed token, clipped at its end.

        *data_class*: as for :meth:`decrypt` (another class: ``DecryptionError``).

        Decrypts only the chunks covering the range, plus the final chunk to
        authenticate the object's length. *src* is a path or a seekable binary file
        positioned at the token's start.

        Raises:
            InvalidInputError: negative *offset* or *length*; otherwise as :meth:`decrypt`.
        """
        return _stream.decrypt_range(
            self._store,
            src,
            offset,
            length,
            tenant=tenant,
            context=context,
            data_class=self._wanted_class(data_class),
        )

    # -- rotation -----------------------------------------------------------

    @overload
    def rewrap(self, token: bytes, *, tenant: str) -> bytes: ...
    @overload
    def rewrap(self, token: bytearray, *, tenant: str) -> bytearray: ...
    @overload
    def rewrap(self, token: str, *, tenant: str) -> str: ...

    def rewrap(self, token: bytes | bytearray | str, *, tenant: str) -> bytes | bytearray | str:
        """Re-wrap a token's data key(s) under the tenant's current primary key versions.

        The payload is never decrypted or touched: only the header changes
        (same length), so the cost does not grow with the payload. A
        ``bytearray`` is updated **in place** and returned (no copy at all); a
        ``bytes`` token is returned as a new ``bytes`` object (one copy, since
        ``bytes`` is immutable); a text token gives a text token. A token
        already on the primary versions is returned unchanged.

        The header is authenticated (wrap, commitment) on the way; the payload
        is not, so a tampered payload still fails at decrypt.

        Raises:
            DecryptionError: the header does not authenticate for this tenant.
            UnsupportedFormatError, KeyNotFoundError, KeyDestroyedError: as :meth:`decrypt`.
        """
        if isinstance(token, str):
            return to_text(self.rewrap(from_text(token), tenant=tenant))
        if not isinstance(token, (bytes, bytearray)):
            raise InvalidInputError("token must be bytes, bytearray or a text token")
        tenant_lp = self._tenant_lp(tenant)
        try:
            head = token[:5]
            if (
                head in (_ONESHOT_CUSTOMER.lead, _CACHED_CUSTOMER.lead)
                and len(token) >= _ONESHOT_CUSTOMER.header_len
            ):
                hlen = _ONESHOT_CUSTOMER.header_len
                new_header = self._rewrap_customer(token, tenant, tenant_lp)
            else:
                header = parse_header(token)
                hlen = PREFIX_LEN + LAYER_LEN * len(header.layers)
                new_header = self._rewrap_header(header, tenant, tenant_lp)
        except (
            DecryptionError,
            UnsupportedFormatError,
            KeyNotFoundError,
            KeyDestroyedError,
        ) as exc:
            self._failed(exc, tenant)
            raise
        if new_header is None:
            return token
        if isinstance(token, bytearray):
            token[:hlen] = new_header
            return token
        return new_header + token[hlen:]

    def _rewrap_customer(self, token: Buffer, tenant: str, tenant_lp: bytes) -> bytes | None:
        """Fast path of :meth:`_rewrap_header` for one-layer (customer) tokens."""
        pre = bytes(token[:PREFIX_LEN])
        _, version, c, wrapped = LAYER.unpack_from(token, PREFIX_LEN)
        wrap_prefix = WRAP_DOMAIN + pre + b"\x00\x01"
        try:
            old = self._store._tenant_key(tenant, "customer", version)
        except KeyNotFoundError:
            self._no_such_version(tenant, "customer")
        try:
            # The AES-SIV wrap authenticates the data key with its commitment (the
            # commitment itself binds the context, which rewrap does not know).
            dek = old.wrapper.decrypt(wrapped, [wrap_prefix + U32.pack(version) + c + tenant_lp])
        except InvalidTag:
            raise DecryptionError() from None
        new = self._store._tenant_key(tenant, "customer")
        if new.version == version:
            return None
        rewrapped = new.wrapper.encrypt(dek, [wrap_prefix + U32.pack(new.version) + c + tenant_lp])
        if _LOG.isEnabledFor(logging.INFO):
            _events.emit(
                "envelope.rewrap",
                outcome="success",
                tenant=tenant,
                key_version=new.version,
                attributes={"data_class": "customer"},
            )
        return pre + LAYER.pack(1, new.version, c, rewrapped)

    def _rewrap_header(self, header: Header, tenant: str, tenant_lp: bytes) -> bytes | None:
        """The new prefix + layers, or ``None`` when every layer is already current."""
        deks = self._open_layers(header, tenant, tenant_lp, None)
        pre = prefix(header.suite, header.data_class)
        parts = [pre]
        changed: list[int] = []
        for i, (layer, dek) in enumerate(zip(header.layers, deks, strict=True)):
            tk = self._store._tenant_key(tenant, PURPOSE_NAMES[layer.purpose])
            if tk.version == layer.key_version:
                parts.append(
                    build_layer(layer.purpose, layer.key_version, layer.commitment, layer.wrapped)
                )
                continue
            aad = wrap_aad(pre, i, layer.purpose, tk.version, layer.commitment, tenant_lp)
            wrapped = tk.wrapper.encrypt(dek, [aad])
            parts.append(build_layer(layer.purpose, tk.version, layer.commitment, wrapped))
            changed.append(tk.version)
        if not changed:
            return None
        if not _LOG.isEnabledFor(logging.INFO):
            return b"".join(parts)
        _events.emit(
            "envelope.rewrap",
            outcome="success",
            tenant=tenant,
            key_version=changed[0],
            attributes={"data_class": header.data_class.name.lower()},
        )
        return b"".join(parts)

    def needs_rewrap(self, token: Buffer | str, *, tenant: str) -> bool:
        """True when any layer of *token* is on an older key version than the primary.

        Reads only the header (no unwrap, no authentication).

        Raises:
            UnsupportedFormatError, DecryptionError: malformed header.
            KeyNotFoundError, KeyDestroyedError: as :meth:`decrypt`.
        """
        raw = from_text(token) if isinstance(token, str) else token
        header = parse_header(raw)
        return any(
            self._store._tenant_key(tenant, PURPOSE_NAMES[layer.purpose]).version
            != layer.key_version
            for layer in header.layers
        )

    def rewrap_many(
        self,
        tokens: Iterable[bytes],
        *,
        tenant: str,
        progress: Callable[[RewrapProgress], None] | None = None,
        progress_every: int = 1000,
    ) -> Iterator[bytes]:
        """Re-wrap many tokens lazily, yielding each result in input order.

        Tokens already current are yielded unchanged. *progress* is called
        every *progress_every* tokens and once at the end. Stops at the first
        token that fails (raising as :meth:`rewrap`), so nothing is silently skipped.
        """
        if progress_every < 1:
            raise InvalidInputError("progress_every must be positive")
        done = rewrapped = 0
        for token in tokens:
            new = self.rewrap(token, tenant=tenant)
            done += 1
            if new is not token:
                rewrapped += 1
            yield new
            if progress is not None and done % progress_every == 0:
                progress(RewrapProgress(done, rewrapped, done - rewrapped))
        if progress is not None:
            progress(RewrapProgress(done, rewrapped, done - rewrapped))

    # -- deterministic hook (tests and golden vectors only) -----------------

    def _encrypt_from_parts(
        self,
        data: bytes,
        *,
        tenant: str,
        context: Mapping[str, str],
        data_class: DataClass,
        deks: Sequence[bytes],
        nonces: Sequence[bytes] | None = None,
    ) -> bytes:
        """Encrypt with injected data keys (suite 1) or data keys and nonces (suite 3).

        .. danger:: Private. Reusing a data key or nonce destroys confidentiality.
        """
        ctx = encode_context(context)
        tenant_lp = self._tenant_lp(tenant)
        dc = self._data_class(data_class)
        suite = SUITE_ONESHOT if nonces is None else SUITE_CACHED
        layer_ctx = ctx if nonces is None else b""
        header, commits, keys, _ = self._fresh_layers(tenant, tenant_lp, dc, suite, layer_ctx, deks)
        n = len(dc.purposes)
        use = list(nonces) if nonces is not None else [_ZERO_NONCE] * n
        if len(use) != n or any(len(x) != NONCE_LEN for x in use):
            raise InvalidInputError("one 12-byte nonce per layer")
        pre = header[:PREFIX_LEN]
        payload: bytes = data
        for i in range(n - 1, -1, -1):
            payload = AESGCM(keys[i]).encrypt(
                use[i], payload, payload_aad(pre, i, commits, tenant_lp, ctx)
            )
        if nonces is None:
            return header + payload
        joined = b"".join(use)
        committed = context_commitment(pre, b"".join(keys), joined, tenant_lp, ctx)
        return header + joined + committed + payload

"""Encrypt selected fields of a record, bound to the field name and the record identity."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from styku_crypto.envelope._format import (
    NONCE_LEN,
    PREFIX_LEN,
    SHAPES,
    SUITE_CACHED,
    SUITE_ONESHOT,
    TEXT_PREFIX,
    U32,
    DataClass,
    context_commitment,
    payload_aad,
)
from styku_crypto.exceptions import InvalidInputError, UnsupportedFormatError
from styku_crypto.fields._blind_index import BlindIndexer
from styku_crypto.fields._codec import ABSENT, MISSING, b64e, decode_field, encode_value

if TYPE_CHECKING:
    from styku_crypto.envelope import Envelope

_LOG = logging.getLogger("styku_crypto.envelope")
_CUSTOMER = DataClass.CUSTOMER
_urandom = os.urandom
_sha256 = hashlib.sha256
_ZERO_NONCE = bytes(NONCE_LEN)
# Constant bytes of one-layer customer tokens (docs/format.md), from the envelope's
# table keyed by (suite, data class): suite 1 (fresh data key per field) and suite 3
# (shared or cached data key). The tests decrypt the tokens with Envelope.decrypt.
_ONESHOT = SHAPES[SUITE_ONESHOT, _CUSTOMER]
_CACHED = SHAPES[SUITE_CACHED, _CUSTOMER]
_ONESHOT_LAYER = _ONESHOT.layers[0]
_CACHED_LAYER = _CACHED.layers[0]
_MAX_CONTEXT = 1 << 16
_THREE = U32.pack(3)
_RID_KEY = U32.pack(len("styku.record_id")) + b"styku.record_id"


def _field(record: Mapping[str, Any], name: str) -> bytes:
    """The plaintext of field *name*: its encoded value, or the absent marker."""
    if name in record:
        return encode_value(record[name])
    return ABSENT


def _entry(key: str, value: str) -> bytes:
    """One canonical context entry: ``u32 len || key || u32 len || value`` (UTF-8)."""
    try:
        kb, vb = key.encode("utf-8"), value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError("context keys and values must be encodable str") from None
    return U32.pack(len(kb)) + kb + U32.pack(len(vb)) + vb


__all__ = ["RecordEncryptor"]

_NAME_RE = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")
#: Context keys the record encryptor sets itself; callers may not pass them.
RESERVED_PREFIX = "styku."


class RecordEncryptor:
    """Encrypts chosen fields of a mapping (a JSON-like record) with an :class:`Envelope`.

    Every encrypted field is its own envelope token (text form, ``stk1.``...) whose
    encryption context binds, on top of the caller's context:
    ``styku.record_type`` (this encryptor's *record_type*), ``styku.record_id`` (the
    record identity passed to each call) and ``styku.field`` (the field name). A value
    moved to another field, another record or another record type therefore fails to
    decrypt with :class:`~styku_crypto.exceptions.DecryptionError`, as does a value
    read under another tenant.

    Values may be ``bytes``, ``str`` or any JSON value and come back with the same
    type. ``None`` is encrypted too, so the stored record does not reveal which
    sensitive fields are empty. A listed field *absent* from the record is written
    anyway, as a token of an encrypted "absent" marker (one byte, as long as an empty
    string), and :meth:`decrypt` removes it again: every stored record has every
    listed field, so which fields a record lacks is not visible (its blind-index field,
    like a ``None`` value's, is ``None``). Fields not listed pass through unchanged.

    Blind indexes: for each ``field -> BlindIndexer`` in *blind_indexes*, encryption
    adds ``<field><index_suffix>`` holding the tag of the field's plaintext;
    decryption drops it again.

    Args:
        envelope: the :class:`~styku_crypto.envelope.Envelope` to encrypt with.
        record_type: what kind of record this is (e.g. ``"members"``); bound into every
            field's context.
        fields: the names of the fields to encrypt.
        blind_indexes: blind indexes to compute, keyed by field name (each field must
            also be in *fields*).
        data_class: ``DataClass.SENSITIVE`` for a second, independent key layer.
        index_suffix: suffix of the index fields (default ``"_bidx"``).
        share_data_key: opt in to ONE fresh data key per *record* (each field still its
            own token, random 96-bit nonce, own context), instead of one per field:
            one key generation and wrap per record instead of per field.

    .. warning::
        With ``share_data_key=True`` the fields of one record share a data key (never
        across records). Every field token still decrypts only in its own field, record
        and tenant, and the tokens are ordinary v1 tokens (suite 3) that
        ``Envelope.decrypt`` reads, but whoever obtains that one data key reads every
        encrypted field of the record. The default keeps the envelope's rule of a fresh
        data key per message.

    Raises:
        InvalidInputError: bad names, or a blind index on a field that is not encrypted.
    """

    __slots__ = (
        "_bare_heads",
        "_envelope",
        "_field_entries",
        "_indexes",
        "_type_entry",
        "blind_indexes",
        "data_class",
        "fields",
        "index_suffix",
        "record_type",
        "share_data_key",
    )

    def __init__(
        self,
        envelope: Envelope,
        *,
        record_type: str,
        fields: Iterable[str],
        blind_indexes: Mapping[str, BlindIndexer] | None = None,
        data_class: DataClass | None = None,
        index_suffix: str = "_bidx",
        share_data_key: bool = False,
    ) -> None:
        if not isinstance(record_type, str) or not _NAME_RE.match(record_type):
            raise InvalidInputError("record_type: 1-128 of letters, digits and _ . : / -")
        names = tuple(dict.fromkeys(fields))
        if not names or not all(isinstance(f, str) and f for f in names):
            raise InvalidInputError("fields must be a non-empty list of field names")
        indexes = dict(blind_indexes or {})
        for name, idx in indexes.items():
            if name not in names:
                raise InvalidInputError(f"blind index on {name!r}, which is not encrypted")
            if not isinstance(idx, BlindIndexer):
                raise InvalidInputError("blind_indexes values must be BlindIndexer objects")
        if not index_suffix:
            raise InvalidInputError("index_suffix must not be empty")
        clash = {f + index_suffix for f in indexes} & set(names)
        if clash:
            raise InvalidInputError("an index field name clashes with an encrypted field")
        self._envelope = envelope
        self.record_type = record_type
        self.fields = names
        self.blind_indexes = indexes
        self.data_class = data_class
        self.index_suffix = index_suffix
        self.share_data_key = bool(share_data_key)
        self._type_entry = _entry("styku.record_type", record_type)
        # ``u32 len || "styku.field" || u32 len || name`` per field, encoded once.
        self._field_entries = {name: _entry("styku.field", name) for name in names}
        # ``u32 3 || field entry``: the start of a context with no caller entries.
        self._bare_heads = {name: _THREE + entry for name, entry in self._field_entries.items()}
        # (field, indexer, index field name), precomputed for the per-record loop.
        self._indexes = tuple((name, idx, name + index_suffix) for name, idx in indexes.items())

    def __repr__(self) -> str:
        return (
            f"<RecordEncryptor record_type={self.record_type!r} fields={list(self.fields)!r}"
            f" blind_indexes={sorted(self.blind_indexes)!r}>"
        )

    def _context(
        self, field: str, record_id: str, context: Mapping[str, str] | None
    ) -> dict[str, str]:
        if not isinstance(record_id, str) or not record_id:
            raise InvalidInputError("record_id must be a non-empty str")
        ctx: dict[str, str] = {}
        if context is not None:
            if not isinstance(context, Mapping):
                raise InvalidInputError("context must be a mapping of str to str")
            for key in context:
                if isinstance(key, str) and key.startswith(RESERVED_PREFIX):
                    raise InvalidInputError("context keys starting with 'styku.' are reserved")
            ctx.update(context)
        ctx["styku.record_type"] = self.record_type
        ctx["styku.record_id"] = record_id
        ctx["styku.field"] = field
        return ctx

    def _encoded_contexts(
        self, names: list[str], record_id: str, context: Mapping[str, str] | None
    ) -> list[bytes]:
        """``encode_context(self._context(name, ...))`` for every name, sharing the work.

        Builds the canonical encoding (``docs/format.md``: u32 count, then entries sorted
        by key, each ``u32 len || key || u32 len || value`` in UTF-8) around the three
        reserved entries. User keys never start with ``styku.``, so they sort entirely
        before or after the contiguous reserved block (``styku.field`` <
        ``styku.record_id`` < ``styku.record_type``). A property test checks equality
        with ``encode_context``.
        """
        if not isinstance(record_id, str) or not record_id:
            raise InvalidInputError("record_id must be a non-empty str")
        if not context:
            # Only the three reserved entries: ``u32 3 || field || record_id || type``.
            try:
                rid = record_id.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidInputError("record_id must be encodable str") from None
            tail = _RID_KEY + U32.pack(len(rid)) + rid + self._type_entry
            heads = self._bare_heads
            out = [
                (heads.get(name) or _THREE + _entry("styku.field", name)) + tail for name in names
            ]
        else:
            out = self._encoded_with(names, record_id, context)
        for encoded in out:
            if len(encoded) > _MAX_CONTEXT:
                raise InvalidInputError("context is larger than 64 KiB encoded")
        return out

    def _encoded_with(
        self, names: list[str], record_id: str, context: Mapping[str, str]
    ) -> list[bytes]:
        """:meth:`_encoded_contexts` with caller context entries (before the size check)."""
        before: list[tuple[str, bytes]] = []
        after: list[tuple[str, bytes]] = []
        if not isinstance(context, Mapping):
            raise InvalidInputError("context must be a mapping of str to str")
        for key, value in context.items():
            if type(key) is not str or type(value) is not str:
                raise InvalidInputError("context keys and values must be str")
            if key.startswith(RESERVED_PREFIX):
                raise InvalidInputError("context keys starting with 'styku.' are reserved")
            (before if key < RESERVED_PREFIX else after).append((key, _entry(key, value)))
        try:
            rid = _entry("styku.record_id", record_id)
        except UnicodeEncodeError:
            raise InvalidInputError("record_id must be encodable str") from None
        count = len(before) + len(after) + 3
        head = U32.pack(count)
        if before:
            head += b"".join(e for _, e in sorted(before))
        tail = rid + self._type_entry
        if after:
            tail += b"".join(e for _, e in sorted(after))
        entries = self._field_entries
        return [head + (entries.get(name) or _entry("styku.field", name)) + tail for name in names]

    def encrypt(
        self,
        record: Mapping[str, Any],
        *,
        tenant: str,
        record_id: str,
        context: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """A copy of *record* with the chosen fields encrypted (and index fields added).

        Args:
            record: the record; it is not modified.
            tenant: the tenant whose keys protect the record.
            record_id: the record's stable identity (primary key), bound into each field.
            context: extra encryption context (e.g. ``{"table": "members"}``).

        Raises:
            InvalidInputError: unsupported value type, bad context or record id.
            KeyNotFoundError: unknown tenant.
            KeyDestroyedError: the tenant was shredded.
        """
        out = dict(record)
        if self.share_data_key:
            self._encrypt_shared(record, out, tenant, record_id, context)
        else:
            self._encrypt_each(record, out, tenant, record_id, context)
        for name, idx, index_field in self._indexes:
            value = record.get(name)
            out[index_field] = None if value is None else idx._tag(value, tenant)
        return out

    def _encrypt_each(
        self,
        record: Mapping[str, Any],
        out: dict[str, Any],
        tenant: str,
        record_id: str,
        context: Mapping[str, str] | None,
    ) -> None:
        """One envelope token per field (fresh data key, or the envelope's DataKeyCache).

        The tokens are byte for byte what ``Envelope.encrypt`` produces for the field's
        context (suite 1, or suite 3 with a cache); the per-record work (context
        encoding, tenant-key lookup, randomness) is done once per record instead of once
        per field.
        """
        present = list(self.fields)  # absent fields too: see _field
        env = self._envelope
        contexts = self._encoded_contexts(present, record_id, context)
        tenant_lp = env._tenants.get(tenant) or env._tenant_lp(tenant)
        dc = self.data_class or _CUSTOMER
        cache = env._cache
        if dc is not _CUSTOMER:
            dc = env._data_class(dc)
            for name, ctx in zip(present, contexts, strict=True):
                data = _field(record, name)
                if cache is not None:
                    token = env._encrypt_cached(cache, data, tenant, tenant_lp, ctx, dc)
                else:
                    token = env._encrypt_sensitive(data, tenant, tenant_lp, ctx)
                out[name] = TEXT_PREFIX + b64e(token)
            return
        if cache is not None:
            self._encrypt_cached(record, out, present, contexts, tenant, tenant_lp)
            return
        # Envelope.encrypt's suite-1 customer path, one tenant-key lookup per record: a
        # fresh data key per field, its SHA-256 commitment, its AES-SIV wrap under the
        # tenant key and AES-GCM under the data key (zero nonce: the key is single-use).
        # Why inlined: these four primitives are ~85% of the time (compare_streams.py
        # prints their floor); the constant parts of each input are looked up once per
        # record and ``tenant || context`` is joined once per field. The hypothesis test
        # tests/fields/test_record_fast_path.py proves the bytes equal Envelope.encrypt's.
        tk = env._store._tenant_key(tenant, "customer")
        version = U32.pack(tk.version)
        wrap = tk.wrapper.encrypt
        wrap_head = _ONESHOT_LAYER.wrap_aad + version
        head = _ONESHOT.lead + version
        commit_head = _ONESHOT_LAYER.commitment
        aad_head = _ONESHOT_LAYER.payload_aad
        deks = _urandom(32 * len(present))
        for j, name in enumerate(present):
            bound = tenant_lp + contexts[j]
            dek = deks[32 * j : 32 * (j + 1)]
            commit = _sha256(commit_head + dek + bound).digest()
            wrapped = wrap(dek, [wrap_head + commit + tenant_lp])
            body = AESGCM(dek).encrypt(_ZERO_NONCE, _field(record, name), aad_head + commit + bound)
            out[name] = TEXT_PREFIX + b64e(head + commit + wrapped + body)
        if _LOG.isEnabledFor(logging.DEBUG):
            for _ in present:
                env._encrypted(tenant, _CUSTOMER, SUITE_ONESHOT, tk.version)

    def _encrypt_cached(
        self,
        record: Mapping[str, Any],
        out: dict[str, Any],
        present: list[str],
        contexts: list[bytes],
        tenant: str,
        tenant_lp: bytes,
    ) -> None:
        """Customer fields through the envelope's DataKeyCache (suite 3), one nonce draw.

        Every field is counted against the cached key's message and byte limits on its
        own (``cache._take``, exact under threads); a miss, expiry, rotation or shred
        goes through the envelope's own ``_encrypt_cached``.
        """
        env = self._envelope
        cache = env._cache
        assert cache is not None
        store = env._store
        take = cache._take
        ckey = (tenant, _CUSTOMER, store)
        nonces = _urandom(NONCE_LEN * len(present))
        hits = 0
        version = 0
        for j, name in enumerate(present):
            data = _field(record, name)
            entry = take(ckey, store._generation, len(data))
            if entry is None:
                token = env._encrypt_cached(cache, data, tenant, tenant_lp, contexts[j], _CUSTOMER)
            else:
                nonce = nonces[NONCE_LEN * j : NONCE_LEN * (j + 1)]
                committed = entry.commit_head.copy()
                committed.update(nonce + tenant_lp + contexts[j])
                body = entry.aeads[0].encrypt(nonce, data, entry.aad_heads[0] + contexts[j])
                token = entry.header + nonce + committed.digest() + body
                hits += 1
                version = entry.versions[0]
            out[name] = TEXT_PREFIX + b64e(token)
        if hits and _LOG.isEnabledFor(logging.DEBUG):
            for _ in range(hits):
                env._encrypted(tenant, _CUSTOMER, SUITE_CACHED, version)

    def _encrypt_shared(
        self,
        record: Mapping[str, Any],
        out: dict[str, Any],
        tenant: str,
        record_id: str,
        context: Mapping[str, str] | None,
    ) -> None:
        """One data key (set) for the record; suite-3 tokens with random nonces."""
        present = list(self.fields)  # absent fields too: see _field
        env = self._envelope
        tenant_lp = env._tenants.get(tenant) or env._tenant_lp(tenant)
        dc = self.data_class or _CUSTOMER
        contexts = self._encoded_contexts(present, record_id, context)
        if dc is _CUSTOMER:
            # One data key, commitment and AES-SIV wrap per record (what _fresh_layers
            # builds for one customer layer), then one AES-GCM token per field.
            tk = env._store._tenant_key(tenant, "customer")
            version = U32.pack(tk.version)
            seed = _urandom(32 + NONCE_LEN * len(present))
            dek = seed[:32]
            commit = _sha256(_CACHED_LAYER.commitment + dek + tenant_lp).digest()
            wrapped = tk.wrapper.encrypt(
                dek, [_CACHED_LAYER.wrap_aad + version + commit + tenant_lp]
            )
            header = _CACHED.lead + version + commit + wrapped
            aead = AESGCM(dek)
            aad_head = _CACHED_LAYER.payload_aad + commit + tenant_lp
            commit_head = _CACHED.context_commitment + dek
            for j, name in enumerate(present):
                nonce = seed[32 + NONCE_LEN * j : 32 + NONCE_LEN * (j + 1)]
                ctx_commit = _sha256(commit_head + nonce + tenant_lp + contexts[j]).digest()
                body = aead.encrypt(nonce, _field(record, name), aad_head + contexts[j])
                out[name] = TEXT_PREFIX + b64e(header + nonce + ctx_commit + body)
            if _LOG.isEnabledFor(logging.DEBUG):
                env._encrypted(tenant, _CUSTOMER, SUITE_CACHED, tk.version)
            return
        dc = env._data_class(dc)
        header, commits, deks, keys = env._fresh_layers(tenant, tenant_lp, dc, SUITE_CACHED, b"")
        pre = header[:PREFIX_LEN]
        joined = b"".join(deks)
        aeads = [AESGCM(d) for d in deks]
        layers = len(aeads)
        aad_heads = [payload_aad(pre, i, commits, tenant_lp, b"") for i in range(layers)]
        step = NONCE_LEN * layers
        all_nonces = _urandom(step * len(present))
        for j, (name, ctx) in enumerate(zip(present, contexts, strict=True)):
            nonces = all_nonces[step * j : step * (j + 1)]
            payload = _field(record, name)
            for i in range(layers - 1, -1, -1):
                payload = aeads[i].encrypt(
                    nonces[NONCE_LEN * i : NONCE_LEN * (i + 1)], payload, aad_heads[i] + ctx
                )
            ctx_commit = context_commitment(pre, joined, nonces, tenant_lp, ctx)
            out[name] = TEXT_PREFIX + b64e(header + nonces + ctx_commit + payload)
        if _LOG.isEnabledFor(logging.DEBUG):
            env._encrypted(tenant, dc, SUITE_CACHED, keys[0].version)

    def decrypt(
        self,
        record: Mapping[str, Any],
        *,
        tenant: str,
        record_id: str,
        context: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """A copy of *record* with the encrypted fields decrypted and index fields removed.

        All fields are decrypted or none: the first failure raises and nothing is returned.

        Raises:
            DecryptionError: a field was tampered with, moved from another field, record,
                record type or tenant, or read with another context.
            UnsupportedFormatError: a field does not hold a token.
            KeyDestroyedError: the tenant was shredded.
        """
        out = dict(record)
        for name in self.fields:
            if name not in record:
                continue
            value = record[name]
            if not isinstance(value, str):
                raise UnsupportedFormatError(f"field {name!r} does not hold a text token")
            plaintext = self._envelope.decrypt_text(
                value,
                tenant=tenant,
                context=self._context(name, record_id, context),
                data_class=self.data_class or _CUSTOMER,
            )
            value = decode_field(plaintext)
            if value is MISSING:
                del out[name]
            else:
                out[name] = value
        for name in self.blind_indexes:
            out.pop(name + self.index_suffix, None)
        return out

"""Encrypt selected fields of a record, bound to the field name and the record identity."""

from __future__ import annotations

import logging
import os
import re
import struct
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from styku_crypto.envelope._format import (
    NONCE_LEN,
    PREFIX_LEN,
    SUITE_CACHED,
    TEXT_PREFIX,
    DataClass,
    payload_aad,
)
from styku_crypto.exceptions import InvalidInputError, UnsupportedFormatError
from styku_crypto.fields._blind_index import BlindIndexer
from styku_crypto.fields._codec import b64e, decode_value, encode_value

if TYPE_CHECKING:
    from styku_crypto.envelope import Envelope

_LOG = logging.getLogger("styku_crypto.envelope")
_U32 = struct.Struct(">I")
_MAX_CONTEXT = 1 << 16


def _entry(key: str, value: str) -> bytes:
    """One canonical context entry: ``u32 len || key || u32 len || value`` (UTF-8)."""
    try:
        kb, vb = key.encode("utf-8"), value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError("context keys and values must be encodable str") from None
    return _U32.pack(len(kb)) + kb + _U32.pack(len(vb)) + vb


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
    sensitive fields are empty. Fields not listed pass through unchanged; listed fields
    absent from the record are skipped.

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
        "_envelope",
        "_field_entries",
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
        before: list[tuple[str, bytes]] = []
        after: list[tuple[str, bytes]] = []
        if context:
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
        head = _U32.pack(count)
        if before:
            head += b"".join(e for _, e in sorted(before))
        tail = rid + self._type_entry
        if after:
            tail += b"".join(e for _, e in sorted(after))
        entries = self._field_entries
        out = [head + (entries.get(name) or _entry("styku.field", name)) + tail for name in names]
        for encoded in out:
            if len(encoded) > _MAX_CONTEXT:
                raise InvalidInputError("context is larger than 64 KiB encoded")
        return out

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
        for name, idx in self.blind_indexes.items():
            if name in record:
                value = record[name]
                tag = None if value is None else str(idx.tag(value, tenant=tenant))
                out[name + self.index_suffix] = tag
        return out

    def _encrypt_each(
        self,
        record: Mapping[str, Any],
        out: dict[str, Any],
        tenant: str,
        record_id: str,
        context: Mapping[str, str] | None,
    ) -> None:
        """One envelope token per field (fresh data key, or the envelope's DataKeyCache)."""
        present = [name for name in self.fields if name in record]
        if not present:
            return
        env = self._envelope
        cache = env._cache
        if cache is not None:
            contexts = self._encoded_contexts(present, record_id, context)
            # Same path as Envelope.encrypt with a cache, minus re-encoding the context.
            tlp = env._tenant_lp(tenant)
            dc = env._data_class(self.data_class or DataClass.CUSTOMER)
            for name, ctx in zip(present, contexts, strict=True):
                token = env._encrypt_cached(cache, encode_value(record[name]), tenant, tlp, ctx, dc)
                out[name] = TEXT_PREFIX + b64e(token)
            return
        kwargs: dict[str, Any] = {}
        if self.data_class is not None:
            kwargs["data_class"] = self.data_class
        # One context dict per record; only ``styku.field`` changes between fields
        # (Envelope.encrypt encodes the mapping at once and keeps no reference).
        field_ctx = self._context(present[0], record_id, context)
        encrypt = env.encrypt
        for name in present:
            field_ctx["styku.field"] = name
            token = encrypt(encode_value(record[name]), tenant=tenant, context=field_ctx, **kwargs)
            out[name] = TEXT_PREFIX + b64e(token)

    def _encrypt_shared(
        self,
        record: Mapping[str, Any],
        out: dict[str, Any],
        tenant: str,
        record_id: str,
        context: Mapping[str, str] | None,
    ) -> None:
        """One data key (set) for the record; suite-3 tokens with random nonces."""
        present = [name for name in self.fields if name in record]
        if not present:
            return
        env = self._envelope
        tlp = env._tenant_lp(tenant)
        dc = env._data_class(self.data_class or DataClass.CUSTOMER)
        header, commits, deks, keys = env._fresh_layers(tenant, tlp, dc, SUITE_CACHED)
        pre = header[:PREFIX_LEN]
        aeads = [AESGCM(d) for d in deks]
        layers = len(aeads)
        contexts = self._encoded_contexts(present, record_id, context)
        aad_heads = [payload_aad(pre, i, commits, tlp, b"") for i in range(layers)]
        step = NONCE_LEN * layers
        all_nonces = os.urandom(step * len(present))
        if layers == 1:
            aead, aad_head = aeads[0], aad_heads[0]
            for j, (name, ctx) in enumerate(zip(present, contexts, strict=True)):
                nonce = all_nonces[step * j : step * (j + 1)]
                body = aead.encrypt(nonce, encode_value(record[name]), aad_head + ctx)
                out[name] = TEXT_PREFIX + b64e(header + nonce + body)
            if _LOG.isEnabledFor(logging.DEBUG):
                env._encrypted(tenant, dc, SUITE_CACHED, keys[0].version)
            return
        for j, (name, ctx) in enumerate(zip(present, contexts, strict=True)):
            nonces = all_nonces[step * j : step * (j + 1)]
            payload = encode_value(record[name])
            for i in range(layers - 1, -1, -1):
                payload = aeads[i].encrypt(
                    nonces[NONCE_LEN * i : NONCE_LEN * (i + 1)], payload, aad_heads[i] + ctx
                )
            out[name] = TEXT_PREFIX + b64e(header + nonces + payload)
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
            )
            out[name] = decode_value(plaintext)
        for name in self.blind_indexes:
            out.pop(name + self.index_suffix, None)
        return out

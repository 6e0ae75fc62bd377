"""SQLAlchemy 2.x column types that encrypt on write and decrypt on read.

Needs the ``sqlalchemy`` extra (``pip install 'styku-crypto[sqlalchemy]'``)::

    from styku_crypto.fields.sqlalchemy import BlindIndex, EncryptedBytes, EncryptedText

    class Member(Base):
        __tablename__ = "members"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(
            EncryptedText(env, tenant=tenant_of_request, context={"column": "members.email"})
        )
        email_index: Mapped[str] = mapped_column(
            BlindIndex(email_idx, tenant=tenant_of_request), index=True
        )

    session.add(Member(email="Alice@example.com", email_index="Alice@example.com"))
    session.scalars(select(Member).where(Member.email_index == "alice@example.com"))

Each encrypted column binds its own ``context`` (use at least table and column name),
so a ciphertext copied into another column fails to decrypt with
:class:`~styku_crypto.exceptions.DecryptionError`. Column types do not know the row
they belong to, so they cannot bind the row identity: a ciphertext copied to another
row *of the same column and tenant* still decrypts. Where that matters, encrypt with
:class:`styku_crypto.fields.RecordEncryptor`, which binds the record id.

``tenant`` is a string or a zero-argument callable evaluated on every bind and result
(e.g. reading a ``contextvars.ContextVar`` set per request).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from styku_crypto._extras import require
from styku_crypto.envelope._format import DataClass
from styku_crypto.exceptions import InvalidInputError
from styku_crypto.fields._blind_index import IndexTag

require("sqlalchemy", extra="sqlalchemy")

from sqlalchemy.types import LargeBinary, String, Text, TypeDecorator  # noqa: E402

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import Dialect

    from styku_crypto.envelope import Envelope
    from styku_crypto.fields._blind_index import BlindIndexer

__all__ = ["BlindIndex", "EncryptedBytes", "EncryptedText"]

TenantArg = str | Callable[[], str]


def _tenant(tenant: TenantArg) -> str:
    value = tenant() if callable(tenant) else tenant
    if not isinstance(value, str) or not value:
        raise InvalidInputError("the column's tenant resolved to an empty or non-str value")
    return value


def _frozen_context(context: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    if not isinstance(context, Mapping) or not context:
        raise InvalidInputError("encrypted columns need a non-empty context (table, column)")
    items = tuple(sorted(context.items()))
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in items):
        raise InvalidInputError("context must map str to str")
    return items


class _EncryptedColumn:
    """Shared state of the encrypted column types."""

    envelope: Envelope
    tenant: TenantArg
    context: tuple[tuple[str, str], ...]
    data_class: Any

    def _setup(
        self, envelope: Envelope, tenant: TenantArg, context: Mapping[str, str], data_class: Any
    ) -> None:
        self.envelope = envelope
        self.tenant = tenant
        self.context = _frozen_context(context)
        self.data_class = data_class

    def _encrypt(self, data: bytes) -> bytes:
        kwargs: dict[str, Any] = {"tenant": _tenant(self.tenant), "context": dict(self.context)}
        if self.data_class is not None:
            kwargs["data_class"] = self.data_class
        return self.envelope.encrypt(data, **kwargs)

    def _decrypt(self, token: bytes) -> bytes:
        return self.envelope.decrypt(
            token,
            tenant=_tenant(self.tenant),
            context=dict(self.context),
            data_class=self._read_class(),
        )

    def _read_class(self) -> DataClass:
        """The class every value of this column must have (a reader always checks it)."""
        return DataClass.CUSTOMER if self.data_class is None else self.data_class


class EncryptedBytes(_EncryptedColumn, TypeDecorator[bytes]):
    """A ``bytes`` column stored as a binary envelope token (``LargeBinary``).

    Args:
        envelope: the :class:`~styku_crypto.envelope.Envelope` to encrypt with.
        tenant: tenant name, or a callable returning it.
        context: encryption context bound to every value of this column.
        data_class: ``DataClass.SENSITIVE`` for a second, independent key layer.

    Reading raises :class:`~styku_crypto.exceptions.DecryptionError` for a tampered or
    moved value, :class:`~styku_crypto.exceptions.KeyDestroyedError` after a shred.
    """

    impl = LargeBinary
    cache_ok = True

    def __init__(
        self,
        envelope: Envelope,
        *,
        tenant: TenantArg,
        context: Mapping[str, str],
        data_class: Any = None,
    ) -> None:
        super().__init__()
        self._setup(envelope, tenant, context, data_class)

    def process_bind_param(self, value: bytes | None, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        if not isinstance(value, bytes | bytearray | memoryview):
            raise InvalidInputError("EncryptedBytes columns take bytes")
        return self._encrypt(bytes(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return self._decrypt(bytes(value))


class EncryptedText(_EncryptedColumn, TypeDecorator[str]):
    """A ``str`` column stored as the envelope's URL-safe text token (``Text``).

    Same arguments and errors as :class:`EncryptedBytes`; values are UTF-8 encoded.
    """

    impl = Text
    cache_ok = True

    def __init__(
        self,
        envelope: Envelope,
        *,
        tenant: TenantArg,
        context: Mapping[str, str],
        data_class: Any = None,
    ) -> None:
        super().__init__()
        self._setup(envelope, tenant, context, data_class)

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidInputError("EncryptedText columns take str")
        kwargs: dict[str, Any] = {"tenant": _tenant(self.tenant), "context": dict(self.context)}
        if self.data_class is not None:
            kwargs["data_class"] = self.data_class
        return self.envelope.encrypt_text(value.encode("utf-8"), **kwargs)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        plaintext = self.envelope.decrypt_text(
            str(value),
            tenant=_tenant(self.tenant),
            context=dict(self.context),
            data_class=self._read_class(),
        )
        return plaintext.decode("utf-8")


class BlindIndex(TypeDecorator[str]):
    """A column holding blind-index tags; bound values (inserts AND query parameters) are
    turned into tags, so ``where(Model.email_index == "a@b.c")`` searches by equality.

    Args:
        indexer: the :class:`~styku_crypto.fields.BlindIndexer` (name, length, normaliser).
        tenant: tenant name, or a callable returning it.

    Rows keep the tag of the key version they were written under; after a tenant key
    rotation query with ``Model.email_index.in_(indexer.search_tags(v, tenant=t,
    versions=...))`` (:class:`~styku_crypto.fields.IndexTag` values, as returned by the
    indexer, are stored and compared unchanged) or re-index the rows.
    """

    impl = String(80)
    cache_ok = True

    def __init__(self, indexer: BlindIndexer, *, tenant: TenantArg) -> None:
        super().__init__()
        self.indexer = indexer
        self.tenant = tenant

    def process_bind_param(self, value: str | bytes | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, IndexTag):
            return str(value)
        return str(self.indexer.tag(value, tenant=_tenant(self.tenant)))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

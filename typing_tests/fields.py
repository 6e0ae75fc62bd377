"""Typed usage of styku_crypto.fields, the ORM types and streams (``mypy --strict``)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from styku_crypto.envelope import DataClass, Envelope
from styku_crypto.fields import (
    BlindIndexer,
    DeterministicEncryptor,
    IndexTag,
    RecordEncryptor,
    casefold_email,
    digits_only,
    normalize_text,
)
from styku_crypto.fields.sqlalchemy import BlindIndex, EncryptedBytes, EncryptedText
from styku_crypto.hazmat import AesSiv
from styku_crypto.keys import KeyStore


def fields_usage(store: KeyStore) -> None:
    env = Envelope(store)
    email = BlindIndexer(store, name="members.email", length=8, normalize=casefold_email)
    phone = BlindIndexer(store, name="members.phone", normalize=digits_only)
    name = BlindIndexer(store, name="members.name", normalize=normalize_text)
    records = RecordEncryptor(
        env,
        record_type="members",
        fields=["email", "ssn"],
        blind_indexes={"email": email},
        data_class=DataClass.SENSITIVE,
    )
    sealed: dict[str, Any] = records.encrypt(
        {"email": "a@b.c", "ssn": "1"}, tenant="acme", record_id="42"
    )
    plain: dict[str, Any] = records.decrypt(sealed, tenant="acme", record_id="42")
    tag: IndexTag = email.tag("a@b.c", tenant="acme")
    tags: list[IndexTag] = phone.search_tags("+1 555", tenant="acme", versions=[1, 2])
    version: int = name.version_of(tag)
    rate: float = email.false_positive_rate
    det = DeterministicEncryptor(store, name="members.ssn")
    token: str = det.encrypt("078-05-1120", tenant="acme", context={"table": "members"})
    value: Any = det.decrypt(token, tenant="acme", context={"table": "members"})
    siv = AesSiv(bytes(64))
    sealed_bytes: bytes = siv.encrypt(b"x", associated_data=[b"ad"])
    opened: bytes = siv.decrypt(sealed_bytes, associated_data=[b"ad"])
    del plain, tags, version, rate, value, opened


def orm_usage(env: Envelope, email_idx: BlindIndexer) -> type[DeclarativeBase]:
    class Base(DeclarativeBase):
        pass

    class Member(Base):
        __tablename__ = "members"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(40))
        email: Mapped[str] = mapped_column(
            EncryptedText(env, tenant="acme", context={"column": "members.email"})
        )
        email_index: Mapped[str] = mapped_column(BlindIndex(email_idx, tenant=lambda: "acme"))
        scan: Mapped[bytes] = mapped_column(
            EncryptedBytes(env, tenant="acme", context={"column": "members.scan"})
        )

    del Member
    return Base


def stream_usage(env: Envelope, path: Path) -> None:
    sink = io.BytesIO()
    with env.encrypt_stream(sink, tenant="acme", context={"object": "scan"}) as writer:
        writer.write(b"data")
    reader = env.decrypt_stream(
        io.BytesIO(sink.getvalue()), tenant="acme", context={"object": "scan"}
    )
    data: bytes = reader.read()
    n: int = env.encrypt_file(path, path.with_suffix(".stk"), tenant="acme", context={"o": "1"})
    m: int = env.decrypt_file(path.with_suffix(".stk"), path, tenant="acme", context={"o": "1"})
    part: bytes = env.decrypt_range(path, 10, 100, tenant="acme", context={"o": "1"})
    del data, n, m, part

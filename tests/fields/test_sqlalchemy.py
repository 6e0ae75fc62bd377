"""SQLAlchemy column types against a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import LargeBinary, String, Text, create_engine, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from styku_crypto.envelope import DataClass, Envelope
from styku_crypto.exceptions import DecryptionError, InvalidInputError, KeyDestroyedError
from styku_crypto.fields import BlindIndexer, casefold_email
from styku_crypto.fields.sqlalchemy import BlindIndex, EncryptedBytes, EncryptedText
from styku_crypto.keys import KeyStore
from tests._support import leaks

current_tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="acme")


def _models(env: Envelope, store: KeyStore) -> tuple[type[Any], type[Any]]:
    class Base(DeclarativeBase):
        pass

    email_idx = BlindIndexer(store, name="members.email", normalize=casefold_email)

    class Member(Base):
        __tablename__ = "members"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50))
        email: Mapped[str] = mapped_column(
            EncryptedText(env, tenant=current_tenant.get, context={"column": "members.email"})
        )
        email_index: Mapped[str] = mapped_column(
            BlindIndex(email_idx, tenant=current_tenant.get), index=True
        )
        ssn: Mapped[str | None] = mapped_column(
            EncryptedText(
                env,
                tenant=current_tenant.get,
                context={"column": "members.ssn"},
                data_class=DataClass.SENSITIVE,
            ),
            nullable=True,
        )
        scan: Mapped[bytes | None] = mapped_column(
            EncryptedBytes(env, tenant=current_tenant.get, context={"column": "members.scan"}),
            nullable=True,
        )

    return Base, Member


def _secret_rows(n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        row = {
            "id": i + 1,
            "name": f"member {i}",
            "email": f"Person.{i}.{os.urandom(4).hex()}@Example.com",
            "ssn": f"ssn-{os.urandom(6).hex()}",
            "scan": os.urandom(16) + b"scan-bytes",
        }
        for key in ("email", "ssn", "scan"):
            leaks.register_secret(row[key])
        rows.append(row)
    return rows


def _exercise(engine: Engine, env: Envelope, store: KeyStore) -> list[dict[str, Any]]:
    """Insert rows, look them up by blind index, check swaps fail; return the rows."""
    base, member = _models(env, store)
    base.metadata.create_all(engine)
    rows = _secret_rows(20)
    with Session(engine) as session:
        for r in rows:
            session.add(member(**r, email_index=r["email"]))
        session.commit()
    with Session(engine) as session:
        wanted = rows[7]
        found = session.scalars(
            select(member).where(member.email_index == wanted["email"].upper())
        ).all()
        assert [m.id for m in found] == [wanted["id"]]
        m = found[0]
        assert (m.email, m.ssn, m.scan) == (wanted["email"], wanted["ssn"], wanted["scan"])
        assert session.scalars(select(member).where(member.email_index == "nobody@x.y")).all() == []
        all_rows = session.scalars(select(member).order_by(member.id)).all()
        assert [a.email for a in all_rows] == [r["email"] for r in rows]
    with engine.begin() as conn:  # copy member 1's ssn ciphertext into the email column
        raw = conn.execute(text("SELECT ssn FROM members WHERE id = 1")).scalar_one()
        conn.execute(text("UPDATE members SET email = :v WHERE id = 2"), {"v": raw})
    with Session(engine) as session, pytest.raises(DecryptionError):
        session.get(member, 2)
    with Session(engine) as session:  # another tenant's session cannot read acme's rows
        token = current_tenant.set("globex")
        try:
            with pytest.raises(DecryptionError):
                session.get(member, 3)
        finally:
            current_tenant.reset(token)
    return rows


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    """A SQLite database file."""
    path = tmp_path / "app.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        yield engine, path
    finally:
        engine.dispose()


def test_sqlite_round_trip_search_and_no_plaintext_on_disk(
    sqlite_engine: tuple[Engine, Path], env: Envelope, store: KeyStore
) -> None:
    """SQLite: values round-trip, blind-index equality finds rows, the file holds no plaintext."""
    engine, path = sqlite_engine
    rows = _exercise(engine, env, store)
    engine.dispose()
    raw = path.read_bytes()
    for suffix in ("-wal", "-journal"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            raw += extra.read_bytes()
    for r in rows:
        for key in ("email", "ssn", "scan"):
            value = r[key] if isinstance(r[key], bytes) else r[key].encode()
            assert value not in raw
        assert r["email"].lower().encode() not in raw
    assert b"member 3" in raw  # control: unencrypted columns are plainly visible


def test_postgres_round_trip_and_no_plaintext_in_tables(
    postgres_url: str, env: Envelope, store: KeyStore
) -> None:
    """PostgreSQL: the same checks against a real server; a dump of the table shows no plaintext."""
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    try:
        rows = _exercise(engine, env, store)
        with engine.connect() as conn:
            dump = "\n".join(
                str(tuple(r)) for r in conn.execute(text("SELECT * FROM members")).all()
            )
        for r in rows:
            assert r["ssn"] not in dump
            assert r["email"] not in dump
            assert r["email"].lower() not in dump
    finally:
        engine.dispose()


def test_rotation_search_and_shred(tmp_path: Path, env: Envelope, store: KeyStore) -> None:
    """After rotation old rows are found with search_tags; after shred reads raise KeyDestroyed."""
    engine = create_engine(f"sqlite:///{tmp_path / 'r.db'}")
    base, member = _models(env, store)
    base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(member(id=1, name="a", email="old@x.io", email_index="old@x.io"))
        session.commit()
    store.rotate("acme")
    idx = member.__table__.c.email_index.type.indexer
    with Session(engine) as session:
        session.add(member(id=2, name="b", email="old@x.io", email_index="old@x.io"))
        session.commit()
        assert (
            len(session.scalars(select(member).where(member.email_index == "old@x.io")).all()) == 1
        )
        tags = idx.search_tags("OLD@x.io", tenant="acme", versions=[1, 2])
        found = session.scalars(select(member).where(member.email_index.in_(tags))).all()
        assert sorted(m.id for m in found) == [1, 2]
    store.shred("acme")
    with Session(engine) as session, pytest.raises(KeyDestroyedError):
        session.get(member, 1)
    engine.dispose()


def test_column_type_misuse_rejected(env: Envelope, store: KeyStore) -> None:
    """Encrypted columns require a context; wrong value types are refused before writing."""
    with pytest.raises(InvalidInputError):
        EncryptedText(env, tenant="acme", context={})
    col = EncryptedBytes(env, tenant="acme", context={"column": "t.c"})
    with pytest.raises(InvalidInputError):
        col.process_bind_param("not bytes", None)  # type: ignore[arg-type]
    txt = EncryptedText(env, tenant=lambda: "", context={"column": "t.c"})
    with pytest.raises(InvalidInputError):
        txt.process_bind_param("x", None)  # type: ignore[arg-type]
    assert isinstance(col.impl_instance, LargeBinary)
    assert isinstance(EncryptedText(env, tenant="acme", context={"c": "x"}).impl_instance, Text)


def test_bulk_update_through_type(tmp_path: Path, env: Envelope, store: KeyStore) -> None:
    """Core UPDATE statements encrypt bound values through the column type too."""
    engine = create_engine(f"sqlite:///{tmp_path / 'u.db'}")
    base, member = _models(env, store)
    base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(member(id=1, name="a", email="a@x.io", email_index="a@x.io"))
        session.commit()
        session.execute(
            update(member).where(member.id == 1).values(email="b@x.io", email_index="b@x.io")
        )
        session.commit()
        session.expire_all()
        m = session.scalars(select(member).where(member.email_index == "B@X.IO")).one()
        assert m.email == "b@x.io"
    engine.dispose()

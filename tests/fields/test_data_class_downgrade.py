"""Attack: a customer-key holder downgrades a SENSITIVE field or column (issue 12, item 1).

A service that holds only the customer hierarchy can produce authentic CUSTOMER tokens
for the same tenant and context. SENSITIVE readers (``RecordEncryptor``, the ORM types)
always pass ``data_class=`` so such a token is refused instead of read.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from styku_crypto.envelope import DataClass, Envelope
from styku_crypto.exceptions import DecryptionError
from styku_crypto.fields import RecordEncryptor
from styku_crypto.fields.sqlalchemy import EncryptedBytes, EncryptedText
from styku_crypto.keys import KeyStore
from tests.envelope.test_layers import _customer_only_copy

S = DataClass.SENSITIVE


def test_customer_only_holder_cannot_downgrade_a_sensitive_record(
    store: KeyStore, tmp_path: Path
) -> None:
    """Attack: a customer-only service writes a CUSTOMER token into a SENSITIVE field; refused."""
    reader = RecordEncryptor(Envelope(store), record_type="people", fields=["dob"], data_class=S)
    good = reader.encrypt({"dob": "1970-01-01"}, tenant="acme", record_id="7")
    with _customer_only_copy(store, tmp_path) as partial:
        attacker = RecordEncryptor(Envelope(partial), record_type="people", fields=["dob"])
        forged = attacker.encrypt({"dob": "2001-02-03"}, tenant="acme", record_id="7")
    with pytest.raises(DecryptionError):
        reader.decrypt(forged, tenant="acme", record_id="7")
    assert reader.decrypt(good, tenant="acme", record_id="7") == {"dob": "1970-01-01"}
    # The forged token is a well-formed, authentic CUSTOMER token: only the class check stops it.
    plain = Envelope(store).decrypt_text(
        forged["dob"],
        tenant="acme",
        context={"styku.record_type": "people", "styku.record_id": "7", "styku.field": "dob"},
    )
    assert plain


def test_orm_sensitive_column_refuses_customer_token(store: KeyStore, tmp_path: Path) -> None:
    """Attack on the ORM: a CUSTOMER token UPDATEd into a SENSITIVE column is refused."""
    env = Envelope(store)

    class Base(DeclarativeBase):
        pass

    class Person(Base):
        __tablename__ = "people"
        id: Mapped[int] = mapped_column(primary_key=True)
        dob: Mapped[str] = mapped_column(
            EncryptedText(env, tenant="acme", context={"column": "people.dob"}, data_class=S)
        )
        scan: Mapped[bytes] = mapped_column(
            EncryptedBytes(env, tenant="acme", context={"column": "people.scan"}, data_class=S)
        )

    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add(Person(id=1, dob="1970-01-01", scan=b"scan"))
        s.commit()
    with _customer_only_copy(store, tmp_path) as partial:
        limited = Envelope(partial)
        forged_dob = limited.encrypt_text(
            b"2001-02-03", tenant="acme", context={"column": "people.dob"}
        )
        forged_scan = limited.encrypt(b"evil", tenant="acme", context={"column": "people.scan"})
    with engine.begin() as conn:  # a database write, no keys needed beyond the customer one
        conn.execute(
            text("UPDATE people SET dob = :d, scan = :s WHERE id = 1"),
            {"d": forged_dob, "s": forged_scan},
        )
    with Session(engine) as s, pytest.raises(DecryptionError):
        s.get(Person, 1)
    engine.dispose()

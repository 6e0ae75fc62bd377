"""pytest-benchmark cases for field encryption, blind indexes and deterministic encryption."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from styku_crypto.envelope import DataKeyCache, Envelope
from styku_crypto.fields import (
    BlindIndexer,
    DeterministicEncryptor,
    RecordEncryptor,
    casefold_email,
)
from styku_crypto.keys import KeyStore

RECORD = {
    "id": 42,
    "first": "Jane",
    "last": "Doe",
    "email": "Jane.Doe@example.com",
    "ssn": "078-05-1120",
    "dob": "1980-01-01",
    "plan": "gold",
    "height_cm": 172,
    "weight_kg": 64.5,
    "country": "US",
}
FIELDS = ["email", "ssn", "dob"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyStore]:
    ks = KeyStore.open(tmp_path_factory.mktemp("bench") / "keys.db")
    ks.create_tenant("acme")
    yield ks
    ks.close()


def test_raw_aesgcm_three_values(benchmark: Any) -> None:
    aes = AESGCM(AESGCM.generate_key(bit_length=256))
    values = [RECORD[f].encode() for f in FIELDS]  # type: ignore[attr-defined]

    def run() -> None:
        for v in values:
            aes.encrypt(os.urandom(12), v, None)

    benchmark(run)


@pytest.mark.parametrize(
    ("share", "cache"),
    [(False, False), (True, False), (False, True)],
    ids=["key-per-field", "key-per-record", "data-key-cache"],
)
def test_record_encrypt(benchmark: Any, store: KeyStore, share: bool, cache: bool) -> None:
    idx = BlindIndexer(store, name="members.email", normalize=casefold_email)
    rec = RecordEncryptor(
        Envelope(store, data_key_cache=DataKeyCache() if cache else None),
        record_type="members",
        fields=FIELDS,
        blind_indexes={"email": idx},
        share_data_key=share,
    )
    benchmark(lambda: rec.encrypt(RECORD, tenant="acme", record_id="42"))


def test_envelope_one_field(benchmark: Any, store: KeyStore) -> None:
    env = Envelope(store)
    ctx = {"styku.field": "email", "styku.record_id": "42", "styku.record_type": "members"}
    benchmark(lambda: env.encrypt(b"sJane.Doe@example.com", tenant="acme", context=ctx))


def test_record_decrypt(benchmark: Any, store: KeyStore) -> None:
    rec = RecordEncryptor(Envelope(store), record_type="members", fields=FIELDS)
    sealed = rec.encrypt(RECORD, tenant="acme", record_id="42")
    benchmark(lambda: rec.decrypt(sealed, tenant="acme", record_id="42"))


def test_blind_index_tag(benchmark: Any, store: KeyStore) -> None:
    idx = BlindIndexer(store, name="members.email", normalize=casefold_email)
    benchmark(lambda: idx.tag("Jane.Doe@example.com", tenant="acme"))


def test_deterministic_encrypt(benchmark: Any, store: KeyStore) -> None:
    det = DeterministicEncryptor(store, name="members.ssn")
    benchmark(lambda: det.encrypt("078-05-1120", tenant="acme"))

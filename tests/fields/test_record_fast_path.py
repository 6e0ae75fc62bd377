"""RecordEncryptor's default-mode fast path (issue 15) gives Envelope.encrypt's exact bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from styku_crypto.envelope import Envelope
from styku_crypto.envelope import _envelope as envelope_module
from styku_crypto.envelope._format import TEXT_PREFIX, to_text
from styku_crypto.fields import RecordEncryptor
from styku_crypto.fields import _record as record_module
from styku_crypto.fields._codec import ABSENT, encode_value
from styku_crypto.keys import KeyStore

NAMES = ["email", "ssn", "dob"]
VALUES = st.one_of(st.text(max_size=40), st.binary(max_size=40), st.integers(), st.none())


@pytest.fixture(scope="module")
def shared_keystore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyStore]:
    """One real SQLite key store for every example (hypothesis reuses fixtures)."""
    ks = KeyStore.open(tmp_path_factory.mktemp("fast") / "keys.db")
    ks.create_tenant("acme")
    yield ks
    ks.close()


@settings(max_examples=60, deadline=None)
@given(
    record=st.dictionaries(st.sampled_from([*NAMES, "plan"]), VALUES, max_size=4),
    record_id=st.text(alphabet="0123456789abc", min_size=1, max_size=8),
    context=st.dictionaries(st.sampled_from(["table", "zone"]), st.text(max_size=8), max_size=2),
    seed=st.binary(min_size=32 * len(NAMES), max_size=32 * len(NAMES)),
)
def test_default_mode_equals_envelope_encrypt_per_field(
    shared_keystore: KeyStore,
    record: dict[str, Any],
    record_id: str,
    context: dict[str, str],
    seed: bytes,
) -> None:
    """With the same data keys, each field token is Envelope.encrypt of the field's value
    under the field's full context, byte for byte (absent fields: the absent marker)."""
    env = Envelope(shared_keystore)
    enc = RecordEncryptor(env, record_type="members", fields=NAMES)
    old_record, old_env = record_module._urandom, envelope_module._urandom
    record_module._urandom = lambda n: seed[:n]
    try:
        sealed = enc.encrypt(record, tenant="acme", record_id=record_id, context=context)
        for j, name in enumerate(NAMES):
            dek = seed[32 * j : 32 * (j + 1)]
            envelope_module._urandom = lambda n, dek=dek: dek[:n]
            ctx = {
                **context,
                "styku.field": name,
                "styku.record_id": record_id,
                "styku.record_type": "members",
            }
            plain = encode_value(record[name]) if name in record else ABSENT
            expected = to_text(env.encrypt(plain, tenant="acme", context=ctx))
            assert sealed[name] == expected
            assert sealed[name].startswith(TEXT_PREFIX)
    finally:
        record_module._urandom, envelope_module._urandom = old_record, old_env
    assert {k: v for k, v in sealed.items() if k not in NAMES} == {
        k: v for k, v in record.items() if k not in NAMES
    }

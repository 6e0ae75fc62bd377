"""Record field encryption: field and record identity bound, types preserved, indexes attached."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from styku_crypto.envelope import DataClass, Envelope
from styku_crypto.exceptions import (
    DecryptionError,
    InvalidInputError,
    KeyDestroyedError,
    UnsupportedFormatError,
)
from styku_crypto.fields import BlindIndexer, RecordEncryptor, casefold_email
from styku_crypto.keys import KeyStore
from tests._support import leaks

MEMBER = {
    "id": 42,
    "name": "Jane Doe",
    "email": "Jane.Doe@example.com",
    "ssn": "078-05-1120",
    "scan": b"\x00\x01binary-scan-bytes",
    "measurements": {"height_cm": 172.5, "tags": ["a", "b"]},
    "plan": "gold",
}
FIELDS = ["email", "ssn", "scan", "measurements"]


@pytest.fixture(params=[False, True], ids=["key-per-field", "key-per-record"])
def share(request: pytest.FixtureRequest) -> bool:
    """Run record tests with a fresh data key per field and with one per record."""
    return bool(request.param)


def _member_encryptor(env: Envelope, store: KeyStore, share: bool = False) -> RecordEncryptor:
    return RecordEncryptor(
        env,
        record_type="members",
        fields=FIELDS,
        blind_indexes={
            "email": BlindIndexer(store, name="members.email", normalize=casefold_email)
        },
        share_data_key=share,
    )


def test_round_trip_preserves_types_and_passthrough(
    env: Envelope, store: KeyStore, share: bool
) -> None:
    """Selected fields become tokens, others pass through, and decrypt restores the record."""
    enc = _member_encryptor(env, store, share)
    sealed = enc.encrypt(MEMBER, tenant="acme", record_id="42")
    for name in FIELDS:
        assert isinstance(sealed[name], str)
        assert sealed[name].startswith("stk1.")
    assert sealed["name"] == "Jane Doe"
    assert sealed["plan"] == "gold"
    assert sealed["email_bidx"].startswith("bi1.")
    assert enc.decrypt(sealed, tenant="acme", record_id="42") == MEMBER
    assert MEMBER["email"] == "Jane.Doe@example.com"  # input not modified


def test_value_swapped_between_fields_fails(env: Envelope, store: KeyStore, share: bool) -> None:
    """Moving a ciphertext into another field of the same record is detected."""
    enc = _member_encryptor(env, store, share)
    sealed = enc.encrypt(MEMBER, tenant="acme", record_id="42")
    sealed["email"], sealed["ssn"] = sealed["ssn"], sealed["email"]
    with pytest.raises(DecryptionError):
        enc.decrypt(sealed, tenant="acme", record_id="42")


def test_value_swapped_between_rows_fails(env: Envelope, store: KeyStore, share: bool) -> None:
    """Moving a ciphertext into the same field of another record is detected."""
    enc = _member_encryptor(env, store, share)
    a = enc.encrypt(MEMBER, tenant="acme", record_id="42")
    b = enc.encrypt({**MEMBER, "ssn": "219-09-9999"}, tenant="acme", record_id="43")
    a["ssn"] = b["ssn"]
    with pytest.raises(DecryptionError):
        enc.decrypt(a, tenant="acme", record_id="42")
    with pytest.raises(DecryptionError):
        enc.decrypt(b, tenant="acme", record_id="42")


def test_other_record_type_tenant_or_context_fails(
    env: Envelope, store: KeyStore, share: bool
) -> None:
    """Another record type, tenant or caller context cannot read the fields."""
    enc = _member_encryptor(env, store, share)
    sealed = enc.encrypt(MEMBER, tenant="acme", record_id="42", context={"table": "members"})
    staff = RecordEncryptor(env, record_type="staff", fields=FIELDS, share_data_key=share)
    with pytest.raises(DecryptionError):
        staff.decrypt(sealed, tenant="acme", record_id="42", context={"table": "members"})
    with pytest.raises(DecryptionError):
        enc.decrypt(sealed, tenant="globex", record_id="42", context={"table": "members"})
    with pytest.raises(DecryptionError):
        enc.decrypt(sealed, tenant="acme", record_id="42")


def test_sensitive_fields_need_both_layers(env: Envelope, store: KeyStore) -> None:
    """SENSITIVE records use two-layer tokens and still round-trip."""
    enc = RecordEncryptor(
        env, record_type="members", fields=["ssn"], data_class=DataClass.SENSITIVE
    )
    sealed = enc.encrypt(MEMBER, tenant="acme", record_id="42")
    customer = RecordEncryptor(env, record_type="members", fields=["ssn"])
    assert len(sealed["ssn"]) > len(customer.encrypt(MEMBER, tenant="acme", record_id="42")["ssn"])
    assert enc.decrypt(sealed, tenant="acme", record_id="42")["ssn"] == MEMBER["ssn"]


def test_none_and_missing_fields_are_both_encrypted(
    env: Envelope, store: KeyStore, share: bool
) -> None:
    """None and absent fields are each hidden behind a token; decrypt restores both exactly."""
    enc = _member_encryptor(env, store, share)
    sealed = enc.encrypt({"id": 1, "email": None}, tenant="acme", record_id="1")
    assert isinstance(sealed["email"], str)
    assert sealed["email_bidx"] is None
    assert isinstance(sealed["ssn"], str)  # absent, but the stored row does not show it
    assert enc.decrypt(sealed, tenant="acme", record_id="1") == {"id": 1, "email": None}
    # The absent marker is as long as an empty string: the token length does not tell.
    empty = enc.encrypt({"id": 1, "email": None, "ssn": ""}, tenant="acme", record_id="1")
    assert len(empty["ssn"]) == len(sealed["ssn"])
    assert enc.decrypt(empty, tenant="acme", record_id="1")["ssn"] == ""
    nothing = enc.encrypt({"id": 1}, tenant="acme", record_id="1")
    assert set(nothing) == set(sealed)
    assert enc.decrypt(nothing, tenant="acme", record_id="1") == {"id": 1}


def test_blind_index_matches_normalised_query(env: Envelope, store: KeyStore, share: bool) -> None:
    """The index field equals the indexer's tag of a differently-cased query."""
    enc = _member_encryptor(env, store, share)
    sealed = enc.encrypt(MEMBER, tenant="acme", record_id="42")
    idx = enc.blind_indexes["email"]
    assert sealed["email_bidx"] == idx.tag("  jane.doe@EXAMPLE.com", tenant="acme")


def test_bad_configuration_and_inputs(env: Envelope, store: KeyStore) -> None:
    """Misconfiguration and malformed records raise typed errors."""
    idx = BlindIndexer(store, name="x")
    with pytest.raises(InvalidInputError):
        RecordEncryptor(env, record_type="bad type", fields=["a"])
    with pytest.raises(InvalidInputError):
        RecordEncryptor(env, record_type="t", fields=[])
    with pytest.raises(InvalidInputError):
        RecordEncryptor(env, record_type="t", fields=["a"], blind_indexes={"b": idx})
    with pytest.raises(InvalidInputError):
        RecordEncryptor(env, record_type="t", fields=["a", "a_bidx"], blind_indexes={"a": idx})
    enc = RecordEncryptor(env, record_type="t", fields=["a"])
    with pytest.raises(InvalidInputError):
        enc.encrypt({"a": 1}, tenant="acme", record_id="1", context={"styku.field": "b"})
    with pytest.raises(InvalidInputError):
        enc.encrypt({"a": 1}, tenant="acme", record_id="")
    with pytest.raises(InvalidInputError):
        enc.encrypt({"a": object()}, tenant="acme", record_id="1")
    with pytest.raises(UnsupportedFormatError):
        enc.decrypt({"a": 5}, tenant="acme", record_id="1")
    with pytest.raises(UnsupportedFormatError):
        enc.decrypt({"a": "plain text"}, tenant="acme", record_id="1")


def test_shredded_tenant_and_no_leaks(env: Envelope, store: KeyStore, share: bool) -> None:
    """After shred, fields raise KeyDestroyedError; no plaintext in reprs or errors."""
    enc = _member_encryptor(env, store, share)
    secret = "ssn-secret-078-05-1120"
    leaks.register_secret(secret)
    sealed = enc.encrypt({**MEMBER, "ssn": secret}, tenant="globex", record_id="7")
    assert secret not in str(sealed)
    leaks.assert_no_secret_in("record encryptor repr", repr(enc))
    store.shred("globex")
    with pytest.raises(KeyDestroyedError) as info:
        enc.decrypt(sealed, tenant="globex", record_id="7")
    leaks.assert_no_secret_in("record error", str(info.value))


json_scalars = (
    st.none() | st.booleans() | st.integers() | st.text(max_size=30) | st.binary(max_size=30)
)


@given(
    record=st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), json_scalars, max_size=4),
    record_id=st.text(min_size=1, max_size=10),
)
@settings(max_examples=25)
def test_any_record_round_trips(
    record_env: Envelope, record: dict[str, Any], record_id: str
) -> None:
    """Any record of scalar values round-trips for any record id."""
    enc = RecordEncryptor(record_env, record_type="t", fields=["a", "b", "c"])
    sealed = enc.encrypt(record, tenant="acme", record_id=record_id)
    assert enc.decrypt(sealed, tenant="acme", record_id=record_id) == record


@pytest.fixture(scope="module")
def record_env(tmp_path_factory: pytest.TempPathFactory) -> Envelope:
    """A module-wide envelope for property tests."""
    ks = KeyStore.open(tmp_path_factory.mktemp("rec") / "keys.db")
    ks.create_tenant("acme")
    return Envelope(ks)


def test_shared_key_tokens_are_ordinary_tokens(env: Envelope, store: KeyStore) -> None:
    """Per-record-key field tokens decrypt with Envelope.decrypt_text; records never share keys."""
    enc = _member_encryptor(env, store, share=True)
    a = enc.encrypt(MEMBER, tenant="acme", record_id="42")
    b = enc.encrypt(MEMBER, tenant="acme", record_id="42")
    ctx = {"styku.record_type": "members", "styku.record_id": "42", "styku.field": "ssn"}
    assert env.decrypt_text(a["ssn"], tenant="acme", context=ctx) == b"s" + b"078-05-1120"
    header_len = 4 + 85
    raw = [env_raw(t) for t in (a["ssn"], a["email"], b["ssn"])]
    assert raw[0][:header_len] == raw[1][:header_len]  # same record: one wrapped data key
    assert raw[0][:header_len] != raw[2][:header_len]  # another encryption: a fresh key
    assert raw[0][1] == 3  # suite 3


def env_raw(text: str) -> bytes:
    import base64

    body = text.removeprefix("stk1.")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


@pytest.mark.parametrize("share", [False, True])
def test_sensitive_records_both_modes(env: Envelope, store: KeyStore, share: bool) -> None:
    """SENSITIVE records round-trip with per-field and per-record data keys."""
    enc = RecordEncryptor(
        env, record_type="m", fields=["ssn"], data_class=DataClass.SENSITIVE, share_data_key=share
    )
    sealed = enc.encrypt(MEMBER, tenant="acme", record_id="1")
    assert enc.decrypt(sealed, tenant="acme", record_id="1") == MEMBER


_KEYS = st.sampled_from(["styku", "styku-x", "styku/x", "stykt", "", "table", "\U0001f600", "z"])


@given(
    context=st.dictionaries(
        _KEYS | st.text(max_size=12).filter(lambda k: not k.startswith("styku.")),
        st.text(max_size=12),
    ),
    record_id=st.text(min_size=1, max_size=10),
    names=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=4),
)
@example(context={"styku-x": "1", "styku/x": "2", "a": "\ud800"}, record_id="r", names=["f"])
@example(context={"styku.field": "x"}, record_id="r", names=["f"])
@settings(max_examples=80)
def test_shared_context_encoding_is_canonical(
    record_env: Envelope, context: dict[str, str], record_id: str, names: list[str]
) -> None:
    """The per-record context fast path encodes exactly like the envelope's canonical encoder."""
    from styku_crypto.envelope._format import encode_context

    enc = RecordEncryptor(record_env, record_type="t", fields=["x"], share_data_key=True)
    try:
        expected = [encode_context(enc._context(n, record_id, context)) for n in names]
    except InvalidInputError:
        with pytest.raises(InvalidInputError):
            enc._encoded_contexts(names, record_id, context)
        return
    assert enc._encoded_contexts(names, record_id, context) == expected


def test_default_field_tokens_are_one_shot_envelope_tokens(env: Envelope, store: KeyStore) -> None:
    """Default-mode field tokens are suite-1 tokens, each with its own data key, that
    Envelope.decrypt_text opens with the field's full context and nothing else."""
    enc = _member_encryptor(env, store)
    sealed = enc.encrypt(MEMBER, tenant="acme", record_id="42", context={"table": "m", "z": "1"})
    ctx = {"table": "m", "z": "1", "styku.record_type": "members", "styku.record_id": "42"}
    headers = set()
    for name in FIELDS:
        raw = env_raw(sealed[name])
        assert raw[1] == 1  # suite 1
        headers.add(raw[: 4 + 85])
        plain = env.decrypt_text(sealed[name], tenant="acme", context={**ctx, "styku.field": name})
        assert plain[1:] != b"" or MEMBER[name] == ""
        with pytest.raises(DecryptionError):
            env.decrypt_text(sealed[name], tenant="acme", context={**ctx, "styku.field": "x"})
    assert len(headers) == len(FIELDS)  # a fresh data key per field


def test_cached_data_keys_respect_limits_and_rotation(store: KeyStore) -> None:
    """With a DataKeyCache, fields are suite-3 tokens under the cached key, every field
    counts against max_messages, and a rotation retires the cached key."""
    from styku_crypto.envelope import DataKeyCache

    env = Envelope(store, data_key_cache=DataKeyCache(max_messages=3))
    enc = _member_encryptor(env, store)
    a = enc.encrypt(MEMBER, tenant="acme", record_id="1")  # 4 fields: 3 + 1 on a new key
    b = enc.encrypt(MEMBER, tenant="acme", record_id="2")
    for sealed, rid in ((a, "1"), (b, "2")):
        assert enc.decrypt(sealed, tenant="acme", record_id=rid) == MEMBER
    heads = [env_raw(r[n])[: 4 + 85] for r in (a, b) for n in FIELDS]
    assert all(h[1] == 3 for h in heads)
    assert [heads.index(h) for h in heads] == [0, 0, 0, 3, 3, 3, 6, 6]
    with pytest.raises(DecryptionError):
        enc.decrypt({**a, "ssn": b["ssn"]}, tenant="acme", record_id="1")
    store.rotate("acme")
    c = enc.encrypt(MEMBER, tenant="acme", record_id="3")
    assert int.from_bytes(env_raw(c["ssn"])[5:9], "big") == 2
    assert enc.decrypt(c, tenant="acme", record_id="3") == MEMBER


@pytest.mark.parametrize("mode", ["fresh", "cached", "shared"])
def test_one_debug_event_per_token(
    store: KeyStore, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Encrypting a record emits the envelope.encrypt events the envelope itself would."""
    import logging

    from styku_crypto.envelope import DataKeyCache

    cache = DataKeyCache() if mode == "cached" else None
    env = Envelope(store, data_key_cache=cache)
    enc = _member_encryptor(env, store, share=mode == "shared")
    enc.encrypt(MEMBER, tenant="acme", record_id="1")  # warm the cache
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="styku_crypto"):
        enc.encrypt(MEMBER, tenant="acme", record_id="2")
    events = [r.styku_event for r in caplog.records if getattr(r, "styku_event", {}).get("event")]
    assert [e["event"] for e in events] == ["envelope.encrypt"] * (
        1 if mode == "shared" else len(FIELDS)
    )
    assert {e["suite"] for e in events} == {1 if mode == "fresh" else 3}

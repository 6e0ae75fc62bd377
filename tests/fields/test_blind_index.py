"""Blind indexes: keyed per tenant and field, truncated, normalised, versioned across rotation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from styku_crypto.exceptions import (
    InvalidInputError,
    KeyDestroyedError,
    UnsupportedFormatError,
)
from styku_crypto.fields import BlindIndexer, casefold_email, digits_only, normalize_text
from styku_crypto.keys import KeyStore
from tests._support import leaks


def test_equal_values_equal_tags_and_normalisation(store: KeyStore) -> None:
    """Normalised equal e-mails give equal tags; different ones differ."""
    idx = BlindIndexer(store, name="members.email", normalize=casefold_email)
    a = idx.tag(" Alice@Example.COM ", tenant="acme")
    assert a == idx.tag("alice@example.com", tenant="acme")
    assert a != idx.tag("bob@example.com", tenant="acme")
    assert a.startswith("bi1.1.")


def test_tags_are_per_tenant_and_per_field(store: KeyStore) -> None:
    """The same value under another tenant or another index name gives an unrelated tag."""
    email = BlindIndexer(store, name="members.email")
    other = BlindIndexer(store, name="members.backup_email")
    assert email.tag("x@y.z", tenant="acme") != email.tag("x@y.z", tenant="globex")
    assert email.tag("x@y.z", tenant="acme") != other.tag("x@y.z", tenant="acme")


@given(length=st.integers(min_value=4, max_value=32), value=st.text(max_size=40))
@settings(max_examples=20)
def test_truncation_length(
    tmp_path_factory: pytest.TempPathFactory, length: int, value: str
) -> None:
    """A tag carries exactly ``length`` bytes and the documented false-positive rate."""
    ks = _shared_store(tmp_path_factory)
    idx = BlindIndexer(ks, name="t.v", length=length)
    tag = idx.tag(value, tenant="acme")
    assert idx.version_of(tag) == 1
    assert idx.false_positive_rate == 2.0 ** (-8 * length)
    assert idx.expected_false_positives(10**6) == pytest.approx(10**6 * 2.0 ** (-8 * length))


_STORES: dict[str, KeyStore] = {}


def _shared_store(factory: pytest.TempPathFactory) -> KeyStore:
    if "s" not in _STORES:
        ks = KeyStore.open(factory.mktemp("bi") / "keys.db")
        ks.create_tenant("acme")
        _STORES["s"] = ks
    return _STORES["s"]


def test_rotation_versions_tags_and_search(store: KeyStore) -> None:
    """After rotation new tags use the new version; search_tags finds rows of both versions."""
    idx = BlindIndexer(store, name="members.email", normalize=casefold_email)
    old = idx.tag("a@b.c", tenant="acme")
    store.rotate("acme")
    new = idx.tag("a@b.c", tenant="acme")
    assert (idx.version_of(old), idx.version_of(new)) == (1, 2)
    assert old != new
    assert idx.needs_reindex(old, tenant="acme")
    assert not idx.needs_reindex(new, tenant="acme")
    assert set(idx.search_tags("A@B.C", tenant="acme", versions=[1, 2])) == {old, new}
    assert idx.search_tags("a@b.c", tenant="acme") == [new]


def test_shredded_tenant_cannot_compute_tags(store: KeyStore) -> None:
    """After crypto-shredding, index tags can no longer be computed (no offline lookups)."""
    idx = BlindIndexer(store, name="members.email")
    idx.tag("a@b.c", tenant="globex")
    store.shred("globex")
    with pytest.raises(KeyDestroyedError):
        idx.tag("a@b.c", tenant="globex")


def test_bad_inputs_rejected(store: KeyStore) -> None:
    """Bad names, lengths, value types and foreign tags are refused with typed errors."""
    with pytest.raises(InvalidInputError):
        BlindIndexer(store, name="bad name")
    with pytest.raises(InvalidInputError):
        BlindIndexer(store, name="ok", length=3)
    with pytest.raises(InvalidInputError):
        BlindIndexer(store, name="ok", length=33)
    idx = BlindIndexer(store, name="ok")
    with pytest.raises(InvalidInputError):
        idx.tag(42, tenant="acme")  # type: ignore[arg-type]
    for bad in ("", "bi2.1.AAAAAAAAAAA", "bi1.x.AAAAAAAAAAA", "bi1.1.AA", "bi1.1.!!!!"):
        with pytest.raises(UnsupportedFormatError):
            idx.version_of(bad)


def test_str_and_bytes_do_not_collide(store: KeyStore) -> None:
    """A str value and the bytes of its UTF-8 encoding get different tags."""
    idx = BlindIndexer(store, name="t.v")
    assert idx.tag("abc", tenant="acme") != idx.tag(b"abc", tenant="acme")


def test_normalisers() -> None:
    """The shipped normalisers fold case, width and whitespace, and keep digits."""
    assert casefold_email("  Jöhn.DOE@Example.org\n") == "jöhn.doe@example.org"
    assert normalize_text(" \uff2aane   DOE ") == "jane doe"
    assert digits_only("+1 (555) 010-9999") == "15550109999"


def test_repr_has_no_secret(store: KeyStore) -> None:
    """repr names the index only; the derived key never appears."""
    idx = BlindIndexer(store, name="members.email")
    key, _ = store._derive_key(
        "acme", purpose="customer", label=b"styku.blind-index/v1/members.email/8"
    )
    leaks.register_secret(key)
    leaks.assert_no_secret_in("BlindIndexer repr", repr(idx))


class _PlainSource:
    """A key source that is not a KeyStore: only ``_derive_key``."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store

    def _derive_key(
        self,
        tenant: str,
        *,
        purpose: str,
        label: bytes,
        length: int = 32,
        version: int | None = None,
    ) -> tuple[bytes, int]:
        return self.store._derive_key(
            tenant, purpose=purpose, label=label, length=length, version=version
        )


def test_tags_are_truncated_hmac_sha256_of_the_derived_key(store: KeyStore) -> None:
    """A tag is HMAC-SHA-256 under the derived per-tenant, per-index key, on every path."""
    import hashlib
    import hmac

    from styku_crypto.fields._codec import b64e

    idx = BlindIndexer(store, name="members.email", length=8, normalize=casefold_email)
    plain = BlindIndexer(_PlainSource(store), name="members.email", length=8)
    store.rotate("acme")
    for version in (None, 1, 2):
        key, used = store._derive_key(
            "acme",
            purpose="customer",
            label=b"styku.blind-index/v1/members.email/8",
            version=version,
        )
        leaks.register_secret(key)
        mac = hmac.digest(key, b"s" + b"jane@example.com", hashlib.sha256)[:8]
        expected = f"bi1.{used}.{b64e(mac)}"
        for _ in range(2):  # first call keys the HMAC state, the second reuses it
            assert idx.tag(" Jane@Example.com", tenant="acme", version=version) == expected
            assert plain.tag("jane@example.com", tenant="acme", version=version) == expected


def test_rotation_by_another_store_seen_without_key_cache(tmp_path: Path) -> None:
    """With the store's key cache off, a rotation made through another store object (another
    process) changes the tag version on the very next call, and a shred stops tags at once."""
    path = tmp_path / "keys.db"
    writer = KeyStore.open(path)
    writer.create_tenant("acme")
    reader = KeyStore.open(path, cache_ttl=0)
    try:
        idx = BlindIndexer(reader, name="members.email")
        first = idx.tag("a@b.c", tenant="acme")
        writer.rotate("acme")
        second = idx.tag("a@b.c", tenant="acme")
        assert (idx.version_of(first), idx.version_of(second)) == (1, 2)
        assert idx.needs_reindex(first, tenant="acme")
        writer.shred("acme")
        with pytest.raises(KeyDestroyedError):
            idx.tag("a@b.c", tenant="acme")
    finally:
        reader.close()
        writer.close()

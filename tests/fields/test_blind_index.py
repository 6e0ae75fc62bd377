"""Blind indexes: keyed per tenant and field, truncated, normalised, versioned across rotation."""

from __future__ import annotations

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

"""Reserved ``styku-internal-*`` tenants: no application tenant name reaches them (12.4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from styku_crypto.envelope import Envelope
from styku_crypto.exceptions import InvalidInputError, KeyDestroyedError
from styku_crypto.incidents import INCIDENT_TENANT, IncidentLog
from styku_crypto.keys import KeyStore
from styku_crypto.passwords import PepperSet
from styku_crypto.passwords._pepper import PEPPER_TENANT

RESERVED = [
    PEPPER_TENANT,
    INCIDENT_TENANT,
    "styku-internal-anything",
    "STYKU-INTERNAL-passwords",
    "Styku-Internal-incidents",
]


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    """A SQLite store whose peppers and incident-log keys already exist."""
    ks = KeyStore.open(tmp_path / "keys.db")
    PepperSet.from_key_store(ks)
    IncidentLog.open(store=ks).open_incident("t", severity="low", description="d")
    return ks


@pytest.mark.parametrize("name", RESERVED)
def test_create_tenant_refuses_reserved_names(tmp_path: Path, name: str) -> None:
    """Attack: claiming a reserved name first (before the library creates it) is refused."""
    with KeyStore.open(tmp_path / "fresh.db") as ks:
        with pytest.raises(InvalidInputError, match="reserved"):
            ks.create_tenant(name)
        assert ks.tenants() == []


@pytest.mark.parametrize("name", RESERVED)
def test_shred_refuses_reserved_names(store: KeyStore, name: str) -> None:
    """Attack: an app that shreds user-chosen names cannot shred the peppers or incident keys."""
    with pytest.raises(InvalidInputError, match="reserved"):
        store.shred(name)
    assert PepperSet.from_key_store(store).current.id == "ks1"
    assert IncidentLog.open(store=store).verify().entries == 1


@pytest.mark.parametrize("name", [PEPPER_TENANT, INCIDENT_TENANT])
def test_envelope_cannot_encrypt_under_internal_keys(store: KeyStore, name: str) -> None:
    """Attack: a user-chosen tenant name cannot make the envelope use internal key material."""
    env = Envelope(store)
    with pytest.raises(InvalidInputError, match="reserved"):
        env.encrypt(b"x", tenant=name, context={"f": "v"})


def test_internal_features_still_create_and_rotate(store: KeyStore) -> None:
    """The library's own features create their tenants; rotation stays allowed (documented)."""
    names = [t.name for t in store.tenants()]
    assert PEPPER_TENANT in names
    assert INCIDENT_TENANT in names
    store.rotate(PEPPER_TENANT)
    assert PepperSet.from_key_store(store).current.id == "ks2"


def test_deliberate_off_switch_is_a_separate_call(store: KeyStore) -> None:
    """Only the explicitly named internal call shreds a reserved tenant."""
    store._shred_reserved(PEPPER_TENANT)
    with pytest.raises(KeyDestroyedError):
        PepperSet.from_key_store(store)
    with pytest.raises(InvalidInputError):
        store._shred_reserved("acme")

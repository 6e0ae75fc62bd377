"""Peppers: secret keys mixed into passwords before Argon2, with rotation.

A pepper is kept outside the database (configuration, a secrets manager, the
key store), so a stolen password table alone cannot be attacked offline. The
password is pre-hashed as ``HMAC-SHA256(pepper, NFKC(password) as UTF-8)`` and
the 32-byte MAC is Argon2's input. The pepper's *id* (never the secret) is
written into the stored hash, so a :class:`PepperSet` can keep verifying
hashes made with older peppers while new hashes use the current one.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NoReturn

from styku_crypto.exceptions import (
    InvalidInputError,
    KeyDestroyedError,
    KeyNotFoundError,
    KeyStoreError,
)

if TYPE_CHECKING:
    from styku_crypto.keys import KeyStore

__all__ = ["PEPPER_TENANT", "Pepper", "PepperSet"]

#: The reserved internal tenant whose key hierarchy yields key-store peppers.
PEPPER_TENANT = "styku-internal-passwords"
_PEPPER_LABEL = b"styku-crypto/password-pepper/v1"

_ID = re.compile(r"[A-Za-z0-9.-]{1,32}\Z")
_MIN_KEY = 32


class Pepper:
    """One pepper: an id (stored in hashes) and a secret key (never shown).

    Args:
        pepper_id: 1-32 characters from ``A-Z a-z 0-9 . -``; recorded in every
            hash made with this pepper.
        key: at least 32 random bytes.

    Raises:
        InvalidInputError: bad id or a key shorter than 32 bytes.

    .. warning::
       The key is a secret. It never appears in ``repr``/``str``, cannot be
       pickled, and has no ``bytes()`` conversion. Losing it makes every hash
       made with it unverifiable: back it up like a root key.
    """

    __slots__ = ("__key", "_id")

    def __init__(self, pepper_id: str, key: bytes) -> None:
        if not isinstance(pepper_id, str) or not _ID.match(pepper_id):
            raise InvalidInputError("pepper id must be 1-32 characters of A-Z a-z 0-9 . -")
        if not isinstance(key, bytes | bytearray) or len(key) < _MIN_KEY:
            raise InvalidInputError(f"pepper key must be at least {_MIN_KEY} bytes")
        self._id = pepper_id
        self.__key = bytes(key)

    @classmethod
    def generate(cls, pepper_id: str) -> Pepper:
        """Return a new pepper with a fresh 32-byte random key."""
        return cls(pepper_id, os.urandom(32))

    @property
    def id(self) -> str:
        """The pepper's public identifier."""
        return self._id

    def mac(self, data: bytes) -> bytes:
        """HMAC-SHA256 of *data* under this pepper (the Argon2 input)."""
        return hmac.new(self.__key, data, hashlib.sha256).digest()

    def export_key(self) -> bytes:
        """Return the raw key, for backing it up. Handle the result as a secret."""
        return self.__key

    def __repr__(self) -> str:
        return f"Pepper(id={self._id!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pepper):
            return NotImplemented
        return self._id == other._id and hmac.compare_digest(self.__key, other.__key)

    def __hash__(self) -> int:
        return hash(("Pepper", self._id))

    def __reduce__(self) -> NoReturn:
        raise TypeError("Pepper objects cannot be pickled")

    def __getstate__(self) -> NoReturn:
        raise TypeError("Pepper objects cannot be pickled")


class PepperSet:
    """The current pepper plus older ones still accepted for verification.

    New hashes use :attr:`current`; hashes recording an old id still verify
    and :meth:`PasswordHasher.verify_and_update` returns a re-peppered hash.
    Drop an old pepper once no stored hash uses it (``needs_rehash`` tells).

    Args:
        current: the pepper for new hashes.
        old: retired peppers, verification only.
        required: the policy that every stored hash must be peppered: a
            hasher using this set refuses unpeppered Argon2 and legacy hashes
            that were never pepper-wrapped, with
            :class:`~styku_crypto.exceptions.UnpepperedHashError` (the same as
            ``PasswordHasher(require_pepper=True)``).

    Raises:
        InvalidInputError: duplicate ids.
    """

    __slots__ = ("_by_id", "_current", "_required")

    def __init__(
        self, current: Pepper, old: Iterable[Pepper] = (), *, required: bool = False
    ) -> None:
        if not isinstance(current, Pepper):
            raise TypeError("current must be a Pepper")
        self._current = current
        self._required = bool(required)
        self._by_id: dict[str, Pepper] = {current.id: current}
        for pepper in old:
            if pepper.id in self._by_id:
                raise InvalidInputError(f"duplicate pepper id {pepper.id!r}")
            self._by_id[pepper.id] = pepper

    @property
    def current(self) -> Pepper:
        """The pepper used for new hashes."""
        return self._current

    @property
    def required(self) -> bool:
        """Whether hashers using this set refuse unpeppered and unwrapped legacy hashes."""
        return self._required

    def get(self, pepper_id: str) -> Pepper | None:
        """The pepper with *pepper_id*, or None when unknown."""
        return self._by_id.get(pepper_id)

    def __iter__(self) -> Iterator[Pepper]:
        return iter(self._by_id.values())

    def __repr__(self) -> str:
        old = [p for p in self._by_id if p != self._current.id]
        return f"PepperSet(current={self._current.id!r}, old={old!r}, required={self._required})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("PepperSet objects cannot be pickled")

    @classmethod
    def from_key_store(
        cls, store: KeyStore, *, tenant: str = PEPPER_TENANT, required: bool = False
    ) -> PepperSet:
        """Peppers derived from a key store, one per version of a reserved tenant's key.

        Each pepper is HKDF-derived (``KeyStore._derive_key``) from one version of
        *tenant*'s customer key with a label used for nothing else, and has the id
        ``ks<version>``. The primary version is the current pepper; every older live
        version is kept for verification. The tenant is created on first use.

        Rotating peppers is ``store.rotate(tenant)`` followed by a new
        ``PepperSet.from_key_store(store)``: old hashes keep verifying and are
        re-peppered by ``verify_and_update`` on the next successful login. The
        pepper secrets live only under the store's root key (HSM or KMS in
        production), never beside the password table.

        .. danger::
            Shredding *tenant* destroys every pepper, so no stored password hash
            can be verified afterwards. ``KeyStore.shred`` refuses the reserved
            ``styku-internal-*`` names, so no application tenant name can do it.

        Raises:
            KeyDestroyedError: *tenant* was shredded.
            KeyStoreError: the store or its root key is unusable.
        """
        try:
            info = store.describe(tenant)
        except KeyNotFoundError:
            with contextlib.suppress(KeyStoreError):  # created concurrently by another process
                store._create_internal_tenant(tenant)
            info = store.describe(tenant)
        if info.shredded_at is not None:
            raise KeyDestroyedError("the key-store pepper tenant was shredded")
        versions = sorted((k.version for k in info.keys if k.purpose == "customer"), reverse=True)
        if not versions:
            raise KeyNotFoundError("the key-store pepper tenant has no customer key")
        peppers = []
        for version in versions:
            key, got = store._derive_key(
                tenant, purpose="customer", label=_PEPPER_LABEL, length=32, version=version
            )
            peppers.append(Pepper(f"ks{got}", key))
        return cls(peppers[0], peppers[1:], required=required)

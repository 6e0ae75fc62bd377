"""Peppers: secret keys mixed into passwords before Argon2, with rotation.

A pepper is kept outside the database (configuration, a secrets manager, the
key store), so a stolen password table alone cannot be attacked offline. The
password is pre-hashed as ``HMAC-SHA256(pepper, NFKC(password) as UTF-8)`` and
the 32-byte MAC is Argon2's input. The pepper's *id* (never the secret) is
written into the stored hash, so a :class:`PepperSet` can keep verifying
hashes made with older peppers while new hashes use the current one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Iterator
from typing import NoReturn

from styku_crypto.exceptions import InvalidInputError

__all__ = ["Pepper", "PepperSet"]

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

    Raises:
        InvalidInputError: duplicate ids.
    """

    __slots__ = ("_by_id", "_current")

    def __init__(self, current: Pepper, old: Iterable[Pepper] = ()) -> None:
        self._current = current
        self._by_id: dict[str, Pepper] = {current.id: current}
        for pepper in old:
            if pepper.id in self._by_id:
                raise InvalidInputError(f"duplicate pepper id {pepper.id!r}")
            self._by_id[pepper.id] = pepper

    @property
    def current(self) -> Pepper:
        """The pepper used for new hashes."""
        return self._current

    def get(self, pepper_id: str) -> Pepper | None:
        """The pepper with *pepper_id*, or None when unknown."""
        return self._by_id.get(pepper_id)

    def __iter__(self) -> Iterator[Pepper]:
        return iter(self._by_id.values())

    def __repr__(self) -> str:
        old = [p for p in self._by_id if p != self._current.id]
        return f"PepperSet(current={self._current.id!r}, old={old!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("PepperSet objects cannot be pickled")

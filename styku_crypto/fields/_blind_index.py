"""Blind indexes: keyed, truncated, versioned equality tags for encrypted fields."""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac

from styku_crypto.exceptions import InvalidInputError, UnsupportedFormatError
from styku_crypto.fields._codec import KeySource, b64d, b64e, encode_value, parse_versioned

__all__ = ["BlindIndexer", "IndexTag", "casefold_email", "digits_only", "normalize_text"]

_PREFIX = "bi1"
_PURPOSE = "customer"
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")
MIN_LENGTH = 4
MAX_LENGTH = 32
#: Keyed HMAC states kept per indexer (one per tenant key version in use); bounded.
_MAX_MACS = 256
_SHA256 = hashes.SHA256()
_monotonic = time.monotonic

Normalizer = Callable[[str], str]


class IndexTag(str):
    """A computed blind-index tag (a ``str``), marked so ORM types store it unchanged."""

    __slots__ = ()


def normalize_text(value: str) -> str:
    """NFKC, case-fold and collapse runs of whitespace: ``" Jane  DOE "`` -> ``"jane doe"``."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def casefold_email(value: str) -> str:
    """Trim, NFKC-normalise and case-fold an e-mail address (local part included).

    Treating the local part case-insensitively matches how every mainstream mail
    provider behaves; callers that need exact local parts pass their own normaliser.
    """
    return unicodedata.normalize("NFKC", value.strip()).casefold()


def digits_only(value: str) -> str:
    """Keep only decimal digits: ``"+1 (555) 010-9999"`` -> ``"15550109999"``."""
    return "".join(ch for ch in value if ch.isdecimal())


class BlindIndexer:
    """Computes blind-index tags: ``HMAC-SHA-256(k, normalise(value))`` truncated.

    The HMAC key ``k`` is derived from the tenant's customer key hierarchy, per
    tenant and per index *name* (``KeyStore._derive_key``), so tags of one tenant or
    field say nothing about another. A tag reads ``bi1.<key version>.<base64url>``:
    the version names the tenant key version it was computed under, so the index key
    rotates with the tenant key; during a rotation, search with :meth:`search_tags`
    over every version still present and re-index rows lazily.

    Truncating to *length* bytes bounds what the index reveals and its size, at the
    cost of false positives: a row whose value differs from the query matches with
    probability ``2 ** -(8 * length)`` (:attr:`false_positive_rate`), so a query over
    ``N`` non-matching rows returns about ``N * 2 ** -(8 * length)`` extra rows that
    the caller filters out after decrypting. The default of 8 bytes gives 1 false
    match per 1.8e19 rows.

    .. warning::
        A blind index is deterministic: rows with equal (normalised) values have equal
        tags, so whoever reads the table learns which rows share a value and how often
        each value occurs. Index only fields where that is acceptable, and never
        low-entropy fields (booleans, small enums, birth years) whose values can be
        enumerated by anyone who can also insert rows.

    Args:
        keys: the key store (anything implementing ``_derive_key``).
        name: the index name, e.g. ``"members.email"``; part of the key derivation.
        length: tag length in bytes, 4 to 32.
        normalize: applied to ``str`` values before hashing (e.g. :func:`casefold_email`).

    Raises:
        InvalidInputError: bad name or length.
    """

    __slots__ = ("_current", "_keys", "_label", "_macs", "_store", "length", "name", "normalize")

    def __init__(
        self,
        keys: KeySource,
        *,
        name: str,
        length: int = 8,
        normalize: Normalizer | None = None,
    ) -> None:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise InvalidInputError("index name: 1-128 of letters, digits and _ . : / -")
        if not isinstance(length, int) or not MIN_LENGTH <= length <= MAX_LENGTH:
            raise InvalidInputError(f"blind index length must be {MIN_LENGTH}-{MAX_LENGTH} bytes")
        self._keys = keys
        self.name = name
        self.length = length
        self.normalize = normalize
        self._label = f"styku.blind-index/v1/{name}/{length}".encode()
        # Keyed HMAC-SHA-256 states (``cryptography``), keyed by the derived subkey itself
        # (explicit versions, and key sources other than a KeyStore).
        self._macs: dict[bytes, hmac.HMAC] = {}
        # Current-version state per tenant: (store generation, valid until, "bi1.<v>.",
        # keyed HMAC). Only for a KeyStore: an entry is used while the store's cache
        # generation is unchanged (rotate, shred and close bump it) and the store still
        # serves the same primary tenant key from its cache (``_cached_until``), exactly
        # the rule of the envelope's DataKeyCache; afterwards the store is asked again.
        self._current: dict[str, tuple[int, float, str, hmac.HMAC]] = {}
        self._store: Any = (
            keys
            if all(hasattr(keys, a) for a in ("_generation", "_cached_until", "_tenant_key"))
            else None
        )

    def __repr__(self) -> str:
        return f"<BlindIndexer name={self.name!r} length={self.length}>"

    @property
    def false_positive_rate(self) -> float:
        """Probability that one row with a different value matches a query tag."""
        return float(2.0 ** (-8 * self.length))

    def expected_false_positives(self, rows: int) -> float:
        """Expected number of extra matches when querying a table of *rows* other rows."""
        return rows * self.false_positive_rate

    def _message(self, value: Any) -> bytes:
        if isinstance(value, str):
            if self.normalize is not None:
                value = self.normalize(value)
            if type(value) is str:
                return encode_value(value)
        if not isinstance(value, str | bytes | bytearray | memoryview):
            raise InvalidInputError("blind indexes take str or bytes values")
        return encode_value(value)

    def tag(self, value: str | bytes, *, tenant: str, version: int | None = None) -> IndexTag:
        """The tag of *value* for *tenant* under key *version* (default: current).

        Raises:
            InvalidInputError: *value* is not str or bytes.
            KeyNotFoundError: unknown tenant or version.
            KeyDestroyedError: the tenant was shredded.
        """
        return IndexTag(self._tag(value, tenant, version))

    def _tag(self, value: Any, tenant: str, version: int | None = None) -> str:
        """:meth:`tag` as a plain ``str`` (what the record encryptor stores)."""
        message = self._message(value)
        if version is None:
            state = self._current.get(tenant)
            if state is None or state[0] != self._store._generation or state[1] <= _monotonic():
                state = self._refresh(tenant)
            if state is not None:
                h = state[3].copy()
                h.update(message)
                return state[2] + b64e(h.finalize()[: self.length])
        key, used = self._keys._derive_key(
            tenant, purpose=_PURPOSE, label=self._label, length=32, version=version
        )
        keyed = self._macs.get(key)
        if keyed is None:
            keyed = self._keyed(key)
        h = keyed.copy()
        h.update(message)
        return f"{_PREFIX}.{used}.{b64e(h.finalize()[: self.length])}"

    def _refresh(self, tenant: str) -> tuple[int, float, str, hmac.HMAC] | None:
        """Look the current tenant key up in the store; cache its keyed state if allowed.

        ``None`` for key sources other than a KeyStore (the caller derives per call).

        Raises:
            KeyNotFoundError, KeyDestroyedError: as :meth:`tag`.
        """
        store = self._store
        if store is None:
            return None
        generation = store._generation
        tk = store._tenant_key(tenant, _PURPOSE)
        key = tk.derive(self._label, 32)
        state = (
            generation,
            store._cached_until([tk]),
            f"{_PREFIX}.{tk.version}.",
            self._keyed(key),
        )
        if store._generation == generation and state[1] > _monotonic():
            current = self._current
            if len(current) >= _MAX_MACS:
                current.clear()  # atomic under the GIL; simply rebuilt on the next call
            current[tenant] = state
        return state

    def _keyed(self, key: bytes) -> hmac.HMAC:
        """An HMAC-SHA-256 state keyed with *key* (cached; ``copy()`` per message)."""
        keyed = hmac.HMAC(key, _SHA256)
        if len(self._macs) >= _MAX_MACS:
            self._macs.clear()  # atomic under the GIL; simply re-keyed on the next call
        self._macs[key] = keyed
        return keyed

    def search_tags(
        self, value: str | bytes, *, tenant: str, versions: Iterable[int] | None = None
    ) -> list[IndexTag]:
        """Tags to look *value* up with: one per key version (``IN (...)`` query).

        Args:
            versions: the key versions rows may still be indexed under; default is
                the current version only.
        """
        if versions is None:
            return [self.tag(value, tenant=tenant)]
        return [self.tag(value, tenant=tenant, version=v) for v in dict.fromkeys(versions)]

    def needs_reindex(self, tag: str, *, tenant: str) -> bool:
        """True when *tag* was computed under an older key version than the current one.

        Raises:
            UnsupportedFormatError: *tag* is not a ``bi1`` tag of this index's length.
        """
        current = int(self.tag("", tenant=tenant).split(".")[1])
        return self.version_of(tag) < current

    def version_of(self, tag: str) -> int:
        """The key version a tag was computed under.

        Raises:
            UnsupportedFormatError: *tag* is not a ``bi1`` tag of this index's length.
        """
        parsed = parse_versioned(tag, _PREFIX)
        if parsed is None:
            raise UnsupportedFormatError("not a bi1 blind-index tag")
        version, body = parsed
        try:
            raw = b64d(body)
        except ValueError:
            raise UnsupportedFormatError("not a bi1 blind-index tag") from None
        if len(raw) != self.length:
            raise UnsupportedFormatError("blind-index tag has the wrong length for this index")
        return version

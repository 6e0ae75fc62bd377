"""The hash chain and MACs of the incident log (format v1).

Every entry is one line of canonical JSON (sorted keys, no spaces, ASCII
only)::

    {"at": "...", "by": null, "data": {...}, "id": "INC-000001", "kid": "...",
     "log": "<16-byte log id, hex>", "mac": "<hex>", "op": "open",
     "prev": "<hex>", "seq": 1, "v": 1}

``mac`` is HMAC-SHA256, under the key named by ``kid``, of the domain string
``styku-crypto/incident-log/v1\\n`` followed by the canonical JSON of the
entry *without* its ``mac``. ``prev`` is the ``mac`` of the previous entry (64
zeros for the first), ``seq`` counts from 1 and ``log`` is fixed by the first
entry. So editing any byte breaks that entry's MAC; deleting, inserting or
reordering entries breaks ``seq`` and ``prev``; splicing entries from another
log breaks ``log``. Dropping entries from the *end* leaves a valid chain:
that is caught by the head record (``seq`` and ``mac`` of the last entry,
itself MAC'd) kept in the key store's metadata.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from styku_crypto.exceptions import KeyNotFoundError, TamperedLogError

__all__ = [
    "FAILURE_CODES",
    "FORMAT_VERSION",
    "GENESIS",
    "ChainTamperedError",
    "HeadRecord",
    "HeadStore",
    "MacKey",
    "canonical",
    "check_head",
    "entry_mac",
    "head_bytes",
    "parse_head",
    "verify_lines",
]

FORMAT_VERSION = 1
GENESIS = "0" * 64
_ENTRY_DOMAIN = b"styku-crypto/incident-log/v1\n"
_HEAD_DOMAIN = b"styku-crypto/incident-log-head/v1\n"
_ENTRY_KEYS = frozenset({"at", "by", "data", "id", "kid", "log", "mac", "op", "prev", "seq", "v"})
_OPS = frozenset({"open", "update", "close"})

#: The stable failure codes of :class:`ChainTamperedError` (the ``reason`` of
#: the ``incident.verify_failed`` event).
FAILURE_CODES = frozenset(
    {
        "malformed",  # not JSON, unexpected structure, not canonical, unknown version
        "sequence_gap",  # seq out of order: an entry deleted, inserted or reordered
        "chain_broken",  # prev hash or log id does not match: spliced or reordered
        "unknown_key",  # the entry names a MAC key the store does not have
        "mac_mismatch",  # the entry's MAC does not match: edited or wrong key
        "truncated",  # fewer entries than the head record covers
        "head_mismatch",  # the head record is malformed, forged or names another entry
        "head_missing",  # entries exist but the head record is gone
        "concurrent_change",  # the SQLite table changed outside the log's lock
    }
)


class ChainTamperedError(TamperedLogError):
    """A :class:`~styku_crypto.exceptions.TamperedLogError` with a stable code.

    Attributes:
        code: one of :data:`FAILURE_CODES`.
        entry: the 1-based number of the first bad entry, when one is known.
    """

    def __init__(self, message: str, code: str, entry: int | None = None) -> None:
        if code not in FAILURE_CODES:
            raise ValueError(f"unknown failure code {code!r}")
        super().__init__(message)
        self.code = code
        self.entry = entry

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.code, self.entry))


@runtime_checkable
class MacKey(Protocol):
    """The key that authenticates log entries.

    Implementations keep the key material private; the log only sees key ids
    and MAC values. :class:`~styku_crypto.incidents.KeyStoreMacKey` derives the
    key from the key store.
    """

    def current_key_id(self) -> str:
        """The id of the key new entries are authenticated with (non-secret)."""
        ...

    def mac(self, data: bytes, *, key_id: str) -> bytes:
        """HMAC-SHA256 of *data* under the key *key_id*.

        Raises:
            KeyNotFoundError: *key_id* is unknown.
        """
        ...


@runtime_checkable
class HeadStore(Protocol):
    """Small persistent key-value storage for the head record (the key store's meta)."""

    def get_meta(self, name: str) -> bytes | None:
        """Return the value stored under *name*, or ``None``."""
        ...

    def set_meta(self, name: str, value: bytes | None) -> None:
        """Store *value* under *name* (``None`` deletes it)."""
        ...


def canonical(obj: Mapping[str, Any]) -> str:
    """The canonical JSON text of *obj* (sorted keys, compact, ASCII)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def entry_mac(key: MacKey, body: Mapping[str, Any]) -> str:
    """The hex MAC of an entry *body* (the entry without ``mac``)."""
    data = _ENTRY_DOMAIN + canonical(body).encode("ascii")
    return key.mac(data, key_id=str(body["kid"])).hex()


@dataclass(frozen=True, slots=True)
class HeadRecord:
    """The last entry as recorded outside the log: its log id, ``seq`` and ``mac``."""

    log: str
    seq: int
    mac: str


def head_bytes(key: MacKey, head: HeadRecord) -> bytes:
    """Serialise and authenticate *head* for the head store."""
    kid = key.current_key_id()
    body = {"kid": kid, "log": head.log, "mac": head.mac, "seq": head.seq}
    tag = key.mac(_HEAD_DOMAIN + canonical(body).encode("ascii"), key_id=kid)
    return canonical({**body, "tag": tag.hex()}).encode("ascii")


def parse_head(key: MacKey, raw: bytes) -> HeadRecord:
    """Parse and authenticate a stored head record.

    Raises:
        TamperedLogError: the record is malformed or its MAC does not match.
    """
    try:
        obj = json.loads(raw.decode("ascii"))
        body = {k: obj[k] for k in ("kid", "log", "mac", "seq")}
        tag = bytes.fromhex(obj["tag"])
        if not isinstance(body["seq"], int) or not isinstance(body["kid"], str):
            raise TypeError
        expected = key.mac(_HEAD_DOMAIN + canonical(body).encode("ascii"), key_id=body["kid"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, KeyNotFoundError) as exc:
        raise ChainTamperedError("incident log head record is malformed", "head_mismatch") from exc
    if not hmac.compare_digest(expected, tag):
        raise ChainTamperedError("incident log head record failed authentication", "head_mismatch")
    return HeadRecord(log=str(body["log"]), seq=body["seq"], mac=str(body["mac"]))


def verify_lines(
    key: MacKey,
    lines: Iterable[str],
    *,
    after: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Verify complete entry lines (without newlines) in order; return the parsed entries.

    Args:
        key: the MAC key.
        lines: the lines to verify.
        after: entries already verified that *lines* continue (the caller
            guarantees they are exactly the log's first lines); verification
            resumes from the last of them.

    Raises:
        TamperedLogError: naming the first bad entry (1-based) and why.
    """
    entries: list[dict[str, Any]] = list(after or [])
    prev = entries[-1]["mac"] if entries else GENESIS
    log_id: str | None = entries[0]["log"] if entries else None
    for index, line in enumerate(lines, start=len(entries) + 1):
        entry = _parse(index, line)
        if entry["v"] != FORMAT_VERSION:
            raise _bad(index, "malformed", f"unsupported entry version {entry['v']!r}")
        if entry["seq"] != index:
            raise _bad(
                index,
                "sequence_gap",
                f"sequence number {entry['seq']} where {index} was expected "
                "(entry deleted, inserted or reordered)",
            )
        if log_id is None:
            log_id = entry["log"]
        elif entry["log"] != log_id:
            raise _bad(index, "chain_broken", "entry belongs to another log")
        if not _eq(entry["prev"], prev):
            raise _bad(index, "chain_broken", "chain broken: previous-entry hash does not match")
        body = {k: v for k, v in entry.items() if k != "mac"}
        try:
            expected = entry_mac(key, body)
        except KeyNotFoundError:
            raise _bad(
                index,
                "unknown_key",
                "names an unknown MAC key (edited, or a key not in this store)",
            ) from None
        if not _eq(expected, entry["mac"]):
            raise _bad(index, "mac_mismatch", "MAC mismatch (entry edited or wrong key)")
        prev = entry["mac"]
        entries.append(entry)
    return entries


def check_head(entries: list[dict[str, Any]], head: HeadRecord) -> None:
    """Check that the verified *entries* reach the recorded *head*.

    The log may be longer than the head (a crash between the append and the
    head update), never shorter.

    Raises:
        TamperedLogError: entries were removed from the end, or the log was replaced.
    """
    if head.seq > len(entries):
        raise ChainTamperedError(
            f"incident log truncated: the head records {head.seq} entries, "
            f"only {len(entries)} complete entries are present (first missing: entry "
            f"{len(entries) + 1})",
            "truncated",
            len(entries) + 1,
        )
    if head.seq == 0:
        if entries and entries[0]["log"] != head.log:
            raise ChainTamperedError(
                "incident log tampered at entry 1: it belongs to another log", "head_mismatch", 1
            )
        return
    entry = entries[head.seq - 1]
    if entry["log"] != head.log or not _eq(entry["mac"], head.mac):
        raise ChainTamperedError(
            f"incident log tampered at entry {head.seq}: it does not match the recorded head",
            "head_mismatch",
            head.seq,
        )


def _parse(index: int, line: str) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except ValueError:
        raise _bad(index, "malformed", "not valid JSON (edited or partially written)") from None
    if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
        raise _bad(index, "malformed", "unexpected entry structure")
    if canonical(entry) != line:
        raise _bad(index, "malformed", "entry is not in canonical form (edited)")
    if (
        any(not isinstance(entry[k], int) or isinstance(entry[k], bool) for k in ("seq", "v"))
        or not all(isinstance(entry[k], str) for k in ("at", "id", "kid", "log", "mac", "prev"))
        or entry["op"] not in _OPS
        or not isinstance(entry["data"], dict)
        or not (entry["by"] is None or isinstance(entry["by"], str))
    ):
        raise _bad(index, "malformed", "unexpected entry structure")
    return entry


def _eq(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


def _bad(index: int, code: str, why: str) -> ChainTamperedError:
    return ChainTamperedError(f"incident log tampered at entry {index}: {why}", code, index)

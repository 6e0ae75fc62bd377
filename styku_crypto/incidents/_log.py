"""The tamper-evident incident log: :class:`IncidentLog`."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from styku_crypto.events import emit
from styku_crypto.exceptions import (
    InvalidInputError,
    StykuCryptoError,
    TamperedLogError,
)
from styku_crypto.incidents._chain import (
    FORMAT_VERSION,
    GENESIS,
    ChainTamperedError,
    HeadRecord,
    HeadStore,
    MacKey,
    canonical,
    check_head,
    entry_mac,
    head_bytes,
    parse_head,
    verify_lines,
)
from styku_crypto.incidents._export import export_incidents
from styku_crypto.incidents._keys import KeyStoreMacKey, store_head, store_path
from styku_crypto.incidents._model import (
    Incident,
    Severity,
    VerificationReport,
    fold,
    iso,
)
from styku_crypto.incidents._model import aware as _aware
from styku_crypto.incidents._storage import (
    FileStorage,
    Snapshot,
    SqliteStorage,
    Storage,
    digest,
    storage_error,
)

__all__ = ["IncidentLog"]

_log = logging.getLogger("styku_crypto.incidents")
_MAX_TEXT = 20_000
_MAX_TENANTS = 1_000
_HEAD_PREFIX = "styku.incidents.head."


class IncidentLog:
    """An append-only, hash-chained, MAC-authenticated record of security incidents.

    Every change (open, update, close) appends one entry; nothing is ever
    rewritten. Entries are chained (each carries the MAC of the previous one)
    and authenticated with HMAC-SHA256 under a key from the key store, so
    :meth:`verify` detects any edit, deletion, insertion, reordering or
    splicing. When a *head_store* is given (the key store's metadata, by
    default with :meth:`open`), the last entry's position and MAC are recorded
    there too, so truncation of the tail is detected as well.

    Reads (:meth:`get`, :meth:`list`, exports) verify the whole log first and
    raise :class:`~styku_crypto.exceptions.TamperedLogError` rather than
    present tampered records. Appends verify too: nothing is appended to a
    tampered log.

    Storage failures never escape untyped: an ``OSError`` or ``sqlite3.Error``
    from any public method becomes a
    :class:`~styku_crypto.exceptions.KeyStoreError` naming the log's location
    and the kind of failure (never entry content). Reads and writes alike
    refuse a log path that is a symbolic link (``O_NOFOLLOW``; an explicit
    check for the SQLite database) or not a regular file.

    Concurrent writers in threads and processes are serialised with ``flock``
    on the log file; each entry is written with one ``O_APPEND`` write and
    ``fsync``'d before the call returns. A crash mid-append leaves a partial
    last line, which :meth:`verify` reports (``incomplete_tail_bytes``) and
    the next append removes.

    Args:
        path: the JSON Lines file, or the SQLite database when *sqlite* is true.
        mac_key: the key entries are authenticated with.
        head_store: where the head record is kept (``get_meta``/``set_meta``);
            without it a removed tail cannot be detected.
        name: the log's name in the head store: one head record per name, so
            every log sharing a head store needs its own name (default
            ``"default"``, or ``"sqlite"`` for the table mode).
        sqlite: store entries in a table of the SQLite database at *path*
            instead of a JSON Lines file.
        clock: returns the current UTC time (inject a fixed clock in tests).

    .. warning::
       Without a *head_store*, deleting entries from the end of the log is
       undetectable: the remaining chain is valid. Use :meth:`open` with a key
       store, or pass the store's backend as *head_store*.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        mac_key: MacKey,
        head_store: HeadStore | None = None,
        name: str | None = None,
        sqlite: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if name is None:
            name = "sqlite" if sqlite else "default"
        if not name or len(name) > 200:
            raise InvalidInputError("log name must be 1..200 characters")
        p = Path(path)
        self._storage: Storage = SqliteStorage(p) if sqlite else FileStorage(p)
        self._key = mac_key
        self._head_store = head_store
        self._head_name = _HEAD_PREFIX + name
        self._clock = clock or (lambda: datetime.now(UTC))
        self._thread_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: tuple[int, bytes, list[dict[str, Any]]] = (0, b"", [])

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        store: Any,
        name: str | None = None,
        sqlite: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> IncidentLog:
        """Open the incident log of a key store, authenticated with a key derived from it.

        Args:
            path: the log file; ``incidents.jsonl`` beside the key store's
                SQLite file when omitted. With *sqlite*, the database file
                (the key store's own file when omitted).
            store: a :class:`~styku_crypto.keys.KeyStore`.
            name: the log's name in the store's metadata (see the constructor).
            sqlite: keep entries in a table of the key store's SQLite database.
            clock: returns the current UTC time.

        Raises:
            InvalidInputError: no *path* and the store is not file-based.
            KeyStoreError: the MAC key cannot be derived.
        """

        if path is None:
            base = store_path(store)
            if base is None:
                raise InvalidInputError("the key store is not file-based; pass the log path")
            path = base if sqlite else base.with_name("incidents.jsonl")
        return cls(
            path,
            mac_key=KeyStoreMacKey(store),
            head_store=store_head(store),
            name=name,
            sqlite=sqlite,
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"IncidentLog({self._storage.describe()!r})"

    @property
    def location(self) -> str:
        """Where the entries are stored (a path or an SQLite table)."""
        return self._storage.describe()

    # -- writing ----------------------------------------------------------------------------

    def open_incident(
        self,
        title: str,
        *,
        severity: Severity | str,
        description: str,
        tenants: Iterable[str] = (),
        detected_at: datetime | None = None,
        actor: str | None = None,
    ) -> Incident:
        """Record a new incident and return it.

        Args:
            title: short title (1..200 characters).
            severity: ``low``, ``medium``, ``high`` or ``critical``.
            description: what happened.
            tenants: affected tenants.
            detected_at: when it was detected (timezone-aware; default now).
            actor: who records it.

        Raises:
            InvalidInputError: empty or oversized text, unknown severity, naive time.
            TamperedLogError: the existing log does not verify.
            KeyStoreError: the log cannot be written: an I/O or database
                error, or the path is a symbolic link or not a regular file
                (the message names the location and the problem); or the MAC
                key is unavailable.
        """
        data: dict[str, Any] = {
            "title": _text("title", title, limit=200),
            "severity": _severity(severity).value,
            "description": _text("description", description),
            "tenants": _tenants(tenants),
        }
        if detected_at is not None:
            data["detected_at"] = iso(_aware(detected_at))
        entry = self._append("open", None, data, actor)
        incident = self._fold_one(entry["id"])
        emit(
            "incident.opened",
            capability="incidents",
            outcome="success",
            level=logging.WARNING,
            tenant=_single(incident.tenants),
            actor=actor,
            attributes={
                "incident": incident.id,
                "severity": incident.severity.value,
                "tenants": len(incident.tenants),
            },
        )
        return incident

    def update(
        self,
        incident_id: str,
        *,
        action: str | None = None,
        severity: Severity | str | None = None,
        tenants: Iterable[str] = (),
        actor: str | None = None,
    ) -> Incident:
        """Record an update to an open incident: an action or finding, a new
        severity, newly affected tenants.

        Raises:
            InvalidInputError: unknown or closed incident, nothing to record, bad values.
            TamperedLogError: the existing log does not verify.
            KeyStoreError: the log cannot be written: an I/O or database
                error, or the path is a symbolic link or not a regular file
                (the message names the location and the problem); or the MAC
                key is unavailable.
        """
        data: dict[str, Any] = {}
        if action is not None:
            data["action"] = _text("action", action)
        if severity is not None:
            data["severity"] = _severity(severity).value
        added = _tenants(tenants)
        if added:
            data["tenants"] = added
        if not data:
            raise InvalidInputError("nothing to update: give an action, a severity or tenants")
        self._append("update", incident_id, data, actor)
        incident = self._fold_one(incident_id)
        emit(
            "incident.updated",
            capability="incidents",
            outcome="success",
            tenant=_single(incident.tenants),
            actor=actor,
            attributes={"incident": incident.id, "severity": incident.severity.value},
        )
        return incident

    def close(
        self,
        incident_id: str,
        *,
        disposition: str,
        resolved_at: datetime | None = None,
        action: str | None = None,
        actor: str | None = None,
    ) -> Incident:
        """Close an incident with its disposition.

        Args:
            incident_id: the incident.
            disposition: how it ended (e.g. "contained; 2 customers notified").
            resolved_at: when it was resolved (timezone-aware; default now).
            action: a final action to record.
            actor: who closes it.

        Raises:
            InvalidInputError: unknown or already closed incident, bad values.
            TamperedLogError: the existing log does not verify.
            KeyStoreError: the log cannot be written: an I/O or database
                error, or the path is a symbolic link or not a regular file
                (the message names the location and the problem); or the MAC
                key is unavailable.
        """
        data: dict[str, Any] = {"disposition": _text("disposition", disposition)}
        if resolved_at is not None:
            data["resolved_at"] = iso(_aware(resolved_at))
        if action is not None:
            data["action"] = _text("action", action)
        self._append("close", incident_id, data, actor)
        incident = self._fold_one(incident_id)
        emit(
            "incident.closed",
            capability="incidents",
            outcome="success",
            tenant=_single(incident.tenants),
            actor=actor,
            attributes={"incident": incident.id, "severity": incident.severity.value},
        )
        return incident

    # -- reading ----------------------------------------------------------------------------

    def verify(self) -> VerificationReport:
        """Verify the whole log: every MAC, the chain, the order, and the head record.

        Returns:
            A :class:`VerificationReport` (the log is intact up to
            ``entries``; a partial last line from a crash is reported, not
            counted).

        Raises:
            TamperedLogError: naming the first bad entry (edit, deletion,
                insertion, reordering, splicing, truncation). An
                ``incident.verify_failed`` event is logged at ERROR, with a
                stable failure code as its ``reason`` and the entry number
                in ``entry``.
            KeyStoreError: the log cannot be read: an I/O or database error,
                or the path is a symbolic link or not a regular file (the
                message names the location and the problem); or the MAC key
                is unavailable.
        """
        snapshot = self._read()
        entries, head = self._verified(snapshot)
        return _report(snapshot, entries, head)

    def export(self, fmt: str = "json") -> str:
        """A report of every incident as ``json``, ``markdown`` or ``html`` (verified first).

        The JSON form follows the schema ``styku-crypto/incidents-export/v1``
        (see ``docs/incidents.md``); Markdown and HTML are readable reports for
        a customer notification, with every text field escaped.

        Raises:
            InvalidInputError: unknown format.
            TamperedLogError: the log does not verify.
            KeyStoreError: the log cannot be read: an I/O or database error,
                or the path is a symbolic link or not a regular file (the
                message names the location and the problem); or the MAC key
                is unavailable.
        """
        snapshot = self._read()
        entries, head = self._verified(snapshot)
        return export_incidents(
            list(fold(entries).values()),
            fmt=fmt,
            report=_report(snapshot, entries, head),
            generated_at=_aware(self._clock()),
            location=self._storage.describe(),
        )

    def incidents(self) -> list[Incident]:
        """Every incident, oldest first (verifies the log first).

        Raises:
            TamperedLogError: the log does not verify.
            KeyStoreError: the log cannot be read: an I/O or database error,
                or the path is a symbolic link or not a regular file (the
                message names the location and the problem); or the MAC key
                is unavailable.
        """
        entries, _ = self._verified(self._read())
        return list(fold(entries).values())

    def get(self, incident_id: str) -> Incident:
        """One incident (verifies the log first).

        Raises:
            InvalidInputError: no such incident.
            TamperedLogError: the log does not verify.
            KeyStoreError: the log cannot be read: an I/O or database error,
                or the path is a symbolic link or not a regular file (the
                message names the location and the problem); or the MAC key
                is unavailable.
        """
        return self._fold_one(incident_id)

    def entries(self) -> list[dict[str, Any]]:
        """The raw verified entries (parsed JSON), oldest first.

        Raises:
            TamperedLogError: the log does not verify.
            KeyStoreError: the log cannot be read: an I/O or database error,
                or the path is a symbolic link or not a regular file (the
                message names the location and the problem); or the MAC key
                is unavailable.
        """
        entries, _ = self._verified(self._read())
        return copy.deepcopy(entries)

    # -- internals --------------------------------------------------------------------------

    def _read(self) -> Snapshot:
        with self._storage_errors():
            return self._storage.read(self._raw_head)

    @contextlib.contextmanager
    def _storage_errors(self) -> Iterator[None]:
        """Turn I/O and database failures into :class:`KeyStoreError` naming the location."""
        try:
            yield
        except (OSError, sqlite3.Error) as exc:
            raise storage_error(self._storage.describe(), exc) from exc

    def _fold_one(self, incident_id: str) -> Incident:
        incidents = fold(self._verified(self._read())[0])
        try:
            return incidents[incident_id]
        except KeyError:
            raise InvalidInputError(f"no incident {incident_id!r} in the log") from None

    def _verified(self, snapshot: Snapshot) -> tuple[list[dict[str, Any]], HeadRecord | None]:
        try:
            entries = self._verify_cached(snapshot.lines)
            head = None if snapshot.head is None else parse_head(self._key, snapshot.head)
            if head is not None:
                check_head(entries, head)
            elif entries and self._head_store is not None:
                raise ChainTamperedError(
                    "incident log has entries but its head record is missing from the key store",
                    "head_missing",
                )
        except TamperedLogError as exc:
            coded = exc if isinstance(exc, ChainTamperedError) else None
            entry = None if coded is None else coded.entry
            emit(
                "incident.verify_failed",
                capability="incidents",
                outcome="failure",
                level=logging.ERROR,
                reason="malformed" if coded is None else coded.code,
                attributes=None if entry is None else {"entry": entry},
            )
            raise
        return entries, head

    def _verify_cached(self, lines: list[str]) -> list[dict[str, Any]]:
        """Verify *lines*, re-using the verified prefix of the previous call.

        The log is append-only, so the previous call's lines are normally a
        prefix of these; that is checked by hashing the prefix (cheap), and
        only the new lines are parsed and MAC-checked. Any difference in the
        prefix (an edit) falls back to verifying everything.
        """
        with self._cache_lock:
            cached_count, cached_digest, cached_entries = self._cache
        start: list[dict[str, Any]] | None = None
        if 0 < cached_count <= len(lines) and digest(lines[:cached_count]) == cached_digest:
            start = cached_entries
        entries = verify_lines(self._key, lines[len(start) :] if start else lines, after=start)
        with self._cache_lock:
            self._cache = (len(lines), digest(lines), entries)
        return entries

    def _raw_head(self) -> bytes | None:
        if self._head_store is None:
            return None
        return self._head_store.get_meta(self._head_name)

    def _append(
        self, op: str, incident_id: str | None, data: dict[str, Any], actor: str | None
    ) -> dict[str, Any]:
        by = None if actor is None else _text("actor", actor, limit=200)
        with self._storage_errors(), self._thread_lock, self._storage.locked() as writer:
            entries, _ = self._verified(writer.snapshot(self._raw_head))
            seq = len(entries) + 1
            if op == "open":
                target = f"INC-{seq:06d}"
            else:
                target = str(incident_id)
                state = fold(entries).get(target)
                if state is None:
                    raise InvalidInputError(f"no incident {target!r} in the log")
                if not state.is_open:
                    raise InvalidInputError(f"incident {target!r} is already closed")
            log_id = entries[0]["log"] if entries else secrets.token_hex(16)
            body: dict[str, Any] = {
                "at": iso(_aware(self._clock())),
                "by": by,
                "data": data,
                "id": target,
                "kid": self._key.current_key_id(),
                "log": log_id,
                "op": op,
                "prev": entries[-1]["mac"] if entries else GENESIS,
                "seq": seq,
                "v": FORMAT_VERSION,
            }
            body["mac"] = entry_mac(self._key, body)
            if not entries:
                # an empty head first: a crash before the first entry lands still verifies
                self._write_head(HeadRecord(log=log_id, seq=0, mac=GENESIS), strict=True)
            writer.write(canonical(body))
            self._write_head(HeadRecord(log=log_id, seq=seq, mac=body["mac"]), strict=False)
        return body

    def _write_head(self, head: HeadRecord, *, strict: bool) -> None:
        if self._head_store is None:
            return
        try:
            self._head_store.set_meta(self._head_name, head_bytes(self._key, head))
        except StykuCryptoError as exc:
            if strict:
                raise
            # The entry is durable; a lagging head only weakens truncation detection.
            _log.warning("incident log head not updated: %s", type(exc).__name__)


def _report(
    snapshot: Snapshot, entries: Sequence[dict[str, Any]], head: HeadRecord | None
) -> VerificationReport:
    incidents = {e["id"] for e in entries if e["op"] == "open"}
    if snapshot.tail_bytes:
        stopped = (
            f"stopped after entry {len(entries)} (byte {snapshot.complete_bytes}): "
            f"{snapshot.tail_bytes} bytes of an incomplete entry follow"
        )
    else:
        stopped = f"end of log after entry {len(entries)}"
    return VerificationReport(
        entries=len(entries),
        incidents=len(incidents),
        head_checked=head is not None,
        head_entries=None if head is None else head.seq,
        incomplete_tail_bytes=snapshot.tail_bytes,
        stopped_at=stopped,
    )


def _text(what: str, value: str, *, limit: int = _MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be text")
    value = value.strip()
    if not value:
        raise InvalidInputError(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidInputError(f"{what} is longer than {limit} characters")
    return value


def _severity(value: Severity | str) -> Severity:
    try:
        return Severity(str(value).lower())
    except ValueError:
        choices = ", ".join(s.value for s in Severity)
        raise InvalidInputError(f"severity must be one of: {choices}") from None


def _tenants(values: Iterable[str]) -> list[str]:
    if isinstance(values, str):
        raise InvalidInputError("tenants must be a list of names, not one string")
    result = sorted({_text("tenant", v, limit=200) for v in values})
    if len(result) > _MAX_TENANTS:
        raise InvalidInputError(f"at most {_MAX_TENANTS} tenants per entry")
    return result


def _single(tenants: tuple[str, ...]) -> str | None:
    return tenants[0] if len(tenants) == 1 else None

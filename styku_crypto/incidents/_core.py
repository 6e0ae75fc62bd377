"""The chain's storage and verification half of the incident log: :class:`LogCore`.

:class:`LogCore` owns the storage, the MAC key and the head record: it
verifies (with a cache of the verified prefix), reads, exports and appends
entries under the write lock. :class:`~styku_crypto.incidents.IncidentLog`
adds the incident operations (open, transitions, steps, notifications) on top.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from styku_crypto.events import emit
from styku_crypto.exceptions import InvalidInputError, StykuCryptoError, TamperedLogError
from styku_crypto.incidents import _rules as rules
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
from styku_crypto.incidents._model import Folded, Incident, VerificationReport, iso
from styku_crypto.incidents._model import aware as _aware
from styku_crypto.incidents._policy import NotificationPolicy
from styku_crypto.incidents._storage import (
    FileStorage,
    Snapshot,
    SqliteStorage,
    Storage,
    feed,
    storage_error,
)

__all__ = ["LogCore"]

_log = logging.getLogger("styku_crypto.incidents")
_HEAD_PREFIX = "styku.incidents.head."


class LogCore:
    """Storage, verification, reads and locked appends of an incident log.

    See :class:`~styku_crypto.incidents.IncidentLog` for the arguments and
    guarantees; this base class is not used on its own.
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
        policy: NotificationPolicy | None = None,
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
        self._policy = policy or NotificationPolicy()
        self._thread_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: tuple[int, bytes, list[dict[str, Any]], Folded] = (0, b"", [], Folded())

    def __repr__(self) -> str:
        return f"IncidentLog({self._storage.describe()!r})"

    @property
    def location(self) -> str:
        """Where the entries are stored (a path or an SQLite table)."""
        return self._storage.describe()

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
        entries, head, _ = self._verified(snapshot, fold=False)
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
        entries, head, folded = self._verified(snapshot)
        return export_incidents(
            list(folded.values()),
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
        return list(self._verified(self._read())[2].values())

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
        entries, _, _ = self._verified(self._read(), fold=False)
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
        incidents = self._verified(self._read())[2]
        try:
            return incidents[incident_id]
        except KeyError:
            raise InvalidInputError(f"no incident {incident_id!r} in the log") from None

    def _verified(
        self, snapshot: Snapshot, *, fold: bool = True
    ) -> tuple[list[dict[str, Any]], HeadRecord | None, Folded]:
        """The verified entries, the head record and (with *fold*) the folded incidents.

        Without *fold* the returned :class:`Folded` may cover fewer entries
        (the fold is brought up to date by the next call that needs it).
        """
        try:
            entries, folded = self._verify_cached(snapshot.lines, fold=fold)
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
        return entries, head, folded

    def _verify_cached(
        self, lines: list[str], *, fold: bool = True
    ) -> tuple[list[dict[str, Any]], Folded]:
        """Verify *lines* and fold them, re-using the verified prefix of the previous call.

        The log is append-only, so the previous call's lines are normally a
        prefix of these; that is checked by hashing the prefix (cheap), and
        only the new lines are parsed, MAC-checked and folded. Any difference
        in the prefix (an edit) falls back to verifying and folding everything.
        """
        with self._cache_lock:
            cached_count, cached_digest, cached_entries, cached_fold = self._cache
        h = hashlib.sha256()
        start: list[dict[str, Any]] | None = None
        base = Folded()
        if 0 < cached_count <= len(lines):
            feed(h, lines[:cached_count])
            if hmac.compare_digest(h.digest(), cached_digest):
                start, base = cached_entries, cached_fold
            else:
                h = hashlib.sha256()
        done = len(start) if start else 0
        entries = verify_lines(self._key, lines[done:], after=start)
        feed(h, lines[done:])
        # the cached fold may lag behind the cached entries (a verify-only call)
        folded = base.extended(entries[base.count :]) if fold else base
        with self._cache_lock:
            self._cache = (len(lines), h.digest(), entries, folded)
        return entries, folded

    def has_head(self) -> bool:
        """Whether the head store holds a head record for this log (so it was written to).

        Raises:
            KeyStoreError: the head store cannot be read.
        """
        return self._raw_head() is not None

    def _raw_head(self) -> bytes | None:
        if self._head_store is None:
            return None
        return self._head_store.get_meta(self._head_name)

    def _append(
        self,
        op: str,
        incident_id: str | None,
        data: dict[str, Any],
        actor: str | None,
        *,
        check: Callable[[Incident, datetime], dict[str, Any]] | None = None,
        allow_closed: bool = False,
    ) -> dict[str, Any]:
        def build(
            entries: list[dict[str, Any]], states: Mapping[str, Incident], now: datetime
        ) -> tuple[str, str | None, dict[str, Any]]:
            if op == "open":
                return op, None, data
            state = states.get(str(incident_id))
            if state is None:
                raise InvalidInputError(f"no incident {incident_id!r} in the log")
            if not state.is_open and not allow_closed:
                raise InvalidInputError(f"incident {incident_id!r} is already closed")
            extra = {} if check is None else check(state, now)
            return op, incident_id, {**data, **extra}

        return self._append_built(build, actor)

    def _append_built(
        self,
        build: Callable[
            [list[dict[str, Any]], Mapping[str, Incident], datetime],
            tuple[str, str | None, dict[str, Any]],
        ],
        actor: str | None,
    ) -> dict[str, Any]:
        """Append the entry *build* makes from the verified entries, under the write lock."""
        by = None if actor is None else rules.text("actor", actor, limit=200)
        with self._storage_errors(), self._thread_lock, self._storage.locked() as writer:
            entries, _, folded = self._verified(writer.snapshot(self._raw_head))
            seq = len(entries) + 1
            now = _aware(self._clock())
            op, incident_id, data = build(entries, folded, now)
            target = f"INC-{seq:06d}" if op == "open" else str(incident_id)
            log_id = entries[0]["log"] if entries else secrets.token_hex(16)
            body: dict[str, Any] = {
                "at": iso(now),
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

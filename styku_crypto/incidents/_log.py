"""The tamper-evident incident log: :class:`IncidentLog`."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from styku_crypto.events import emit
from styku_crypto.exceptions import InvalidInputError, StykuCryptoError
from styku_crypto.incidents import _rules as rules
from styku_crypto.incidents._actions import (
    ActionContext,
    ActionResult,
    failure_result,
    run_action,
)
from styku_crypto.incidents._core import LogCore
from styku_crypto.incidents._keys import KeyStoreMacKey, store_head, store_path
from styku_crypto.incidents._model import Incident, Severity, Status, TenantNotice, iso
from styku_crypto.incidents._model import aware as _aware
from styku_crypto.incidents._playbooks import ACTION_NAMES, Playbook, load_playbooks
from styku_crypto.incidents._policy import NotificationPolicy

__all__ = ["IncidentLog"]


class IncidentLog(LogCore):
    """An append-only, hash-chained, MAC-authenticated record of security incidents.

    Every change (open, a lifecycle move, an action, a ticked step, an action's
    result, a customer notification, close) appends one entry; nothing is ever
    rewritten. Moves follow :data:`TRANSITIONS`; confirming an incident fixes
    each affected tenant's notification deadline from the *policy* in that
    entry. Checks that depend on an incident's state run under the write lock.

    Entries are chained (each carries the MAC of the previous one) and
    authenticated with HMAC-SHA256 under a key from the key store, so
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
        policy: the customer notification policy (default: 72 hours from
            confirmation for every tenant).

    .. warning::
       Without a *head_store*, deleting entries from the end of the log is
       undetectable: the remaining chain is valid. Use :meth:`open` with a key
       store, or pass the store's backend as *head_store*.
    """

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        store: Any,
        name: str | None = None,
        sqlite: bool = False,
        clock: Callable[[], datetime] | None = None,
        policy: NotificationPolicy | None = None,
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
            policy: the customer notification policy (see the constructor).

        Raises:
            InvalidInputError: no *path* and the store is not file-based.
            KeyStoreError: the MAC key cannot be derived.
        """

        if path is None:
            base = store_path(store)
            if base is None:
                raise InvalidInputError("the key store is not file-based; pass the log path")
            path = base if sqlite else base.with_name("incidents.jsonl")
        # Resolved now: a process that later changes directory keeps writing this log,
        # never an incidents.jsonl that happens to sit in its new working directory.
        return cls(
            os.path.abspath(path),
            mac_key=KeyStoreMacKey(store),
            head_store=store_head(store),
            name=name,
            sqlite=sqlite,
            clock=clock,
            policy=policy,
        )

    # -- writing ----------------------------------------------------------------------------

    def open_incident(
        self,
        title: str | None = None,
        *,
        severity: Severity | str | None = None,
        description: str | None = None,
        tenants: Iterable[str] = (),
        detected_at: datetime | None = None,
        actor: str | None = None,
        type: str | None = None,
        status: Status | str = Status.SUSPECTED,
        playbooks: Mapping[str, Playbook] | None = None,
    ) -> Incident:
        """Record a new incident and return it.

        Args:
            title: short title (1..200 characters); the playbook's title by
                default when *type* is given.
            severity: ``low``, ``medium``, ``high`` or ``critical``; the
                playbook's by default.
            description: what happened; the playbook's by default.
            tenants: affected tenants.
            detected_at: when it was detected (timezone-aware; default now;
                not in the future beyond the clock skew).
            actor: who records it.
            type: a playbook name: its owner role and ordered steps are copied
                into the incident (the checklist).
            status: ``suspected`` (default) or ``confirmed``; confirmed starts
                the notification clocks at *detected_at*.
            playbooks: where *type* is looked up (default: the built-in
                playbooks; see :func:`load_playbooks`).

        Raises:
            InvalidInputError: empty or oversized text, unknown severity,
                type or status, naive or future time; no title, severity or
                description and no *type* to take them from.
            TamperedLogError: the existing log does not verify.
            KeyStoreError: the log cannot be written: an I/O or database
                error, or the path is a symbolic link or not a regular file
                (the message names the location and the problem); or the MAC
                key is unavailable.
        """
        book = None
        if type is not None:
            books = load_playbooks() if playbooks is None else playbooks
            book = books.get(type)
            if book is None:
                raise InvalidInputError(f"type must be one of: {', '.join(sorted(books))}")
        title = title if title is not None else (book.title if book else None)
        description = (
            description
            if description is not None
            else (book.description or book.title if book else None)
        )
        severity = severity if severity is not None else (book.severity if book else None)
        if title is None or description is None or severity is None:
            raise InvalidInputError("give a title, a severity and a description, or a --type")
        now = _aware(self._clock())
        detected = now if detected_at is None else _aware(detected_at)
        rules.activity_time(
            "detected_at", detected, now=now, not_before=datetime.min.replace(tzinfo=UTC)
        )
        opening = rules.opening_status(status)
        names = rules.tenants(tenants)
        data: dict[str, Any] = {
            "title": rules.text("title", title, limit=200),
            "severity": rules.severity(severity).value,
            "description": rules.text("description", description),
            "tenants": names,
            "status": opening.value,
        }
        if detected_at is not None:
            data["detected_at"] = iso(detected)
        if book is not None:
            data["type"] = book.name
            data["owner"] = book.owner
            data["steps"] = book.entry_data()
        if opening is Status.CONFIRMED:
            data["deadlines"] = rules.deadlines(names, start=detected, policy=self._policy)
        entry = self._append("open", None, data, actor)
        incident = self._fold_one(entry["id"])
        self._emit("incident.opened", incident, actor, logging.WARNING)
        return incident

    def update(
        self,
        incident_id: str,
        *,
        action: str | None = None,
        severity: Severity | str | None = None,
        tenants: Iterable[str] = (),
        status: Status | str | None = None,
        at: datetime | None = None,
        actor: str | None = None,
    ) -> Incident:
        """Record an update to an open incident: an action or finding, a new
        severity, newly affected tenants, a lifecycle move.

        Args:
            incident_id: the incident.
            action: what was done or found (free text).
            severity: the new severity.
            tenants: newly affected tenants. On a confirmed incident each gets
                a notification deadline from the policy, counted from now.
            status: the new lifecycle state; only the moves of
                :data:`TRANSITIONS` are accepted (``closed`` needs
                :meth:`close`). Moving to ``confirmed`` fixes every affected
                tenant's notification deadline (policy hours after *at*).
            at: when the move happened (timezone-aware; default now): an
                activity recorded after the fact. Not before detection, not in
                the future beyond the clock skew.
            actor: who records it.

        Raises:
            InvalidInputError: unknown or closed incident, nothing to record,
                bad values, a transition that is not allowed (the message
                names the allowed ones), *at* without *status*.
            TamperedLogError: the existing log does not verify.
            KeyStoreError: the log cannot be written: an I/O or database
                error, or the path is a symbolic link or not a regular file
                (the message names the location and the problem); or the MAC
                key is unavailable.
        """
        data: dict[str, Any] = {}
        if action is not None:
            data["action"] = rules.text("action", action)
        if severity is not None:
            data["severity"] = rules.severity(severity).value
        added = rules.tenants(tenants)
        if added:
            data["tenants"] = added
        new = None if status is None else rules.status(status)
        if new is Status.CLOSED:
            raise InvalidInputError("closing needs a disposition: use close()")
        if at is not None and new is None:
            raise InvalidInputError("--at dates a status change: give --status too")
        if not data and new is None:
            raise InvalidInputError(
                "nothing to update: give an action, a severity, tenants or a status"
            )

        def check(state: Incident, now: datetime) -> dict[str, Any]:
            extra: dict[str, Any] = {}
            when = now
            if new is not None:
                rules.check_transition(state, new)
                when = (
                    now
                    if at is None
                    else rules.activity_time("--at", at, now=now, not_before=state.detected_at)
                )
                extra["status"] = new.value
                extra["status_at"] = iso(when)
            known = {n.tenant for n in state.notices if n.deadline is not None}
            if new is Status.CONFIRMED and state.confirmed_at is None:
                names = sorted({*state.tenants, *added})
                extra["deadlines"] = rules.deadlines(
                    names, start=when, policy=self._policy, known=known
                )
            elif state.confirmed_at is not None and added:
                extra["deadlines"] = rules.deadlines(
                    added, start=now, policy=self._policy, known=known
                )
            if "deadlines" in extra and not extra["deadlines"]:
                del extra["deadlines"]  # every tenant already has its clock
            return extra

        self._append("update", incident_id, data, actor, check=check)
        incident = self._fold_one(incident_id)
        self._emit("incident.updated", incident, actor, logging.INFO)
        return incident

    def transition(
        self,
        incident_id: str,
        status: Status | str,
        *,
        at: datetime | None = None,
        note: str | None = None,
        actor: str | None = None,
    ) -> Incident:
        """Move an incident to *status* (``update(status=...)`` with an optional note).

        Raises:
            As :meth:`update`.
        """
        return self.update(incident_id, status=status, at=at, action=note, actor=actor)

    def close(
        self,
        incident_id: str,
        *,
        disposition: str,
        resolved_at: datetime | None = None,
        action: str | None = None,
        actor: str | None = None,
    ) -> Incident:
        """Close an incident with its disposition (allowed from every state but ``closed``).

        Args:
            incident_id: the incident.
            disposition: how it ended (e.g. "contained; 2 customers notified").
            resolved_at: when it was resolved (timezone-aware; default: the
                time of the ``resolved`` move, else now).
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
        data: dict[str, Any] = {"disposition": rules.text("disposition", disposition)}
        if resolved_at is not None:
            data["resolved_at"] = iso(_aware(resolved_at))
        if action is not None:
            data["action"] = rules.text("action", action)
        self._append("close", incident_id, data, actor)
        incident = self._fold_one(incident_id)
        self._emit("incident.closed", incident, actor, logging.INFO)
        return incident

    def step(
        self,
        incident_id: str,
        number: int,
        *,
        note: str | None = None,
        actor: str | None = None,
    ) -> Incident:
        """Tick step *number* of the incident's checklist as done.

        Raises:
            InvalidInputError: unknown or closed incident, no such step (the
                message names the valid numbers), step already done.
            TamperedLogError: the existing log does not verify.
            KeyStoreError: the log cannot be written (see :meth:`update`).
        """
        done: dict[str, Any] = {} if note is None else {"note": rules.text("note", note)}

        def check(state: Incident, now: datetime) -> dict[str, Any]:
            if rules.step_of(state, number).done:
                raise InvalidInputError(f"step {number} of {state.id} is already done")
            return {}

        self._append("update", incident_id, {"step": number, "done": done}, actor, check=check)
        incident = self._fold_one(incident_id)
        self._emit("incident.step_done", incident, actor, logging.INFO, step=number)
        return incident

    def run_step(
        self,
        incident_id: str,
        number: int,
        *,
        context: ActionContext,
        argument: str | None = None,
        actor: str | None = None,
    ) -> tuple[Incident, ActionResult]:
        """Run the library action of step *number* and record its result in the incident.

        The action runs outside the log's lock (it may take long); its result
        (outcome, summary, counts and the events it produced) is then
        appended as one entry. A ``success`` also ticks the step. When the
        action raises, a ``failure`` naming only the error type is recorded
        and the error is re-raised.

        Args:
            incident_id: the incident.
            number: the step (it must name an action).
            context: what the action may touch (the key store, the tenant's
                tokens, audit options).
            argument: the action's argument: a tenant (one of the incident's)
                for ``rotate-and-rewrap`` and ``shred``, a ``host[:port]`` for
                ``audit``, nothing for ``revoke-pepper``.
            actor: who runs it.

        .. danger:: ``shred`` destroys the tenant's keys irreversibly.

        Raises:
            InvalidInputError: unknown or closed incident, no such step, a step
                without an action, a missing or wrong argument.
            StykuCryptoError: what the action raised (after recording it).
            TamperedLogError: the existing log does not verify.
            KeyStoreError: the log cannot be written (see :meth:`update`).
        """
        state = self._fold_one(incident_id)

        def check(state: Incident, now: datetime) -> dict[str, Any]:
            step = rules.step_of(state, number)
            if step.action is None:
                raise InvalidInputError(f"step {number} of {state.id} has no library action")
            if ACTION_NAMES[step.action] == "tenant":
                rules.tenant_of(state, str(argument))
            return {}

        if not state.is_open:
            raise InvalidInputError(f"incident {state.id!r} is already closed")
        check(state, _aware(self._clock()))
        action = str(state.steps[number - 1].action)
        try:
            result = run_action(action, argument, context)
        except StykuCryptoError as exc:
            self._record_run(
                incident_id, number, action, argument, failure_result(exc), actor, check
            )
            raise
        incident = self._record_run(incident_id, number, action, argument, result, actor, check)
        return incident, result

    def _record_run(
        self,
        incident_id: str,
        number: int,
        action: str,
        argument: str | None,
        result: ActionResult,
        actor: str | None,
        check: Callable[[Incident, datetime], dict[str, Any]],
    ) -> Incident:
        run: dict[str, Any] = {
            "action": action,
            "argument": argument,
            "outcome": result.outcome,
            "summary": rules.text("summary", result.summary),
            "counts": {str(k): int(v) for k, v in result.counts.items()},
            "events": [dict(e) for e in result.events[:50]],
        }
        data: dict[str, Any] = {"step": number, "run": run}

        def check_and_tick(state: Incident, now: datetime) -> dict[str, Any]:
            extra = check(state, now)
            # decided under the write lock: a step ticked meanwhile is not ticked twice
            if result.outcome == "success" and not state.steps[number - 1].done:
                extra["done"] = {}
            return extra

        self._append("update", incident_id, data, actor, check=check_and_tick)
        incident = self._fold_one(incident_id)
        self._emit(
            "incident.action_run",
            incident,
            actor,
            logging.WARNING,
            step=number,
            outcome={"success": "success", "partial": "unknown"}.get(result.outcome, "failure"),
            reason=action,
        )
        return incident

    def notify(
        self,
        incident_id: str,
        *,
        tenant: str,
        channel: str,
        reference: str | None = None,
        at: datetime | None = None,
        actor: str | None = None,
    ) -> Incident:
        """Record that *tenant* was notified of the incident.

        Allowed on closed incidents too: a late notification must still be
        recordable.

        Args:
            incident_id: the incident.
            tenant: one of the incident's tenants.
            channel: one of :data:`CHANNELS` (``email``, ``phone``...).
            reference: a ticket or letter reference.
            at: when the notice went out (timezone-aware; default now). Not
                before detection, not in the future beyond the clock skew.
            actor: who records it.

        Raises:
            InvalidInputError: unknown incident, a tenant that is not the
                incident's, unknown channel, a time before detection or in the
                future (each message names the valid values).
            TamperedLogError: the existing log does not verify.
            KeyStoreError: the log cannot be written (see :meth:`update`).
        """
        sent: dict[str, Any] = {"tenant": rules.text("tenant", tenant, limit=200)}
        sent["channel"] = rules.channel(channel)
        if reference is not None:
            sent["reference"] = rules.text("reference", reference, limit=500)

        def check(state: Incident, now: datetime) -> dict[str, Any]:
            rules.tenant_of(state, sent["tenant"])
            when = now if at is None else at
            sent["at"] = iso(
                rules.activity_time(
                    "notification time", when, now=now, not_before=state.detected_at
                )
            )
            return {}

        self._append(
            "update", incident_id, {"notification": sent}, actor, check=check, allow_closed=True
        )
        incident = self._fold_one(incident_id)
        self._emit("incident.notified", incident, actor, logging.INFO, channel=channel)
        return incident

    def overdue(
        self, now: datetime | None = None
    ) -> list[tuple[Incident, tuple[TenantNotice, ...]]]:
        """Every confirmed incident with a tenant not notified by its deadline.

        Args:
            now: the time to judge at (default: the log's clock).

        Returns:
            ``(incident, overdue notices)`` pairs, oldest incident first;
            empty when nothing is overdue. ``false_positive`` incidents owe
            no notice.

        Raises:
            TamperedLogError: the log does not verify.
            KeyStoreError: the log cannot be read.
        """
        when = _aware(self._clock() if now is None else now)
        result = []
        for incident in self.incidents():
            late = incident.overdue(when)
            if late:
                result.append((incident, late))
        return result

    def _open_deduplicated(
        self,
        *,
        key: str,
        window: timedelta,
        open_data: dict[str, Any],
        again: str,
        actor: str | None,
    ) -> tuple[Incident, bool]:
        """Open an incident, or update the open one with the same origin *key* seen within *window*.

        The decision is taken under the log's write lock, so concurrent
        alerts for one key open one incident. Returns ``(incident, opened)``.
        """

        def build(
            entries: list[dict[str, Any]], states: Mapping[str, Incident], now: datetime
        ) -> tuple[str, str | None, dict[str, Any]]:
            for incident in reversed(list(states.values())):
                origin = incident.origin or {}
                if (
                    origin.get("key") == key
                    and incident.status not in (Status.CLOSED, Status.FALSE_POSITIVE)
                    and now - incident.updated_at <= window
                ):
                    return "update", incident.id, {"action": again}
            return "open", None, open_data

        entry = self._append_built(build, actor)
        incident = self._fold_one(entry["id"])
        opened = entry["op"] == "open"
        self._emit(
            "incident.opened" if opened else "incident.updated",
            incident,
            actor,
            logging.WARNING if opened else logging.INFO,
        )
        return incident, opened

    def _emit(
        self,
        name: str,
        incident: Incident,
        actor: str | None,
        level: int,
        *,
        outcome: str = "success",
        reason: str | None = None,
        **extra: str | int,
    ) -> None:
        emit(
            name,
            capability="incidents",
            outcome=outcome,
            level=level,
            tenant=_single(incident.tenants),
            actor=actor,
            reason=reason,
            attributes={
                "incident": incident.id,
                "severity": incident.severity.value,
                "tenants": len(incident.tenants),
                **extra,
            },
        )


def _single(tenants: tuple[str, ...]) -> str | None:
    return tenants[0] if len(tenants) == 1 else None

"""The incident model: records folded from the log's entries (a leaf module).

Nothing here reads or writes storage; :mod:`._log` and :mod:`._export` both
build on these types, so neither imports the other's internals.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from styku_crypto.exceptions import InvalidInputError

__all__ = [
    "OPENING_STATES",
    "TRANSITIONS",
    "ActionRun",
    "Folded",
    "Incident",
    "IncidentAction",
    "Severity",
    "Status",
    "StatusChange",
    "Step",
    "TenantNotice",
    "TimelineItem",
    "VerificationReport",
    "aware",
    "fold",
    "iso",
    "parse_time",
]


class Severity(enum.StrEnum):
    """Incident severity."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class IncidentAction:
    """One recorded step: an action taken, a finding, a status note.

    Attributes:
        at: when it was recorded (UTC).
        text: what happened.
        actor: who recorded it, when given.
    """

    at: datetime
    text: str
    actor: str | None


class Status(enum.StrEnum):
    """An incident's lifecycle state (see :data:`TRANSITIONS`)."""

    SUSPECTED = "suspected"
    CONFIRMED = "confirmed"
    CONTAINED = "contained"
    RESOLVED = "resolved"
    CLOSED = "closed"
    FALSE_POSITIVE = "false_positive"


#: The allowed lifecycle transitions: every state can be closed (with a
#: disposition); otherwise an incident only moves forward (a confirmed incident
#: can still turn out a false positive, which owes no customer notice), and
#: ``closed`` is final.
TRANSITIONS: Mapping[Status, tuple[Status, ...]] = {
    Status.SUSPECTED: (Status.CONFIRMED, Status.FALSE_POSITIVE, Status.CLOSED),
    Status.CONFIRMED: (Status.CONTAINED, Status.RESOLVED, Status.FALSE_POSITIVE, Status.CLOSED),
    Status.CONTAINED: (Status.RESOLVED, Status.CLOSED),
    Status.RESOLVED: (Status.CLOSED,),
    Status.FALSE_POSITIVE: (Status.CLOSED,),
    Status.CLOSED: (),
}

#: The states an incident can be opened in.
OPENING_STATES = (Status.SUSPECTED, Status.CONFIRMED)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One lifecycle transition.

    Attributes:
        status: the new state.
        at: when it happened (UTC; may be earlier than when it was recorded).
        recorded_at: when the entry was written (UTC).
        actor: who recorded it, when given.
        note: why, when given.
    """

    status: Status
    at: datetime
    recorded_at: datetime
    actor: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class ActionRun:
    """One run of a step's library action, as recorded in the incident.

    Attributes:
        at: when the result was recorded (UTC).
        action: the action name (``rotate-and-rewrap``, ``shred``, ...).
        argument: its argument (a tenant, a target), or ``None``.
        outcome: ``success`` or ``failure``.
        summary: one line saying what it did.
        counts: what it counted (``rotated``, ``rewrapped``, ``findings``...).
        events: the security events the action produced (name and fields).
        actor: who ran it.
    """

    at: datetime
    action: str
    argument: str | None
    outcome: str
    summary: str
    counts: Mapping[str, int]
    events: tuple[Mapping[str, Any], ...]
    actor: str | None


@dataclass(frozen=True, slots=True)
class Step:
    """One checklist step copied from a playbook when the incident was opened.

    Attributes:
        number: 1-based position.
        title: what to do.
        owner: the role that owns it.
        action: the library action it can run, or ``None``.
        done_at: when it was ticked (UTC), ``None`` while pending.
        done_by: who ticked it.
        note: the note recorded with it.
        runs: every run of its action, oldest first.
    """

    number: int
    title: str
    owner: str | None
    action: str | None
    done_at: datetime | None
    done_by: str | None
    note: str | None
    runs: tuple[ActionRun, ...]

    @property
    def done(self) -> bool:
        """Whether the step was ticked."""
        return self.done_at is not None


@dataclass(frozen=True, slots=True)
class TenantNotice:
    """One affected tenant's notification duty and what was done about it.

    Attributes:
        tenant: the tenant.
        hours: the notification window from the policy when the deadline was
            fixed (``None`` until the incident is confirmed).
        deadline: when the tenant must have been notified (UTC), ``None``
            until the incident is confirmed.
        notified_at: the first recorded notification (UTC), or ``None``.
        channel: how it was sent (``email``, ``phone``...).
        reference: a reference (ticket, letter number).
        actor: who recorded it.
    """

    tenant: str
    hours: int | None
    deadline: datetime | None
    notified_at: datetime | None
    channel: str | None
    reference: str | None
    actor: str | None

    def state(self, now: datetime) -> str:
        """``notified``, ``late`` (notified after the deadline), ``overdue``,
        ``pending`` (deadline ahead) or ``no_deadline`` (not confirmed)."""
        if self.notified_at is not None:
            if self.deadline is not None and self.notified_at > self.deadline:
                return "late"
            return "notified"
        if self.deadline is None:
            return "no_deadline"
        return "overdue" if now > self.deadline else "pending"


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One dated activity of an incident (for reports).

    Attributes:
        at: when it happened (UTC).
        kind: ``detected``, ``reported``, ``status``, ``tenants``, ``step``,
            ``action_run``, ``notified``, ``action`` or ``closed``.
        text: what happened.
        actor: who recorded it.
    """

    at: datetime
    kind: str
    text: str
    actor: str | None


@dataclass(frozen=True, slots=True)
class Incident:
    """The current state of one incident, folded from its log entries.

    Attributes:
        id: ``INC-`` and six digits (the log sequence number of its opening entry).
        title: short title.
        severity: the current severity.
        description: what happened.
        tenants: affected tenants, sorted.
        detected_at: when the incident was detected (UTC).
        reported_at: when it was recorded in the log (UTC).
        resolved_at: when it was resolved (UTC), ``None`` before.
        disposition: how it ended (``None`` while open).
        actions: every free-text update, oldest first.
        updated_at: time of the latest entry (UTC).
        status: the lifecycle state.
        type: the playbook it was opened with, or ``None``.
        owner: the playbook's owner role, or ``None``.
        confirmed_at: when it was confirmed (UTC): starts the notification clocks.
        history: every lifecycle transition, the opening state first.
        steps: the playbook checklist.
        notices: per affected tenant, the notification deadline and record.
        timeline: every dated activity, in time order.
        origin: for incidents opened by :class:`IncidentBridge`, the alert
            that opened it (``rule``, ``tenant``, ``source``, ``key``).
    """

    id: str
    title: str
    severity: Severity
    description: str
    tenants: tuple[str, ...]
    detected_at: datetime
    reported_at: datetime
    resolved_at: datetime | None
    disposition: str | None
    actions: tuple[IncidentAction, ...]
    updated_at: datetime
    status: Status = Status.SUSPECTED
    type: str | None = None
    owner: str | None = None
    confirmed_at: datetime | None = None
    history: tuple[StatusChange, ...] = ()
    steps: tuple[Step, ...] = ()
    notices: tuple[TenantNotice, ...] = ()
    timeline: tuple[TimelineItem, ...] = ()
    origin: Mapping[str, str] | None = None

    @property
    def is_open(self) -> bool:
        """Whether the incident has not been closed."""
        return self.status is not Status.CLOSED

    def overdue(self, now: datetime) -> tuple[TenantNotice, ...]:
        """The tenants whose notification deadline passed without a notification."""
        if self.status is Status.FALSE_POSITIVE:
            return ()
        return tuple(n for n in self.notices if n.state(now) == "overdue")


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """The result of a successful :meth:`IncidentLog.verify`.

    Attributes:
        entries: complete, authentic entries.
        incidents: incidents in the log.
        head_checked: whether a head record was available and matched (so
            truncation of the tail would have been detected).
        head_entries: entries the head record covers (``None`` without one).
        incomplete_tail_bytes: bytes after the last complete entry (a write
            cut short by a crash); 0 when none. They are ignored, and the next
            append removes them.
        stopped_at: a human-readable description of where verification stopped.
    """

    entries: int
    incidents: int
    head_checked: bool
    head_entries: int | None
    incomplete_tail_bytes: int
    stopped_at: str


def fold(entries: Sequence[dict[str, Any]]) -> dict[str, Incident]:
    """Fold verified entries into the current state of every incident, by id.

    Entries written before lifecycles existed (no ``status`` in the opening
    entry) fold as ``suspected`` until a transition or a close.
    """
    return dict(Folded().extended(entries))


class Folded(Mapping[str, Incident]):
    """Incidents folded from a prefix of the log, extendable without refolding it.

    :meth:`extended` returns a new object: states touched by the new entries
    are copied before they change, so an instance never changes once built
    and can be shared between threads. Incidents are frozen lazily, once per
    state, when looked up.

    Hot path: appends and reads refold only the entries added since the last
    call (the log is append-only and its verified prefix is checked by the
    caller); ``tests/incidents/test_lifecycle.py`` proves the result equals a
    fold from scratch.
    """

    __slots__ = ("_count", "_states")

    def __init__(self) -> None:
        self._count = 0
        self._states: dict[str, _State] = {}

    @property
    def count(self) -> int:
        """How many entries were folded."""
        return self._count

    def extended(self, entries: Sequence[dict[str, Any]]) -> Folded:
        """A new :class:`Folded` with *entries* (the ones after :attr:`count`) applied."""
        new = Folded()
        new._count = self._count + len(entries)
        new._states = dict(self._states)
        copied: set[str] = set()
        for entry in entries:
            key = entry["id"]
            if entry["op"] == "open":
                new._states[key] = _State(entry)
                copied.add(key)
                continue
            state = new._states.get(key)
            if state is None:
                continue
            if key not in copied:
                state = new._states[key] = state.clone()
                copied.add(key)
            state.apply(entry)
        return new

    def __getitem__(self, key: str) -> Incident:
        return self._states[key].freeze()

    def __iter__(self) -> Iterator[str]:
        return iter(self._states)

    def __len__(self) -> int:
        return len(self._states)


class _State:
    """The mutable state of one incident while its entries are folded."""

    def __init__(self, entry: dict[str, Any]) -> None:
        at = parse_time(entry["at"])
        data = entry["data"]
        self.id: str = entry["id"]
        self.title = str(data.get("title", ""))
        self.severity = Severity(data.get("severity", "low"))
        self.description = str(data.get("description", ""))
        self.tenants: set[str] = set(data.get("tenants", []))
        self.detected_at = parse_time(data["detected_at"]) if "detected_at" in data else at
        self.reported_at = at
        self.resolved_at: datetime | None = None
        self.disposition: str | None = None
        self.actions: list[IncidentAction] = []
        self.updated_at = at
        self.type: str | None = data.get("type")
        self.owner: str | None = data.get("owner")
        self.origin: dict[str, str] | None = data.get("origin")
        self.status = Status(data.get("status", "suspected"))
        self.confirmed_at: datetime | None = None
        self.history: list[StatusChange] = []
        self.steps: list[dict[str, Any]] = [
            {"title": s["title"], "owner": s.get("owner"), "action": s.get("action"), "runs": []}
            for s in data.get("steps", [])
        ]
        self.deadlines: dict[str, tuple[int, datetime]] = {}
        self.notified: dict[str, tuple[datetime, str, str, str | None]] = {}
        self.timeline: list[tuple[datetime, int, TimelineItem]] = []
        self.frozen: Incident | None = None
        seq = int(entry["seq"])
        by = entry["by"]
        self._item(self.detected_at, seq, "detected", "detected", None)
        kind = f" ({self.type})" if self.type else ""
        self._item(at, seq, "reported", f"opened as {self.status.value}{kind}", by)
        status_at = parse_time(data["status_at"]) if "status_at" in data else self.detected_at
        self._status(self.status, status_at, at, by, None, seq, data)

    def clone(self) -> _State:
        """A copy whose containers can change without touching this one."""
        other = copy.copy(self)
        other.tenants = set(self.tenants)
        other.actions = list(self.actions)
        other.origin = None if self.origin is None else dict(self.origin)
        other.history = list(self.history)
        other.steps = [dict(s, runs=list(s["runs"])) for s in self.steps]
        other.deadlines = dict(self.deadlines)
        other.notified = dict(self.notified)
        other.timeline = list(self.timeline)
        other.frozen = None
        return other

    def _item(self, at: datetime, seq: int, kind: str, text: str, actor: str | None) -> None:
        self.timeline.append((at, seq, TimelineItem(at=at, kind=kind, text=text, actor=actor)))

    def _status(
        self,
        status: Status,
        at: datetime,
        recorded: datetime,
        by: str | None,
        note: str | None,
        seq: int,
        data: dict[str, Any],
    ) -> None:
        self.status = status
        self.history.append(StatusChange(status, at, recorded, by, note))
        if status is Status.CONFIRMED and self.confirmed_at is None:
            self.confirmed_at = at
        if status is Status.RESOLVED and self.resolved_at is None:
            self.resolved_at = at
        self._deadlines(data)
        if len(self.history) > 1:
            text = f"status {status.value}" + (f": {note}" if note else "")
            self._item(at, seq, "status", text, by)

    def _deadlines(self, data: dict[str, Any]) -> None:
        for tenant, rule in data.get("deadlines", {}).items():
            self.deadlines.setdefault(tenant, (int(rule["hours"]), parse_time(rule["due"])))

    def apply(self, entry: dict[str, Any]) -> None:
        self.frozen = None
        at = parse_time(entry["at"])
        data = entry["data"]
        by = entry["by"]
        seq = int(entry["seq"])
        self.updated_at = at
        if "severity" in data:
            self.severity = Severity(data["severity"])
        if "tenants" in data:
            added = sorted(set(data["tenants"]) - self.tenants)
            self.tenants.update(added)
            if added:
                self._item(at, seq, "tenants", f"affected tenants added: {', '.join(added)}", by)
        if "action" in data:
            self.actions.append(IncidentAction(at=at, text=str(data["action"]), actor=by))
            self._item(at, seq, "action", str(data["action"]), by)
        if "status" in data:
            when = parse_time(data["status_at"]) if "status_at" in data else at
            self._status(Status(data["status"]), when, at, by, data.get("note"), seq, data)
        elif "deadlines" in data:
            self._deadlines(data)
        if "run" in data:
            self._run(data["step"], data["run"], at, by, seq)
        if "done" in data:
            self._done(data["step"], data["done"], at, by, seq)
        if "notification" in data:
            self._notified(data["notification"], by, seq)
        if entry["op"] == "close":
            self.disposition = str(data.get("disposition", ""))
            when = parse_time(data["resolved_at"]) if "resolved_at" in data else at
            if self.resolved_at is None:
                self.resolved_at = when
            self._status(Status.CLOSED, at, at, by, None, seq, {})
            self.timeline[-1] = (
                at,
                seq,
                TimelineItem(at=at, kind="closed", text=f"closed: {self.disposition}", actor=by),
            )

    def _run(
        self, number: int, run: dict[str, Any], at: datetime, by: str | None, seq: int
    ) -> None:
        record = ActionRun(
            at=at,
            action=str(run["action"]),
            argument=run.get("argument"),
            outcome=str(run["outcome"]),
            summary=str(run["summary"]),
            counts=dict(run.get("counts", {})),
            events=tuple(dict(e) for e in run.get("events", [])),
            actor=by,
        )
        self.steps[number - 1]["runs"].append(record)
        arg = f" {record.argument}" if record.argument else ""
        text = f"step {number} ran {record.action}{arg}: {record.outcome}: {record.summary}"
        self._item(at, seq, "action_run", text, by)

    def _done(
        self, number: int, done: dict[str, Any], at: datetime, by: str | None, seq: int
    ) -> None:
        step = self.steps[number - 1]
        step["done_at"], step["done_by"], step["note"] = at, by, done.get("note")
        note = f" ({done['note']})" if done.get("note") else ""
        self._item(at, seq, "step", f"step {number} done: {step['title']}{note}", by)

    def _notified(self, notice: dict[str, Any], by: str | None, seq: int) -> None:
        tenant = str(notice["tenant"])
        at = parse_time(notice["at"])
        reference = notice.get("reference")
        self.notified.setdefault(tenant, (at, str(notice["channel"]), str(reference), by))
        ref = f" ({reference})" if reference else ""
        self._item(at, seq, "notified", f"notified {tenant} by {notice['channel']}{ref}", by)

    def freeze(self) -> Incident:
        if self.frozen is None:
            self.frozen = self._freeze()
        return self.frozen

    def _freeze(self) -> Incident:
        steps = tuple(
            Step(
                number=i,
                title=s["title"],
                owner=s["owner"],
                action=s["action"],
                done_at=s.get("done_at"),
                done_by=s.get("done_by"),
                note=s.get("note"),
                runs=tuple(s["runs"]),
            )
            for i, s in enumerate(self.steps, start=1)
        )
        notices = []
        for tenant in sorted(self.tenants):
            hours, due = self.deadlines.get(tenant, (None, None))
            at, channel, reference, actor = self.notified.get(tenant, (None, None, None, None))
            notices.append(TenantNotice(tenant, hours, due, at, channel, reference, actor))
        timeline = tuple(item for _, _, item in sorted(self.timeline, key=lambda t: (t[0], t[1])))
        return Incident(
            id=self.id,
            title=self.title,
            severity=self.severity,
            description=self.description,
            tenants=tuple(sorted(self.tenants)),
            detected_at=self.detected_at,
            reported_at=self.reported_at,
            resolved_at=self.resolved_at,
            disposition=self.disposition,
            actions=tuple(self.actions),
            updated_at=self.updated_at,
            status=self.status,
            type=self.type,
            owner=self.owner,
            confirmed_at=self.confirmed_at,
            history=tuple(self.history),
            steps=steps,
            notices=tuple(notices),
            timeline=timeline,
            origin=self.origin,
        )


def aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError("times must be timezone-aware")
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))

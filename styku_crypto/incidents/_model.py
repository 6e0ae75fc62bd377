"""The incident model: records folded from the log's entries (a leaf module).

Nothing here reads or writes storage; :mod:`._log` and :mod:`._export` both
build on these types, so neither imports the other's internals.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from styku_crypto.exceptions import InvalidInputError

__all__ = [
    "Incident",
    "IncidentAction",
    "Severity",
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
        resolved_at: when it was resolved (UTC), ``None`` while open.
        disposition: how it ended (``None`` while open).
        actions: every update, oldest first.
        updated_at: time of the latest entry (UTC).
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

    @property
    def is_open(self) -> bool:
        """Whether the incident has not been closed."""
        return self.resolved_at is None

    @property
    def status(self) -> str:
        """``"open"`` or ``"closed"``."""
        return "open" if self.is_open else "closed"


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
    """Fold verified entries into the current state of every incident, by id."""
    states: dict[str, dict[str, Any]] = {}
    for entry in entries:
        at = parse_time(entry["at"])
        data = entry["data"]
        if entry["op"] == "open":
            states[entry["id"]] = {
                "id": entry["id"],
                "title": str(data.get("title", "")),
                "severity": Severity(data.get("severity", "low")),
                "description": str(data.get("description", "")),
                "tenants": set(data.get("tenants", [])),
                "detected_at": parse_time(data["detected_at"]) if "detected_at" in data else at,
                "reported_at": at,
                "resolved_at": None,
                "disposition": None,
                "actions": [],
                "updated_at": at,
            }
            continue
        state = states.get(entry["id"])
        if state is None:
            continue
        state["updated_at"] = at
        if "severity" in data:
            state["severity"] = Severity(data["severity"])
        state["tenants"].update(data.get("tenants", []))
        if "action" in data:
            state["actions"].append(
                IncidentAction(at=at, text=str(data["action"]), actor=entry["by"])
            )
        if entry["op"] == "close":
            state["disposition"] = str(data.get("disposition", ""))
            state["resolved_at"] = parse_time(data["resolved_at"]) if "resolved_at" in data else at
    return {
        key: Incident(
            id=s["id"],
            title=s["title"],
            severity=s["severity"],
            description=s["description"],
            tenants=tuple(sorted(s["tenants"])),
            detected_at=s["detected_at"],
            reported_at=s["reported_at"],
            resolved_at=s["resolved_at"],
            disposition=s["disposition"],
            actions=tuple(s["actions"]),
            updated_at=s["updated_at"],
        )
        for key, s in states.items()
    }


def aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError("times must be timezone-aware")
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))

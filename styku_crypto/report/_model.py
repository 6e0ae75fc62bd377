"""The evidence report's data model: verdicts, evidence items, waivers, results.

Everything here is plain, non-secret data: counts, names, times, grades and
messages produced by the library's own checks. No key material, password hash
or token ever enters these objects (the gatherers only copy such derived facts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "SCHEMA",
    "ControlResult",
    "Evidence",
    "EvidenceReport",
    "Problem",
    "SourceResult",
    "Status",
    "Waiver",
]

#: The ``schema`` of the JSON report; changes only with a new version suffix.
SCHEMA = "styku-evidence/1"


class Status(StrEnum):
    """A control's verdict."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    FAIL = "fail"
    WAIVED = "waived"
    NOT_GATHERED = "not-gathered"
    NOT_APPLICABLE = "not-applicable"


@dataclass(frozen=True)
class Waiver:
    """An accepted exception to a control, with a reason and an expiry.

    Attributes:
        control: the control id it applies to.
        reason: why the exception is accepted (shown in the report).
        expires: the last day it applies; from the next day it waives nothing.
        subject: only this tenant, endpoint or destination (``None``: the whole control).
        where: ``file:line`` of the waiver in the configuration.
    """

    control: str
    reason: str
    expires: date
    subject: str | None = None
    where: str = ""

    def active(self, today: date) -> bool:
        """True until the end of the expiry day."""
        return today <= self.expires

    def to_dict(self, today: date) -> dict[str, Any]:
        """JSON form."""
        return {
            "control": self.control,
            "subject": self.subject,
            "reason": self.reason,
            "expires": self.expires.isoformat(),
            "expired": not self.active(today),
            "where": self.where,
        }


@dataclass(frozen=True)
class Evidence:
    """One observed fact: what, its value, where it came from and when.

    Attributes:
        label: what the number or text is (``tenants checked``).
        value: the observation (a number, a grade, a time, a short text).
        source: where it came from (``keys store sqlite:///...``, ``tls 127.0.0.1:443``).
        at: when it was observed (UTC).
    """

    label: str
    value: str | int | float | bool | None
    source: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "label": self.label,
            "value": self.value,
            "source": self.source,
            "at": _iso(self.at),
        }


@dataclass(frozen=True)
class Problem:
    """One reason a control does not pass, for one subject (tenant, endpoint...)."""

    subject: str
    message: str
    waived_by: Waiver | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "subject": self.subject,
            "message": self.message,
            "waived": self.waived_by is not None,
        }


@dataclass(frozen=True)
class ControlResult:
    """The verdict of one control with its evidence, problems, fix and waivers."""

    id: str
    clause: str
    title: str
    checks: str
    status: Status
    summary: str
    fix: str
    evidence: tuple[Evidence, ...] = ()
    problems: tuple[Problem, ...] = ()
    waivers: tuple[Waiver, ...] = ()
    reason: str | None = None  # why the evidence could not be gathered

    def to_dict(self, today: date) -> dict[str, Any]:
        """JSON form (one element of ``controls``)."""
        return {
            "id": self.id,
            "clause": self.clause,
            "title": self.title,
            "checks": self.checks,
            "status": str(self.status),
            "summary": self.summary,
            "reason": self.reason,
            "fix": self.fix,
            "evidence": [e.to_dict() for e in self.evidence],
            "problems": [p.to_dict() for p in self.problems],
            "waivers": [w.to_dict(today) for w in self.waivers],
        }


@dataclass(frozen=True)
class SourceResult:
    """How one gatherer went: its data, or why it has none."""

    name: str
    started: datetime
    seconds: float
    data: Any = field(default=None, repr=False)
    error: str | None = None

    @property
    def gathered(self) -> bool:
        """The gatherer finished and returned data."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (one element of ``sources``)."""
        return {
            "name": self.name,
            "gathered": self.gathered,
            "started": _iso(self.started),
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }


@dataclass(frozen=True)
class EvidenceReport:
    """The whole report: every control's result, the sources and chart data."""

    title: str
    generated_at: datetime
    config: str
    seconds: float
    controls: tuple[ControlResult, ...]
    sources: tuple[SourceResult, ...]
    charts: dict[str, Any] = field(default_factory=dict)
    demo: bool = False

    def counts(self) -> dict[str, int]:
        """How many controls have each status (every status listed)."""
        out = {str(s): 0 for s in Status}
        for c in self.controls:
            out[str(c.status)] += 1
        return out

    @property
    def exit_code(self) -> int:
        """3 when any control's evidence was not gathered, else 1 when any failed, else 0."""
        statuses = {c.status for c in self.controls}
        if Status.NOT_GATHERED in statuses:
            return 3
        return 1 if Status.FAIL in statuses else 0


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")

"""Input rules of the incident log: text, times, lifecycle moves, steps, tenants.

Every refusal is an :class:`~styku_crypto.exceptions.InvalidInputError` with
one line naming the valid values, which the CLI turns into exit code 2. The
checks that depend on an incident's state run under the log's write lock,
against the state folded from the verified entries, so two writers cannot
both make a move that only one of them may make.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.incidents._model import (
    OPENING_STATES,
    TRANSITIONS,
    Incident,
    Severity,
    Status,
    Step,
    aware,
    iso,
)
from styku_crypto.incidents._policy import NotificationPolicy

__all__ = [
    "CHANNELS",
    "CLOCK_SKEW",
    "activity_time",
    "channel",
    "check_transition",
    "deadlines",
    "opening_status",
    "severity",
    "status",
    "step_of",
    "tenant_of",
    "tenants",
    "text",
]

#: How far in the future a recorded activity time may be (clock skew between hosts).
CLOCK_SKEW = timedelta(minutes=5)
#: The channels a customer notification can be recorded with.
CHANNELS = ("email", "phone", "portal", "letter", "in-person", "other")
_MAX_TEXT = 20_000
_MAX_TENANTS = 1_000


def text(what: str, value: str, *, limit: int = _MAX_TEXT) -> str:
    """*value* stripped; refused when not text, empty or longer than *limit*."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be text")
    value = value.strip()
    if not value:
        raise InvalidInputError(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidInputError(f"{what} is longer than {limit} characters")
    return value


def severity(value: Severity | str) -> Severity:
    """A :class:`Severity` from its name."""
    try:
        return Severity(str(value).lower())
    except ValueError:
        choices = ", ".join(s.value for s in Severity)
        raise InvalidInputError(f"severity must be one of: {choices}") from None


def status(value: Status | str) -> Status:
    """A :class:`Status` from its name."""
    try:
        return Status(str(value).lower())
    except ValueError:
        choices = ", ".join(s.value for s in Status)
        raise InvalidInputError(f"status must be one of: {choices}") from None


def opening_status(value: Status | str) -> Status:
    """A status an incident may be opened in (``suspected`` or ``confirmed``)."""
    result = status(value)
    if result not in OPENING_STATES:
        choices = ", ".join(s.value for s in OPENING_STATES)
        raise InvalidInputError(f"an incident opens as one of: {choices}")
    return result


def tenants(values: Iterable[str]) -> list[str]:
    """Sorted, de-duplicated tenant names."""
    if isinstance(values, str):
        raise InvalidInputError("tenants must be a list of names, not one string")
    result = sorted({text("tenant", v, limit=200) for v in values})
    if len(result) > _MAX_TENANTS:
        raise InvalidInputError(f"at most {_MAX_TENANTS} tenants per entry")
    return result


def channel(value: str) -> str:
    """A notification channel from :data:`CHANNELS`."""
    if value not in CHANNELS:
        raise InvalidInputError(f"channel must be one of: {', '.join(CHANNELS)}")
    return value


def activity_time(what: str, value: datetime, *, now: datetime, not_before: datetime) -> datetime:
    """*value* in UTC; refused before *not_before* (detection) or after *now* + skew."""
    value = aware(value)
    if value < not_before:
        raise InvalidInputError(
            f"{what} {iso(value)} is before the incident was detected ({iso(not_before)})"
        )
    if value > now + CLOCK_SKEW:
        raise InvalidInputError(
            f"{what} {iso(value)} is in the future (now {iso(now)}; "
            f"at most {int(CLOCK_SKEW.total_seconds() // 60)} minutes of clock skew)"
        )
    return value


def check_transition(incident: Incident, new: Status) -> None:
    """Refuse a lifecycle move :data:`TRANSITIONS` does not allow, naming the allowed ones."""
    allowed = TRANSITIONS[incident.status]
    if new in allowed:
        return
    if not allowed:
        raise InvalidInputError(f"incident {incident.id} is closed: no further status changes")
    choices = ", ".join(s.value for s in allowed)
    raise InvalidInputError(
        f"incident {incident.id} is {incident.status.value}: it can move to {choices}"
        f" (not {new.value})"
    )


def step_of(incident: Incident, number: int) -> Step:
    """The step numbered *number*, refused naming the valid numbers."""
    if not incident.steps:
        raise InvalidInputError(
            f"incident {incident.id} has no playbook steps (opened without --type)"
        )
    if (
        isinstance(number, bool)
        or not isinstance(number, int)
        or not 1 <= number <= len(incident.steps)
    ):
        raise InvalidInputError(f"step must be one of: 1..{len(incident.steps)} for {incident.id}")
    return incident.steps[number - 1]


def tenant_of(incident: Incident, tenant: str) -> str:
    """*tenant* when it is one of the incident's tenants, refused naming them."""
    if tenant not in incident.tenants:
        valid = ", ".join(incident.tenants) or "none recorded"
        raise InvalidInputError(f"tenant must be one of {incident.id}'s tenants: {valid}")
    return tenant


def deadlines(
    names: Iterable[str], *, start: datetime, policy: NotificationPolicy, known: Iterable[str] = ()
) -> dict[str, dict[str, Any]]:
    """The deadline entries for tenants in *names* not already in *known*."""
    skip = set(known)
    result: dict[str, dict[str, Any]] = {}
    for name in names:
        if name in skip:
            continue
        hours = policy.hours_for(name)
        result[name] = {"hours": hours, "due": iso(start + timedelta(hours=hours))}
    return result

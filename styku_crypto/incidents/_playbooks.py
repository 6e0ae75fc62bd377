"""Incident playbooks as data: TOML files, with built-in defaults shipped in the package.

A playbook names an incident type, its owner role, a default severity and
ordered steps; a step may name a library action (see :mod:`._actions`).
Opening an incident with a type copies the steps into the incident's first
log entry, so the checklist is part of the hash chain and later edits of the
playbook file never change a recorded incident.

File format (one playbook per ``.toml`` file)::

    name = "key-compromise"          # [a-z0-9-], 1..64 characters
    title = "Key compromise"
    owner = "security-lead"          # the role that owns the incident
    severity = "critical"            # default severity: low|medium|high|critical
    description = "..."              # optional

    [[steps]]
    title = "Rotate the affected tenant's keys and rewrap its stored tokens"
    owner = "platform-engineer"      # optional, default: the playbook owner
    action = "rotate-and-rewrap"     # optional: rotate-and-rewrap|shred|revoke-pepper|audit

Unknown keys, unknown actions, missing fields and more than 100 steps are
refused with :class:`~styku_crypto.exceptions.InvalidInputError` naming the
file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.incidents._model import Severity

__all__ = [
    "ACTION_NAMES",
    "BUILTIN_PLAYBOOKS",
    "Playbook",
    "PlaybookStep",
    "load_playbooks",
]

#: The library actions a step may name, with the argument each takes.
ACTION_NAMES: Mapping[str, str | None] = {
    "rotate-and-rewrap": "tenant",
    "shred": "tenant",
    "revoke-pepper": None,
    "audit": "target",
}

#: The names of the playbooks shipped in the package.
BUILTIN_PLAYBOOKS = (
    "key-compromise",
    "data-exposure",
    "credential-stuffing",
    "tls-misconfiguration",
    "backup-or-dr-failure",
    "lost-device",
)

_NAME = re.compile(r"\A[a-z0-9][a-z0-9-]{0,63}\Z")
_TOP_KEYS = frozenset({"name", "title", "owner", "severity", "description", "steps"})
_STEP_KEYS = frozenset({"title", "owner", "action"})
_MAX_STEPS = 100
_MAX_TEXT = 500


@dataclass(frozen=True, slots=True)
class PlaybookStep:
    """One ordered step of a playbook.

    Attributes:
        title: what to do.
        owner: the role that owns the step.
        action: the library action it can run, or ``None``.
    """

    title: str
    owner: str
    action: str | None = None


@dataclass(frozen=True, slots=True)
class Playbook:
    """An incident type and its checklist.

    Attributes:
        name: the incident type (``key-compromise``...).
        title: a readable title (the default incident title).
        owner: the role that owns incidents of this type.
        severity: the default severity.
        description: the default incident description.
        steps: the ordered steps.
        source: ``builtin`` or the file it was loaded from.
    """

    name: str
    title: str
    owner: str
    severity: Severity
    description: str
    steps: tuple[PlaybookStep, ...]
    source: str

    def entry_data(self) -> list[dict[str, Any]]:
        """The steps as they are copied into an incident's opening entry."""
        return [
            {"title": s.title, "owner": s.owner, **({"action": s.action} if s.action else {})}
            for s in self.steps
        ]


def load_playbooks(directories: Iterable[str | PathLike[str]] = ()) -> dict[str, Playbook]:
    """The built-in playbooks plus every ``*.toml`` playbook in *directories*, by name.

    A playbook from a directory replaces a built-in one of the same name (an
    organisation's own version); two files with the same name in the given
    directories are refused.

    Raises:
        InvalidInputError: a directory does not exist, or a file is not valid
            TOML or not a valid playbook (the message names the file).
    """
    books: dict[str, Playbook] = {}
    root = resources.files("styku_crypto.incidents") / "_builtin_playbooks"
    for name in BUILTIN_PLAYBOOKS:
        text = (root / f"{name}.toml").read_text(encoding="utf-8")
        books[name] = _parse(text, f"{name}.toml", "builtin")
    seen: dict[str, str] = {}
    for directory in directories:
        path = Path(directory)
        if not path.is_dir():
            raise InvalidInputError(f"playbook directory {path} does not exist")
        for file in sorted(path.glob("*.toml")):
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInputError(f"playbook {file}: cannot be read ({exc})") from None
            book = _parse(text, str(file), str(file))
            if book.name in seen:
                raise InvalidInputError(
                    f"playbook {book.name!r} is defined twice: {seen[book.name]} and {file}"
                )
            seen[book.name] = str(file)
            books[book.name] = book
    return dict(sorted(books.items()))


def _parse(text: str, where: str, source: str) -> Playbook:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"playbook {where}: not valid TOML ({exc})") from None
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise InvalidInputError(f"playbook {where}: unknown keys {unknown}")
    name = _field(doc, "name", where)
    if not _NAME.match(name):
        raise InvalidInputError(
            f"playbook {where}: name must be 1-64 characters from a-z, 0-9 and '-'"
        )
    owner = _field(doc, "owner", where)
    severity_text = _field(doc, "severity", where)
    try:
        severity = Severity(severity_text)
    except ValueError:
        choices = ", ".join(s.value for s in Severity)
        raise InvalidInputError(f"playbook {where}: severity must be one of: {choices}") from None
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise InvalidInputError(f"playbook {where}: needs at least one [[steps]] table")
    if len(raw_steps) > _MAX_STEPS:
        raise InvalidInputError(f"playbook {where}: at most {_MAX_STEPS} steps")
    steps = []
    for number, raw in enumerate(raw_steps, start=1):
        here = f"{where} step {number}"
        if not isinstance(raw, dict):
            raise InvalidInputError(f"playbook {here}: must be a table")
        unknown = sorted(set(raw) - _STEP_KEYS)
        if unknown:
            raise InvalidInputError(f"playbook {here}: unknown keys {unknown}")
        action = raw.get("action")
        if action is not None and action not in ACTION_NAMES:
            choices = ", ".join(ACTION_NAMES)
            raise InvalidInputError(f"playbook {here}: action must be one of: {choices}")
        step_owner = _field(raw, "owner", here) if "owner" in raw else owner
        steps.append(PlaybookStep(_field(raw, "title", here), step_owner, action))
    description = _field(doc, "description", where) if "description" in doc else ""
    return Playbook(
        name=name,
        title=_field(doc, "title", where),
        owner=owner,
        severity=severity,
        description=description,
        steps=tuple(steps),
        source=source,
    )


def _field(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"playbook {where}: {key!r} must be non-empty text")
    if len(value) > _MAX_TEXT:
        raise InvalidInputError(f"playbook {where}: {key!r} is longer than {_MAX_TEXT} characters")
    return value.strip()

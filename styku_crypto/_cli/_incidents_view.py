"""Output and file helpers of ``styku-crypto incidents``: tables, JSON, token files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from styku_crypto._fs import atomic_write

if TYPE_CHECKING:
    from styku_crypto.incidents import Incident, Playbook

__all__ = [
    "INCIDENT_SCHEMA",
    "iso",
    "playbook_dict",
    "print_incident",
    "print_json",
    "print_table",
    "read_tokens",
    "write_tokens",
]

#: The ``schema`` of one incident printed with ``--format json``.
INCIDENT_SCHEMA = "styku-crypto/incident/v2"


def iso(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def print_json(doc: dict[str, Any]) -> None:
    print(json.dumps(doc, indent=2, ensure_ascii=False))


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to width; the last column is left unpadded."""
    table = [tuple(header), *[tuple(r) for r in rows]]
    widths = [max(len(r[c]) for r in table) for c in range(len(header) - 1)]
    for row in table:
        cells = [cell.ljust(widths[c]) for c, cell in enumerate(row[:-1])]
        print("  ".join([*cells, row[-1]]))


def playbook_dict(book: Playbook) -> dict[str, Any]:
    return {
        "name": book.name,
        "title": book.title,
        "owner": book.owner,
        "severity": book.severity.value,
        "description": book.description,
        "source": book.source,
        "steps": [
            {"number": i, "title": s.title, "owner": s.owner, "action": s.action}
            for i, s in enumerate(book.steps, start=1)
        ],
    }


def print_incident(incident: Incident, fmt: str) -> None:
    from styku_crypto.incidents import incident_to_dict

    now = datetime.now(UTC)
    if fmt == "json":
        print_json({"schema": INCIDENT_SCHEMA, **incident_to_dict(incident, now=now)})
        return
    print(f"{incident.id}  {incident.title}")
    print(f"  type:        {incident.type or '-'}  (owner: {incident.owner or '-'})")
    print(f"  severity:    {incident.severity.value}")
    print(f"  status:      {incident.status.value}")
    print(f"  tenants:     {', '.join(incident.tenants) or '-'}")
    print(f"  detected:    {iso(incident.detected_at)}")
    print(f"  reported:    {iso(incident.reported_at)}")
    print(f"  confirmed:   {iso(incident.confirmed_at)}")
    print(f"  resolved:    {iso(incident.resolved_at)}")
    print(f"  disposition: {incident.disposition or '-'}")
    print(f"  description: {incident.description}")
    if incident.steps:
        print("  checklist:")
        for s in incident.steps:
            mark = "x" if s.done else " "
            action = f"  [{s.action}]" if s.action else ""
            print(f"    {s.number}. [{mark}] {s.title} ({s.owner or '-'}){action}")
            for run in s.runs:
                print(f"         ran {iso(run.at)}: {run.outcome}: {run.summary}")
    if incident.notices:
        print("  notification:")
        for n in incident.notices:
            how = f"{n.channel} ({n.reference})" if n.reference else n.channel
            sent = f"notified {iso(n.notified_at)} by {how}" if n.notified_at else "not notified"
            state = n.state(now).replace("_", " ")
            print(f"    {n.tenant}: deadline {iso(n.deadline)}, {sent}: {state}")
    print("  timeline:")
    for item in incident.timeline:
        who = f" [{item.actor}]" if item.actor else ""
        print(f"    {iso(item.at)}{who} {item.text}")


def read_tokens(path: Path) -> tuple[dict[int, str], list[str]]:
    """Text tokens from *path*, one per line: ``({line index: token}, every line)``."""
    from styku_crypto.exceptions import InvalidInputError

    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"--tokens {path}: cannot be read as text tokens ({type(exc).__name__})"
        ) from None
    return {i: line.strip() for i, line in enumerate(lines) if line.strip()}, lines


def write_tokens(path: Path, lines: list[str], tokens: dict[int, str]) -> None:
    """Write the rewrapped *tokens* back into their lines, atomically."""
    out = list(lines)
    for index, token in tokens.items():
        out[index] = token
    atomic_write(path, ("\n".join(out) + "\n").encode("ascii"))

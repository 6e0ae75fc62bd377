"""The JSON (``styku-evidence/1``) and Markdown forms of the evidence report."""

from __future__ import annotations

import json
from typing import Any

from styku_crypto.report._model import SCHEMA, EvidenceReport, Status, _iso

__all__ = ["to_dict", "to_json", "to_markdown"]

CLAUSES = {
    "c": "c) Encryption in transit and at rest",
    "d": "d) Incident management",
    "e": "e) Availability and recovery",
}
MARK = {
    Status.PASS: "PASS",
    Status.FAIL: "FAIL",
    Status.WAIVED: "WAIVED",
    Status.NOT_GATHERED: "NOT GATHERED",
    Status.NOT_APPLICABLE: "N/A",
}


def to_dict(report: EvidenceReport) -> dict[str, Any]:
    """The versioned JSON document (see docs/report.md, field by field)."""
    today = report.generated_at.date()
    return {
        "schema": SCHEMA,
        "title": report.title,
        "generated_at": _iso(report.generated_at),
        "config": report.config,
        "demo": report.demo,
        "seconds": round(report.seconds, 3),
        "exit_code": report.exit_code,
        "counts": report.counts(),
        "controls": [c.to_dict(today) for c in report.controls],
        "sources": [s.to_dict() for s in report.sources],
        "charts": report.charts,
    }


def to_json(report: EvidenceReport) -> str:
    """:func:`to_dict` as indented JSON text with a final newline."""
    return json.dumps(to_dict(report), indent=2, sort_keys=False) + "\n"


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: EvidenceReport) -> str:
    """A Markdown page: summary table by clause, then each control's evidence and fix."""
    lines = [
        f"# {report.title}",
        "",
        f"Generated {_iso(report.generated_at)} from `{report.config}` (schema {SCHEMA}).",
        "",
        "| Clause | Control | Status | Summary |",
        "|---|---|---|---|",
    ]
    for c in report.controls:
        lines.append(f"| {c.clause}) | {c.id} | {MARK[c.status]} | {_cell(c.summary)} |")
    for key, heading in CLAUSES.items():
        lines += ["", f"## {heading}"]
        for c in (c for c in report.controls if c.clause == key):
            lines += ["", f"### {c.id}: {c.title} - {MARK[c.status]}", "", f"Checks: {c.checks}."]
            if c.reason:
                lines += ["", f"Not gathered: {c.reason}"]
            if c.evidence:
                lines += ["", "| Evidence | Value | Source | At |", "|---|---|---|---|"]
                lines += [
                    f"| {_cell(e.label)} | {_cell(e.value)} | {_cell(e.source)} | {_iso(e.at)} |"
                    for e in c.evidence
                ]
            if c.problems:
                lines.append("")
                lines += [
                    f"- {'(waived) ' if p.waived_by else ''}{p.subject}: {p.message}"
                    for p in c.problems
                ]
            for w in c.waivers:
                state = "expired" if not w.active(report.generated_at.date()) else "active"
                lines += [
                    "",
                    f"Waiver ({state}, until {w.expires}): "
                    f"{w.subject or 'whole control'} - {w.reason}",
                ]
            if c.status in (Status.FAIL, Status.NOT_GATHERED):
                lines += ["", f"Fix: {c.fix}"]
    return "\n".join(lines) + "\n"

"""Exports of the incident log: JSON (versioned schema), Markdown and HTML reports.

Exports are made from a verified log only. Every text field is escaped for
the target format (HTML-escaped in HTML; Markdown control characters escaped
in Markdown), so an incident description cannot inject markup into a
customer notification.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.incidents._model import Incident, VerificationReport

__all__ = ["EXPORT_FORMATS", "EXPORT_SCHEMA", "export_incidents", "incident_to_dict"]

#: The JSON export's schema id.
EXPORT_SCHEMA = "styku-crypto/incidents-export/v1"
#: Accepted export formats.
EXPORT_FORMATS = ("json", "markdown", "html")


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def incident_to_dict(incident: Incident) -> dict[str, Any]:
    """The JSON form of one incident (part of the export schema)."""
    return {
        "id": incident.id,
        "title": incident.title,
        "severity": incident.severity.value,
        "status": incident.status,
        "description": incident.description,
        "tenants": list(incident.tenants),
        "detected_at": _iso(incident.detected_at),
        "reported_at": _iso(incident.reported_at),
        "resolved_at": _iso(incident.resolved_at),
        "disposition": incident.disposition,
        "actions": [{"at": _iso(a.at), "text": a.text, "actor": a.actor} for a in incident.actions],
        "updated_at": _iso(incident.updated_at),
    }


def export_incidents(
    incidents: Sequence[Incident],
    *,
    fmt: str,
    report: VerificationReport,
    generated_at: datetime,
    location: str,
) -> str:
    """Render *incidents* as ``json``, ``markdown`` or ``html``.

    Args:
        incidents: the incidents, in order.
        fmt: one of :data:`EXPORT_FORMATS`.
        report: the verification report of the log they come from.
        generated_at: the export time (UTC).
        location: where the log lives (shown in the report).

    Raises:
        InvalidInputError: unknown format.
    """
    if fmt == "json":
        return _json(incidents, report, generated_at, location)
    if fmt == "markdown":
        return _markdown(incidents, report, generated_at)
    if fmt == "html":
        return _html(incidents, report, generated_at)
    raise InvalidInputError(f"unknown export format {fmt!r}; choose one of {EXPORT_FORMATS}")


def _verification(report: VerificationReport) -> dict[str, Any]:
    return {
        "intact": True,
        "entries": report.entries,
        "head_checked": report.head_checked,
        "incomplete_tail_bytes": report.incomplete_tail_bytes,
    }


def _json(
    incidents: Sequence[Incident], report: VerificationReport, at: datetime, location: str
) -> str:
    doc = {
        "schema": EXPORT_SCHEMA,
        "generated_at": _iso(at),
        "log": location,
        "verification": _verification(report),
        "incidents": [incident_to_dict(i) for i in incidents],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>])")


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


def _summary(report: VerificationReport) -> str:
    head = "head record checked" if report.head_checked else "no head record (tail unchecked)"
    return f"log verified intact: {report.entries} entries, {head}"


def _markdown(incidents: Sequence[Incident], report: VerificationReport, at: datetime) -> str:
    out = [
        "# Security incident report",
        "",
        f"Generated {_iso(at)}; {_summary(report)}.",
        "",
    ]
    if not incidents:
        out += ["No incidents recorded.", ""]
    for inc in incidents:
        out += [
            f"## {inc.id}: {_md(inc.title)}",
            "",
            "| Field | Value |",
            "|---|---|",
            f"| Severity | {inc.severity.value} |",
            f"| Status | {inc.status} |",
            f"| Affected tenants | {_md(', '.join(inc.tenants)) or 'none recorded'} |",
            f"| Detected | {_iso(inc.detected_at)} |",
            f"| Reported | {_iso(inc.reported_at)} |",
            f"| Resolved | {_iso(inc.resolved_at) or 'open'} |",
            f"| Disposition | {_md(inc.disposition) if inc.disposition else 'pending'} |",
            "",
            _md(inc.description),
            "",
        ]
        if inc.actions:
            out.append("Actions:")
            out.append("")
            for action in inc.actions:
                who = f" ({_md(action.actor)})" if action.actor else ""
                out.append(f"- {_iso(action.at)}{who}: {_md(action.text)}")
            out.append("")
    return "\n".join(out)


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}"
    "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;"
    "padding:.25rem .5rem;text-align:left}.sev-critical,.sev-high{color:#a00}"
)


def _html(incidents: Sequence[Incident], report: VerificationReport, at: datetime) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Security incident report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Security incident report</h1>",
        f"<p>Generated {e(str(_iso(at)))}; {e(_summary(report))}.</p>",
    ]
    if not incidents:
        out.append("<p>No incidents recorded.</p>")
    for inc in incidents:
        rows = [
            ("Severity", inc.severity.value),
            ("Status", inc.status),
            ("Affected tenants", ", ".join(inc.tenants) or "none recorded"),
            ("Detected", _iso(inc.detected_at) or ""),
            ("Reported", _iso(inc.reported_at) or ""),
            ("Resolved", _iso(inc.resolved_at) or "open"),
            ("Disposition", inc.disposition or "pending"),
        ]
        out.append(f'<section id="{e(inc.id)}" class="sev-{e(inc.severity.value)}">')
        out.append(f"<h2>{e(inc.id)}: {e(inc.title)}</h2>")
        out.append("<table>")
        out += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows]
        out.append("</table>")
        out.append(f"<p>{e(inc.description)}</p>")
        if inc.actions:
            out.append("<ul>")
            for action in inc.actions:
                who = f" ({e(action.actor)})" if action.actor else ""
                out.append(f"<li>{e(str(_iso(action.at)))}{who}: {e(action.text)}</li>")
            out.append("</ul>")
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"

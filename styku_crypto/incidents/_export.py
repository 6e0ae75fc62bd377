"""Exports of the incident log: JSON (versioned schema), Markdown and HTML reports.

Exports are made from a verified log only. Every text field is escaped for
the target format (HTML-escaped in HTML; Markdown control characters escaped
in Markdown), so an incident description cannot inject markup into a
customer notification. Each incident carries its timeline (every status
change, step, action run and notification with its time) and its
notification table (per tenant: deadline, when and how it was notified).

The HTML report is self-contained: inline CSS only, no scripts, no external
resources (fonts, images, links to fetch), and a print stylesheet.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.incidents._model import Incident, TenantNotice, VerificationReport

__all__ = ["EXPORT_FORMATS", "EXPORT_SCHEMA", "export_incidents", "incident_to_dict"]

#: The JSON export's schema id.
EXPORT_SCHEMA = "styku-crypto/incidents-export/v2"
#: Accepted export formats.
EXPORT_FORMATS = ("json", "markdown", "html")


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def _notice(notice: TenantNotice, now: datetime) -> dict[str, Any]:
    return {
        "tenant": notice.tenant,
        "hours": notice.hours,
        "deadline": _iso(notice.deadline),
        "notified_at": _iso(notice.notified_at),
        "channel": notice.channel,
        "reference": notice.reference,
        "by": notice.actor,
        "state": notice.state(now),
    }


def incident_to_dict(incident: Incident, *, now: datetime | None = None) -> dict[str, Any]:
    """The JSON form of one incident (part of the export schema).

    Args:
        incident: the incident.
        now: the time notification states (``overdue``, ``pending``) are
            judged at (default: now).
    """
    when = datetime.now(UTC) if now is None else now
    return {
        "id": incident.id,
        "title": incident.title,
        "type": incident.type,
        "owner": incident.owner,
        "severity": incident.severity.value,
        "status": incident.status.value,
        "description": incident.description,
        "tenants": list(incident.tenants),
        "detected_at": _iso(incident.detected_at),
        "reported_at": _iso(incident.reported_at),
        "confirmed_at": _iso(incident.confirmed_at),
        "resolved_at": _iso(incident.resolved_at),
        "disposition": incident.disposition,
        "actions": [{"at": _iso(a.at), "text": a.text, "actor": a.actor} for a in incident.actions],
        "steps": [
            {
                "number": s.number,
                "title": s.title,
                "owner": s.owner,
                "action": s.action,
                "done": s.done,
                "done_at": _iso(s.done_at),
                "done_by": s.done_by,
                "note": s.note,
                "runs": [
                    {
                        "at": _iso(r.at),
                        "action": r.action,
                        "argument": r.argument,
                        "outcome": r.outcome,
                        "summary": r.summary,
                        "counts": dict(r.counts),
                        "events": [dict(e) for e in r.events],
                        "by": r.actor,
                    }
                    for r in s.runs
                ],
            }
            for s in incident.steps
        ],
        "notifications": [_notice(n, when) for n in incident.notices],
        "timeline": [
            {"at": _iso(t.at), "kind": t.kind, "text": t.text, "by": t.actor}
            for t in incident.timeline
        ],
        "origin": None if incident.origin is None else dict(incident.origin),
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
        generated_at: the export time (UTC); notification states are judged at it.
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
        "incidents": [incident_to_dict(i, now=at) for i in incidents],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>])")


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


def _summary(report: VerificationReport) -> str:
    head = "head record checked" if report.head_checked else "no head record (tail unchecked)"
    return f"log verified intact: {report.entries} entries, {head}"


def _fields(inc: Incident) -> list[tuple[str, str]]:
    return [
        ("Type", inc.type or "-"),
        ("Owner", inc.owner or "-"),
        ("Severity", inc.severity.value),
        ("Status", inc.status.value),
        ("Affected tenants", ", ".join(inc.tenants) or "none recorded"),
        ("Detected", _iso(inc.detected_at) or ""),
        ("Reported", _iso(inc.reported_at) or ""),
        ("Confirmed", _iso(inc.confirmed_at) or "not confirmed"),
        ("Resolved", _iso(inc.resolved_at) or "open"),
        ("Disposition", inc.disposition or "pending"),
    ]


def _notice_row(n: TenantNotice, now: datetime) -> list[str]:
    how = n.channel or "-"
    if n.reference:
        how += f" ({n.reference})"
    return [
        n.tenant,
        _iso(n.deadline) or "-",
        _iso(n.notified_at) or "-",
        how,
        n.state(now).replace("_", " "),
    ]


_NOTICE_HEAD = ["Tenant", "Deadline", "Notified", "How", "State"]


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
        out += [f"## {inc.id}: {_md(inc.title)}", "", "| Field | Value |", "|---|---|"]
        out += [f"| {k} | {_md(v)} |" for k, v in _fields(inc)]
        out += ["", _md(inc.description), ""]
        if inc.notices:
            out += ["### Customer notification", ""]
            out += ["| " + " | ".join(_NOTICE_HEAD) + " |", "|---|---|---|---|---|"]
            out += [
                "| " + " | ".join(_md(c) for c in _notice_row(n, at)) + " |" for n in inc.notices
            ]
            out.append("")
        if inc.steps:
            out += ["### Checklist", ""]
            for s in inc.steps:
                mark = "x" if s.done else " "
                action = f" \\[{_md(s.action)}\\]" if s.action else ""
                out.append(
                    f"{s.number}. \\[{mark}\\] {_md(s.title)} ({_md(s.owner or '-')}){action}"
                )
            out.append("")
        out += ["### Timeline", "", "| Time | What | By |", "|---|---|---|"]
        out += [f"| {_iso(t.at)} | {_md(t.text)} | {_md(t.actor or '-')} |" for t in inc.timeline]
        out.append("")
    return "\n".join(out)


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}"
    "table{border-collapse:collapse;margin:.5rem 0;width:100%}td,th{border:1px solid #ccc;"
    "padding:.25rem .5rem;text-align:left;vertical-align:top}"
    ".sev-critical h2,.sev-high h2{color:#a00}.overdue,.late{color:#a00;font-weight:bold}"
    "ol.steps li.done{color:#555}"
    "@media print{body{margin:0;max-width:none;font-size:10pt;color:#000}"
    "section{break-inside:avoid-page}h2{break-before:page}section:first-of-type h2"
    "{break-before:auto}tr{break-inside:avoid}}"
)


def _table(e: Any, head: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{e(classes[i])}"' if classes else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


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
        out.append(f'<section id="{e(inc.id)}" class="sev-{e(inc.severity.value)}">')
        out.append(f"<h2>{e(inc.id)}: {e(inc.title)}</h2>")
        out.append("<table>")
        out += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _fields(inc)]
        out.append("</table>")
        out.append(f"<p>{e(inc.description)}</p>")
        if inc.notices:
            out.append("<h3>Customer notification</h3>")
            rows = [_notice_row(n, at) for n in inc.notices]
            out.append(_table(e, _NOTICE_HEAD, rows, [n.state(at) for n in inc.notices]))
        if inc.steps:
            out.append("<h3>Checklist</h3>")
            out.append('<ol class="steps">')
            for s in inc.steps:
                mark = "&#9745;" if s.done else "&#9744;"
                action = f" [{e(s.action)}]" if s.action else ""
                cls = ' class="done"' if s.done else ""
                out.append(f"<li{cls}>{mark} {e(s.title)} ({e(s.owner or '-')}){action}</li>")
            out.append("</ol>")
        out.append("<h3>Timeline</h3>")
        rows = [[_iso(t.at) or "", t.text, t.actor or "-"] for t in inc.timeline]
        out.append(_table(e, ["Time", "What", "By"], rows))
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"

"""The HTML evidence report: one self-contained file.

No network: no external stylesheet, font, script or image; the charts are
inline SVG made in Python and the page needs no JavaScript. A strict
Content-Security-Policy meta tag (``default-src 'none'``; inline styles and
``data:`` images only) makes a browser refuse any request even if content
were injected, and every text from the data is HTML-escaped. Print CSS keeps
controls from splitting across pages and prints in colour.
"""

from __future__ import annotations

from html import escape

from styku_crypto.report._model import SCHEMA, ControlResult, EvidenceReport, Status, _iso
from styku_crypto.report._render import CLAUSES, MARK
from styku_crypto.report._svg import freshness_timeline, incident_timeline, key_age_chart

__all__ = ["to_html"]

_CSS = """
:root{--pass:#2e7d32;--fail:#c0392b;--waived:#8e6c00;--ng:#6b21a8;--na:#6b7280}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#111;
 background:#f6f7f9}
main{max-width:960px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 10px;border-bottom:2px solid #e5e7eb;padding-bottom:4px}
h3{font-size:15px;margin:0}
.meta{color:#4b5563;font-size:13px}
.demo{background:#fff7d6;border:1px solid #e0c36a;padding:6px 10px;border-radius:6px;
 font-size:13px}
.grid{display:grid;grid-template-columns:repeat(3,1fr);gap:12px}
.clause{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px}
.clause h3{font-size:13px;color:#374151;margin-bottom:8px}
.tile{display:flex;justify-content:space-between;align-items:center;padding:6px 8px;
 margin:4px 0;border-radius:6px;text-decoration:none;color:#111;font-size:13px;
 border-left:6px solid var(--na);background:#f9fafb}
.badge{font-size:11px;font-weight:700;padding:2px 6px;border-radius:4px;color:#fff;
 background:var(--na);white-space:nowrap}
.pass{border-color:var(--pass)} .pass .badge,.badge.pass{background:var(--pass)}
.fail{border-color:var(--fail)} .fail .badge,.badge.fail{background:var(--fail)}
.waived{border-color:var(--waived)} .waived .badge,.badge.waived{background:var(--waived)}
.not-gathered{border-color:var(--ng)} .not-gathered
 .badge,.badge.not-gathered{background:var(--ng)}
.counts span{margin-right:12px;font-size:13px}
section.control{background:#fff;border:1px solid #e5e7eb;border-left:6px solid var(--na);
 border-radius:8px;padding:12px 14px;margin:10px 0;break-inside:avoid}
section.control header{display:flex;justify-content:space-between;gap:8px;
 align-items:baseline}
table{border-collapse:collapse;width:100%;font-size:12px;margin-top:8px}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #eef0f2;vertical-align:top}
th{color:#374151;background:#f9fafb}
.problems{margin:8px 0 0;padding-left:18px;font-size:13px}
.problems .w{color:var(--waived)}
.fix{font-size:13px;margin-top:8px;background:#fef2f2;padding:6px 8px;border-radius:6px}
.reason{font-size:13px;margin-top:8px;background:#f5f3ff;padding:6px 8px;
 border-radius:6px}
.chart{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px;
 margin:10px 0;break-inside:avoid;overflow:hidden}
.chart svg{max-width:100%;height:auto}
.grade{font-weight:700;font-size:15px}
footer{color:#6b7280;font-size:12px;margin:30px 0 10px}
@media (max-width:700px){.grid{grid-template-columns:1fr}}
@media print{
 @page{size:A4;margin:14mm}
 body{background:#fff;-webkit-print-color-adjust:exact;print-color-adjust:exact}
 main{max-width:none;padding:0}
 section.control,.chart,.clause,tr{break-inside:avoid}
 h2{break-after:avoid}
 a{color:inherit;text-decoration:none}
}
"""

_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "form-action 'none'; base-uri 'none'"
)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _badge(status: Status) -> str:
    return f'<span class="badge {status.value}">{_e(MARK[status])}</span>'


def _grid(report: EvidenceReport) -> str:
    cols = []
    for key, heading in CLAUSES.items():
        tiles = "".join(
            f'<a class="tile {c.status.value}" href="#{_e(c.id)}">'
            f"<span>{_e(c.id)}</span>{_badge(c.status)}</a>"
            for c in report.controls
            if c.clause == key
        )
        cols.append(f'<div class="clause"><h3>{_e(heading)}</h3>{tiles}</div>')
    return f'<div class="grid">{"".join(cols)}</div>'


def _control(c: ControlResult, report: EvidenceReport) -> str:
    parts = [
        f'<section class="control {c.status.value}" id="{_e(c.id)}">',
        f"<header><h3>{_e(c.id)}: {_e(c.title)}</h3>{_badge(c.status)}</header>",
        f'<div class="meta">clause {_e(c.clause)}) &middot; checks: {_e(c.checks)}</div>',
        f"<p>{_e(c.summary)}</p>",
    ]
    if c.reason:
        parts.append(f'<div class="reason">Not gathered: {_e(c.reason)}</div>')
    if c.evidence:
        rows = "".join(
            f"<tr><td>{_e(e.label)}</td><td>{_e(e.value)}</td><td>{_e(e.source)}</td><td>{_e(_iso(e.at))}</td></tr>"
            for e in c.evidence
        )
        parts.append(
            "<table><tr><th>Evidence</th><th>Value</th><th>Source</th><th>At (UTC)</th></tr>"
            f"{rows}</table>"
        )
    if c.problems:
        items = "".join(
            f'<li class="{"w" if p.waived_by else ""}">{"(waived) " if p.waived_by else ""}'
            f"<b>{_e(p.subject)}</b>: {_e(p.message)}</li>"
            for p in c.problems
        )
        parts.append(f'<ul class="problems">{items}</ul>')
    today = report.generated_at.date()
    for w in c.waivers:
        state = "active" if w.active(today) else "EXPIRED - waives nothing"
        parts.append(
            f'<div class="meta">Waiver ({_e(state)}, until {_e(w.expires)}; {_e(w.where)}): '
            f"{_e(w.subject or 'whole control')} - {_e(w.reason)}</div>"
        )
    if c.status in (Status.FAIL, Status.NOT_GATHERED):
        parts.append(f'<div class="fix">Fix: {_e(c.fix)}</div>')
    parts.append("</section>")
    return "".join(parts)


def _endpoints(report: EvidenceReport) -> str:
    eps = report.charts.get("endpoints") or []
    if not eps:
        return '<p class="meta">No TLS endpoints configured.</p>'
    rows = []
    for ep in eps:
        if ep["error"]:
            verdict = '<span class="badge not-gathered">UNREACHABLE</span> ' + _e(ep["error"])
        elif ep["compliant"]:
            verdict = '<span class="badge pass">COMPLIANT</span>'
        else:
            verdict = (
                f'<span class="badge fail">NON-COMPLIANT</span> {ep["errors"]} error finding(s)'
            )
        rows.append(
            f"<tr><td>{_e(ep['target'])}</td><td>{_e(ep['protocol'])}</td>"
            f'<td class="grade">{_e(ep["grade"] or "-")}</td><td>{verdict}</td>'
            f"<td>{_e(ep['cert_expires'] or '-')}</td></tr>"
        )
    return (
        "<table><tr><th>Endpoint</th><th>Protocol</th><th>Grade</th><th>Verdict</th>"
        f"<th>Certificate expires</th></tr>{''.join(rows)}</table>"
    )


def to_html(report: EvidenceReport) -> str:
    """The report as one self-contained HTML page (UTF-8 text)."""
    ch = report.charts
    counts = report.counts()
    count_text = "".join(
        f"<span>{_badge(Status(k))} {v}</span>"
        for k, v in counts.items()
        if v or k in ("pass", "fail")
    )
    demo = (
        '<p class="demo">Demo report: a throw-away environment built by '
        "<code>styku-crypto report --demo</code>.</p>"
        if report.demo
        else ""
    )
    body = [
        f"<h1>{_e(report.title)}</h1>",
        f'<div class="meta">Generated {_e(_iso(report.generated_at))} from {_e(report.config)} '
        f"in {report.seconds:.1f} s &middot; schema {_e(SCHEMA)} "
        f"&middot; exit code {report.exit_code}</div>",
        demo,
        f'<p class="counts">{count_text}</p>',
        "<h2>Controls by Annex 2 clause</h2>",
        _grid(report),
        "<h2>TLS endpoints</h2>",
        _endpoints(report),
        "<h2>Key age against the rotation policy</h2>",
        '<div class="chart">'
        + key_age_chart(ch.get("key_ages") or [], ch.get("rotation_days"))
        + "</div>",
        "<h2>Backup and drill freshness</h2>",
        '<div class="chart">'
        + freshness_timeline(
            ch.get("backups") or [],
            ch.get("drills") or [],
            now=report.generated_at,
            backup_hours=ch.get("backup_max_age_hours"),
            drill_days=ch.get("drill_max_age_days"),
        )
        + "</div>",
        "<h2>Incident timeline</h2>",
        '<div class="chart">'
        + incident_timeline(ch.get("incidents") or [], now=report.generated_at)
        + "</div>",
    ]
    for key, heading in CLAUSES.items():
        body.append(f"<h2>{_e(heading)}</h2>")
        body.extend(_control(c, report) for c in report.controls if c.clause == key)
    body.append(
        "<footer>Every value above was read by styku-crypto from the named source "
        "at the time shown. "
        "The report holds no key material, password hash or token.</footer>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(report.title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )

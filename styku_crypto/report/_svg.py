"""Inline SVG charts drawn in pure Python (no JavaScript, no fonts, no network).

Each function takes the report's chart data and returns one ``<svg>`` element
as text. Every label is escaped; sizes are fixed so the page prints the same
on screen and paper. Colours also carry a text label or pattern, so the charts
read in greyscale print.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from html import escape
from typing import Any

__all__ = ["freshness_timeline", "incident_timeline", "key_age_chart"]

_W = 720
_FAIL = "#c0392b"
_PASS = "#2e7d32"  # noqa: S105 - a colour, not a password
_MUTED = "#6b7280"
_SEV = {"low": "#7aa6c2", "medium": "#e0a800", "high": "#e67e22", "critical": "#c0392b"}
_MAX_ROWS = 30


def _t(
    x: float, y: float, text: str, *, anchor: str = "start", size: int = 11, fill: str = "#111"
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}">'
        f"{escape(text)}</text>"
    )


def _svg(height: float, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {height:.0f}" '
        f'width="{_W}" height="{height:.0f}" role="img" aria-label="{escape(label)}" '
        f'font-family="sans-serif">{"".join(body)}</svg>'
    )


def _empty(label: str, text: str) -> str:
    return _svg(40, [_t(10, 25, text, fill=_MUTED)], label)


def key_age_chart(key_ages: list[dict[str, Any]], rotation_days: int | None) -> str:
    """Per tenant, the age of each current key as a bar, against the rotation limit."""
    label = "Current key age per tenant against the rotation limit"
    current = [k for k in key_ages if k.get("primary")]
    if not current or not rotation_days:
        return _empty(label, "no key store data")
    tenants = sorted({k["tenant"] for k in current})
    shown = tenants[:_MAX_ROWS]
    purposes = sorted({k["purpose"] for k in current})
    left, right, row, top = 150, _W - 20, 22, 30
    scale_max = float(max(rotation_days * 1.2, max(float(k["age_days"]) for k in current) * 1.05))

    def x(days: float) -> float:
        return left + (right - left) * min(days, scale_max) / scale_max

    body = [_t(left, 14, "days since the key was created", fill=_MUTED)]
    bar_h = (row - 6) / max(1, len(purposes))
    for i, tenant in enumerate(shown):
        y = top + i * row
        body.append(_t(left - 6, y + row / 2 + 1, tenant[:22], anchor="end"))
        for j, purpose in enumerate(purposes):
            for k in current:
                if k["tenant"] == tenant and k["purpose"] == purpose:
                    over = k["age_days"] > rotation_days
                    colour = _FAIL if over else ("#3b82f6" if j == 0 else "#93c5fd")
                    w = max(1.5, x(k["age_days"]) - left)
                    body.append(
                        f'<rect x="{left}" y="{y + 3 + j * bar_h:.1f}" width="{w:.1f}" '
                        f'height="{bar_h - 1:.1f}" fill="{colour}"><title>'
                        + escape(f"{tenant} {purpose} v{k['version']}: {k['age_days']:g} days")
                        + "</title></rect>"
                    )
    bottom = top + len(shown) * row
    limit_x = x(rotation_days)
    body.append(
        f'<line x1="{limit_x:.1f}" y1="{top - 6}" x2="{limit_x:.1f}" y2="{bottom}" '
        f'stroke="{_FAIL}" stroke-dasharray="5 3" stroke-width="1.5"/>'
    )
    body.append(
        _t(limit_x, top - 9, f"rotation limit {rotation_days} d", anchor="middle", fill=_FAIL)
    )
    for tick in range(0, int(scale_max) + 1, max(1, int(scale_max // 6) or 1)):
        tx = x(tick)
        body.append(
            f'<line x1="{tx:.1f}" y1="{bottom}" x2="{tx:.1f}" y2="{bottom + 4}" stroke="{_MUTED}"/>'
        )
        body.append(_t(tx, bottom + 16, str(tick), anchor="middle", size=10, fill=_MUTED))
    legend_y = bottom + 34
    for j, purpose in enumerate(purposes):
        colour = "#3b82f6" if j == 0 else "#93c5fd"
        body.append(
            f'<rect x="{left + j * 120}" y="{legend_y - 9}" width="10" height="10" '
            f'fill="{colour}"/>'
        )
        body.append(_t(left + j * 120 + 14, legend_y, purpose, size=10))
    if len(tenants) > len(shown):
        body.append(
            _t(
                left + 260,
                legend_y,
                f"(first {len(shown)} of {len(tenants)} tenants)",
                size=10,
                fill=_MUTED,
            )
        )
    return _svg(legend_y + 10, body, label)


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _tail(text: str, n: int = 28) -> str:
    return text if len(text) <= n else "..." + text[-(n - 3) :]


#: Ticks of the freshness axis (hours ago, label).
_AGE_TICKS = (
    (1, "1 h"),
    (24, "1 d"),
    (24 * 7, "7 d"),
    (24 * 30, "30 d"),
    (24 * 90, "90 d"),
    (24 * 365, "1 y"),
)


def freshness_timeline(
    backups: list[dict[str, Any]],
    drills: list[dict[str, Any]],
    *,
    now: datetime,
    backup_hours: float | None,
    drill_days: float | None,
) -> str:
    """One row per backup destination and one for the latest drill, by age on a log axis.

    The axis runs from "now" (right) to a year ago (left), logarithmic so that
    hours-old backups and a months-old drill both read. The green band on each
    row is the allowed age; a marker inside it is fresh, outside it is stale.
    """
    label = "Backup and drill freshness"
    rows: list[tuple[str, datetime | None, float | None, bool]] = []
    for b in backups:
        when = _parse(b["created_at"]) if b.get("created_at") else None
        rows.append((_tail(b["destination"]), when, backup_hours, True))
    if drills:
        latest = drills[0]
        state = "passed" if latest["passed"] else "FAILED"
        days = drill_days * 24 if drill_days else None
        rows.append(
            (f"latest drill ({state})", _parse(latest["started_at"]), days, latest["passed"])
        )
    elif drill_days:
        rows.append(("latest drill", None, drill_days * 24, False))
    if not rows:
        return _empty(label, "no backup or drill data")
    left, right, row, top = 210, _W - 30, 28, 10
    full = math.log1p(24 * 365 * 1.5)

    def x(hours_ago: float) -> float:
        return right - (right - left) * min(1.0, math.log1p(max(0.0, hours_ago)) / full)

    body = []
    for i, (name, when, allowed, ok) in enumerate(rows):
        y = top + i * row
        body.append(_t(left - 8, y + 15, name, anchor="end"))
        body.append(
            f'<line x1="{left}" y1="{y + 11}" x2="{right}" y2="{y + 11}" stroke="#e5e7eb"/>'
        )
        if allowed:
            bx = x(allowed)
            body.append(
                f'<rect x="{bx:.1f}" y="{y + 3}" width="{right - bx:.1f}" height="16" '
                'fill="#dcfce7"/>'
            )
        if when is None:
            body.append(_t(right - 4, y + 15, "none found", anchor="end", fill=_FAIL))
            continue
        age = max(0.0, (now - when).total_seconds() / 3600)
        fresh = ok and allowed is not None and age <= allowed
        colour = _PASS if fresh else _FAIL
        cx = x(age)
        body.append(
            f'<circle cx="{cx:.1f}" cy="{y + 11}" r="6" fill="{colour}"><title>'
            f"{escape(name)}: {escape(when.isoformat(timespec='minutes'))}</title></circle>"
        )
        word = f"{'fresh' if fresh else 'stale'}, {_age(age)} old"
        body.append(_t(cx - 10, y + 15, word, anchor="end", size=10, fill=colour))
    bottom = top + len(rows) * row
    body.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{_MUTED}"/>')
    body.append(_t(right, bottom + 14, "now", anchor="middle", size=10, fill=_MUTED))
    for hours, text in _AGE_TICKS:
        tx = x(hours)
        body.append(
            f'<line x1="{tx:.1f}" y1="{bottom}" x2="{tx:.1f}" y2="{bottom + 4}" stroke="{_MUTED}"/>'
        )
        body.append(_t(tx, bottom + 14, text, anchor="middle", size=10, fill=_MUTED))
    body.append(
        _t(left, bottom + 30, "age, logarithmic; green band: allowed age", size=10, fill=_MUTED)
    )
    return _svg(bottom + 38, body, label)


def _age(hours: float) -> str:
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} d"


def incident_timeline(incidents: list[dict[str, Any]], *, now: datetime) -> str:
    """One bar per incident from detection to resolution (or now when open), by severity."""
    label = "Incident timeline"
    if not incidents:
        return _empty(label, "no incidents recorded")
    shown = sorted(incidents, key=lambda i: i["detected_at"])[-_MAX_ROWS:]
    first = min(_parse(i["detected_at"]) for i in shown)
    start = first - timedelta(hours=1)
    span = max(1.0, (now - start).total_seconds())
    left, right, row, top = 200, _W - 20, 24, 10

    def x(when: datetime) -> float:
        return left + (right - left) * max(0.0, (when - start).total_seconds()) / span

    body = []
    for n, inc in enumerate(shown):
        y = top + n * row
        begin = _parse(inc["detected_at"])
        end = _parse(inc["resolved_at"]) if inc.get("resolved_at") else now
        colour = _SEV.get(inc["severity"], _MUTED)
        body.append(_t(left - 6, y + 14, f"{inc['id']} {inc['severity']}", anchor="end"))
        w = max(3.0, x(end) - x(begin))
        dash = ' stroke="#111" stroke-dasharray="3 2"' if inc["open"] else ""
        body.append(
            f'<rect x="{x(begin):.1f}" y="{y + 3}" width="{w:.1f}" height="14" '
            f'fill="{colour}"{dash}>'
            f"<title>{escape(inc['title'])}: {escape(inc['status'])}</title></rect>"
        )
        note = inc["status"] + (" - notification overdue" if inc.get("overdue") else "")
        tint = _FAIL if inc.get("overdue") else "#111"
        tx = x(begin) + w + 5
        if tx <= right - 150:
            body.append(_t(tx, y + 14, note, size=10, fill=tint))
        elif x(begin) - left > 150:
            body.append(_t(x(begin) - 5, y + 14, note, anchor="end", size=10, fill=tint))
        else:  # the bar fills the row: write on it
            body.append(_t(x(begin) + w - 5, y + 14, note, anchor="end", size=10, fill="#fff"))
    bottom = top + len(shown) * row
    body.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{_MUTED}"/>')
    body.append(_t(left, bottom + 14, start.strftime("%Y-%m-%d %H:%M"), size=10, fill=_MUTED))
    body.append(_t(right, bottom + 14, "now", anchor="end", size=10, fill=_MUTED))
    body.append(_t(left, bottom + 30, "dashed outline: still open", size=10, fill=_MUTED))
    return _svg(bottom + 38, body, label)

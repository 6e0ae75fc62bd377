"""Exports: timeline and notification table in every format; self-contained, escaped HTML."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html.parser import HTMLParser

from styku_crypto.incidents import EXPORT_SCHEMA, IncidentLog
from tests.incidents.conftest import FixedClock

_EVIL = '<script>alert(1)</script><img src="https://evil.example/x.png">'


def _incident(log: IncidentLog, clock: FixedClock) -> str:
    inc = log.open_incident(type="data-exposure", tenants=["acme", "globex"],
                            detected_at=clock.now - timedelta(days=5))  # fmt: skip
    log.update(inc.id, status="confirmed", at=clock.now - timedelta(days=4))
    log.step(inc.id, 1, note=_EVIL)
    log.notify(inc.id, tenant="acme", channel="email", reference=_EVIL)
    return inc.id


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained_escaped_and_printable(log: IncidentLog, clock: FixedClock) -> None:
    """No script, no external resource, every field escaped, a print stylesheet."""
    _incident(log, clock)
    page = log.export("html")
    parser = _Tags()
    parser.feed(page)
    names = {tag for tag, _ in parser.tags}
    assert "script" not in names
    assert "img" not in names
    assert "link" not in names
    assert not any(k in {"src", "href"} or k.startswith("on") for _, a in parser.tags for k in a)
    assert not re.search(r"url\(|@import|https?://", page.split("</style>")[0])
    assert "@media print" in page
    assert "&lt;script&gt;" in page


def test_every_format_has_the_timeline_and_notification_table(
    log: IncidentLog, clock: FixedClock
) -> None:
    """JSON, Markdown and HTML each show per-tenant deadlines and notices and the timeline."""
    _incident(log, clock)
    doc = json.loads(log.export("json"))
    assert doc["schema"] == EXPORT_SCHEMA == "styku-crypto/incidents-export/v2"
    (inc,) = doc["incidents"]
    assert inc["status"] == "confirmed"
    assert {n["tenant"]: n["state"] for n in inc["notifications"]} == {
        "acme": "late", "globex": "overdue",
    }  # fmt: skip
    assert [t["kind"] for t in inc["timeline"]] == [
        "detected", "status", "reported", "step", "notified",  # in activity-time order
    ]  # fmt: skip
    markdown = log.export("markdown")
    html = log.export("html")
    for text in (markdown, html):
        assert "Customer notification" in text
        assert "Timeline" in text
        assert "overdue" in text
        assert "Checklist" in text
    assert "<script>" not in markdown

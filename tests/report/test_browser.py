"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``).

The page must render (every section and chart present, no horizontal overflow),
log no console error, make no network request besides loading itself, and
print to PDF. A control test first proves the harness sees requests and console
errors, so a silent pass means something. Set ``STYKU_UPDATE_SCREENSHOT=1`` to
refresh docs/img/report.png from this run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from styku_crypto._cli import main
from tests.report._browser import Chromium, open_chromium

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img" / "report.png"


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    """One headless Chromium for the module."""
    chromium, profile = open_chromium()
    try:
        yield chromium
    finally:
        chromium.close()
        profile.cleanup()


def test_harness_sees_requests_and_console_errors(browser: Chromium, tmp_path: Path) -> None:
    """A page fetching a remote image and logging an error is caught (the fence blocks it)."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<html><body><img src="http://example.invalid/x.png">'
        '<script>console.error("boom")</script></body></html>'
    )
    run = browser.load(page.as_uri())
    assert "http://example.invalid/x.png" in run.requests
    assert "boom" in run.console_errors


def test_report_renders_offline_without_errors(browser: Chromium, tmp_path: Path) -> None:
    """The demo report renders fully, requests only itself, logs no error, prints to PDF."""
    out = tmp_path / "report.html"
    assert main(["report", "--demo", "--output", str(out)]) == 1
    run = browser.load(
        out.as_uri(),
        evaluate={
            "svgs": "document.querySelectorAll('svg').length",
            "tiles": "document.querySelectorAll('.grid .tile').length",
            "controls": "document.querySelectorAll('section.control').length",
            "overflow": "document.documentElement.scrollWidth > window.innerWidth",
            "scripts": "document.scripts.length",
            "text": "document.body.innerText",
        },
    )
    assert run.requests == [out.as_uri()]
    assert run.console_errors == []
    assert run.values["svgs"] == 3
    assert run.values["tiles"] == run.values["controls"] == 12
    assert run.values["overflow"] is False
    assert run.values["scripts"] == 0
    for heading in ("TLS endpoints", "Key age", "Backup and drill freshness", "Incident timeline"):
        assert heading in run.values["text"]
    assert run.screenshot.startswith(b"\x89PNG")
    assert len(run.screenshot) > 20_000
    assert run.pdf.startswith(b"%PDF-")
    assert run.pdf.count(b"/Type /Page") >= 2
    if os.environ.get("STYKU_UPDATE_SCREENSHOT") == "1":
        DOCS_IMG.write_bytes(run.screenshot)

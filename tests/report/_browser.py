"""Headless Chromium driven over the DevTools protocol on a pipe (stdlib only).

Why a pipe: ``--remote-debugging-pipe`` makes Chromium read DevTools commands
from fd 3 and write replies and events to fd 4, each a JSON message ended by a
NUL byte. No port, no websocket library, no race to discover an endpoint; the
browser dies with its pipes.

What is recorded: every ``Network.requestWillBeSent`` (so any fetch the page
tries, even one that then fails), console calls and uncaught exceptions
(``Runtime.*``), and browser log entries (``Log.entryAdded``: CSP violations,
failed loads). As a second fence, Chromium runs with every host resolved to
nothing and a proxy on a closed loopback port, so no request can leave the
machine even if one were made.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageRun:
    """What loading one page produced."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    pdf: bytes = b""
    values: dict[str, Any] = field(default_factory=dict)


class Chromium:
    """One headless Chromium process and a page session on it."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None, "chromium is not installed (scripts/system-deps.sh)"
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The browser reads commands on fd 3 and writes on fd 4.
        os.set_inheritable(to_browser_r, True)
        os.set_inheritable(from_browser_w, True)

        def fds() -> None:
            # Move both ends out of the way first, so neither is clobbered by the other.
            r, w = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless=new",
                "--remote-debugging-pipe",
                "--no-sandbox",  # CI containers run as root
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--proxy-server=http://127.0.0.1:9",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            preexec_fn=fds,
            pass_fds=(3, 4),  # kept open after preexec_fn placed the pipes there
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        """Stop the browser (it is ours: started in __init__)."""
        with contextlib.suppress(Exception):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from chromium")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise EOFError("chromium closed its DevTools pipe")
                self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout: float = 30,
    ) -> dict[str, Any]:
        """Send one command and return its result (events seen meanwhile are kept)."""
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def wait_event(self, method: str, *, timeout: float = 30) -> dict[str, Any]:
        """Wait for the event *method* (already seen ones count)."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if ev.get("method") == method:
                    return ev
            self.events.append(self._read_message(deadline))

    def load(
        self, url: str, *, evaluate: dict[str, str] | None = None, width: int = 1100
    ) -> PageRun:
        """Open *url* in a fresh tab; record requests, errors, a screenshot and a PDF."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 1650, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_event("Page.loadEventFired")
        time.sleep(0.3)  # late subresource attempts and console output
        run = PageRun()
        for name, expression in (evaluate or {}).items():
            res = self.send(
                "Runtime.evaluate",
                {"expression": expression, "returnByValue": True},
                session=session,
            )
            run.values[name] = res.get("result", {}).get("value")
        # The first screen (summary, endpoints, charts): what the docs show.
        shot = self.send("Page.captureScreenshot", {"format": "png"}, session=session)
        run.screenshot = base64.b64decode(shot["data"])
        pdf = self.send(
            "Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True}, session=session
        )
        run.pdf = base64.b64decode(pdf["data"])
        # Drain what arrived during the screenshot and PDF too.
        self.send("Runtime.evaluate", {"expression": "1"}, session=session)
        for ev in self.events:
            method, params = ev.get("method"), ev.get("params", {})
            if method == "Network.requestWillBeSent":
                run.requests.append(params["request"]["url"])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "assert",
                "warning",
            ):
                run.console_errors.append(
                    " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                )
            elif method == "Runtime.exceptionThrown":
                run.console_errors.append(str(params["exceptionDetails"].get("text")))
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                run.console_errors.append(params["entry"]["text"])
        self.send("Target.closeTarget", {"targetId": target})
        return run


def open_chromium() -> tuple[Chromium, tempfile.TemporaryDirectory[str]]:
    """Start a browser with a throw-away profile."""
    profile = tempfile.TemporaryDirectory(prefix="styku-chromium-")
    return Chromium(Path(profile.name)), profile

"""TX-HTTPS on login URLs: ``web check`` (redirect and HSTS) against real loopback servers."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from styku_crypto.report import Status, load_config, run_report
from tests.report.conftest import Env


@pytest.fixture(scope="module")
def redirector(env: Env) -> Iterator[int]:
    """A plain-HTTP server on 127.0.0.1 that redirects every path to the good HTTPS endpoint."""
    target = env.good

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(301)
            self.send_header("Location", f"https://{target}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _tx(env: Env, tmp_path: Path, endpoint: str, port: int):  # type: ignore[no-untyped-def]
    tls = (
        f'[tls]\nendpoints = ["{env.good}"]\nlogin_urls = ["https://{endpoint}/login"]\n'
        f'ca_file = "{env.ca}"\nhttp_port = {port}\n'
    )
    report = run_report(load_config(env.write(tmp_path, env.config(tls=tls))), timeout=30)
    return next(c for c in report.controls if c.id == "TX-HTTPS")


def test_login_url_with_hsts_and_redirect_passes(env: Env, tmp_path: Path, redirector: int) -> None:
    """A login page that redirects HTTP to HTTPS and sends a long HSTS header passes."""
    c = _tx(env, tmp_path, env.good, redirector)
    assert c.status is Status.PASS
    ev = {e.label: e.value for e in c.evidence}
    assert ev[f"https://{env.good}/login HSTS"] == "max-age=63072000; includeSubDomains"


def test_login_url_without_hsts_fails(env: Env, tmp_path: Path, redirector: int) -> None:
    """A login page served without HSTS fails TX-HTTPS naming the URL and the HSTS rule."""
    c = _tx(env, tmp_path, env.weak, redirector)
    assert c.status is Status.FAIL
    problem = next(p for p in c.problems if p.subject == f"https://{env.weak}/login")
    assert "TLS-HSTS" in problem.message

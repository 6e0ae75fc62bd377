"""The web docs are product: examples run, and the documented API matches __all__."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

import styku_crypto.web
from tests.web._servers import run_uvicorn, run_waitress

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.S)


def _exec_example(page: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": f"docs_example_{page.replace('-', '_')}"}
    exec(compile(_python_blocks(page)[0], page, "exec"), namespace)
    return namespace


def test_documented_api_matches_all() -> None:
    """Every name in styku_crypto.web.__all__ is documented in docs/web.md, and nothing more."""
    text = (DOCS / "web.md").read_text()
    section = text.split("## API", 1)[1].split("##", 1)[0]
    documented = set(re.findall(r"`([A-Za-z_]+)`", section))
    assert documented == set(styku_crypto.web.__all__)
    assert list(styku_crypto.web.__all__) == sorted(styku_crypto.web.__all__)


def test_every_python_block_compiles() -> None:
    """Every Python example in the four web pages is valid Python."""
    for page in ("web.md", "web-asgi.md", "web-flask.md", "web-django.md"):
        for index, block in enumerate(_python_blocks(page)):
            compile(block, f"{page}#{index}", "exec")


def test_asgi_page_example_redirects_and_serves_login() -> None:
    """The Starlette page's app, as written, redirects plain HTTP to its HTTPS port."""
    app = _exec_example("web-asgi.md")["app"]
    with run_uvicorn(app) as port, httpx.Client(timeout=10) as client:
        r = client.get(f"http://localhost:{port}/login")
        assert r.status_code == 308
        assert r.headers["location"] == "https://localhost:8443/login"
        assert client.get(f"http://localhost:{port}/healthz").text == "ok"


def test_flask_page_example_behind_trusted_proxy() -> None:
    """The Flask page's app redirects plain HTTP and serves HTTPS from its trusted proxy."""
    app = _exec_example("web-flask.md")["app"]
    with run_waitress(app) as port, httpx.Client(timeout=10) as client:
        assert client.get(f"http://localhost:{port}/").status_code == 308
        r = client.post(
            f"http://localhost:{port}/login",
            data={"user": "alice", "password": "correct horse battery staple"},
            headers={"X-Forwarded-Proto": "https"},  # from 127.0.0.1: trusted in the example
        )
        assert r.status_code == 200
        assert "Secure" in r.headers["set-cookie"]
        assert r.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"

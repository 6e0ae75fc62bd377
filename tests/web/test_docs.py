"""The web docs are product: examples run, and the documented API matches __all__."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

import styku_crypto.web
from tests.web._servers import run_uvicorn, run_waitress

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


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


def test_asgi_page_certificates_pass_the_library_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The page's test-certificate recipe passes tls check-cert; trustme's, as the page says, fails.

    Then the page's app, served over TLS with those files and our server_context,
    answers a client that trusts ca.pem with HSTS, and the documented audit is compliant.
    """
    import ssl

    import trustme

    from styku_crypto._cli import main
    from styku_crypto.tls import profiles, server_context

    monkeypatch.chdir(tmp_path)
    blocks = _python_blocks("web-asgi.md")
    make_certs = next(b for b in blocks if "CertificateFactory" in b)
    exec(compile(make_certs, "web-asgi.md#certs", "exec"), {"__name__": "docs_certs"})
    assert {p.name for p in tmp_path.iterdir()} == {"ca.pem", "server.pem", "server.key"}
    args = ["tls", "check-cert", "server.pem", "--trust", "ca.pem", "--hostname", "localhost"]
    assert main(args) == 0
    assert "result: PASS" in capsys.readouterr().out

    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "tm.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "client.pem"))
    assert main(["tls", "check-cert", "tm.pem", "--trust", "client.pem"]) == 1
    capsys.readouterr()

    app = _exec_example("web-asgi.md")["app"]
    tls = server_context(
        policy=profiles.MOZILLA_INTERMEDIATE, certfile="server.pem", keyfile="server.key"
    )
    client = ssl.create_default_context(cafile="ca.pem")
    with run_uvicorn(app, ssl_context=tls) as port:
        with httpx.Client(verify=client, timeout=10) as http:
            r = http.get(f"https://localhost:{port}/")
        assert r.status_code == 200
        assert r.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
        assert main(["tls", "audit", f"localhost:{port}", "--ca-file", "ca.pem"]) == 0
    assert "COMPLIANT" in capsys.readouterr().out


def test_every_web_page_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Python block of web.md runs as written (no undefined names, no missing files)."""
    monkeypatch.chdir(tmp_path)
    for index, block in enumerate(_python_blocks("web.md")):
        exec(compile(block, f"web.md#{index}", "exec"), {"__name__": f"docs_web_{index}"})


def test_django_page_one_file_site_runs(tmp_path: Path) -> None:
    """The Django page's one-file site imports, redirects plain HTTP and serves its proxy.

    Run in a child process: Django's settings are process-wide.
    """
    import subprocess
    import sys

    (tmp_path / "site_app.py").write_text(_python_blocks("web-django.md")[0])
    probe = """
import io, sys
import site_app

def call(headers):
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "", "SCRIPT_NAME": "",
               "SERVER_NAME": "localhost", "SERVER_PORT": "8080", "HTTP_HOST": "localhost",
               "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
               "wsgi.errors": sys.stderr, "wsgi.version": (1, 0), "wsgi.multithread": False,
               "wsgi.multiprocess": False, "wsgi.run_once": False, **headers}
    seen = {}
    body = b"".join(site_app.application(environ, lambda s, h, e=None: seen.update(s=s, h=h)))
    return seen["s"], dict(seen["h"]), body

print(call({})[0])
status, headers, body = call({"HTTP_X_FORWARDED_PROTO": "https"})
print(status, headers.get("Strict-Transport-Security"), body.decode())
"""
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert out[0].startswith("308")
    assert out[1] == "200 OK max-age=63072000; includeSubDomains hello over https"
    # the settings excerpt and the login view run as written too (the try-it block needs
    # `python site_app.py` running: tests/docs runs it against the page's site, served)
    for index, block in enumerate(_python_blocks("web-django.md")[1:], start=1):
        if "http.client" in block:
            continue
        (tmp_path / f"block{index}.py").write_text(block)
        subprocess.run(
            [sys.executable, f"block{index}.py"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=60,
            check=True,
        )

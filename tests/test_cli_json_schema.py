"""Every JSON output of the command line carries a ``schema`` field (issue 14).

The test walks the whole argument parser: every command that offers ``--format json``
must have a recipe here, so a new JSON-emitting command cannot slip past. Each recipe
runs in-process and every JSON document it prints (or writes, for ``--report`` /
``--output``) must be an object whose ``schema`` is a non-empty string.
"""

from __future__ import annotations

import argparse
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from styku_crypto._cli import build_parser, main
from styku_crypto.testing import CertificateFactory


def _json_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _json_commands(sub, (*path, name))
        elif "--format" in action.option_strings and action.choices and "json" in action.choices:
            yield " ".join(path)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# command -> argv after the command words (JSON outputs go to stdout unless noted).
RECIPES: dict[str, list[str]] = {
    "keys list": [],
    "keys backup": ["--to", "{backups}", "--same-device-ok"],
    "keys check": [],
    "passwords calibrate": ["--target-ms", "5", "--max-memory", "20MiB"],
    "passwords profiles": [],
    "tls check-cert": ["{cert}", "--hostname", "localhost", "--trust", "{ca}"],
    "tls audit": ["127.0.0.1:{closed}", "--timeout", "1"],
    "web check": ["http://127.0.0.1:{closed}/", "--timeout", "1"],
    "incidents open": ["--type", "data-exposure", "--tenant", "acme"],
    "incidents update": ["INC-000001", "--status", "confirmed"],
    "incidents step": ["INC-000001", "1", "--done"],
    "incidents notify": ["INC-000001", "--tenant", "acme", "--channel", "email"],
    "incidents overdue": [],
    "incidents playbooks": [],
    "incidents list": [],
    "incidents show": ["INC-000001"],
    "incidents verify": [],
    "incidents close": ["INC-000001", "--disposition", "done"],
    "incidents export": [],
    "batch rewrap": [
        "--dsn",
        "sqlite:///{app_db}",
        "--table",
        "scans",
        "--column",
        "token",
        "--tenant",
        "acme",
    ],
    "batch rewrap-objects": ["{empty}", "--tenant", "acme"],
    "report": ["--config", "{report_config}", "--timeout", "5"],
}


def test_every_json_command_has_a_recipe() -> None:
    """The parser's JSON-capable commands and the recipes below are the same set."""
    assert set(_json_commands(build_parser())) == set(RECIPES)


@pytest.fixture
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> dict[str, str]:
    """A store with a tenant, a backup directory, a certificate chain and a closed port."""
    for name in ("STYKU_CRYPTO_STORE", "STYKU_CRYPTO_ROOTS", "STYKU_CRYPTO_INCIDENTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STYKU_CRYPTO_ROOT_KEY_FILE", str(tmp_path / "root.key"))
    monkeypatch.chdir(tmp_path)
    assert main(["keys", "init"]) == 0
    assert main(["keys", "create", "acme"]) == 0
    (tmp_path / "backups").mkdir()
    (tmp_path / "empty").mkdir()
    import sqlite3

    with sqlite3.connect(tmp_path / "app.db") as db:
        db.execute("CREATE TABLE scans (id INTEGER PRIMARY KEY, token BLOB)")
    factory = CertificateFactory()
    cert, _ = factory.good("localhost").write(tmp_path, "server")
    ca = tmp_path / "ca.pem"
    ca.write_bytes(factory.ca_pem())
    closed = str(_closed_port())
    report_config = tmp_path / "report.toml"
    report_config.write_text(f'[tls]\nendpoints = ["127.0.0.1:{closed}"]\n')
    capsys.readouterr()
    return {
        "report_config": str(report_config),
        "backups": str(tmp_path / "backups"),
        "cert": str(cert),
        "ca": str(ca),
        "closed": closed,
        "empty": str(tmp_path / "empty"),
        "app_db": str(tmp_path / "app.db"),
    }


def _documents(text: str) -> list[object]:
    """Every JSON value in *text* (one document, or several one after another)."""
    decoder = json.JSONDecoder()
    docs, index, text = [], 0, text.strip()
    while index < len(text):
        doc, end = decoder.raw_decode(text, index)
        docs.append(doc)
        index = end
        while index < len(text) and text[index].isspace():
            index += 1
    return docs


def _assert_schema(where: str, text: str) -> None:
    docs = _documents(text)
    assert docs, f"{where}: no JSON printed"
    for doc in docs:
        assert isinstance(doc, dict), f"{where}: a JSON output is not an object"
        schema = doc.get("schema")
        assert isinstance(schema, str), f"{where}: no schema field in {sorted(doc)[:8]}"
        assert schema, f"{where}: empty schema"


def test_every_json_output_has_a_schema(
    world: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run every JSON-capable command (in dependency order) and read each document's schema."""
    missing = []
    for command, template in RECIPES.items():
        argv = [*command.split(), *(a.format(**world) for a in template), "--format", "json"]
        main(argv)
        out = capsys.readouterr().out
        try:
            _assert_schema(command, out)
        except (AssertionError, json.JSONDecodeError) as exc:
            missing.append(f"{command}: {exc}")
    # Outputs written to files: the drill report and the incidents export file.
    report = tmp_path / "drill.json"
    assert main(["keys", "drill", world["backups"], "--report", str(report)]) == 0
    exported = tmp_path / "export.json"
    assert main(["incidents", "export", "--format", "json", "-o", str(exported)]) == 0
    capsys.readouterr()
    for where, path in (("keys drill --report", report), ("incidents export -o", exported)):
        try:
            _assert_schema(where, path.read_text())
        except (AssertionError, json.JSONDecodeError) as exc:
            missing.append(f"{where}: {exc}")
    assert not missing, "JSON outputs without a schema field:\n" + "\n".join(missing)

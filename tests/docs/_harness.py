"""Run the examples of README.md and docs/*.md with Sybil, as a reader would.

What runs, page by page, in order, in one fresh temporary directory per page:

* every fenced ``python`` block (and ``>>>`` sessions inside one), in one namespace
  per page, so a later block may use what an earlier block on the same page made;
* every hidden set-up block, ``<!-- invisible-code-block: python ... -->``: it names
  its set-up on the page (in the Markdown source) and gets ``docs_services``, whose
  methods start the suite's own PostgreSQL, SoftHSM2 and moto servers on demand;
* every fenced ``console`` block that shows a ``styku-crypto`` command, cram-style
  (a session with only other tools, such as ``curl`` against your own server, shows
  a machine's set-up and is not run): a line ``$ command`` (continued by a
  trailing backslash or by ``> `` lines) runs in bash, stdout and stderr together,
  and the lines after it are its expected output, compared with placeholders:
  ``<TIME>`` (a timestamp or a duration), ``<N>`` (a number), ``<ID>`` (an id),
  ``<PATH>`` (a path or any word), ``...`` (anything within a line; a line of its
  own: any number of lines) and a last line ``[N]`` for a non-zero exit status;
* every fenced ``sh`` block that calls ``styku-crypto``, as one bash script with
  ``set -euo pipefail``: it must succeed (its output is not shown, so not compared).
  ``sh`` blocks without ``styku-crypto`` (installing, starting a web server) are
  set-up instructions for a machine, not examples, and are not run.

Shell state (exported variables, the directory) carries from one shell block to the
next on a page, as in one terminal. ``styku-crypto`` on ``PATH`` runs this checkout.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sybil import Document, Example, Sybil
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser

__all__ = [
    "PAGES",
    "REPO",
    "ShellSession",
    "Step",
    "compile_expected",
    "parse_console",
    "sybil",
]

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SESSION_KEY = "__docs_shell__"

# Placeholders for what changes from run to run (cram-style matching).
_PLACEHOLDERS = {
    "<TIME>": (
        r"(?:\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?)?(?:Z|[+-]\d\d:?\d\d)?"
        r"|\d+(?:\.\d+)?\s?(?:s|ms|us|µs))"
    ),
    "<N>": r"[\d,]+(?:\.\d+)?",
    "<ID>": r"[A-Za-z0-9][A-Za-z0-9_.:+@/-]*",
    "<PATH>": r"\S+",
}
_TOKEN = re.compile("|".join(re.escape(p) for p in [*_PLACEHOLDERS, "..."]))
_STATUS = re.compile(r"\[(\d+)\]\Z")


@dataclass(frozen=True)
class Step:
    """One ``$`` command of a console block, its expected output and exit status."""

    command: str
    expected: list[str]
    status: int
    line: int  # line offset of the command inside the block


def parse_console(source: str) -> list[Step]:
    """Split a console block into steps (commands with their expected output)."""
    steps: list[Step] = []
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("$ "):
            if line.strip():
                raise ValueError(f"console block line {i + 1}: output before any $ command")
            i += 1
            continue
        start = i
        command = [line[2:]]
        i += 1
        while (command[-1].endswith("\\") or (i < len(lines) and lines[i].startswith("> "))) and (
            i < len(lines)
        ):
            nxt = lines[i]
            command.append(nxt[2:] if nxt.startswith("> ") else nxt)
            i += 1
        output: list[str] = []
        while i < len(lines) and not lines[i].startswith("$ "):
            output.append(lines[i])
            i += 1
        while output and not output[-1].strip():
            output.pop()
        status = 0
        if output and (m := _STATUS.match(output[-1])):
            status = int(m.group(1))
            output.pop()
        steps.append(Step("\n".join(command), output, status, start))
    return steps


def compile_expected(expected: list[str]) -> re.Pattern[str]:
    """A regex for the expected output lines, placeholders expanded."""
    parts = []
    for line in expected:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
            continue
        pieces, pos = [], 0
        for m in _TOKEN.finditer(line):
            pieces.append(re.escape(line[pos : m.start()]))
            token = m.group(0)
            pieces.append(r"[^\n]*?" if token == "..." else _PLACEHOLDERS[token])
            pos = m.end()
        pieces.append(re.escape(line[pos:]))
        parts.append("".join(pieces).rstrip() + r"[ \t]*\n")
    return re.compile("".join(parts))


def _shim(bin_dir: Path) -> None:
    """``styku-crypto`` on PATH: this interpreter running this checkout's package."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "styku-crypto"
    script.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m styku_crypto "$@"\n', encoding="utf-8"
    )
    script.chmod(0o755)


class ShellSession:
    """One page's terminal: commands run in bash; exports and the directory carry over."""

    def __init__(self, workdir: Path, support: Path) -> None:
        self.workdir = workdir
        self.state = support / "shell-state.sh"
        self.state.write_text(f"cd {shlex.quote(str(workdir))}\n", encoding="utf-8")
        self.bin = support / "bin"
        _shim(self.bin)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = str(REPO)
        env.setdefault("TZ", "UTC")
        env["COLUMNS"] = "100"
        env["NO_COLOR"] = "1"
        return env

    def run(self, script: str, *, strict: bool = False) -> subprocess.CompletedProcess[str]:
        """Run *script* after the saved state; save the state after it."""
        prelude = "set -euo pipefail\n" if strict else ""
        save = (
            f"__status=$?; {{ export -p; printf 'cd %q\\n' \"$PWD\"; }} > "
            f"{shlex.quote(str(self.state))}; exit $__status"
        )
        full = f". {shlex.quote(str(self.state))}\n{prelude}{script}\n{save}\n"
        return subprocess.run(
            ["bash", "-c", full],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self._env(),
            text=True,
            timeout=300,
            check=False,
        )


def _session(example: Example) -> ShellSession:
    session: ShellSession = example.namespace[SESSION_KEY]
    return session


def evaluate_console(example: Example) -> str | None:
    """Run each ``$`` command of the block; return a failure description or None."""
    session = _session(example)
    try:
        steps = parse_console(str(example.parsed))
    except ValueError as exc:
        return str(exc)
    if not any("styku-crypto" in step.command for step in steps):
        return None  # e.g. curl against the reader's own server: not a styku-crypto example
    for step in steps:
        done = session.run(step.command)
        actual = (
            done.stdout if done.stdout.endswith("\n") or not done.stdout else done.stdout + "\n"
        )
        actual = re.sub(r"\n+\Z", "\n", actual) if actual.strip() else ""
        pattern = compile_expected(step.expected)
        if done.returncode != step.status or not pattern.fullmatch(actual):
            return (
                f"$ {step.command}\n(line {example.line + step.line + 1})\n"
                f"--- expected (exit {step.status})\n" + "\n".join(step.expected) + "\n"
                f"--- got (exit {done.returncode})\n{actual}"
            )
    return None


def evaluate_sh(example: Example) -> str | None:
    """Run an ``sh`` block that calls styku-crypto as one strict script; it must succeed."""
    source = str(example.parsed)
    if "styku-crypto" not in source:
        return None  # installation or server set-up for a machine: not an example
    done = _session(example).run(source, strict=True)
    if done.returncode != 0:
        return f"sh block exited {done.returncode}:\n{done.stdout}"
    return None


def sybil() -> Sybil:
    """The Sybil instance with the parsers for python, console and sh blocks."""
    return Sybil(
        parsers=[
            PythonCodeBlockParser(),
            CodeBlockParser(language="console", evaluator=evaluate_console),
            CodeBlockParser(language="sh", evaluator=evaluate_sh),
        ],
        patterns=["*.md"],
    )


def parse(page: Path) -> Document:
    """Parse *page* into a Sybil document."""
    return sybil().parse(page)


def bind(document: Document, namespace: dict[str, Any]) -> None:
    """Put the harness objects into the page's namespace."""
    document.namespace.update(namespace)

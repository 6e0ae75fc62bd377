"""Developer and CI sessions: tests, lint, typing, docs, bench, fuzz."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "typing", "docs"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHON = "3.11"


def _group(name: str) -> list[str]:
    return list(nox.project.dependency_groups(PYPROJECT, name))


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Install every extra and the test group, make sure system packages are there, run pytest."""
    session.run("bash", "scripts/system-deps.sh", external=True)
    session.install("-e", ".[all]", *_group("test"))
    env = {"HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "ci")}
    session.run("pytest", *(session.posargs or ["-q"]), env=env)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install(*_group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typing(session: nox.Session) -> None:
    """mypy --strict on the package and the typed usage file."""
    session.install("-e", ".[all]", *_group("typing"))
    session.run("mypy", "--strict", "styku_crypto", "typing_tests")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site in strict mode (warnings are errors)."""
    session.install("-e", ".", *_group("docs"))
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks against the raw primitives and peer libraries, then the comparison scripts."""
    session.run("bash", "scripts/system-deps.sh", external=True)
    session.install("-e", ".[all]", *_group("bench"), *_group("test"))
    session.run(
        "pytest",
        "benchmarks",
        "--benchmark-only",
        "--benchmark-json",
        "benchmarks/results/latest.json",
        *session.posargs,
    )
    # Each comparison prints its ratios; keep them in benchmarks/results/<name>.txt,
    # which docs/benchmarks.md quotes and benchmarks/plot.py draws.
    for script in sorted(os.listdir("benchmarks")):
        if script.startswith("compare_") and script.endswith(".py"):
            output = session.run("python", f"benchmarks/{script}", silent=True)
            name = script.removeprefix("compare_").removesuffix(".py")
            if isinstance(output, str):
                print(output)
                with open(f"benchmarks/results/{name}.txt", "w", encoding="utf-8") as fh:
                    fh.write(output)
    session.run("python", "benchmarks/plot.py")


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """Long hypothesis runs of the parsers and property tests (the 'thorough' profile)."""
    session.run("bash", "scripts/system-deps.sh", external=True)
    session.install("-e", ".[all]", *_group("test"))
    session.run(
        "pytest", "-q", "-k", "property or parse or fuzz", env={"HYPOTHESIS_PROFILE": "thorough"}
    )

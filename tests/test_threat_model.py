"""docs/threat-model.md maps each threat to the tests that cover it: every reference must exist.

A row names test files (``tests/keys/test_backup.py`` or just ``test_backup.py``) and
test functions (``test_backup.py::test_name``, or ``::test_name`` after a file in the
same cell). A renamed or deleted test would silently leave a threat uncovered; this
test fails instead, naming the row's reference.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "threat-model.md"
_REF = re.compile(r"((?:[\w.-]+/)*test_\w+\.py|(?<![\w/])::\w+)(::\w+)?")


@cache
def _files_named(name: str) -> tuple[Path, ...]:
    return tuple(sorted((ROOT / "tests").rglob(name)))


@cache
def _names_in(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text())
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    )


def _resolve(ref: str) -> tuple[Path, ...]:
    if "/" in ref:
        path = ROOT / ref if ref.startswith("tests/") else ROOT / "tests" / ref
        return (path,) if path.is_file() else _files_named(Path(ref).name)
    return _files_named(ref)


def _problems(text: str) -> list[str]:
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.startswith("|"):
            continue
        current: tuple[Path, ...] = ()  # a ``::name`` refers to the row's last file
        for cell in line.split("|"):
            for span in re.findall(r"`([^`]+)`", cell):
                for first, second in _REF.findall(span):
                    if first.startswith("::"):
                        name = first[2:]
                    else:
                        current = _resolve(first)
                        if not current:
                            problems.append(f"line {number}: no test file {first}")
                            continue
                        name = second[2:] if second else ""
                    if not name:
                        continue
                    if not current:
                        problems.append(f"line {number}: ::{name} without a file before it")
                    elif not any(name in _names_in(p) for p in current):
                        problems.append(f"line {number}: {name} not found in {current[0].name}")
    return problems


def test_the_page_references_tests() -> None:
    """The page is not empty of references (the parser would otherwise pass vacuously)."""
    text = PAGE.read_text()
    assert len(_REF.findall(text)) > 100


def test_every_test_the_threat_model_names_exists() -> None:
    """Each test file and test function named in a threat-model row exists."""
    assert _problems(PAGE.read_text()) == []


def test_a_renamed_test_is_reported() -> None:
    """The checker itself: a missing function, a missing file, a dangling ``::`` are found."""
    row = (
        "| t | m | `test_threat_model.py::test_gone`, `::test_a_renamed_test_is_reported`"
        " | `test_nowhere.py` | `::test_x` |"
    )
    problems = _problems(row)
    assert problems == [
        "line 1: test_gone not found in test_threat_model.py",
        "line 1: no test file test_nowhere.py",
        "line 1: ::test_x without a file before it",  # the file before it does not exist
    ]
    assert _problems("| `::test_alone` |") == ["line 1: ::test_alone without a file before it"]

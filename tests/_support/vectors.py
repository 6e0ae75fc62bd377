"""One loader for every set of test vectors (Wycheproof and our own golden files).

Wycheproof vectors are read from ``../shared/vectors/wycheproof/`` relative to the
project root. A missing folder or file is a test *failure*, never a skip.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WYCHEPROOF_DIR = PROJECT_ROOT.parent / "shared" / "vectors" / "wycheproof"
GOLDEN_DIR = PROJECT_ROOT / "tests" / "vectors"


def load_wycheproof(name: str) -> dict[str, Any]:
    """Return the parsed Wycheproof file *name*; fail the test when it is absent."""
    path = WYCHEPROOF_DIR / name
    if not path.is_file():
        pytest.fail(f"Wycheproof vectors missing: {path} (they must be present; not skipping)")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def wycheproof_cases(name: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Yield ``(group, test)`` pairs of a Wycheproof file."""
    data = load_wycheproof(name)
    for group in data["testGroups"]:
        for test in group["tests"]:
            yield group, test


def load_golden(name: str) -> Any:
    """Return the parsed golden file ``tests/vectors/<name>``; fail when absent."""
    path = GOLDEN_DIR / name
    if not path.is_file():
        pytest.fail(f"golden vectors missing: {path}")
    return json.loads(path.read_text(encoding="utf-8"))

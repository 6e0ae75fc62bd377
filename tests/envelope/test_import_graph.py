"""No import cycle among the envelope and fields modules, function-level imports included.

Issue 20: ``_envelope.py`` and ``_stream.py`` imported each other (the cycle hidden by an
import inside a function). The layer helpers now live in ``_layers.py``; this test walks
every ``import`` statement in the AST (at any depth, ``TYPE_CHECKING`` blocks excepted)
and fails on any cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "styku_crypto"
AREAS = ("envelope", "fields")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", 0) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found.update(name for name in names if name in known)
    return found


def _graph() -> dict[str, set[str]]:
    files = [p for area in AREAS for p in (PACKAGE / area).rglob("*.py")]
    known = {_module_name(p) for p in files}
    graph = {}
    for path in files:
        name = _module_name(path)
        # "from package import sub" is an edge to sub, not to the package's __init__
        graph[name] = {m for m in _imports(path, known) if m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt.endswith("__init__"):
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles_in_envelope_and_fields() -> None:
    """The private modules of envelope and fields import each other without any cycle."""
    graph = {
        name: {m for m in deps if m not in ("styku_crypto.envelope", "styku_crypto.fields")}
        for name, deps in _graph().items()
        if name not in ("styku_crypto.envelope", "styku_crypto.fields")
    }
    assert "styku_crypto.envelope._layers" in graph["styku_crypto.envelope._stream"]
    assert "styku_crypto.envelope._envelope" not in graph["styku_crypto.envelope._stream"]
    assert _cycle(graph) is None, _cycle(graph)
    # Not even for type checking: the streams no longer call the Envelope's privates.
    for low in ("_stream.py", "_layers.py", "_info.py", "_events.py", "_output.py"):
        source = (PACKAGE / "envelope" / low).read_text(encoding="utf-8")
        assert "envelope._envelope" not in source, low


def test_cycle_finder_finds_a_cycle() -> None:
    """The checker itself reports a planted cycle (so a pass means something)."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]

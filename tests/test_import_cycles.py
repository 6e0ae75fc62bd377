"""No import cycle inside ``styku_crypto``, not even one hidden in a function body.

The graph has an edge from module A to module B when A's source imports B anywhere:
at module level, inside a function or method, or inside ``try``/``if`` blocks, and
``importlib.import_module("styku_crypto.b")`` with a literal name counts too. Imports
under ``if TYPE_CHECKING:`` are left out because they never run. ``from pkg import name``
points at ``pkg.name`` when that is a module of ours, else at ``pkg`` (its ``__init__``).
A strongly connected component with more than one module is a cycle; the failure
message lists each one so the shared code can move one floor down.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "styku_crypto"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / PACKAGE).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, skipping ``if TYPE_CHECKING:`` bodies."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _resolve_from(module: str, path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _dynamic_imports(tree: ast.AST) -> list[str]:
    """``importlib.import_module("styku_crypto....")`` calls with a literal name: edges too."""
    found: list[str] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(node.args[0].value)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports at run time (anywhere in its source)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _runtime_imports(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                source = _resolve_from(name, path, node)
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                    for alias in node.names
                ]
            graph[name].update(t for t in targets if t in modules and t != name)
        graph[name].update(t for t in _dynamic_imports(tree) if t in modules and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    result.append(sorted(component))
    return sorted(result)


def test_no_import_cycles() -> None:
    """No module of styku_crypto reaches itself through imports, function-level ones included."""
    found = cycles(import_graph())
    assert not found, "import cycles (move the shared code one floor down):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_detector_finds_a_hidden_cycle() -> None:
    """The checker itself sees a cycle made only of function-level imports."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    dynamic = "import importlib\nimportlib.import_module('styku_crypto.tls.audit')\n"
    assert _dynamic_imports(ast.parse(dynamic)) == ["styku_crypto.tls.audit"]
    source = "def f():\n    from styku_crypto.envelope import _stream\n"
    nodes = _runtime_imports(ast.parse(source))
    assert [n.module for n in nodes if isinstance(n, ast.ImportFrom)] == ["styku_crypto.envelope"]


def test_type_checking_imports_are_ignored() -> None:
    """Imports that only a type checker sees do not count as edges."""
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import styku_crypto.keys\n"
    nodes = _runtime_imports(ast.parse(source))
    assert all(not isinstance(n, ast.Import) for n in nodes)

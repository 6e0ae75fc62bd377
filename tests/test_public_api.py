"""Every public package's ``__all__`` is sorted, resolves, and is documented on its docs page."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

#: Public module -> the docs pages that document it.
PAGES: dict[str, tuple[str, ...]] = {
    "styku_crypto.envelope": ("envelope.md", "streams.md", "batch.md"),
    "styku_crypto.batch": ("batch.md",),
    "styku_crypto.keys": ("keys.md",),
    "styku_crypto.fields": ("fields.md",),
    "styku_crypto.passwords": ("passwords.md",),
    "styku_crypto.passwords.profiles": ("passwords.md",),
    "styku_crypto.tls": ("tls.md", "tls-policy-files.md", "tls-config.md"),
    "styku_crypto.tls.profiles": ("tls.md", "tls-policy-files.md", "tls-config.md"),
    "styku_crypto.tls.audit": ("tls-audit.md",),
    "styku_crypto.web": ("web.md", "web-asgi.md", "web-django.md", "web-flask.md"),
    "styku_crypto.events": ("events.md",),
    "styku_crypto.incidents": ("incidents.md",),
    "styku_crypto.report": ("report.md",),
    "styku_crypto.hazmat": ("hazmat.md",),
    "styku_crypto.exceptions": tuple(sorted(p.name for p in DOCS.glob("*.md"))),
    "styku_crypto.testing": ("tls.md",),
}

#: Packages whose ``__init__.py`` must hold only a docstring, imports and ``__all__``.
#: ``styku_crypto.tls`` is left out on purpose: it resolves names lazily (PEP 562
#: ``__getattr__``) to keep ``import styku_crypto.tls`` cheap.
PACKAGES = (
    "batch",
    "envelope",
    "events",
    "fields",
    "hazmat",
    "incidents",
    "keys",
    "passwords",
    "report",
    "tls/audit",
    "web",
)


def _natural(name: str) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _isort_key(name: str) -> tuple[int, list[object]]:
    """ruff's RUF022 "isort-style" order: CONSTANTS, then Classes, then the rest, natural."""
    if name.isupper():
        kind = 0
    elif name[:1].isupper():
        kind = 1
    else:
        kind = 2
    return kind, _natural(name)


def _documented(name: str, text: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text) is not None


@pytest.mark.parametrize("module_name", sorted(PAGES))
def test_all_sorted_resolves_and_documented(module_name: str) -> None:
    """__all__ is sorted (plain or isort-style), each name resolves, and the docs name it."""
    module = importlib.import_module(module_name)
    names = list(module.__all__)
    assert len(set(names)) == len(names), "duplicate names in __all__"
    assert names in (sorted(names), sorted(names, key=_isort_key)), names
    for name in names:
        assert getattr(module, name) is not None, name
    text = "\n".join((DOCS / page).read_text(encoding="utf-8") for page in PAGES[module_name])
    missing = sorted(n for n in names if not _documented(n, text))
    assert not missing, f"{module_name}: not documented on {PAGES[module_name]}: {missing}"


@pytest.mark.parametrize("package", PACKAGES)
def test_package_init_holds_only_imports_and_all(package: str) -> None:
    """A public package's __init__.py holds a docstring, imports and __all__, nothing else."""
    path = ROOT / "styku_crypto" / package / "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Assign) and [
            t.id for t in node.targets if isinstance(t, ast.Name)
        ] == ["__all__"]:
            continue
        pytest.fail(f"{path.relative_to(ROOT)}:{node.lineno}: {type(node).__name__} in __init__")


@pytest.mark.parametrize(
    ("module_name", "cls_name", "positional"),
    [
        ("styku_crypto.passwords", "HashLimits", (1024,)),
        ("styku_crypto.passwords", "PasswordPolicy", (8,)),
        ("styku_crypto.web", "HSTS", (300,)),
        ("styku_crypto.web", "CookiePolicy", (False,)),
    ],
)
def test_security_settings_are_keyword_only(
    module_name: str, cls_name: str, positional: tuple[object, ...]
) -> None:
    """Limits, policies and header settings cannot be built positionally (no silent mix-ups)."""
    cls = getattr(importlib.import_module(module_name), cls_name)
    with pytest.raises(TypeError):
        cls(*positional)

"""Lazy imports of optional integrations, with an error that names the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from styku_crypto.exceptions import MissingExtraError

__all__ = ["require"]


def require(module: str, *, extra: str) -> ModuleType:
    """Import *module* or raise :class:`MissingExtraError` naming *extra*.

    Args:
        module: the importable module name, e.g. ``"psycopg"``.
        extra: the styku-crypto extra that installs it, e.g. ``"postgres"``.

    Raises:
        MissingExtraError: the module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{module!r} is not installed; install it with: pip install 'styku-crypto[{extra}]'"
        ) from exc

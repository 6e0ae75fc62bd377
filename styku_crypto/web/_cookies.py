"""Hardening of ``Set-Cookie`` headers on HTTPS responses.

Over HTTPS every cookie gains ``Secure`` (not optional: a cookie set over
HTTPS without it would travel in the clear on the next plain request), and,
unless the application already chose, ``HttpOnly`` and ``SameSite=Lax``.
Attributes the application set itself are kept as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from styku_crypto.exceptions import InvalidInputError

__all__ = ["CookiePolicy", "SameSite"]

SameSite = Literal["Strict", "Lax", "None"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CookiePolicy:
    """Defaults added to cookies set over HTTPS.

    Args:
        httponly: add ``HttpOnly`` to cookies that lack it (default on).
        samesite: ``SameSite`` value for cookies that set none (default
            ``"Lax"``); ``None`` adds nothing.
        script_readable: cookie names that must stay readable by scripts (for
            example a CSRF token cookie): they do not get ``HttpOnly``.

    ``Secure`` is always added over HTTPS and cannot be switched off.

    Raises:
        InvalidInputError: ``samesite`` is not one of Strict, Lax, None.
    """

    httponly: bool = True
    samesite: SameSite | None = "Lax"
    script_readable: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.samesite is not None and self.samesite not in ("Strict", "Lax", "None"):
            raise InvalidInputError("samesite must be 'Strict', 'Lax', 'None' or None")
        names: object = self.script_readable
        if isinstance(names, str):
            raise InvalidInputError("script_readable must be a set of cookie names")
        if not isinstance(names, frozenset):
            object.__setattr__(self, "script_readable", frozenset(self.script_readable))

    def harden(self, value: str) -> str:
        """Return the ``Set-Cookie`` *value* with the missing attributes appended."""
        pair, _, attributes = value.partition(";")
        name = pair.partition("=")[0].strip()
        present = _attribute_names(attributes.split(";")) if attributes else _NONE
        extra = []
        if "secure" not in present:
            extra.append("Secure")
        if self.httponly and "httponly" not in present and name not in self.script_readable:
            extra.append("HttpOnly")
        if self.samesite is not None and "samesite" not in present:
            extra.append(f"SameSite={self.samesite}")
        if not extra:
            return value
        return value.rstrip().rstrip(";") + "; " + "; ".join(extra)


_NONE: frozenset[str] = frozenset()


def _attribute_names(parts: Iterable[str]) -> set[str]:
    return {part.partition("=")[0].strip().lower() for part in parts}

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
    # (script-readable?, raw attribute text) -> the attributes to append; see harden_raw.
    _suffixes: dict[tuple[bool, bytes], bytes] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

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

    def harden_raw(self, value: bytes) -> bytes:
        """:meth:`harden` for a raw (latin-1) header value, as servers pass it.

        Hot path: what to append depends only on the attribute text after the
        first ``;`` (and on whether the cookie is script-readable), not on the
        cookie's value, so it is computed once per distinct attribute text
        (``; Path=/``) and kept in a small bounded cache. A hypothesis test
        checks that the result equals :meth:`harden` byte for byte.
        """
        pair, _sep, attributes = value.partition(b";")
        readable = bool(self.script_readable) and (
            pair.partition(b"=")[0].strip().decode("latin-1") in self.script_readable
        )
        key = (readable, attributes)
        suffix = self._suffixes.get(key)
        if suffix is None:
            suffix = self._suffix(readable, attributes)
            if len(attributes) <= _SUFFIX_KEY_MAX:
                if len(self._suffixes) >= _SUFFIX_CACHE_LIMIT:
                    self._suffixes.clear()
                self._suffixes[key] = suffix
        if not suffix:
            return value
        return value.rstrip().rstrip(b";") + suffix

    def _suffix(self, readable: bool, attributes: bytes) -> bytes:
        present = _attribute_names(attributes.decode("latin-1").split(";")) if attributes else _NONE
        extra = []
        if "secure" not in present:
            extra.append("Secure")
        if self.httponly and "httponly" not in present and not readable:
            extra.append("HttpOnly")
        if self.samesite is not None and "samesite" not in present:
            extra.append(f"SameSite={self.samesite}")
        return ("; " + "; ".join(extra)).encode("latin-1") if extra else b""


_NONE: frozenset[str] = frozenset()
_SUFFIX_CACHE_LIMIT = 256
_SUFFIX_KEY_MAX = 256


def _attribute_names(parts: Iterable[str]) -> set[str]:
    return {part.partition("=")[0].strip().lower() for part in parts}

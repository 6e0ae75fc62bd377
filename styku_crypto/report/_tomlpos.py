"""Where a key sits in a TOML file: line numbers for configuration errors.

:mod:`tomllib` returns plain dicts without positions (and names the line only in
the text of its syntax errors), so this module scans the text itself: table
headers ``[a.b]``, arrays of tables ``[[a]]`` (counted, so the third ``[[waivers]]``
is ``("waivers", 2)``) and ``key = value`` lines (dotted and quoted keys included).
Text inside multi-line strings is skipped. It is only used *after* tomllib
accepted the file, so it never has to judge validity, only to find lines.
"""

from __future__ import annotations

import re

__all__ = ["KeyPath", "format_path", "key_lines", "line_of", "syntax_error_line"]

KeyPath = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def syntax_error_line(message: str) -> int | None:
    """The line number tomllib put in a :class:`tomllib.TOMLDecodeError` message."""
    match = _AT_LINE.search(message)
    return int(match.group(1)) if match else None


def _split_key(text: str) -> list[str] | None:
    """Split a (possibly dotted, possibly quoted) TOML key; ``None`` when it is not one."""
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return None
        if text[i] in "\"'":
            quote = text[i]
            end = text.find(quote, i + 1)
            if end < 0:
                return None
            parts.append(text[i + 1 : end])
            i = end + 1
        else:
            match = _BARE.match(text, i)
            if match is None:
                return None
            parts.append(match.group(0))
            i = match.end()
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return parts
        if text[i] != ".":
            return None
        i += 1


def _key_and_rest(line: str) -> tuple[list[str], str] | None:
    """``key = value`` -> (key parts, value text), honouring quotes in the key."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            parts = _split_key(line[:i])
            return (parts, line[i + 1 :]) if parts else None
    return None


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map every table, array-of-tables element and key to its 1-based line."""
    out: dict[KeyPath, int] = {}
    table: KeyPath = ()
    counts: dict[KeyPath, int] = {}
    in_string = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if in_string:
            if line.count(in_string) % 2 == 1:
                in_string = ""
            continue
        if not line or line.startswith("#"):
            continue
        if line.startswith("[["):
            parts = _split_key(line[2 : line.find("]]")] if "]]" in line else "")
            if parts:
                base = _resolve(tuple(parts), counts)
                index = counts.get(base, -1) + 1
                counts[base] = index
                table = (*base, index)
                out.setdefault(table, number)
                out.setdefault(base, number)
            continue
        if line.startswith("["):
            parts = _split_key(line[1 : line.find("]")] if "]" in line else "")
            if parts:
                table = _resolve(tuple(parts), counts)
                out.setdefault(table, number)
            continue
        found = _key_and_rest(line)
        if found is None:
            continue
        parts, rest = found
        out.setdefault((*table, *parts), number)
        for delim in ('"""', "'''"):
            if rest.count(delim) % 2 == 1:
                in_string = delim
    return out


def _resolve(parts: tuple[str, ...], counts: dict[KeyPath, int]) -> KeyPath:
    """Insert array-of-tables indices: ``[waivers.x]`` after ``[[waivers]]`` is waivers.N.x."""
    out: list[str | int] = []
    for part in parts:
        out.append(part)
        index = counts.get(tuple(out))
        if index is not None and len(out) < len(parts):
            out.append(index)
    return tuple(out)


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    """The line of *path*, or of its nearest enclosing key or table that has one."""
    for end in range(len(path), 0, -1):
        found = lines.get(path[:end])
        if found is not None:
            return found
    return None


def format_path(path: KeyPath) -> str:
    """``("tls", "endpoints", 1)`` -> ``tls.endpoints[1]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out

"""A logging filter that keeps secrets passed in by mistake out of the logs.

The library itself never logs payloads, keys, passwords or tokens. Application
code sometimes does, by accident: ``log.info("token %s", token)``,
``log.debug("config %r", settings)``. :class:`RedactionFilter` is the last line
of defence: attach it to your handlers and every record that reaches them is
scanned (message, arguments, extra attributes, the ``styku_event`` fields,
exception text) for things that look like secrets, which are replaced with
``[REDACTED]``. The record is marked with ``styku_redacted`` (the number of
replacements) so the ECS formatter can flag it.

What counts as "looks like a secret" (see :class:`Redactor`):

* PEM private-key blocks (any ``-----BEGIN ... PRIVATE KEY-----``);
* PHC-format password hashes (``$argon2id$...``, ``$2b$...``, ``$pbkdf2-...``,
  ``$scrypt$...``, crypt ``$1$``/``$5$``/``$6$``/``$7$``);
* styku_crypto text tokens (by their prefix) and ``Bearer`` credentials;
* ``password=...``, ``secret: ...``, ``token=...``, ``api_key=...``,
  ``pepper=...`` and similar assignments (the value is replaced, the name kept);
* hex runs of 32 or more characters (16+ bytes of key material);
* base64/base64url runs of 24 or more characters that mix upper case, lower
  case and digits with high per-character entropy, unless they read as short
  words joined by ``_``, ``-``, ``/`` (identifiers and paths);
* any ``bytes``/``bytearray``/``memoryview`` argument or attribute of 16 bytes
  or more.

.. warning::
   This is a heuristic safety net, not a guarantee. A short password logged as
   plain text without a ``password=`` label cannot be told from other text.
   The guarantee that matters is that styku_crypto never passes secrets to
   :mod:`logging`; the test suite checks that for every secret it generates.

The filter never raises: if a record cannot be checked at all, its message is
replaced by a fixed text and its arguments, exception and stack are dropped
(fail closed).
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

__all__ = [
    "DEFAULT_TOKEN_PREFIXES",
    "REDACTED",
    "REDACTED_ATTRIBUTE",
    "RedactionFilter",
    "Redactor",
]

#: The replacement text.
REDACTED = "[REDACTED]"

#: The record attribute set to the number of replacements made.
REDACTED_ATTRIBUTE = "styku_redacted"

#: Text-token prefixes redacted wherever they appear (the envelope text form,
#: ``styku_crypto.envelope`` ``TEXT_PREFIX``; a test keeps the two in step).
DEFAULT_TOKEN_PREFIXES: tuple[str, ...] = ("stk1.",)

_BYTES_LIMIT = 16

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None))
) | {"message", "asctime", "taskName", REDACTED_ATTRIBUTE}

# Fields of the event dict that are produced by styku_crypto itself and safe.
_SAFE_EVENT_FIELDS = frozenset({"event", "outcome", "timestamp", "key_version"})

_PEM = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
_PHC = re.compile(
    r"\$(?:argon2(?:id|i|d)|scrypt|pbkdf2(?:-sha\d+)?|bcrypt(?:-sha256)?|2[abxy]?|[1567]"
    r"|sha(?:256|512)_crypt|md5_crypt)\$[A-Za-z0-9+/.=,$_-]+"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]+")
_ASSIGNMENT = re.compile(
    r"(?i)(\b(?:password|passwd|pwd|passphrase|secret|client[_-]?secret|token|access[_-]?token"
    r"|refresh[_-]?token|api[_-]?key|apikey|pepper|private[_-]?key|secret[_-]?key|credentials?)"
    r"\b[\"']?\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&}\]\)]+)"
)
_HEX = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{32,}(?![0-9A-Za-z])")
_B64 = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")


def _entropy(text: str) -> float:
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


# Identifiers made of short words joined by separators (SSL_CTX_set1_groups_list,
# pytest-of-root/test_x0): random base64 of 16+ bytes looks like this about once
# in 70 000 draws, ordinary names and paths almost always do.
_WORDS = re.compile(
    r"(?:[a-z]{3,}|[A-Z][a-z]{2,}|[A-Z]{2,}(?![a-z])|[A-Z](?=[A-Z][a-z]{2})|[0-9]+|[_\-/+])+"
)
_SEPARATORS = re.compile(r"[_\-/+]")


def _identifier_like(core: str) -> bool:
    parts = _SEPARATORS.split(core)
    return len(parts) > 1 and max(map(len, parts)) <= 16 and _WORDS.fullmatch(core) is not None


def _looks_random(run: str) -> bool:
    core = run.rstrip("=")
    has_upper = any(c.isupper() for c in core)
    has_lower = any(c.islower() for c in core)
    has_digit = any(c.isdigit() for c in core)
    if not (has_upper and has_lower and has_digit):
        return False
    if sum(c.isdigit() for c in core) * 2 > len(core):
        return False  # mostly digits: compact timestamps, ids (random base64 is ~16% digits)
    return _entropy(core) >= 3.5 and not _identifier_like(core)


class Redactor:
    """Finds and replaces secret-looking substrings in text.

    Args:
        token_prefixes: text-token prefixes to redact (with the rest of the token).
        extra_patterns: further regular expressions whose matches are replaced whole.

    Example:
        >>> Redactor().redact("password=hunter2 ok")
        ('password=[REDACTED] ok', 1)
    """

    def __init__(
        self,
        *,
        token_prefixes: Iterable[str] = DEFAULT_TOKEN_PREFIXES,
        extra_patterns: Iterable[str | re.Pattern[str]] = (),
    ) -> None:
        prefixes = [p for p in token_prefixes if p]
        self._prefixes = tuple(prefixes)
        self._token: re.Pattern[str] | None = None
        if prefixes:
            alternatives = "|".join(re.escape(p) for p in sorted(prefixes, key=len, reverse=True))
            self._token = re.compile(rf"(?:{alternatives})[A-Za-z0-9_\-+/=.:]*")
        self._extra = [re.compile(p) if isinstance(p, str) else p for p in extra_patterns]

    def __repr__(self) -> str:
        return f"Redactor(patterns={5 + len(self._extra) + (self._token is not None)})"

    def redact(self, text: str) -> tuple[str, int]:
        """Return *text* with every secret-looking substring replaced, and the count.

        Never raises for any ``str`` input.
        """
        count = 0

        def whole(_match: re.Match[str]) -> str:
            nonlocal count
            count += 1
            return REDACTED

        def keep_label(match: re.Match[str]) -> str:
            nonlocal count
            count += 1
            return match.group(1) + REDACTED

        def bearer(match: re.Match[str]) -> str:
            nonlocal count
            count += 1
            return match.group(1) + match.group(2) + REDACTED

        def random_run(match: re.Match[str]) -> str:
            nonlocal count
            run = match.group(0)
            if REDACTED in run or not _looks_random(run):
                return run
            count += 1
            return REDACTED

        # cheap guards first: most log text contains none of the triggers
        if "-----BEGIN" in text:
            text = _PEM.sub(whole, text)
        if self._token is not None and any(p in text for p in self._prefixes):
            text = self._token.sub(whole, text)
        for pattern in self._extra:
            text = pattern.sub(whole, text)
        if "$" in text:
            text = _PHC.sub(whole, text)
        if "=" in text or ":" in text:
            text = _ASSIGNMENT.sub(keep_label, text)
        if " " in text or "\t" in text:
            text = _BEARER.sub(bearer, text)
        if len(text) >= 24:
            text = _HEX.sub(whole, text)
            text = _B64.sub(random_run, text)
        return text, count

    def redact_value(self, value: object) -> tuple[object, int]:
        """Redact one field value: text is scanned, long binary values are replaced.

        Scalars (``int``, ``float``, ``bool``, ``None``) are returned unchanged;
        anything else is rendered with ``str`` and scanned.
        """
        if value is None or isinstance(value, bool | int | float):
            return value, 0
        if isinstance(value, bytes | bytearray | memoryview):
            if len(value) >= _BYTES_LIMIT:
                return REDACTED, 1
            return value, 0
        text = value if isinstance(value, str) else str(value)
        redacted, count = self.redact(text)
        if count == 0:
            return value, 0
        return redacted, count


class RedactionFilter(logging.Filter):
    """A :class:`logging.Filter` that replaces secret-looking text with ``[REDACTED]``.

    Attach it to a *handler* (logger filters do not see records propagated
    from child loggers)::

        handler = logging.StreamHandler()
        handler.addFilter(RedactionFilter())
        handler.setFormatter(EcsFormatter())
        logging.getLogger("styku_crypto").addHandler(handler)

    It always returns ``True`` (the record is emitted, redacted) and never
    raises. A record that cannot be scanned is emitted with a fixed message and
    without arguments, exception or stack (fail closed).

    Args:
        redactor: the :class:`Redactor` to use (default settings when omitted).
        name: passed to :class:`logging.Filter`.
    """

    def __init__(self, redactor: Redactor | None = None, name: str = "") -> None:
        super().__init__(name)
        self._redactor = redactor or Redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact *record* in place; always return ``True``."""
        try:
            count = self._scrub(record)
        except Exception:
            record.msg = "[REDACTED: record could not be checked for secrets]"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
            for key in [k for k in vars(record) if k not in _STANDARD_ATTRIBUTES]:
                setattr(record, key, REDACTED)
            count = 1
        if count:
            setattr(record, REDACTED_ATTRIBUTE, getattr(record, REDACTED_ATTRIBUTE, 0) + count)
        return True

    def _scrub(self, record: logging.LogRecord) -> int:
        total = 0
        redactor = self._redactor
        # message and arguments
        args: Any = record.args
        binary_args = 0
        if isinstance(args, tuple):
            cleaned: list[object] = []
            for arg in args:
                new, n = redactor.redact_value(arg) if _is_binary(arg) else (arg, 0)
                binary_args += n
                cleaned.append(new)
            args = tuple(cleaned)
        elif isinstance(args, dict):
            binary_args = sum(1 for v in args.values() if _is_binary(v))
            args = {
                k: (redactor.redact_value(v)[0] if _is_binary(v) else v) for k, v in args.items()
            }
        try:
            message = str(record.msg) % args if args else str(record.msg)
        except Exception:
            message = f"{record.msg!s} {args!r}"
        redacted, n = redactor.redact(message)
        if n or binary_args:
            record.msg = redacted
            record.args = None
            total += n + binary_args
        # the structured event
        event = getattr(record, "styku_event", None)
        if isinstance(event, dict):
            new_event: dict[str, object] = {}
            changed = 0
            for key, value in event.items():
                if key in _SAFE_EVENT_FIELDS and isinstance(value, str | int | float | bool):
                    new_event[key] = value
                    continue
                new_value, n = redactor.redact_value(value)
                changed += n
                new_event[key] = new_value
            if changed:
                record.styku_event = new_event
                total += changed
        # other extra attributes
        for key, value in list(vars(record).items()):
            if key in _STANDARD_ATTRIBUTES or key == "styku_event":
                continue
            new_value, n = redactor.redact_value(value)
            if n:
                setattr(record, key, new_value)
                total += n
        # exception and stack text
        if record.exc_info and record.exc_info[1] is not None:
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            redacted, n = redactor.redact(text)
            if n:
                record.exc_text = redacted
                record.exc_info = None
                total += n
        elif record.exc_text:
            record.exc_text, n = redactor.redact(record.exc_text)
            total += n
        if record.stack_info:
            record.stack_info, n = redactor.redact(record.stack_info)
            total += n
        return total


def _is_binary(value: object) -> bool:
    return isinstance(value, bytes | bytearray | memoryview)

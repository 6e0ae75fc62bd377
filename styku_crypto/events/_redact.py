"""Redaction: secrets passed to logging by mistake never reach a handler's output.

The library itself never logs payloads, keys, passwords or tokens. Application
code sometimes does, by accident: ``log.info("token %s", token)``,
``log.debug("config %r", settings)``. :class:`RedactionFilter` is the last line
of defence: attach it to your handlers and every record that reaches them is
scrubbed, and the record is marked with ``styku_redacted`` (the number of
replacements) so the ECS formatter can flag it.

Two kinds of rule, with two kinds of promise (``docs/events.md``):

* **By name (guaranteed).** A value whose *name* announces a secret is
  replaced whatever it looks like: event fields and ``extra`` attributes named
  like ``password``, ``db_password``, ``POSTGRES_PASSWORD``, ``token``,
  ``api-key``, ``set-cookie``, ``sessionid``, ``dek`` ... (see
  :func:`~styku_crypto.events._names.is_secret_name`), fields the vocabulary
  declares ``secret``, and the values of such keys inside dict and list
  ``%``-arguments. ``bytes`` are never rendered: they become
  ``[N bytes fp:xxxxxxxx]`` (length and a per-process keyed fingerprint).
* **By shape, in free text (best effort).** The rendered message and the
  exception text are scanned for ``label=value`` / ``label: value`` with a
  secret label (to the closing quote or the end of the line), passwords in
  URLs, PEM private keys, modular-crypt and PHC hashes, JWTs, ``Bearer`` /
  ``Basic`` credentials, text tokens by prefix, hex of 16+ bytes (plain,
  ``0x``, colon-separated), random-looking base64/base64url of 16+ bytes and
  the repr of ``bytes``. A short password written as bare text without a
  label cannot be told from other text.

The filter never raises: if a record cannot be checked at all, its message is
replaced by a fixed text and its arguments, exception and stack are dropped
(fail closed).
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import logging
import math
import os
import re
import traceback
from collections import Counter
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from styku_crypto.events._names import is_secret_name
from styku_crypto.events._vocabulary import lookup_field

__all__ = [
    "DEFAULT_TOKEN_PREFIXES",
    "REDACTED",
    "REDACTED_ATTRIBUTE",
    "JudgedEvent",
    "RedactionFilter",
    "Redactor",
    "bytes_marker",
    "describe_exception",
    "sanitize",
]

#: The replacement text.
REDACTED = "[REDACTED]"

#: The record attribute set to the number of replacements made.
REDACTED_ATTRIBUTE = "styku_redacted"

#: The record attribute holding the redacted exception (type, message) once
#: :class:`RedactionFilter` has handled it; the ECS formatter reads it.
ERROR_ATTRIBUTE = "styku_error"

#: Text-token prefixes redacted wherever they appear (the envelope text form,
#: ``styku_crypto.envelope`` ``TEXT_PREFIX``; a test keeps the two in step).
DEFAULT_TOKEN_PREFIXES: tuple[str, ...] = ("stk1.",)

_MAX_DEPTH = 8

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None))
) | {"message", "asctime", "taskName", REDACTED_ATTRIBUTE, ERROR_ATTRIBUTE}

# Fields of the event dict that are produced by styku_crypto itself and safe.
_SAFE_EVENT_FIELDS = frozenset({"event", "outcome", "timestamp", "key_version", "redacted"})

# A per-process key for byte fingerprints: equal bytes get equal fingerprints
# within one process (so two lines can be correlated), but a fingerprint cannot
# be checked against guesses by anyone without the key, which is never logged.
_FINGERPRINT_KEY = os.urandom(32)


def bytes_marker(value: bytes | bytearray | memoryview) -> str:
    """Return ``[N bytes fp:xxxxxxxx]`` for *value*: its length and a keyed fingerprint."""
    data = bytes(value)
    digest = hmac.new(_FINGERPRINT_KEY, data, hashlib.sha256).hexdigest()[:8]
    return f"[{len(data)} bytes fp:{digest}]"


class _Shown(str):
    """A string that renders as itself under ``repr`` too (no quotes)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


_REDACTED_SHOWN = _Shown(REDACTED)


def sanitize(value: object, _depth: int = 0) -> tuple[object, int]:
    """Apply the name rules to a structured value; return the copy and the count.

    ``bytes`` anywhere become :func:`bytes_marker` text; values of dict keys
    with a secret name become ``[REDACTED]``; lists, tuples, sets and dicts are
    copied with their items sanitized (to a depth of 8, beyond which a
    container is replaced whole). Anything else is returned as it is (its text
    is scanned later, once rendered).
    """
    if isinstance(value, bytes | bytearray | memoryview):
        return _Shown(bytes_marker(value)), 1
    if isinstance(value, str | int | float | bool) or value is None:
        return value, 0
    if isinstance(value, dict | list | tuple | set | frozenset):
        if _depth >= _MAX_DEPTH:
            return _REDACTED_SHOWN, 1
        total = 0
        if isinstance(value, dict):
            out: dict[object, object] = {}
            for key, item in value.items():
                if isinstance(key, str) and is_secret_name(key) and item is not None:
                    out[key] = _REDACTED_SHOWN
                    total += 1
                else:
                    new, n = sanitize(item, _depth + 1)
                    out[key] = new
                    total += n
            return (out, total) if total else (value, 0)
        items = []
        for item in value:
            new, n = sanitize(item, _depth + 1)
            items.append(new)
            total += n
        if not total:
            return value, 0
        if isinstance(value, list):
            return items, total
        if isinstance(value, tuple):
            return tuple(items), total
        return type(value)(items) if isinstance(value, frozenset) else set(items), total
    return value, 0


_PEM = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
# Modular-crypt and PHC hashes ($1$ $5$ $6$ $7$ $y$ $gy$ $2*$ $argon2*$ $scrypt$
# $pbkdf2*$ $apr1$ ... and any other lower-case $id$), and Django's
# "algorithm$..." form (pbkdf2_sha256$..., bcrypt_sha256$..., argon2$...).
_PHC = re.compile(
    r"\$(?:argon2(?:id|i|d)|scrypt|pbkdf2(?:-sha\d+)?|bcrypt(?:-sha256)?|2[abxy]?|[1-9]|gy|y"
    r"|apr1|md5|sha1|sha(?:256|512)_crypt|md5_crypt|[a-z][a-z0-9_-]{0,19})\$[A-Za-z0-9+/.=,$_-]{4,}"
    r"|\b(?:pbkdf2_sha(?:1|256|512)|bcrypt_sha256|bcrypt|argon2|scrypt|unsalted_(?:sha1|md5)"
    r"|sha1|md5|crypt)\$[A-Za-z0-9+/.=,$_-]{8,}"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic|token|digest|negotiate)(\s+)[A-Za-z0-9._~+/=-]{8,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# scheme://user:PASSWORD@host (the password is everything up to the last @
# before white space).
_URL_PASSWORD = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)([^\s@]+)@")
# A label followed by = or : (the value is found by hand, see _redact_labels).
_LABEL = re.compile(r"(?<![A-Za-z0-9_.-])([A-Za-z_][A-Za-z0-9_.-]*)[\"']?[ \t]*[=:][ \t]*")
_HEX = re.compile(r"(?<![0-9A-Za-z])(?:0[xX])?[0-9a-fA-F]{32,}(?![0-9A-Za-z])")
_COLON_HEX = re.compile(r"(?<![0-9A-Za-z:])[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){15,}(?![0-9A-Za-z:])")
_B64 = re.compile(r"[A-Za-z0-9+/_-]{22,}={0,2}")
_BYTES_LITERAL = re.compile(r"(?<![A-Za-z0-9_])b(?:'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\")")


# Characters without which no rule below can match a string shorter than the
# shortest shape rule (22 characters): a label or URL needs = or :, a hash $,
# a bytes repr or quoted value a quote, a credential scheme white space.
_TRIGGERS = re.compile(r"[$=:'\"\s]")


def _quick_clean(text: str, prefixes: tuple[str, ...]) -> bool:
    """Hot path: True when *text* certainly holds nothing any rule would replace.

    Most field values are short identifiers (``acme``, ``192.0.2.7``,
    ``tamper``); this skips the dozen pattern passes for them. A hypothesis
    test checks that whenever this says clean, :meth:`Redactor.redact` changes
    nothing.
    """
    return (
        len(text) < 22 and _TRIGGERS.search(text) is None and not any(p in text for p in prefixes)
    )


def _entropy(text: str) -> float:
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


# Identifiers made of short words joined by separators or camel case
# (SSL_CTX_set1_groups_list, pytest-of-root/test_x0, AbstractProxyFactoryBean):
# random base64 of 16+ bytes reads like this about once in 70 000 draws,
# ordinary names and paths almost always do.
_WORDS = re.compile(
    r"(?:[a-z]{3,}|[A-Z][a-z]{2,}|[A-Z]{2,}(?![a-z])|[A-Z](?=[A-Z][a-z]{2})|[0-9]+|[_\-/+])+"
)
_SEPARATORS = re.compile(r"[_\-/+]")


def _identifier_like(core: str) -> bool:
    parts = _SEPARATORS.split(core)
    return max(map(len, parts)) <= 16 and _WORDS.fullmatch(core) is not None


def _looks_random(run: str) -> bool:
    """Whether a base64-alphabet run of 22+ characters reads as random bytes.

    Random base64 of 16 bytes has upper and lower case letters (missing one
    of them: about 1 in 90 000 draws), a high per-character entropy, few
    digits, and does not segment into words; identifiers, paths, time stamps
    and cipher names fail one of these.
    """
    core = run.rstrip("=")
    has_upper = any(c.isupper() for c in core)
    has_lower = any(c.islower() for c in core)
    if not (has_upper and has_lower):
        return False
    if sum(c.isdigit() for c in core) * 2 > len(core):
        return False  # mostly digits: compact timestamps, ids (random base64 is ~16% digits)
    return _entropy(core) >= 3.0 and not _identifier_like(core)


def _value_end(text: str, start: int) -> int:
    """End of a labelled value starting at *start*: its closing quote, else the line end."""
    line_end = text.find("\n", start)
    if line_end < 0:
        line_end = len(text)
    if start < len(text) and text[start] in "\"'":
        quote = text[start]
        i = start + 1
        while i < line_end:
            char = text[i]
            if char == "\\":
                i += 2
                continue
            if char == quote:
                return i + 1
            i += 1
    return line_end


class Redactor:
    """Finds and replaces secret-looking substrings in text.

    Args:
        token_prefixes: text-token prefixes to redact (with the rest of the token).
        extra_patterns: further regular expressions whose matches are replaced whole.

    Example:
        >>> Redactor().redact("password=hunter2 ok")
        ('password=[REDACTED]', 1)
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

    @property
    def is_default(self) -> bool:
        """Whether this redactor has the default rules (no extra patterns or prefixes)."""
        return not self._extra and self._prefixes == DEFAULT_TOKEN_PREFIXES

    def __repr__(self) -> str:
        return f"Redactor(patterns={11 + len(self._extra) + (self._token is not None)})"

    # A flat chain of cheap substring guards, each gating one regex pass: splitting it
    # would add calls on the per-log-record hot path and hide the order the passes run in.
    def redact(self, text: str) -> tuple[str, int]:  # noqa: C901
        """Return *text* with every secret-looking substring replaced, and the count.

        Never raises for any ``str`` input.
        """
        if not self._extra and _quick_clean(text, self._prefixes):
            return text, 0
        count = 0

        def whole(match: re.Match[str]) -> str:
            nonlocal count
            if match.group(0) == REDACTED:
                return REDACTED
            count += 1
            return REDACTED

        def keep_first(match: re.Match[str]) -> str:
            nonlocal count
            count += 1
            return match.group(1) + REDACTED + "@"

        def bearer(match: re.Match[str]) -> str:
            nonlocal count
            count += 1
            return match.group(1) + match.group(2) + REDACTED

        def literal(match: re.Match[str]) -> str:
            nonlocal count
            count += 1
            try:
                value = ast.literal_eval(match.group(0))
            except Exception:
                return REDACTED
            return bytes_marker(value) if isinstance(value, bytes) else REDACTED

        def random_run(match: re.Match[str]) -> str:
            nonlocal count
            run = match.group(0)
            if not _looks_random(run):
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
        if "b'" in text or 'b"' in text:
            text = _BYTES_LITERAL.sub(literal, text)
        if "$" in text:
            text = _PHC.sub(whole, text)
        if "://" in text:
            text = _URL_PASSWORD.sub(keep_first, text)
        if "=" in text or ":" in text:
            text, n = _redact_labels(text)
            count += n
        if " " in text or "\t" in text:
            text = _BEARER.sub(bearer, text)
        if len(text) >= 22:
            if "eyJ" in text:
                text = _JWT.sub(whole, text)
            text = _HEX.sub(whole, text)
            if ":" in text:
                text = _COLON_HEX.sub(whole, text)
            text = _B64.sub(random_run, text)
        return text, count

    def redact_value(self, value: object) -> tuple[object, int]:
        """Redact one field value: text is scanned, binary values are never shown.

        Scalars (``int``, ``float``, ``bool``, ``None``) are returned unchanged;
        ``bytes``/``bytearray``/``memoryview`` become ``[N bytes fp:xxxxxxxx]``;
        containers get the name rules (:func:`sanitize`); anything else is
        rendered with ``str`` and scanned.
        """
        if value is None or isinstance(value, bool | int | float):
            return value, 0
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes_marker(value), 1
        structured = 0
        if not isinstance(value, str):
            value, structured = sanitize(value)
        text = value if isinstance(value, str) else str(value)
        redacted, count = self.redact(text)
        if count == 0 and structured == 0:
            return value, 0
        return redacted, count + structured


def _redact_labels(text: str) -> tuple[str, int]:
    """Replace the value after every secret label (``label=value``, ``label: value``)."""
    out: list[str] = []
    count = 0
    position = 0
    search_from = 0
    while True:
        match = _LABEL.search(text, search_from)
        if match is None:
            break
        label = match.group(1).rstrip(".-")
        if not is_secret_name(label):
            search_from = match.end()
            continue
        start = match.end()
        if text.startswith(REDACTED, start):  # already replaced (a dict argument's value)
            search_from = start + len(REDACTED)
            continue
        end = _value_end(text, start)
        value = text[start:end]
        if value and value.strip("\"' ") != REDACTED and value.strip():
            out.append(text[position:start])
            out.append(REDACTED)
            position = end
            count += 1
        search_from = max(end, start + 1) if value else start + 1
        if search_from >= len(text):
            break
    if not count:
        return text, 0
    out.append(text[position:])
    return "".join(out), count


_DEFAULT = Redactor()


def describe_exception(
    exc_info: tuple[type[BaseException], BaseException, TracebackType | None],
    redactor: Redactor | None = None,
) -> tuple[str, str, str, int]:
    """Return ``(type name, message, stack trace, count)`` with every rule applied.

    The stack trace is the full text ``traceback`` prints, so chained causes
    and contexts and ``add_note`` notes are scanned too; ``bytes`` arguments
    never appear as their repr.
    """
    redactor = redactor or _DEFAULT
    exc_type, exc, tb = exc_info
    try:
        message = str(exc)
    except Exception:
        message = f"<{exc_type.__name__}: message could not be rendered>"
    message, n_message = redactor.redact(message)
    try:
        stack = "".join(traceback.format_exception(exc_type, exc, tb)).rstrip("\n")
    except Exception:
        stack = f"{exc_type.__name__}: <stack trace could not be rendered>"
    stack, n_stack = redactor.redact(stack)
    return exc_type.__name__, message, stack, n_message + n_stack


class JudgedEvent(dict[str, object]):
    """An event dict built by :func:`emit`, whose fields already went through the rules.

    :class:`RedactionFilter` with default rules does not judge its fields a
    second time (hot path: halves the filter's cost per event). A dict built
    any other way, or a filter with extra rules, gets the full pass.
    """

    __slots__ = ()


class RedactionFilter(logging.Filter):
    """A :class:`logging.Filter` that replaces secrets with ``[REDACTED]``.

    Attach it to a *handler* (logger filters do not see records propagated
    from child loggers)::

        handler = logging.StreamHandler()
        handler.addFilter(RedactionFilter())
        handler.setFormatter(EcsFormatter())
        logging.getLogger("styku_crypto").addHandler(handler)

    Structured values are judged by name (guaranteed), free text by shape
    (best effort); see the module documentation. A record's exception is
    rendered once, redacted, kept as ``exc_text`` (with the redacted type and
    message in ``styku_error``) and its ``exc_info`` dropped, so no formatter
    downstream can render the raw exception again.

    It always returns ``True`` (the record is emitted, redacted) and never
    raises. A record that cannot be scanned is emitted with a fixed message and
    without arguments, exception or stack (fail closed).

    Args:
        redactor: the :class:`Redactor` to use (default settings when omitted).
        name: passed to :class:`logging.Filter`.
        strict: drop every free-text ``%``-argument: positional arguments other
            than numbers, booleans and ``None``, and mapping arguments whose
            key is not a declared, non-secret event field, are replaced by
            ``[REDACTED]`` before the message is rendered.
    """

    def __init__(
        self, redactor: Redactor | None = None, name: str = "", *, strict: bool = False
    ) -> None:
        super().__init__(name)
        self._redactor = redactor or Redactor()
        self._strict = strict

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

    def _strict_args(self, args: Any) -> tuple[Any, int]:
        dropped = 0
        if isinstance(args, dict):
            out: dict[object, object] = {}
            for key, value in args.items():
                spec = lookup_field(key) if isinstance(key, str) else None
                if (
                    (spec is not None and spec.sensitivity != "secret")
                    or value is None
                    or isinstance(value, bool | int | float)
                ):
                    out[key] = value
                else:
                    out[key] = _REDACTED_SHOWN
                    dropped += 1
            return out, dropped
        items: list[object] = []
        for value in args:
            if value is None or isinstance(value, bool | int | float):
                items.append(value)
            else:
                items.append(_REDACTED_SHOWN)
                dropped += 1
        return tuple(items), dropped

    def _scrub(self, record: logging.LogRecord) -> int:
        total = 0
        redactor = self._redactor
        # message and arguments: the name rules on structured arguments first
        args: Any = record.args
        structured = 0
        if args:
            if self._strict:
                args, structured = self._strict_args(args)
            args, n = sanitize(args)
            structured += n
        try:
            message = str(record.msg) % args if args else str(record.msg)
        except Exception:
            message = f"{record.msg!s} {args!r}"
        redacted, n = redactor.redact(message)
        if n or structured:
            record.msg = redacted
            record.args = None
            total += n + structured
        # the structured event
        event = getattr(record, "styku_event", None)
        if type(event) is JudgedEvent and redactor.is_default:
            pass  # emit() already applied exactly these rules to every field
        elif isinstance(event, dict):
            new_event: dict[str, object] = {}
            changed = 0
            for key, value in event.items():
                if key in _SAFE_EVENT_FIELDS and isinstance(value, str | int | float | bool):
                    new_event[key] = value
                    continue
                if _secret_field(key) and value is not None and value != REDACTED:
                    new_event[key] = REDACTED
                    changed += 1
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
            if is_secret_name(key) and value is not None and value != REDACTED:
                setattr(record, key, REDACTED)
                total += 1
                continue
            new_value, n = redactor.redact_value(value)
            if n:
                setattr(record, key, new_value)
                total += n
        # exception and stack text
        if record.exc_info and record.exc_info[1] is not None:
            exc_type, exc, tb = record.exc_info
            assert exc_type is not None
            name, message, stack, n = describe_exception((exc_type, exc, tb), redactor)
            setattr(record, ERROR_ATTRIBUTE, {"type": name, "message": message})
            record.exc_text = stack
            record.exc_info = None  # never rendered raw downstream
            total += n
        elif record.exc_text:
            record.exc_text, n = redactor.redact(record.exc_text)
            total += n
        if record.stack_info:
            record.stack_info, n = redactor.redact(record.stack_info)
            total += n
        return total


def _secret_field(name: str) -> bool:
    """A field declared secret, or an undeclared field with a secret name."""
    spec = lookup_field(name)
    if spec is not None:
        return spec.sensitivity == "secret"
    return is_secret_name(name)

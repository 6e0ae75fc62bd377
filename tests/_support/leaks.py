"""The secret-leak registry.

Tests register every secret they generate or handle (keys, data keys, plaintexts,
passwords, peppers) with :func:`register_secret`. During the whole session a
handler on the ``styku_crypto`` logger captures every record; at the end of the
session every captured record, and every text passed to :func:`scan_text`
(reprs, exception messages, CLI output), is searched for every registered secret
in its raw, hex and base64 forms. A hit fails the run.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import threading

_MIN_LEN = 8  # shorter values produce false positives and are not secrets we generate

_lock = threading.Lock()
_secrets: set[bytes] = set()
_texts: list[tuple[str, str]] = []
_records: list[logging.LogRecord] = []


def register_secret(value: bytes | str) -> None:
    """Register a secret that must never appear in logs, reprs, errors or CLI output."""
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if len(raw) < _MIN_LEN:
        return
    with _lock:
        _secrets.add(raw)


def scan_text(where: str, text: str | bytes) -> None:
    """Queue *text* (a repr, an exception message, CLI output) for the leak scan."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    with _lock:
        _texts.append((where, text))


def assert_no_secret_in(where: str, text: str | bytes) -> None:
    """Check *text* now against every registered secret and queue it for the final scan."""
    scan_text(where, text)
    hits = _find(text if isinstance(text, str) else text.decode("utf-8", "replace"))
    assert not hits, f"secret leaked into {where}: {len(hits)} form(s) found"


_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}
_texts_seen: set[str] = set()


def _compact_text(record: logging.LogRecord) -> str:
    """What a formatter could render from *record*, minus volatile bookkeeping fields."""
    parts = [str(record.msg), repr(record.args)]
    event = getattr(record, "styku_event", None)
    if isinstance(event, dict):
        parts.append(repr({k: v for k, v in event.items() if k != "timestamp"}))
    with contextlib.suppress(Exception):  # a broken record is still scanned as far as possible
        parts.append(record.getMessage())
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(repr(record.exc_info[1]))
        parts.append(str(record.exc_info[1]))
    parts.extend(
        f"{k}={v!r}"
        for k, v in vars(record).items()
        if k not in _STANDARD_ATTRS and k != "styku_event"
    )
    return "\n".join(parts)


class CapturingHandler(logging.Handler):
    """Keeps every record emitted under ``styku_crypto`` for the final scan."""

    def emit(self, record: logging.LogRecord) -> None:
        text = _compact_text(record)
        with _lock:
            _records.append(record)
            _texts_seen.add(text)


def captured_records() -> list[logging.LogRecord]:
    """Every record captured so far (a copy)."""
    with _lock:
        return list(_records)


def _forms(secret: bytes) -> list[str]:
    forms = [
        secret.hex(),
        base64.b64encode(secret).decode().rstrip("="),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
    ]
    with contextlib.suppress(UnicodeDecodeError):
        forms.append(secret.decode("utf-8"))
    forms.append(repr(secret)[2:-1])
    return [f for f in forms if len(f) >= _MIN_LEN]


def _find(text: str) -> list[str]:
    with _lock:
        secrets = list(_secrets)
    hits = []
    for secret in secrets:
        for form in _forms(secret):
            if form in text:
                hits.append(f"{form[:4]}...({len(form)} chars)")
    return hits


def _index() -> dict[str, list[str]]:
    """Every form of every registered secret, keyed by its first eight characters."""
    with _lock:
        secrets = list(_secrets)
    index: dict[str, list[str]] = {}
    for secret in secrets:
        for form in _forms(secret):
            index.setdefault(form[:_MIN_LEN], []).append(form)
    return index


def _find_indexed(text: str, index: dict[str, list[str]]) -> list[str]:
    hits = []
    for i in range(len(text) - _MIN_LEN + 1):
        forms = index.get(text[i : i + _MIN_LEN])
        if forms:
            hits.extend(f"{f[:4]}...({len(f)} chars)" for f in forms if text.startswith(f, i))
    return hits


def record_text(record: logging.LogRecord) -> str:
    """Everything a formatter could render from *record* (bookkeeping fields aside)."""
    return _compact_text(record)


def final_scan() -> list[str]:
    """Scan every captured record and queued text; return descriptions of leaks.

    Records are rendered once, when captured, and de-duplicated; the scan walks each
    distinct text once with an index of every secret form's first eight characters.
    """
    index = _index()
    problems = []
    with _lock:
        record_texts = sorted(_texts_seen)
        texts = list(_texts)
    for text in record_texts:
        hits = _find_indexed(text, index)
        if hits:
            problems.append(f"log record {text[:60]!r} contains {hits[0]}")
    for where, text in texts:
        hits = _find_indexed(text, index)
        if hits:
            problems.append(f"{where} contains {hits[0]}")
    return problems

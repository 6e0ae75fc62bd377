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


class CapturingHandler(logging.Handler):
    """Keeps every record emitted under ``styku_crypto`` for the final scan."""

    def emit(self, record: logging.LogRecord) -> None:
        with _lock:
            _records.append(record)


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
    try:
        forms.append(secret.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    forms.append(repr(secret)[2:-1])
    return [f for f in forms if len(f) >= _MIN_LEN]


def _find(text: str) -> list[str]:
    with _lock:
        secrets = list(_secrets)
    hits = []
    for secret in secrets:
        for form in _forms(secret):
            if form in text:
                hits.append(form[:4] + "...")
    return hits


def record_text(record: logging.LogRecord) -> str:
    """Everything a formatter could render from *record*."""
    parts = [str(record.msg), repr(record.args), repr(getattr(record, "styku_event", None))]
    try:
        parts.append(record.getMessage())
    except Exception:  # noqa: BLE001 - a broken record is still scanned as far as possible
        pass
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(repr(record.exc_info[1]))
        parts.append(str(record.exc_info[1]))
    parts.extend(repr(v) for k, v in vars(record).items() if k not in {"exc_info"})
    return "\n".join(parts)


def final_scan() -> list[str]:
    """Scan every captured record and queued text; return descriptions of leaks."""
    problems = []
    for record in captured_records():
        if _find(record_text(record)):
            problems.append(f"log record {record.name}:{record.msg!s:.60}")
    with _lock:
        texts = list(_texts)
    for where, text in texts:
        if _find(text):
            problems.append(where)
    return problems

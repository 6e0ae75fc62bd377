"""The vocabulary as data, and emit(): fields, levels, unknown names, field scrubbing."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

import styku_crypto.events as events
from styku_crypto.events import (
    CAPABILITIES,
    EVENT_ATTRIBUTE,
    VOCABULARY,
    _emit,
    emit,
    is_known_event,
    lookup_event,
    unknown_events_seen,
    vocabulary_markdown,
)
from tests._support import leaks

_ECS_CATEGORIES = {
    "api", "authentication", "configuration", "database", "driver", "email", "file", "host",
    "iam", "intrusion_detection", "library", "malware", "network", "package", "process",
    "registry", "session", "threat", "vulnerability", "web",
}  # fmt: skip
_ECS_TYPES = {
    "access", "admin", "allowed", "change", "connection", "creation", "deletion", "denied",
    "end", "error", "group", "indicator", "info", "installation", "protocol", "start", "user",
}  # fmt: skip
_COMMON_VOCABULARY = {
    "envelope.encrypt": "DEBUG", "envelope.decrypt.failed": "WARNING", "envelope.rewrap": None,
    "key.created": None, "key.rotated": None, "key.rewrapped": None, "key.shredded": None,
    "key.backup": None, "key.restored": None, "key.drill": None,
    "key.root_failover": "WARNING", "key.shredded_access": "WARNING",
    "password.verified": None, "password.failed": "WARNING", "password.rehashed": None,
    "password.upgraded_legacy": None, "password.hash_refused": "WARNING",
    "password.policy_rejected": None,
    "tls.context_created": None, "tls.policy_violation": "WARNING",
    "tls.certificate_violation": "WARNING", "tls.audit": None,
    "web.https_redirect": None, "web.https_reject": "WARNING",
    "web.client_cert_rejected": "WARNING", "web.login_throttled": None,
    "incident.opened": None, "incident.updated": None, "incident.closed": None,
    "incident.verify_failed": "ERROR",
}  # fmt: skip


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if hasattr(r, EVENT_ATTRIBUTE)]


def test_vocabulary_covers_the_agreed_names_and_levels() -> None:
    """Every name agreed in the common brief is in the vocabulary at the agreed level."""
    for name, level in _COMMON_VOCABULARY.items():
        spec = lookup_event(name)
        assert spec is not None, name
        if level is not None:
            assert spec.level_name == level, name


def test_vocabulary_is_well_formed() -> None:
    """Names are unique, dotted, lower case; capability, outcome and ECS values are valid."""
    names = [s.name for s in VOCABULARY]
    assert len(names) == len(set(names))
    for spec in VOCABULARY:
        assert re.fullmatch(r"[a-z]+(\.[a-z_]+)+", spec.name), spec.name
        assert spec.capability in CAPABILITIES
        assert spec.outcome in {"success", "failure", "unknown"}
        assert set(spec.category) <= _ECS_CATEGORIES, spec.name
        assert set(spec.types) <= _ECS_TYPES, spec.name
        assert spec.description.endswith(".")
        assert set(spec.fields) <= {"tenant", "key_id", "key_version", "actor", "source", "reason"}
    assert is_known_event("key.rotated")
    assert not is_known_event("key.rotate")


def test_public_api_is_sorted_and_exported() -> None:
    """The events package exports exactly its sorted __all__."""
    assert events.__all__ == sorted(events.__all__, key=lambda n: (not n.isupper(), n))
    for name in events.__all__:
        assert hasattr(events, name)


def test_docs_table_matches_the_vocabulary() -> None:
    """docs/events.md contains the table generated from the vocabulary, verbatim."""
    doc = Path("docs/events.md").read_text(encoding="utf-8")
    assert vocabulary_markdown() in doc


def test_emit_builds_the_event(caplog: pytest.LogCaptureFixture) -> None:
    """emit logs the event name on styku_crypto.<capability> with the structured fields."""
    caplog.set_level(logging.DEBUG, logger="styku_crypto")
    emit(
        "key.rotated",
        capability="keys",
        outcome="success",
        tenant="acme",
        key_id="tk_0011223344556677",
        key_version=3,
        actor="ops",
        attributes={"purpose": "customer", "tenant": "ignored"},
    )
    (record,) = _records(caplog)
    assert record.name == "styku_crypto.keys"
    assert record.getMessage() == "key.rotated"
    fields = getattr(record, EVENT_ATTRIBUTE)
    assert fields["event"] == "key.rotated"
    assert fields["tenant"] == "acme"
    assert fields["key_version"] == 3
    assert fields["purpose"] == "customer"
    assert fields["timestamp"].endswith("+00:00")
    assert "source" not in fields
    assert "vocabulary" not in fields


def test_emit_respects_level(caplog: pytest.LogCaptureFixture) -> None:
    """A disabled level costs nothing and emits nothing."""
    caplog.set_level(logging.INFO, logger="styku_crypto")
    emit("envelope.encrypt", capability="envelope", outcome="success", level=logging.DEBUG)
    assert not _records(caplog)


def test_unknown_names_are_logged_and_flagged(caplog: pytest.LogCaptureFixture) -> None:
    """An unknown name is still logged, marked, and remembered for the vocabulary check."""
    caplog.set_level(logging.DEBUG, logger="styku_crypto")
    emit("made.up_event", capability="keys", outcome="success")
    (record,) = _records(caplog)
    assert getattr(record, EVENT_ATTRIBUTE)["vocabulary"] == "unknown"
    assert "made.up_event" in unknown_events_seen()
    _emit._unknown_seen.discard("made.up_event")  # keep the session-wide set meaningful


def test_emit_scrubs_secret_looking_fields(caplog: pytest.LogCaptureFixture) -> None:
    """A key or password passed into an event field by mistake is replaced before logging."""
    caplog.set_level(logging.DEBUG, logger="styku_crypto")
    key = bytes(range(32))
    leaks.register_secret(key)
    leaks.register_secret("hunter2-hunter2")
    emit(
        "password.failed",
        capability="passwords",
        outcome="failure",
        actor="alice",
        reason=f"debug dump password=hunter2-hunter2 key={key.hex()}",
        attributes={"blob": key},  # type: ignore[dict-item]
    )
    (record,) = _records(caplog)
    fields = getattr(record, EVENT_ATTRIBUTE)
    assert fields["actor"] == "alice"
    assert re.fullmatch(r"\[32 bytes fp:[0-9a-f]{8}\]", fields["blob"])
    assert "hunter2" not in fields["reason"]
    assert key.hex() not in fields["reason"]
    assert fields["redacted"] >= 2
    leaks.assert_no_secret_in("scrubbed event", leaks.record_text(record))


def test_every_python_example_in_events_page_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every Python block of docs/events.md runs as written."""
    monkeypatch.chdir(tmp_path)
    names = ("styku_crypto", "styku_crypto.alerts")  # the page adds handlers to both
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level) for n in names}
    page = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    assert len(blocks) >= 3
    try:
        for index, block in enumerate(blocks):
            exec(compile(block, f"events.md#{index}", "exec"), {"__name__": f"docs_events_{index}"})
    finally:
        for name, (handlers, level) in saved.items():
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                if handler not in handlers:
                    logger.removeHandler(handler)
            logger.setLevel(level)

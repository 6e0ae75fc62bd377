"""Every field emit accepts is declared; names are judged and validated (issue 22)."""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

import pytest

from styku_crypto.events import (
    EVENT_ATTRIBUTE,
    FIELDS,
    REDACTED,
    emit,
    fields_markdown,
    lookup_field,
    undeclared_fields_seen,
)
from styku_crypto.events._names import is_secret_name
from styku_crypto.exceptions import InvalidInputError
from tests._support import leaks

PACKAGE = Path(__file__).resolve().parents[2] / "styku_crypto"
DOCS = Path(__file__).resolve().parents[2] / "docs"

SECRET_NAMES = [
    "password",
    "Password",
    "PASSWORD",
    "passwd",
    "pass",
    "pwd",
    "token",
    "access_token",
    "refreshToken",
    "secret",
    "client_secret",
    "key",
    "dek",
    "pepper",
    "authorization",
    "Authorization",
    "cookie",
    "set-cookie",
    "Set-Cookie",
    "session",
    "sessionid",
    "session_id",
    "sid",
    "private_key",
    "privateKey",
    "credential",
    "credentials",
    "api_key",
    "api-key",
    "apiKey",
    "X-Api-Key",
    "db_password",
    "POSTGRES_PASSWORD",
    "db.password",
    "dbpassword",
]
PUBLIC_NAMES = [
    "key_id",
    "key_version",
    "keyId",
    "tenant",
    "actor",
    "status",
    "host",
    "passed",
    "bypass",
    "count",
    "purpose",
]


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if hasattr(r, EVENT_ATTRIBUTE)]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names_are_recognised(name: str) -> None:
    """Every secret word, in any case, separator or prefixed form, is a secret name."""
    assert is_secret_name(name)


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_descriptive_names_are_not_secret(name: str) -> None:
    """Names that describe a key (key_id, key_version) or are ordinary words are not secret."""
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    "name", ["password", "token", "secret", "api_key", "authorization", "cookie", "dek", "key"]
)
def test_secret_named_attribute_is_redacted_whatever_the_value(
    caplog: pytest.LogCaptureFixture, name: str
) -> None:
    """emit(attributes={'password': 'Tr0ub4dor&3'}) writes [REDACTED], not the password."""
    caplog.set_level(logging.INFO, logger="styku_crypto")
    value = "Tr0ub4dor&3-" + name
    leaks.register_secret(value)
    emit("password.failed", capability="passwords", outcome="failure", attributes={name: value})
    fields = getattr(_records(caplog)[-1], EVENT_ATTRIBUTE)
    assert fields[name] == REDACTED
    assert fields["redacted"] == 1
    assert name in undeclared_fields_seen()
    leaks.assert_no_secret_in("event fields", repr(fields))


@pytest.mark.parametrize(
    "event",
    [
        "key.00112233445566778899aabbccddeeff",
        "key rotated",
        "Key.Rotated",
        "key",
        "key.rotated\n",
        "",
    ],
)
def test_bad_event_names_are_refused(event: str) -> None:
    """An event name that is not dotted identifiers, or carries a key, is refused."""
    with pytest.raises(InvalidInputError) as info:
        emit(event, capability="keys", outcome="success")
    assert "00112233" not in str(info.value)


@pytest.mark.parametrize(
    "name",
    ["00112233445566778899aabbccddeeff", "k_00112233445566778899aabbccddeeff", "a b", "x" * 65],
)
def test_bad_attribute_names_are_refused(name: str) -> None:
    """An attribute name that is not an identifier, or is a hex key, is refused."""
    with pytest.raises(InvalidInputError):
        emit("key.rotated", capability="keys", outcome="success", attributes={name: 1})


def test_outcome_must_be_one_of_three() -> None:
    """A hex key passed as outcome= is refused, never written."""
    with pytest.raises(InvalidInputError):
        emit("key.rotated", capability="keys", outcome="00112233445566778899aabbccddeeff")


def test_declared_type_is_enforced(caplog: pytest.LogCaptureFixture) -> None:
    """A value of the wrong type under a declared field is replaced; bytes give length only."""
    caplog.set_level(logging.INFO, logger="styku_crypto")
    emit(
        "key.rotated",
        capability="keys",
        outcome="success",
        tenant=b"\x01" * 32,  # type: ignore[arg-type]
        attributes={"status": "0x00112233445566778899aabbccddeeff", "seconds": 1.5},
    )
    fields = getattr(_records(caplog)[-1], EVENT_ATTRIBUTE)
    assert re.fullmatch(r"\[32 bytes fp:[0-9a-f]{8}\]", fields["tenant"])
    assert fields["status"] == REDACTED
    assert fields["seconds"] == 1.5
    assert fields["redacted"] == 2


def test_every_field_has_type_and_sensitivity() -> None:
    """The field table is well formed and the docs carry it verbatim."""
    names = [f.name for f in FIELDS]
    assert len(names) == len(set(names))
    for spec in FIELDS:
        assert spec.type in {"text", "int", "number", "bool", "scalar"}
        assert spec.sensitivity in {"public", "identifier", "secret"}
        assert re.fullmatch(r"[a-z][a-z0-9_]*", spec.name)
        # a declared non-secret field must not carry a secret-looking name
        assert spec.sensitivity == "secret" or not is_secret_name(spec.name), spec.name
    assert fields_markdown() in (DOCS / "events.md").read_text()


def _emitted_attribute_names() -> dict[str, str]:
    """Every literal attribute name the package passes to emit, with where it is."""
    found: dict[str, str] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "_otel.py":  # OpenTelemetry attributes, not emit() fields
            continue
        tree = ast.parse(path.read_text(), str(path))
        dicts: dict[str, ast.Dict] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Dict):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        dicts[target.id] = node.value
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for kw in node.keywords:
                if kw.arg != "attributes":
                    continue
                value = kw.value
                candidates = [value.body, value.orelse] if isinstance(value, ast.IfExp) else [value]
                for candidate in candidates:
                    if isinstance(candidate, ast.Name):
                        candidate = dicts.get(candidate.id, candidate)
                    if isinstance(candidate, ast.Dict):
                        for key in candidate.keys:
                            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                                found[key.value] = f"{path.name}:{key.lineno}"
    return found


def test_the_library_emits_only_declared_fields() -> None:
    """Every attribute name the library passes to emit() is declared in FIELDS.

    To add one: append ``_f(name, type, sensitivity, description)`` to FIELDS in
    styku_crypto/events/_vocabulary.py and regenerate the docs table.
    """
    found = _emitted_attribute_names()
    assert len(found) > 30  # the scan sees the library's emits
    missing = {name: where for name, where in found.items() if lookup_field(name) is None}
    assert not missing, f"undeclared event fields: {missing}"

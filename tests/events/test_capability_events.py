"""Each capability, driven for real, emits the agreed events: names, outcome, fields, no payload.

Also checks, by parsing the package source, that every event name any module
passes to ``emit`` is in the vocabulary.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest

import styku_crypto
from styku_crypto.events import EVENT_ATTRIBUTE, is_known_event, lookup_event, unknown_events_seen
from tests._support import leaks

_PACKAGE = Path(styku_crypto.__file__).parent


class Events:
    """Events captured from the styku_crypto logger during one test."""

    def __init__(self) -> None:
        self.records: list[logging.LogRecord] = []

    def named(self, name: str) -> list[dict[str, Any]]:
        return [getattr(r, EVENT_ATTRIBUTE) for r in self.records if r.getMessage() == name]

    def one(self, name: str) -> dict[str, Any]:
        found = self.named(name)
        assert found, f"{name} not emitted; saw {self.names()}"
        return found[-1]

    def names(self) -> list[str]:
        return [r.getMessage() for r in self.records if hasattr(r, EVENT_ATTRIBUTE)]

    def clear(self) -> None:
        self.records.clear()


class _Handler(logging.Handler):
    def __init__(self, sink: Events) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.records.append(record)


@pytest.fixture
def events() -> Iterator[Events]:
    """Capture every styku_crypto record; afterwards check each event against the vocabulary."""
    sink = Events()
    handler = _Handler(sink)
    logger = logging.getLogger("styku_crypto")
    logger.addHandler(handler)
    try:
        yield sink
    finally:
        logger.removeHandler(handler)
    for record in sink.records:
        fields = getattr(record, EVENT_ATTRIBUTE, None)
        if fields is None:
            continue
        spec = lookup_event(fields["event"])
        assert spec is not None, f"unknown event {fields['event']}"
        assert record.name == f"styku_crypto.{spec.capability}", fields["event"]
        assert fields["outcome"] in {"success", "failure", "unknown"}
        assert "redacted" not in fields, f"{fields['event']} had a field scrubbed: {fields}"
        leaks.assert_no_secret_in(f"event {fields['event']}", leaks.record_text(record))


# -- the vocabulary check over the source --------------------------------------------------


class _EmitCalls(ast.NodeVisitor):
    """Finds event names passed to emit() or to a module's own ``*emit`` forwarder."""

    def __init__(self, rel: str) -> None:
        self.rel = rel
        self.params: list[set[str]] = [set()]
        self.calls: list[tuple[str, int, str | None]] = []

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        args = node.args
        names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
        self.params.append(names)
        self.generic_visit(node)
        self.params.pop()

    visit_FunctionDef = _function  # noqa: N815 - ast.NodeVisitor naming
    visit_AsyncFunctionDef = _function  # noqa: N815

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name.endswith("emit") and node.args:
            first = node.args[0]
            # the real emit() is recognised by its capability keyword; a module's own
            # forwarder (``_emit("envelope.rewrap", ...)``) only by a literal name
            ours = name == "emit" and any(k.arg == "capability" for k in node.keywords)
            names: list[str] = []
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names = [first.value]
            elif isinstance(first, ast.IfExp):  # "a" if cond else "b"
                names = [
                    n.value
                    for n in (first.body, first.orelse)
                    if isinstance(n, ast.Constant) and isinstance(n.value, str)
                ]
            if names:
                self.calls.extend((self.rel, node.lineno, n) for n in names)
            elif ours and not (isinstance(first, ast.Name) and first.id in self.params[-1]):
                # a forwarder passing its own parameter on is checked at its call sites
                self.calls.append((self.rel, node.lineno, None))
        self.generic_visit(node)


def _emit_calls() -> list[tuple[str, int, str | None]]:
    calls = []
    for path in sorted(_PACKAGE.rglob("*.py")):
        if path.parent.name == "events" and path.name == "_emit.py":
            continue
        visitor = _EmitCalls(str(path.relative_to(_PACKAGE.parent)))
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        calls.extend(visitor.calls)
    return calls


def test_every_emitted_name_is_in_the_vocabulary() -> None:
    """Every literal event name passed to emit() anywhere in the package is in the vocabulary."""
    calls = _emit_calls()
    assert len(calls) > 20
    unknown = [f"{f}:{line} {n}" for f, line, n in calls if n is not None and not is_known_event(n)]
    assert unknown == []
    dynamic = [f"{f}:{line}" for f, line, n in calls if n is None]
    assert dynamic == [], "emit() with a non-literal event name cannot be checked"


def test_every_vocabulary_name_is_emitted_somewhere() -> None:
    """No dead entries: each vocabulary name is passed to emit() by some module."""
    from styku_crypto.events import VOCABULARY

    used = {n for _f, _line, n in _emit_calls() if n}
    assert {s.name for s in VOCABULARY} - used == set()


def test_capability_matches_the_vocabulary() -> None:
    """Each emit() call passes the capability the vocabulary assigns to its event."""
    problems = []
    for path in sorted(_PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            cap = next((k.value for k in node.keywords if k.arg == "capability"), None)
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            spec = lookup_event(first.value)
            if spec is None or cap is None:
                continue
            if isinstance(cap, ast.Constant) and cap.value != spec.capability:
                problems.append(f"{path.name}:{node.lineno} {first.value} -> {cap.value}")
    assert problems == []


# -- keys and envelope ---------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    """A real SQLite key store with a local root key."""
    from styku_crypto.keys import KeyStore, LocalRootKey

    ks = KeyStore.open(tmp_path / "keys.db", root=LocalRootKey(tmp_path / "root.key"))
    try:
        yield ks
    finally:
        ks.close()


def test_keys_and_envelope_events(events: Events, store: Any) -> None:
    """create/rotate/rewrap_root/shred and encrypt/decrypt-failure/rewrap/shredded access events."""
    from styku_crypto.envelope import Envelope
    from styku_crypto.exceptions import (
        DecryptionError,
        KeyDestroyedError,
        KeyNotFoundError,
        StykuCryptoError,
    )

    plaintext = b"customer record " + os.urandom(16)
    leaks.register_secret(plaintext)
    store.create_tenant("acme")
    created = events.named("key.created")
    assert {e["purpose"] for e in created} == {"customer", "sensitive"}
    assert all(e["tenant"] == "acme" and e["key_version"] == 1 for e in created)
    assert all(e["key_id"].startswith("tk_") for e in created)

    env = Envelope(store)
    token = env.encrypt(plaintext, tenant="acme", context={"table": "orders"})
    leaks.register_secret(token)
    enc = events.one("envelope.encrypt")
    assert enc["tenant"] == "acme"
    assert enc["key_version"] == 1
    assert enc["outcome"] == "success"

    tampered = bytearray(token)
    tampered[-1] ^= 1
    with pytest.raises(DecryptionError):
        env.decrypt(bytes(tampered), tenant="acme", context={"table": "orders"})
    with pytest.raises(DecryptionError):
        env.decrypt(token, tenant="acme", context={"table": "other"})
    failed = events.named("envelope.decrypt.failed")
    assert [e["reason"] for e in failed] == ["tamper", "tamper"]
    assert all(e["tenant"] == "acme" and e["outcome"] == "failure" for e in failed)

    with pytest.raises(StykuCryptoError):
        env.decrypt(b"\x63" + token[1:], tenant="acme", context={"table": "orders"})
    assert events.one("envelope.decrypt.failed")["reason"] == "unsupported_format"
    with pytest.raises(KeyNotFoundError):
        env.decrypt(token, tenant="nobody", context={"table": "orders"})
    assert events.one("envelope.decrypt.failed")["reason"] == "unknown_key"

    store.rotate("acme")
    rotated = events.named("key.rotated")
    assert {(e["tenant"], e["key_version"]) for e in rotated} == {("acme", 2)}
    env.rewrap(token, tenant="acme")
    assert events.one("envelope.rewrap")["key_version"] >= 1
    store.rewrap_root()
    assert events.named("key.rewrapped")

    store.shred("acme")
    assert events.one("key.shredded")["tenant"] == "acme"
    with pytest.raises(KeyDestroyedError):
        env.decrypt(token, tenant="acme", context={"table": "orders"})
    assert events.one("key.shredded_access")["tenant"] == "acme"
    assert events.one("envelope.decrypt.failed")["reason"] == "key_destroyed"


def test_root_failover_event(events: Events, tmp_path: Path) -> None:
    """An unavailable first root provider is skipped and reported as key.root_failover."""
    from styku_crypto.exceptions import RootKeyUnavailableError
    from styku_crypto.keys import KeyStore, LocalRootKey, RootKeyProvider, SQLiteBackend

    class Switchable(RootKeyProvider):
        """A real local root key that can be made unavailable (an outage)."""

        def __init__(self, inner: LocalRootKey) -> None:
            self.inner = inner
            self.down = False

        @property
        def provider_id(self) -> str:
            return self.inner.provider_id

        def wrap(self, key: bytes, *, aad: bytes) -> bytes:
            return self.inner.wrap(key, aad=aad)

        def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
            if self.down:
                raise RootKeyUnavailableError("simulated outage")
            return self.inner.unwrap(wrapped, aad=aad)

    first = Switchable(LocalRootKey(tmp_path / "one.key"))
    second = LocalRootKey(tmp_path / "two.key")
    backend = SQLiteBackend(tmp_path / "keys.db")
    backend.initialize()
    store = KeyStore(backend, root=[first, second], cache_ttl=0)
    try:
        store.create_tenant("acme")
        first.down = True
        store._derive_key("acme", purpose="customer", label=b"failover-probe")
    finally:
        store.close()
    failover = events.one("key.root_failover")
    assert failover["tenant"] == "acme"
    assert failover["provider"] == first.provider_id
    assert failover["reason"] == "unavailable"


def test_backup_restore_drill_events(events: Events, tmp_path: Path) -> None:
    """backup, restore and drill emit key.backup, key.restored and key.drill with their outcome."""
    from styku_crypto.keys import KeyStore, LocalRootKey, backup, drill, restore

    root = LocalRootKey(tmp_path / "root.key")
    with KeyStore.open(tmp_path / "a.db", root=root) as store:
        store.create_tenant("acme")
        result = backup(store, [tmp_path / "backups"], actor="dr-bot")
    done = events.one("key.backup")
    assert done["outcome"] == "success"
    assert done["actor"] == "dr-bot"
    assert done["backup_id"] == result.backup_id
    with KeyStore.open(tmp_path / "b.db", root=LocalRootKey(tmp_path / "root.key")) as target:
        restore(tmp_path / "backups", target, actor="dr-bot")
    assert events.one("key.restored")["actor"] == "dr-bot"
    report = drill(tmp_path / "backups", root=LocalRootKey(tmp_path / "root.key"))
    assert events.one("key.drill")["outcome"] == ("success" if report.passed else "failure")


# -- passwords -------------------------------------------------------------------------------


def test_password_events(events: Events) -> None:
    """verified, failed, rehashed, upgraded_legacy, hash_refused, policy_rejected, no password."""
    from styku_crypto.exceptions import (
        InvalidHashError,
        PasswordMismatchError,
        PasswordPolicyError,
    )
    from styku_crypto.passwords import CHEAPEST, OWASP_M7168_T5, PasswordHasher

    password = "correct horse battery " + os.urandom(4).hex()
    leaks.register_secret(password)
    old = PasswordHasher(profile=CHEAPEST, insecure_test_only=True)
    new = PasswordHasher(profile=OWASP_M7168_T5)
    stored = old.hash(password)
    leaks.register_secret(stored)

    old.verify(stored, password, actor="alice", source="192.0.2.1")
    ok = events.one("password.verified")
    assert ok["actor"] == "alice"
    assert ok["source"] == "192.0.2.1"
    with pytest.raises(PasswordMismatchError):
        old.verify(stored, password + "x", actor="alice", source="192.0.2.1")
    bad = events.one("password.failed")
    assert bad["reason"] == "mismatch"
    assert bad["source"] == "192.0.2.1"

    upgraded = new.verify_and_update(stored, password, actor="alice")
    assert upgraded is not None
    leaks.register_secret(upgraded)
    assert events.one("password.rehashed")["actor"] == "alice"

    with pytest.raises(PasswordPolicyError):
        new.hash("short")
    assert events.one("password.policy_rejected")["outcome"] == "failure"

    planted = "$argon2id$v=19$m=4194304,t=1000,p=255$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43
    with pytest.raises((InvalidHashError, PasswordMismatchError)):
        new.verify(planted, password, source="198.51.100.2")
    refused = events.one("password.hash_refused")
    assert refused["source"] == "198.51.100.2"

    legacy = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    leaks.register_secret(legacy)
    replacement = new.verify_and_update(legacy, password, actor="bob")
    assert replacement is not None
    leaks.register_secret(replacement)
    assert events.one("password.upgraded_legacy")["actor"] == "bob"


# -- tls -------------------------------------------------------------------------------------


def test_tls_events(events: Events, tmp_path: Path) -> None:
    """A new context emits tls.context_created; a bad certificate, certificate_violation."""
    import trustme

    from styku_crypto.tls import check_certificate, server_context

    ca = trustme.CA()
    leaf = ca.issue_cert("service.example")
    cert_path = tmp_path / "chain.pem"
    key_path = tmp_path / "key.pem"
    leaf.private_key_pem.write_to_path(str(key_path))
    cert_path.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaks.register_secret(leaf.private_key_pem.bytes())

    server_context(certfile=cert_path, keyfile=key_path)
    created = events.one("tls.context_created")
    assert created["side"] == "server"
    assert created["outcome"] == "success"

    check_certificate(cert_path, hostname="wrong.example", trust=ca.cert_pem.bytes())
    violations = events.named("tls.certificate_violation")
    assert violations
    assert all(v["reason"] and v["outcome"] == "failure" for v in violations)


def test_tls_policy_violation_event(events: Events) -> None:
    """Auditing a weak cipher string emits tls.policy_violation per active finding."""
    from styku_crypto.tls import check_cipher_string

    report = check_cipher_string("ALL:@SECLEVEL=0")
    violations = events.named("tls.policy_violation")
    assert violations
    assert len(violations) <= len(report.active)
    assert all(v["outcome"] == "failure" for v in violations)


# -- web -------------------------------------------------------------------------------------


async def _call(app: Any, scheme: str, host: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": scheme,
        "path": "/account",
        "raw_path": b"/account",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", host.encode())],
        "client": ("203.0.113.5", 40000),
        "server": (host, 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


def test_web_events(events: Events) -> None:
    """Plain HTTP is redirected (web.https_redirect) or rejected (web.https_reject)."""
    from styku_crypto.web import ASGIMiddleware, HTTPSEnforcer

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    redirect = ASGIMiddleware(inner, enforcer=HTTPSEnforcer(allowed_hosts=["app.example"]))
    assert asyncio.run(_call(redirect, "http", "app.example")) in (301, 308)
    red = events.one("web.https_redirect")
    assert red["source"] == "203.0.113.5"
    reject = ASGIMiddleware(
        inner, enforcer=HTTPSEnforcer(allowed_hosts=["app.example"], mode="reject")
    )
    assert asyncio.run(_call(reject, "http", "app.example")) == 403
    assert events.one("web.https_reject")["reason"] == "plain_http"
    assert asyncio.run(_call(reject, "http", "evil.example")) == 400
    assert events.one("web.https_reject")["reason"] == "host_not_allowed"


def test_no_unknown_event_names_so_far() -> None:
    """Nothing emitted so far in this session used a name outside the vocabulary."""
    assert unknown_events_seen() == frozenset()

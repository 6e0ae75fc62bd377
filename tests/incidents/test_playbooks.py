"""Playbooks as TOML data, checklists, and the library actions steps run (issue 17)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from styku_crypto.envelope import Envelope
from styku_crypto.exceptions import DecryptionError, InvalidInputError, KeyDestroyedError
from styku_crypto.incidents import (
    ACTION_NAMES,
    BUILTIN_PLAYBOOKS,
    ActionContext,
    IncidentLog,
    load_playbooks,
)
from styku_crypto.keys import KeyStore
from styku_crypto.passwords import PasswordHasher, PepperSet
from styku_crypto.passwords.profiles import CHEAPEST

CTX = {"table": "t"}


def test_builtins_ship_with_the_package() -> None:
    """The six built-ins load with ordered steps and an owner; every action is used."""
    books = load_playbooks()
    assert sorted(books) == sorted(BUILTIN_PLAYBOOKS)
    assert len(BUILTIN_PLAYBOOKS) == 6
    for book in books.values():
        assert book.steps
        assert book.owner
        assert book.source == "builtin"
    used = {s.action for b in books.values() for s in b.steps if s.action}
    assert used == set(ACTION_NAMES)


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


_OWN = """
name = "{name}"
title = "Our own"
owner = "ciso"
severity = "low"

[[steps]]
title = "Call the CISO"

[[steps]]
title = "Audit the edge"
owner = "netops"
action = "audit"
"""


def test_own_directory_adds_and_overrides(tmp_path: Path) -> None:
    """--playbooks DIR adds an organisation's playbooks and may replace a built-in one."""
    _write(tmp_path / "pb", "vendor", _OWN.format(name="vendor-breach"))
    _write(tmp_path / "pb", "kc", _OWN.format(name="key-compromise"))
    books = load_playbooks([tmp_path / "pb"])
    assert books["vendor-breach"].steps[0].owner == "ciso"  # the playbook owner by default
    assert books["vendor-breach"].steps[1].action == "audit"
    assert books["key-compromise"].source.endswith("kc.toml")
    assert len(books) == 7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x"\ntitle = "t"\nowner = "o"\nseverity = "low"\n', "at least one"),
        (_OWN.format(name="x") + 'colour = "red"\n', "unknown keys"),
        (_OWN.format(name="x").replace('"audit"', '"reboot"'), "action must be one of"),
        (_OWN.format(name="X Y"), "name must be"),
        (_OWN.format(name="x").replace('"low"', '"urgent"'), "severity must be one of"),
        ("name = [", "not valid TOML"),
        (_OWN.format(name="x") + '[[steps]]\ntitle = ""\n', "non-empty"),
    ],
)
def test_bad_playbooks_are_refused_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    """Malformed playbooks are refused with the file named and what is wrong."""
    path = _write(tmp_path / "pb", "bad", text)
    with pytest.raises(InvalidInputError, match=message) as info:
        load_playbooks([tmp_path / "pb"])
    assert str(path) in str(info.value)


def test_duplicate_names_and_missing_directories_are_refused(tmp_path: Path) -> None:
    """Two files with one name, or a directory that does not exist, are refused."""
    _write(tmp_path / "a", "one", _OWN.format(name="dup"))
    _write(tmp_path / "b", "two", _OWN.format(name="dup"))
    with pytest.raises(InvalidInputError, match="defined twice"):
        load_playbooks([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_playbooks([tmp_path / "typo"])


def test_open_with_type_copies_the_checklist(log: IncidentLog, tmp_path: Path) -> None:
    """The steps are copied into the log: editing the playbook afterwards changes nothing."""
    _write(tmp_path / "pb", "own", _OWN.format(name="own"))
    inc = log.open_incident(
        type="own", tenants=["acme"], playbooks=load_playbooks([tmp_path / "pb"])
    )
    assert inc.title == "Our own"
    assert inc.owner == "ciso"
    assert [s.title for s in inc.steps] == ["Call the CISO", "Audit the edge"]
    _write(tmp_path / "pb", "own", _OWN.format(name="own").replace("Call the CISO", "Ignore"))
    assert log.get(inc.id).steps[0].title == "Call the CISO"
    assert log.entries()[0]["data"]["steps"][1] == {
        "title": "Audit the edge", "owner": "netops", "action": "audit",
    }  # fmt: skip


def test_unknown_type_names_the_valid_ones(log: IncidentLog) -> None:
    """An unknown type is refused naming every playbook."""
    with pytest.raises(InvalidInputError, match="type must be one of: backup-or-dr-failure, "):
        log.open_incident(type="alien-invasion")


def test_step_ticks_once_and_checks_the_number(log: IncidentLog) -> None:
    """A step is ticked with its note and actor; twice, 0, too big or no checklist is refused."""
    inc = log.open_incident(type="lost-device", tenants=["acme"])
    ticked = log.step(inc.id, 1, note="laptop serial 42", actor="it")
    assert ticked.steps[0].done
    assert ticked.steps[0].note == "laptop serial 42"
    assert ticked.steps[0].done_by == "it"
    with pytest.raises(InvalidInputError, match="already done"):
        log.step(inc.id, 1)
    for bad in (0, len(inc.steps) + 1):
        with pytest.raises(InvalidInputError, match=f"step must be one of: 1..{len(inc.steps)}"):
            log.step(inc.id, bad)
    plain = log.open_incident("t", severity="low", description="d")
    with pytest.raises(InvalidInputError, match="no playbook steps"):
        log.step(plain.id, 1)


def _step_of(log: IncidentLog, inc: str, action: str) -> int:
    return next(s.number for s in log.get(inc).steps if s.action == action)


def test_rotate_and_rewrap_with_real_tokens(log: IncidentLog, store: KeyStore) -> None:
    """The action rotates the tenant and rewraps its tokens in place; the result is in the chain."""
    store.create_tenant("acme")
    env = Envelope(store)
    tokens = {i: env.encrypt(b"row %d" % i, tenant="acme", context=CTX) for i in range(6)}
    inc = log.open_incident(type="key-compromise", tenants=["acme"])
    number = _step_of(log, inc.id, "rotate-and-rewrap")
    state, result = log.run_step(inc.id, number, context=ActionContext(store=store, tokens=tokens),
                                 argument="acme", actor="bob")  # fmt: skip
    assert result.outcome == "success"
    assert result.counts == {"rotated": 2, "rewrapped": 6, "unchanged": 0}
    for i, token in tokens.items():
        assert env.decrypt(token, tenant="acme", context=CTX) == b"row %d" % i
        assert not env.needs_rewrap(token, tenant="acme")
    step = state.steps[number - 1]
    assert step.done
    assert step.runs[0].actor == "bob"
    assert [e["key_version"] for e in step.runs[0].events if e["event"] == "key.rotated"] == [2, 2]
    assert log.verify().entries == 2


def test_rotate_without_tokens_is_partial_and_leaves_the_step_open(
    log: IncidentLog, store: KeyStore
) -> None:
    """Without a token source the keys rotate, the result says so, and the step stays open."""
    store.create_tenant("acme")
    inc = log.open_incident(type="data-exposure", tenants=["acme"])
    number = _step_of(log, inc.id, "rotate-and-rewrap")
    state, result = log.run_step(
        inc.id, number, context=ActionContext(store=store), argument="acme"
    )
    assert result.outcome == "partial"
    assert "not rewrapped" in result.summary
    assert not state.steps[number - 1].done


def test_a_failing_action_is_recorded_then_raised(log: IncidentLog, store: KeyStore) -> None:
    """Another tenant's token stops the rewrap: the failure (type only) is recorded, raised."""
    store.create_tenant("acme")
    store.create_tenant("globex")
    env = Envelope(store)
    tokens = {"x": env.encrypt(b"globex data", tenant="globex", context=CTX)}
    inc = log.open_incident(type="key-compromise", tenants=["acme"])
    number = _step_of(log, inc.id, "rotate-and-rewrap")
    with pytest.raises(DecryptionError):
        log.run_step(inc.id, number, context=ActionContext(store=store, tokens=tokens),
                     argument="acme")  # fmt: skip
    (run,) = log.get(inc.id).steps[number - 1].runs
    assert run.outcome == "failure"
    assert run.summary == "raised DecryptionError"
    assert not log.get(inc.id).steps[number - 1].done


def test_action_arguments_are_checked_before_running(log: IncidentLog, store: KeyStore) -> None:
    """A tenant not in the incident, a missing argument or a step without action runs nothing."""
    store.create_tenant("acme")
    store.create_tenant("globex")
    inc = log.open_incident(type="key-compromise", tenants=["acme"])
    number = _step_of(log, inc.id, "rotate-and-rewrap")
    ctx = ActionContext(store=store)
    with pytest.raises(InvalidInputError, match="tenants: acme"):
        log.run_step(inc.id, number, context=ctx, argument="globex")
    with pytest.raises(InvalidInputError, match="has no library action"):
        log.run_step(inc.id, 1, context=ctx, argument="acme")
    assert store.describe("globex").keys[0].version == 1
    assert log.verify().entries == 1


def test_shred_action_destroys_the_tenant(log: IncidentLog, store: KeyStore) -> None:
    """The shred step crypto-shreds the tenant for real."""
    store.create_tenant("acme")
    token = Envelope(store).encrypt(b"x", tenant="acme", context=CTX)
    inc = log.open_incident(type="lost-device", tenants=["acme"])
    _, result = log.run_step(inc.id, _step_of(log, inc.id, "shred"),
                             context=ActionContext(store=store), argument="acme")  # fmt: skip
    assert result.outcome == "success"
    with pytest.raises(KeyDestroyedError):
        Envelope(store).decrypt(token, tenant="acme", context=CTX)


def _hasher(peppers: PepperSet) -> PasswordHasher:
    return PasswordHasher(profile=CHEAPEST, insecure_test_only=True, pepper=peppers)


def test_revoke_pepper_moves_new_hashes_to_a_new_pepper(log: IncidentLog, store: KeyStore) -> None:
    """revoke-pepper: new hashes use a new pepper id; old hashes still verify (and need rehash)."""
    hasher = _hasher(PepperSet.from_key_store(store))
    old = hasher.hash("correct horse battery staple")
    inc = log.open_incident(type="credential-stuffing")
    _, result = log.run_step(inc.id, _step_of(log, inc.id, "revoke-pepper"),
                             context=ActionContext(store=store))  # fmt: skip
    assert result.outcome == "success"
    after = _hasher(PepperSet.from_key_store(store))
    assert PepperSet.from_key_store(store).current.id == "ks2"
    after.verify(old, "correct horse battery staple")
    assert after.needs_rehash(old)


def test_audit_action_records_an_unreachable_target(log: IncidentLog, store: KeyStore) -> None:
    """audit runs the real scanner; a closed loopback port is a failed (incomplete) scan."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inc = log.open_incident(type="tls-misconfiguration")
    state, result = log.run_step(inc.id, 1, context=ActionContext(store=store, audit_timeout=1.0),
                                 argument=f"127.0.0.1:{port}")  # fmt: skip
    assert result.outcome == "failure"
    assert result.counts["unreachable"] == 1
    assert "scan incomplete" in result.summary
    assert not state.steps[0].done


def test_steps_and_runs_emit_events(
    log: IncidentLog, store: KeyStore, caplog: pytest.LogCaptureFixture
) -> None:
    """incident.step_done names the step; incident.action_run names the action (reason) and
    carries the outcome; neither carries notes, summaries or tokens."""
    from styku_crypto.events import EVENT_ATTRIBUTE

    store.create_tenant("acme")
    inc = log.open_incident(type="key-compromise", tenants=["acme"])
    with caplog.at_level("INFO", logger="styku_crypto.incidents"):
        log.step(inc.id, 1, note="private note")
        log.run_step(inc.id, 2, context=ActionContext(store=store), argument="acme")
    events = {
        f["event"]: f
        for r in caplog.records
        if isinstance(f := getattr(r, EVENT_ATTRIBUTE, None), dict)
    }
    assert events["incident.step_done"]["step"] == 1
    assert events["incident.action_run"]["reason"] == "rotate-and-rewrap"
    assert events["incident.action_run"]["outcome"] == "unknown"  # partial: no token source
    assert "private note" not in caplog.text

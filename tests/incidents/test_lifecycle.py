"""Lifecycle states, transitions, activity times and notification deadlines (issue 17)."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.incidents import (
    CLOCK_SKEW,
    TRANSITIONS,
    IncidentLog,
    NotificationPolicy,
    Status,
)
from styku_crypto.incidents._model import Folded
from styku_crypto.keys import KeyStore
from tests.incidents.conftest import FixedClock, RawMacKey


def _open(log: IncidentLog, **kwargs: object) -> str:
    return log.open_incident(
        "t", severity="low", description="d", tenants=["acme", "globex"], **kwargs
    ).id


def test_opens_suspected_and_walks_the_lifecycle(log: IncidentLog, clock: FixedClock) -> None:
    """suspected to closed through every state, each move a dated entry with its actor."""
    inc = _open(log)
    for status in ("confirmed", "contained", "resolved"):
        log.update(inc, status=status, actor="alice")
    closed = log.close(inc, disposition="done", actor="bob")
    assert [h.status.value for h in closed.history] == [
        "suspected", "confirmed", "contained", "resolved", "closed",
    ]  # fmt: skip
    assert [h.actor for h in closed.history][1:] == ["alice", "alice", "alice", "bob"]
    assert closed.confirmed_at == closed.history[1].at
    assert closed.resolved_at == closed.history[3].at
    assert not closed.is_open
    assert log.verify().entries == 5


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ((), "contained"),
        (("confirmed",), "suspected"),
        (("confirmed", "resolved"), "contained"),
        (("false_positive",), "confirmed"),
    ],
)
def test_invalid_transitions_name_the_allowed_ones(
    log: IncidentLog, path: tuple[str, ...], refused: str
) -> None:
    """A move TRANSITIONS forbids is refused naming the allowed moves; nothing is written."""
    inc = _open(log)
    for status in path:
        log.update(inc, status=status)
    state = log.get(inc)
    before = log.verify().entries
    with pytest.raises(InvalidInputError) as info:
        log.update(inc, status=refused)
    allowed = ", ".join(s.value for s in TRANSITIONS[state.status])
    assert f"it can move to {allowed}" in str(info.value)
    assert log.verify().entries == before


def test_unknown_status_names_the_valid_ones(log: IncidentLog) -> None:
    """An unknown status is refused naming every state."""
    inc = _open(log)
    with pytest.raises(InvalidInputError, match="suspected, confirmed, contained, resolved"):
        log.update(inc, status="fixed")


def test_closed_is_final(log: IncidentLog) -> None:
    """After close, no status change, step or update is accepted."""
    inc = _open(log)
    log.close(inc, disposition="dup")
    with pytest.raises(InvalidInputError, match="already closed"):
        log.update(inc, status="confirmed")


def test_at_records_an_activity_after_the_fact(log: IncidentLog, clock: FixedClock) -> None:
    """--at dates the move: confirmed_at is the given time, not the recording time."""
    inc = log.open_incident("t", severity="low", description="d", tenants=["acme"],
                            detected_at=clock.now - timedelta(days=2))  # fmt: skip
    when = clock.now - timedelta(days=1)
    state = log.update(inc.id, status="confirmed", at=when)
    assert state.confirmed_at == when
    assert state.history[-1].recorded_at > when
    (notice,) = state.notices
    assert notice.deadline == when + timedelta(hours=72)


@pytest.mark.parametrize("offset", [timedelta(hours=-1), CLOCK_SKEW + timedelta(seconds=30)])
def test_at_before_detection_or_in_the_future_is_refused(
    log: IncidentLog, clock: FixedClock, offset: timedelta
) -> None:
    """A status time before detection, or beyond the clock skew in the future, is refused."""
    inc = _open(log)
    detected = log.get(inc).detected_at
    when = detected + offset if offset < timedelta(0) else clock.now + offset
    with pytest.raises(InvalidInputError, match=r"before the incident was detected|in the future"):
        log.update(inc, status="confirmed", at=when)


def test_at_within_the_skew_is_accepted(log: IncidentLog, clock: FixedClock) -> None:
    """A time a little ahead (another host's clock) is accepted."""
    inc = _open(log)
    assert log.update(inc, status="confirmed", at=clock.now + timedelta(minutes=2)).confirmed_at


def test_at_without_status_is_refused(log: IncidentLog) -> None:
    """--at only dates a status change."""
    inc = _open(log)
    with pytest.raises(InvalidInputError, match="give --status"):
        log.update(inc, action="x", at=log.get(inc).detected_at)


def test_confirmation_starts_per_tenant_clocks(store: KeyStore, clock: FixedClock) -> None:
    """Deadlines are the policy's hours after confirmation, per tenant; a tenant added later
    gets its own clock from when it was added; a policy change afterwards moves nothing."""
    policy = NotificationPolicy(default_hours=72, tenants={"acme": 24})
    log = IncidentLog.open(store=store, clock=clock, policy=policy)
    inc = _open(log)
    assert all(n.deadline is None for n in log.get(inc).notices)
    confirmed = log.update(inc, status="confirmed").confirmed_at
    assert confirmed is not None
    added = log.update(inc, tenants=["initech"])
    deadlines = {n.tenant: (n.hours, n.deadline) for n in added.notices}
    assert deadlines["acme"] == (24, confirmed + timedelta(hours=24))
    assert deadlines["globex"] == (72, confirmed + timedelta(hours=72))
    assert deadlines["initech"][0] == 72
    assert deadlines["initech"][1] == added.updated_at + timedelta(hours=72)
    relaxed = IncidentLog.open(
        store=store, clock=clock, policy=NotificationPolicy(default_hours=999)
    )
    assert {n.tenant: n.deadline for n in relaxed.get(inc).notices} == {
        t: d for t, (_, d) in deadlines.items()
    }


def test_open_confirmed_starts_the_clock_at_detection(log: IncidentLog, clock: FixedClock) -> None:
    """An incident opened as confirmed counts from its detection time."""
    detected = clock.now - timedelta(hours=5)
    inc = log.open_incident("t", severity="high", description="d", tenants=["acme"],
                            status="confirmed", detected_at=detected)  # fmt: skip
    assert inc.confirmed_at == detected
    assert inc.notices[0].deadline == detected + timedelta(hours=72)


def test_open_refuses_other_states_and_future_detection(
    log: IncidentLog, clock: FixedClock
) -> None:
    """An incident opens suspected or confirmed only; detection cannot be in the future."""
    with pytest.raises(InvalidInputError, match="suspected, confirmed"):
        log.open_incident("t", severity="low", description="d", status="resolved")
    with pytest.raises(InvalidInputError, match="in the future"):
        log.open_incident("t", severity="low", description="d",
                          detected_at=clock.now + timedelta(hours=1))  # fmt: skip


def test_entries_without_status_fold_as_suspected(make_log: object, tmp_path: object) -> None:
    """Logs written before lifecycles (no status in the opening entry) still read: suspected."""
    log = make_log()  # type: ignore[operator]
    entry = log._append("open", None, {"title": "old", "severity": "low", "description": "d",
                                        "tenants": []}, None)  # fmt: skip
    assert log.get(entry["id"]).status is Status.SUSPECTED
    assert log.close(entry["id"], disposition="old style").status is Status.CLOSED


@settings(max_examples=40, deadline=None)
@given(moves=st.lists(st.sampled_from(list(Status)), max_size=6))
def test_any_move_sequence_matches_the_transition_table(
    tmp_path_factory: pytest.TempPathFactory, moves: list[Status]
) -> None:
    """Property: the log accepts exactly the moves TRANSITIONS allows and folds to them."""
    log = IncidentLog(
        tmp_path_factory.mktemp("p") / "l.jsonl", mac_key=RawMacKey(), clock=FixedClock()
    )
    inc = _open(log)
    model = Status.SUSPECTED
    for move in moves:
        allowed = move in TRANSITIONS[model]
        try:
            if move is Status.CLOSED:
                log.close(inc, disposition="d")
            else:
                log.update(inc, status=move)
        except InvalidInputError:
            assert not allowed or (move is Status.CLOSED and model is Status.CLOSED)
            continue
        assert allowed
        model = move
    assert log.get(inc).status is model


_OPS = st.sampled_from(["status", "tenant", "step", "notify", "action", "open", "close"])


@settings(max_examples=30, deadline=None)
@given(ops=st.lists(_OPS, min_size=1, max_size=14), cuts=st.lists(st.integers(0, 20), max_size=4))
def test_incremental_fold_equals_a_fold_from_scratch(
    tmp_path_factory: pytest.TempPathFactory, ops: list[str], cuts: list[int]
) -> None:
    """Hot path: folding the log in chunks (as appends do) gives the same incidents as folding it
    at once, and extending never changes an earlier fold (they are shared between threads)."""
    log = IncidentLog(
        tmp_path_factory.mktemp("f") / "l.jsonl", mac_key=RawMacKey(), clock=FixedClock()
    )
    inc = log.open_incident(type="key-compromise", tenants=["acme"]).id
    for op in ops:
        with contextlib.suppress(InvalidInputError):
            if op == "status":
                log.update(inc, status="confirmed")
            elif op == "tenant":
                log.update(inc, tenants=["globex"])
            elif op == "step":
                log.step(inc, 1, note="n")
            elif op == "notify":
                log.notify(inc, tenant="acme", channel="email")
            elif op == "action":
                log.update(inc, action="a")
            elif op == "open":
                inc = log.open_incident(type="lost-device", tenants=["acme"]).id
            else:
                log.close(inc, disposition="d")
    entries = log.entries()
    whole = dict(Folded().extended(entries))
    folded, snapshots = Folded(), []
    for cut in sorted({min(c, len(entries)) for c in cuts} | {len(entries)}):
        folded = folded.extended(entries[folded.count : cut])
        snapshots.append((folded, dict(folded)))
    assert dict(folded) == whole
    for earlier, seen in snapshots:
        assert dict(earlier) == seen
    assert {i.id: i for i in log.incidents()} == whole  # the log's own (cached) fold

"""Concurrent writers (threads and processes) and crashes mid-append."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from styku_crypto.incidents import IncidentLog
from styku_crypto.keys import KeyStore, LocalRootKey

_WRITER = textwrap.dedent(
    """
    import sys
    from styku_crypto.incidents import IncidentLog
    from styku_crypto.keys import KeyStore, LocalRootKey

    store_path, log_path, worker, count, sqlite = sys.argv[1:6]
    store = KeyStore.open(store_path, root=LocalRootKey(store_path + ".rootkey"))
    log = IncidentLog.open(None if sqlite == "1" else log_path, store=store, sqlite=sqlite == "1")
    print("ready", flush=True)
    n = int(count)
    i = 0
    while n < 0 or i < n:
        log.open_incident(f"w{worker}-{i}", severity="low", description="concurrent")
        i += 1
    store.close()
    """
)


def _spawn(
    store: Path, log: Path, worker: int, count: int, sqlite: bool = False
) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(Path.cwd()))
    env.pop("STYKU_CRYPTO_ROOT_KEY_FILE", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            _WRITER,
            str(store),
            str(log),
            str(worker),
            str(count),
            "1" if sqlite else "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def _prepare(tmp_path: Path) -> Path:
    store_path = tmp_path / "keys.db"
    with KeyStore.open(store_path, root=LocalRootKey(tmp_path / "keys.db.rootkey")) as store:
        IncidentLog.open(store=store).open_incident("seed", severity="low", description="seed")
    return store_path


@pytest.mark.parametrize("sqlite", [False, True], ids=["jsonl", "sqlite"])
def test_processes_never_lose_or_interleave(tmp_path: Path, sqlite: bool) -> None:
    """4 processes x 50 appends: every entry present once, the chain verifies, no torn lines."""
    store_path = _prepare(tmp_path)
    log_path = tmp_path / "incidents.jsonl"
    procs = [_spawn(store_path, log_path, w, 50, sqlite) for w in range(4)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    with KeyStore.open(store_path, root=LocalRootKey(tmp_path / "keys.db.rootkey")) as store:
        log = IncidentLog.open(store=store, sqlite=sqlite)
        report = log.verify()
        titles = Counter(i.title for i in log.incidents())
    assert report.entries == (200 if sqlite else 201)
    assert report.incomplete_tail_bytes == 0
    for w in range(4):
        for i in range(50):
            assert titles[f"w{w}-{i}"] == 1
    if not sqlite:
        assert all(line.startswith("{") for line in log_path.read_text().splitlines())


def test_threads_never_lose_entries(store: KeyStore) -> None:
    """8 threads x 15 appends through separate IncidentLog objects: all 120 entries, valid chain."""
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        own = IncidentLog.open(store=store)  # its own object: only flock serialises them
        try:
            for i in range(15):
                own.open_incident(f"t{worker}-{i}", severity="medium", description="x")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    log = IncidentLog.open(store=store)
    report = log.verify()
    assert report.entries == 120
    assert len({i.title for i in log.incidents()}) == 120


def test_partial_line_from_crash_is_reported_then_repaired(
    log: IncidentLog, tmp_path: Path
) -> None:
    """A torn last line verifies up to the last complete entry, is reported, then dropped."""
    for i in range(3):
        log.open_incident(f"i{i}", severity="low", description="d")
    path = tmp_path / "incidents.jsonl"
    complete = path.stat().st_size
    with open(path, "ab") as fh:
        fh.write(b'{"at":"2026-01-01T00:00:00.000000Z","by":null,"data":{"tit')
    report = log.verify()
    assert report.entries == 3
    assert report.incomplete_tail_bytes > 0
    assert f"byte {complete}" in report.stopped_at
    assert "incomplete" in report.stopped_at
    inc = log.open_incident("after crash", severity="high", description="d")
    assert inc.id == "INC-000004"
    report = log.verify()
    assert report.entries == 4
    assert report.incomplete_tail_bytes == 0


def test_killed_writer_leaves_a_verifiable_log(tmp_path: Path) -> None:
    """SIGKILL of a process appending in a loop leaves a log that verifies (torn tail at most)."""
    store_path = _prepare(tmp_path)
    log_path = tmp_path / "incidents.jsonl"
    proc = _spawn(store_path, log_path, 0, -1)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 20
    while log_path.stat().st_size < 20_000 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with KeyStore.open(store_path, root=LocalRootKey(tmp_path / "keys.db.rootkey")) as store:
        log = IncidentLog.open(store=store)
        report = log.verify()
        assert report.entries > 10
        log.open_incident("after kill", severity="low", description="d")
        assert log.verify().entries == report.entries + 1


_RUNBOOK_WRITER = textwrap.dedent(
    """
    import sys
    from styku_crypto.incidents import IncidentBridge, IncidentLog
    from styku_crypto.keys import KeyStore, LocalRootKey

    store_path, worker, count = sys.argv[1:4]
    store = KeyStore.open(store_path, root=LocalRootKey(store_path + ".rootkey"))
    log = IncidentLog.open(store=store)
    bridge = IncidentBridge(log)
    for i in range(int(count)):
        assert bridge.record(rule="decrypt_failures", tenant="acme") is not None
        log.notify("INC-000001", tenant="acme", channel="email", reference=f"w{worker}-{i}")
    store.close()
    """
)


def test_processes_recording_alerts_and_notices_lose_nothing(tmp_path: Path) -> None:
    """3 processes x 10 (alert + notification): one bridged incident, 29 alert updates, all 30
    notices, an intact chain: the dedup decision and every append happen under the lock."""
    store_path = tmp_path / "keys.db"
    with KeyStore.open(store_path, root=LocalRootKey(tmp_path / "keys.db.rootkey")) as store:
        IncidentLog.open(store=store).open_incident(
            "seed", severity="low", description="d", tenants=["acme"]
        )
    env = dict(os.environ, PYTHONPATH=str(Path.cwd()))
    env.pop("STYKU_CRYPTO_ROOT_KEY_FILE", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RUNBOOK_WRITER, str(store_path), str(w), "10"], env=env
        )
        for w in range(3)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    with KeyStore.open(store_path, root=LocalRootKey(tmp_path / "keys.db.rootkey")) as store:
        log = IncidentLog.open(store=store)
        assert log.verify().entries == 1 + 30 + 30
        seed, bridged = log.incidents()
        assert len(bridged.actions) == 29
        refs = [
            e["data"]["notification"]["reference"]
            for e in log.entries()
            if "notification" in e["data"]
        ]
        assert sorted(refs) == sorted(f"w{w}-{i}" for w in range(3) for i in range(10))
        assert seed.notices[0].notified_at is not None

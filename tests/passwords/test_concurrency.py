"""Async twins, the dedicated worker pool, the concurrency bound and memory bounds."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

from styku_crypto.exceptions import PasswordMismatchError
from styku_crypto.passwords import CHEAPEST, PasswordHasher
from styku_crypto.passwords import _hasher as hasher_module
from tests.passwords.conftest import new_password


@pytest.fixture
def peak_concurrency(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Wrap the Argon2 core to record the largest number of simultaneous computations."""
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}
    real = hasher_module.argon2_raw
    result = [0]

    def counting(data: bytes, **kw: object) -> bytes:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            time.sleep(0.01)  # widen the window so overlaps are observable
            return real(data, **kw)  # type: ignore[arg-type]
        finally:
            with lock:
                state["now"] -= 1
                result[0] = state["peak"]

    monkeypatch.setattr(hasher_module, "argon2_raw", counting)
    return result


class _ThreadNames(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.names: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.names.add(record.threadName or "")


def test_async_twins_run_on_the_dedicated_pool() -> None:
    """ahash/averify/averify_and_update/adummy_verify work and run on 'styku-passwords' threads."""
    handler = _ThreadNames()
    logger = logging.getLogger("styku_crypto.passwords")
    logger.addHandler(handler)
    pw = new_password()

    async def scenario(h: PasswordHasher) -> None:
        stored = await h.ahash(pw)
        assert await h.averify(stored, pw) is True
        assert await h.averify_and_update(stored, pw) is None
        with pytest.raises(PasswordMismatchError):
            await h.averify(stored, pw + "?")
        with pytest.raises(PasswordMismatchError):
            await h.adummy_verify(pw)

    try:
        with PasswordHasher(profile=CHEAPEST, insecure_test_only=True, max_concurrency=2) as h:
            asyncio.run(scenario(h))
    finally:
        logger.removeHandler(handler)
    assert handler.names
    assert all(n.startswith("styku-passwords") for n in handler.names)


def test_concurrency_bound_holds_for_async_and_sync(peak_concurrency: list[int]) -> None:
    """16 async verifies plus 8 sync threads never run more than max_concurrency Argon2 at once."""
    pw = new_password()
    with PasswordHasher(profile=CHEAPEST, insecure_test_only=True, max_concurrency=2) as h:
        stored = h.hash(pw)

        async def burst() -> None:
            await asyncio.gather(*(h.averify(stored, pw) for _ in range(16)))

        threads = [threading.Thread(target=h.verify, args=(stored, pw)) for _ in range(8)]
        for t in threads:
            t.start()
        asyncio.run(burst())
        for t in threads:
            t.join()
    assert peak_concurrency[0] == 2


def test_idle_buffers_are_unmapped_by_the_timer() -> None:
    """After a burst, pooled work buffers are unmapped once idle for buffer_idle_seconds."""
    pw = new_password()
    with PasswordHasher(
        profile=CHEAPEST, insecure_test_only=True, max_concurrency=2, buffer_idle_seconds=0.1
    ) as h:
        h.verify(h.hash(pw), pw)
        pool = h._pool
        assert pool is not None
        assert pool.resident_bytes > 0
        deadline = time.monotonic() + 5
        while pool.resident_bytes and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pool.resident_bytes == 0


_BURST = textwrap.dedent(
    """
    import asyncio, json, sys, threading
    import argon2
    from styku_crypto.passwords import PasswordHasher, RFC_9106_LOW_MEMORY

    def status():
        fields = {}
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0]) * 1024
        return fields

    mode = sys.argv[1]
    pw = "burst-password-" + "x" * 16
    stored = argon2.PasswordHasher().hash(pw)  # made outside our pool
    h = PasswordHasher(profile=RFC_9106_LOW_MEMORY, max_concurrency=2)
    h.verify(stored, pw)
    h.trim()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current RSS
    base = status()["VmRSS"]
    if mode == "threads":
        threads = [threading.Thread(target=h.verify, args=(stored, pw)) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        async def burst():
            await asyncio.gather(*(h.averify(stored, pw) for _ in range(32)))
        asyncio.run(burst())
    peak = status()["VmHWM"]
    h.trim()
    after = status()["VmRSS"]
    print(json.dumps({"base": base, "peak": peak, "after": after}))
    """
)


@pytest.mark.parametrize("mode", ["threads", "async"])
def test_burst_of_32_verifies_stays_within_memory_bound(mode: str) -> None:
    """32 verifies at m=64 MiB, bound 2: RSS grows < 2 x 64 + 32 MiB and returns after trim."""
    out = subprocess.run(
        [sys.executable, "-c", _BURST, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    mib = 1024 * 1024
    growth = data["peak"] - data["base"]
    assert growth < 2 * 64 * mib + 32 * mib, f"peak grew {growth / mib:.1f} MiB"
    assert growth > 64 * mib  # the buffers really were used (the measurement is live)
    assert data["after"] - data["base"] < 32 * mib, "memory did not return to baseline"


def test_workers_run_at_lower_cpu_priority() -> None:
    """Async workers run at nice +5 relative to the caller, so the event loop is scheduled first."""
    import os

    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    with PasswordHasher(profile=CHEAPEST, insecure_test_only=True, max_concurrency=1) as h:
        future = h._executor_or_new().submit(
            lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        )
        assert future.result(timeout=10) == min(19, base + 5)

"""Find Argon2id parameters that fit a time budget on this host (RFC 9106 section 4)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.passwords._argon2 import ARGON2ID, argon2_raw
from styku_crypto.passwords._buffers import WorkBufferPool
from styku_crypto.passwords.profiles import Argon2Profile, meets_owasp_floor

__all__ = ["Calibration", "calibrate"]

_FLOOR_MEMORY = 7168
_FLOOR_WORK = 7168 * 5
_MAX_TIME_COST = 10


@dataclass(frozen=True, slots=True)
class Calibration:
    """The result: the profile, its measured time per hash, and whether it fits the target."""

    profile: Argon2Profile
    seconds: float
    meets_target: bool


def _measure(pool: WorkBufferPool, memory: int, time_cost: int, lanes: int) -> float:
    salt = os.urandom(16)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        argon2_raw(
            b"calibration-password",
            salt=salt,
            memory_kib=memory,
            time_cost=time_cost,
            lanes=lanes,
            hash_len=32,
            variant=ARGON2ID,
            version=0x13,
            pool=pool,
        )
        best = min(best, time.perf_counter() - start)
    return best


def calibrate(*, target_seconds: float, max_memory_kib: int, parallelism: int = 1) -> Calibration:
    """Return the strongest profile within *target_seconds* per hash, never below OWASP's floor.

    Memory is preferred over passes (RFC 9106): start at *max_memory_kib* with
    one pass, halve memory until a hash fits, then add passes while they fit.
    If even the floor does not fit, the floor is returned with
    ``meets_target=False``.

    Raises:
        InvalidInputError: *max_memory_kib* below the floor's 7168 KiB.
    """
    if max_memory_kib < _FLOOR_MEMORY:
        raise InvalidInputError("--max-memory must be at least 7 MiB (OWASP's floor)")
    pool = WorkBufferPool(max_buffers=1, idle_seconds=0)
    try:
        memory = max_memory_kib
        elapsed = _measure(pool, memory, 1, parallelism)
        while elapsed > target_seconds and memory > _FLOOR_MEMORY:
            memory = max(_FLOOR_MEMORY, memory // 2)
            elapsed = _measure(pool, memory, 1, parallelism)
        time_cost = 1
        while time_cost < _MAX_TIME_COST:
            longer = _measure(pool, memory, time_cost + 1, parallelism)
            if longer > target_seconds:
                break
            time_cost, elapsed = time_cost + 1, longer
        meets = elapsed <= target_seconds
        while memory * time_cost < _FLOOR_WORK:
            time_cost += 1
            meets = False
        if not meets:
            elapsed = _measure(pool, memory, time_cost, parallelism)
            meets = elapsed <= target_seconds
        profile = Argon2Profile("CALIBRATED", memory, time_cost, parallelism)
        if not meets_owasp_floor(profile):  # pragma: no cover - guarded by construction
            raise InvalidInputError("calibration produced a profile below OWASP's floor")
        return Calibration(profile=profile, seconds=elapsed, meets_target=meets)
    finally:
        pool.close()

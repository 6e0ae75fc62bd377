"""Run the gatherers concurrently, each bounded by one overall deadline.

Every gatherer runs in its own daemon thread (the TLS audit additionally
scans its endpoints concurrently inside). The runner waits until all are done
or the deadline passes; a gatherer still running then is reported *not
gathered* ("timed out after N s") and abandoned: it holds only read-only
handles, and being a daemon thread it never keeps the process alive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from styku_crypto.report._config import ReportConfig
from styku_crypto.report._model import SourceResult
from styku_crypto.report._sources import SOURCES, _reason

__all__ = ["Progress", "gather"]

#: Called with ``(finished source names, all source names)`` each time one finishes.
Progress = Callable[[list[str], list[str]], None]


def gather(
    config: ReportConfig, *, timeout: float, progress: Progress | None = None
) -> dict[str, SourceResult]:
    """Run every source the configuration asks for; returns name -> result.

    Never raises for a source's failure: its result carries the reason instead.
    """
    wanted = [name for name, (_, enabled) in SOURCES.items() if enabled(config)]
    results: dict[str, SourceResult] = {}
    lock = threading.Lock()
    done = threading.Condition(lock)
    deadline = time.monotonic() + timeout

    def run(name: str, fn: Callable[[ReportConfig, float], Any]) -> None:
        started = datetime.now(UTC)
        t0 = time.perf_counter()
        try:
            data, error = fn(config, timeout), None
        except BaseException as exc:
            data, error = None, _reason(exc)
        result = SourceResult(name, started, time.perf_counter() - t0, data, error)
        with done:
            if name not in results:  # not already written off as timed out
                results[name] = result
                if progress is not None:
                    progress(sorted(results), wanted)
            done.notify_all()

    starts: dict[str, datetime] = {}
    for name in wanted:
        starts[name] = datetime.now(UTC)
        thread = threading.Thread(
            target=run, args=(name, SOURCES[name][0]), name=f"report-{name}", daemon=True
        )
        thread.start()
    with done:
        while len(results) < len(wanted):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            done.wait(left)
        for name in wanted:
            if name not in results:
                results[name] = SourceResult(
                    name, starts[name], timeout, None, f"timed out after {timeout:g} s"
                )
    return {name: results[name] for name in wanted}

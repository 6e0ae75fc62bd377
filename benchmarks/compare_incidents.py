"""Incident log costs per entry, measured in one run (issue 17).

1. Append: one ``update`` entry (verify the new tail, MAC, ``O_APPEND`` write,
   ``fsync``, head record in the key store) on a log of N entries, and the same
   for a notification and a step entry.
2. Full verification from a cold log object (every line parsed and MAC-checked),
   per entry, with the raw HMAC-SHA256 of one canonical entry as the floor.
3. Folding the verified entries into incidents (what ``list``/``overdue`` add).

Uses a real SQLite key store with a local root key in a temporary directory.
Prints a table and writes ``benchmarks/results/incidents.txt``.

Run: ``python benchmarks/compare_incidents.py [ENTRIES]``
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from styku_crypto.incidents import IncidentLog  # noqa: E402
from styku_crypto.keys import KeyStore, LocalRootKey  # noqa: E402

try:
    from styku_crypto.incidents._model import fold
except ImportError:  # the release before the split (for before/after runs)
    from styku_crypto.incidents._log import _fold as fold  # type: ignore[attr-defined,no-redef]


def _per(seconds: float, n: int) -> str:
    return f"{seconds / n * 1e6:9.1f} us"


def _best(run: Callable[[], float], repeats: int = 5) -> float:
    """The fastest of *repeats* runs: the least disturbed by other load on the machine."""
    return min(run() for _ in range(repeats))


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> int:
    entries = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "keys.db"
        with KeyStore.open(path, root=LocalRootKey(Path(tmp) / "root")) as store:
            log = IncidentLog.open(store=store)
            inc = log.open_incident(
                "bench", severity="low", description="d", tenants=["acme", "globex"]
            )
            has_lifecycle = hasattr(log, "notify")
            for i in range(entries):
                log.update(inc.id, action=f"action {i}")
            n = 20
            took = sorted(_timed(lambda: log.update(inc.id, action="x")) for _ in range(n))
            rows.append(
                (f"append update at {entries} entries (median of {n})", _per(took[n // 2], 1))
            )
            if has_lifecycle:
                log.transition(inc.id, "confirmed")
                took = sorted(
                    _timed(lambda: log.notify(inc.id, tenant="acme", channel="email"))
                    for _ in range(n)
                )
                rows.append((f"append notification (median of {n})", _per(took[n // 2], 1)))
            total = len(log.entries())
            cold = _best(lambda: _timed(IncidentLog.open(store=store).verify))
            rows.append((f"verify cold ({total} entries), per entry", _per(cold, total)))
            listing = _best(lambda: _timed(IncidentLog.open(store=store).incidents))
            rows.append(("list cold (verify + fold), per entry", _per(listing, total)))
            raw = log.entries()
            rows.append(
                (
                    "fold into incidents, per entry",
                    _per(_best(lambda: _timed(lambda: fold(raw))), total),
                )
            )
            key = os.urandom(32)
            line = (Path(tmp) / "incidents.jsonl").read_bytes().split(b"\n")[5]

            def macs() -> None:
                for _ in range(total):
                    hmac.new(key, line, hashlib.sha256).digest()

            rows.append(
                ("raw HMAC-SHA256 of one entry (floor)", _per(_best(lambda: _timed(macs)), total))
            )
    width = max(len(r[0]) for r in rows)
    text = "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows) + "\n"
    print(text, end="")
    out = ROOT / "benchmarks" / "results" / "incidents.txt"
    out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from styku_crypto.incidents import IncidentLog  # noqa: E402
from styku_crypto.incidents._model import fold  # noqa: E402
from styku_crypto.keys import KeyStore, LocalRootKey  # noqa: E402


def _per(seconds: float, n: int) -> str:
    return f"{seconds / n * 1e6:9.1f} us"


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
            start = time.perf_counter()
            for i in range(entries):
                log.update(inc.id, action=f"action {i}")
            rows.append((f"append update (log grows to {entries})", _per(time.perf_counter() - start, entries)))
            if has_lifecycle:
                log.transition(inc.id, "confirmed")
                n = 200
                start = time.perf_counter()
                for i in range(n):
                    log.notify(inc.id, tenant="acme", channel="email", reference=f"t{i}")
                rows.append(("append notification", _per(time.perf_counter() - start, n)))
            total = len(log.entries())
            cold = IncidentLog.open(store=store)
            start = time.perf_counter()
            cold.verify()
            rows.append((f"verify cold ({total} entries), per entry", _per(time.perf_counter() - start, total)))
            raw = log.entries()
            start = time.perf_counter()
            fold(raw)
            rows.append(("fold into incidents, per entry", _per(time.perf_counter() - start, total)))
            key = os.urandom(32)
            line = (Path(tmp) / "incidents.jsonl").read_bytes().split(b"\n")[5]
            start = time.perf_counter()
            for _ in range(total):
                hmac.new(key, line, hashlib.sha256).digest()
            rows.append(("raw HMAC-SHA256 of one entry (floor)", _per(time.perf_counter() - start, total)))
    width = max(len(r[0]) for r in rows)
    text = "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows) + "\n"
    print(text, end="")
    out = ROOT / "benchmarks" / "results" / "incidents.txt"
    out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Cost of one security event, per emit (issue 22).

Two sinks, as in the issue: a ``NullHandler`` (the cost of building the event:
name checks, field rules, value scan) and the ECS file handler a deployment
uses (``RedactionFilter`` + ``EcsFormatter`` + ``FileHandler``). The event is a
typical failure with five context fields and two attributes.

``pytest benchmarks/bench_events.py`` runs the pytest-benchmark cases.
``python benchmarks/bench_events.py [--against REF]`` measures this tree and
git *REF* (default ``main``, extracted with ``git archive``) **in one run**:
each variant runs in its own fresh process, the processes alternate over the
rounds, and the median per-emit time of each is printed with the ratio.
Goal: at most +10 % against the code before issue 22.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EVENT = {
    "capability": "envelope",
    "outcome": "failure",
    "level": logging.WARNING,
    "tenant": "acme",
    "key_id": "tk_00112233aabbccdd",
    "key_version": 3,
    "actor": "svc-billing",
    "source": "192.0.2.7",
    "reason": "tamper",
    "attributes": {"data_class": "customer", "suite": 1},
}


def _configure(sink: str, path: str) -> logging.Handler:
    from styku_crypto.events import EcsFormatter, RedactionFilter

    handler: logging.Handler
    if sink == "null":
        handler = logging.NullHandler()
    else:
        handler = logging.FileHandler(path)
        handler.addFilter(RedactionFilter())
        handler.setFormatter(EcsFormatter(static_fields={"service.name": "bench"}))
    logger = logging.getLogger("styku_crypto")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler


def _per_emit_us(sink: str, number: int, repeats: int) -> float:
    from styku_crypto.events import emit

    with tempfile.TemporaryDirectory() as tmp:
        handler = _configure(sink, os.path.join(tmp, "events.jsonl"))
        for _ in range(2000):  # warm-up
            emit("envelope.decrypt.failed", **EVENT)  # type: ignore[arg-type]
        best = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(number):
                emit("envelope.decrypt.failed", **EVENT)  # type: ignore[arg-type]
            best.append((time.perf_counter() - start) / number * 1e6)
        handler.close()
    return min(best)


# ------------------------------------------------------------------ pytest-benchmark


def test_emit_null_handler(benchmark) -> None:  # type: ignore[no-untyped-def]
    """emit() into a NullHandler: the cost of building and judging the event."""
    from styku_crypto.events import emit

    with tempfile.TemporaryDirectory() as tmp:
        handler = _configure("null", os.path.join(tmp, "x"))
        benchmark(lambda: emit("envelope.decrypt.failed", **EVENT))  # type: ignore[arg-type]
        handler.close()


def test_emit_ecs_file_handler(benchmark) -> None:  # type: ignore[no-untyped-def]
    """emit() through RedactionFilter + EcsFormatter into a file."""
    from styku_crypto.events import emit

    with tempfile.TemporaryDirectory() as tmp:
        handler = _configure("ecs", os.path.join(tmp, "events.jsonl"))
        benchmark(lambda: emit("envelope.decrypt.failed", **EVENT))  # type: ignore[arg-type]
        handler.close()


# ------------------------------------------------------------------ one-run comparison


def _child(sink: str, number: int, repeats: int) -> None:
    print(json.dumps({"us": _per_emit_us(sink, number, repeats)}))


def _run(tree: Path, sink: str, number: int, repeats: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            sink,
            "--number",
            str(number),
            "--repeats",
            str(repeats),
        ],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["us"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--against", default="main")
    parser.add_argument("--number", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, os.environ["PYTHONPATH"])
        _child(args.child, args.number, args.repeats)
        return
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.against, "styku_crypto"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
        trees = {"before": before, "after": ROOT}
        results: dict[tuple[str, str], list[float]] = {}
        for r in range(args.rounds):
            order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
            for sink in ("null", "ecs"):
                for name in order:
                    us = _run(trees[name], sink, args.number, args.repeats)
                    results.setdefault((name, sink), []).append(us)
    print(f"# machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"# per-emit cost, best of {args.repeats} x {args.number} emits per process,")
    print(f"# median over {args.rounds} alternating fresh processes; before = git {args.against}")
    print(f"{'sink':24} {'before us':>10} {'after us':>10} {'after/before':>13}")
    for sink, label in (("null", "NullHandler"), ("ecs", "ECS file + RedactionFilter")):
        b = statistics.median(results[("before", sink)])
        a = statistics.median(results[("after", sink)])
        print(f"{label:24} {b:10.2f} {a:10.2f} {a / b:13.3f}")
    print("# goal: after/before <= 1.10")


if __name__ == "__main__":
    main()

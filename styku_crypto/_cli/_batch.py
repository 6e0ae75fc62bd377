"""``styku-crypto batch rewrap | rewrap-objects``: fleet-scale rotation on Dask.

``batch rewrap --dsn URL --table T --column C (--tenant T | --tenant-column C)``
re-wraps (``--mode reencrypt``: re-encrypts) every token of a PostgreSQL or
SQLite column; ``batch rewrap-objects PREFIX --tenant T`` does the same for
token objects under ``s3://BUCKET/PREFIX`` or in a directory. Without
``--scheduler tcp://HOST:8786`` a local cluster of ``--workers N`` processes
runs the job. The key store and roots come from ``--store``/``--root`` (or
their environment variables), and travel to workers as a secret-free
``EnvelopeSpec``: credentials come from each worker's environment.

Exit codes: 0 every row or object is current; 1 some tokens failed (listed
with their keys); 2 usage; 3 the job stopped early (root outage or a failed
partition) and can be continued with ``--resume``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from styku_crypto._cli._store import add_store_options, root_specs, store_target

__all__ = ["EXIT_STOPPED", "register"]

#: The job stopped before the end; rerun with --resume.
EXIT_STOPPED = 3


def register(subparsers: Any) -> None:
    """Register ``batch rewrap`` and ``batch rewrap-objects``."""
    batch = subparsers.add_parser("batch", help="rotate tables and objects at scale on Dask")
    sub = batch.add_subparsers(dest="batch_command", metavar="COMMAND")

    p = sub.add_parser("rewrap", help="re-wrap or re-encrypt a token column of a table")
    add_store_options(p)
    p.add_argument("--dsn", required=True, help="postgresql://user@host/db or sqlite:///path")
    p.add_argument("--table", required=True)
    p.add_argument("--column", required=True)
    p.add_argument("--key", default="id", help="integer primary key column (default id)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--tenant")
    who.add_argument("--tenant-column")
    p.add_argument(
        "--context-column",
        action="append",
        default=[],
        metavar="COL",
        help="column whose value is part of the encryption context (reencrypt), repeatable",
    )
    p.add_argument("--chunk-rows", type=int, default=10_000)
    p.add_argument("--job", default=None, help="checkpoint name (default TABLE.COLUMN)")
    p.add_argument("--resume", action="store_true", help="continue the stored plan")
    _common(p)
    p.set_defaults(handler=_rewrap)

    p = sub.add_parser("rewrap-objects", help="re-wrap or re-encrypt token objects")
    add_store_options(p)
    p.add_argument("prefix", metavar="PREFIX", help="s3://BUCKET/PREFIX or a directory")
    p.add_argument("--tenant", required=True)
    p.add_argument(
        "--context", action="append", default=[], metavar="K=V", help="context (reencrypt)"
    )
    p.add_argument("--endpoint-url", default=None, help="S3-compatible endpoint")
    _common(p)
    p.set_defaults(handler=_rewrap_objects)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=("rewrap", "reencrypt"), default="rewrap")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, help="tcp://HOST:8786 of a running cluster")
    where.add_argument("--workers", type=int, default=2, help="local worker processes")
    p.add_argument("--format", choices=("table", "json"), default="table")


def _spec(args: argparse.Namespace) -> Any:
    from styku_crypto.envelope import EnvelopeSpec

    return EnvelopeSpec(store_target(args), roots=tuple(root_specs(args)))


def _progress(args: argparse.Namespace) -> Any:
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if done >= total else ""
        print(f"\r[{bar}] {done}/{total} partitions", end=end, file=sys.stderr, flush=True)

    return show


def _client(args: argparse.Namespace) -> Any:
    if args.scheduler is None:
        return None
    from styku_crypto._extras import require

    return require("distributed", extra="batch").Client(args.scheduler)


def _finish(args: argparse.Namespace, report: Any) -> int:
    doc = report.to_dict()
    if args.format == "json":
        print(json.dumps(doc, indent=2))
    else:
        for name in ("job", "mode", "complete", "partitions", "seen", "changed", "current"):
            print(f"{name:<12} {doc[name]}")
        print(f"{'conflicts':<12} {doc['conflicts']}")
        print(f"{'failed':<12} {doc['failed']}")
        print(f"{'seconds':<12} {doc['seconds']}")
        for worker, w in doc["per_worker"].items():
            print(f"worker {worker}: {w['rows']} rows, {w['rows_per_second']} rows/s")
        for f in doc["failures"]:
            print(f"FAILED {f['key']}: {f['reason']}")
        if doc["stopped"]:
            print(f"stopped: {doc['stopped']} (rerun with --resume)")
    if report.stopped:
        return EXIT_STOPPED
    return 1 if report.failures else 0


def _rewrap(args: argparse.Namespace) -> int:
    from styku_crypto.batch import rewrap_table

    client = _client(args)
    try:
        report = rewrap_table(
            args.dsn,
            args.table,
            args.column,
            spec=_spec(args),
            key=args.key,
            tenant=args.tenant,
            tenant_column=args.tenant_column,
            chunk_rows=args.chunk_rows,
            client=client,
            workers=args.workers,
            mode=args.mode,
            context_columns=args.context_column,
            job=args.job,
            resume=args.resume,
            progress=_progress(args),
        )
    finally:
        if client is not None:
            client.close()
    return _finish(args, report)


def _rewrap_objects(args: argparse.Namespace) -> int:
    from styku_crypto._cli._envelope import parse_context
    from styku_crypto.batch import rewrap_objects

    client = _client(args)
    try:
        report = rewrap_objects(
            args.prefix,
            spec=_spec(args),
            tenant=args.tenant,
            client=client,
            workers=args.workers,
            mode=args.mode,
            context=parse_context(args.context) if args.context else None,
            endpoint_url=args.endpoint_url,
            progress=_progress(args),
        )
    finally:
        if client is not None:
            client.close()
    return _finish(args, report)

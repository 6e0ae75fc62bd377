"""``styku-crypto incidents``: the tamper-evident incident record.

Commands: ``open``, ``update``, ``close``, ``list``, ``show``, ``verify``,
``export``. The log is ``incidents.jsonl`` beside the key store unless
``--log PATH`` or ``$STYKU_CRYPTO_INCIDENTS`` says otherwise; its entries are
authenticated with a key derived from the key store (``--store``, else
``$STYKU_CRYPTO_STORE``, else ``./styku-keys.db``).

Exit codes: 0 success (``verify``: intact), 1 refused (``verify``: tampered,
naming the first bad entry; key store unavailable), 2 usage error.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from styku_crypto.incidents import Incident, IncidentLog
    from styku_crypto.keys import KeyStore

__all__ = ["register"]

_SEVERITIES = ("low", "medium", "high", "critical")
_DEFAULT_STORE = "styku-keys.db"


def register(subparsers: Any) -> None:
    """Add the ``incidents`` command group."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        help="key store path or URL (default: $STYKU_CRYPTO_STORE or ./styku-keys.db)",
    )
    common.add_argument(
        "--log",
        help="incident log file (default: $STYKU_CRYPTO_INCIDENTS or incidents.jsonl "
        "beside the key store)",
    )
    parser = subparsers.add_parser(
        "incidents",
        help="tamper-evident security incident records",
        description="Open, update, close, list, verify and export security incidents.",
    )
    sub = parser.add_subparsers(dest="incidents_command", metavar="COMMAND")

    p = sub.add_parser("open", parents=[common], help="record a new incident")
    p.add_argument("--title", required=True)
    p.add_argument("--severity", required=True, choices=_SEVERITIES)
    p.add_argument("--description", required=True)
    p.add_argument("--tenant", action="append", default=[], help="affected tenant (repeatable)")
    p.add_argument("--detected-at", help="ISO 8601 time with offset (default: now)")
    p.add_argument("--actor", help="who records this")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(handler=_open)

    p = sub.add_parser("update", parents=[common], help="record an action or change")
    p.add_argument("id")
    p.add_argument("--action", help="what was done or found")
    p.add_argument("--severity", choices=_SEVERITIES)
    p.add_argument("--tenant", action="append", default=[], help="newly affected tenant")
    p.add_argument("--actor")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(handler=_update)

    p = sub.add_parser("close", parents=[common], help="close an incident with its disposition")
    p.add_argument("id")
    p.add_argument("--disposition", required=True)
    p.add_argument("--action", help="a final action to record")
    p.add_argument("--resolved-at", help="ISO 8601 time with offset (default: now)")
    p.add_argument("--actor")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(handler=_close)

    p = sub.add_parser("list", parents=[common], help="list incidents")
    p.add_argument("--open-only", action="store_true", help="only incidents not yet closed")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=_list)

    p = sub.add_parser("show", parents=[common], help="show one incident")
    p.add_argument("id")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(handler=_show)

    p = sub.add_parser("verify", parents=[common], help="verify the whole log (exit 1 if tampered)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(handler=_verify)

    p = sub.add_parser("export", parents=[common], help="export a report")
    p.add_argument("--format", choices=("json", "markdown", "html"), required=True)
    p.add_argument("--output", "-o", help="write to this file (atomically) instead of stdout")
    p.set_defaults(handler=_export)

    parser.set_defaults(handler=_no_command)


def _no_command(args: argparse.Namespace) -> int:
    from styku_crypto._cli import usage_error

    raise usage_error(
        "incidents: choose a command (open, update, close, list, show, verify, export)"
    )


# -- plumbing -------------------------------------------------------------------------------


def _store_target(args: argparse.Namespace) -> str:
    return str(args.store or os.environ.get("STYKU_CRYPTO_STORE") or _DEFAULT_STORE)


def _open_log(args: argparse.Namespace, *, write: bool) -> tuple[KeyStore, IncidentLog]:
    from styku_crypto._cli import usage_error
    from styku_crypto._cli._store import require_store
    from styku_crypto.incidents import IncidentLog
    from styku_crypto.keys import KeyStore

    target = _store_target(args)
    log_path = args.log or os.environ.get("STYKU_CRYPTO_INCIDENTS")
    if log_path is None:
        if "://" in target and not target.startswith("sqlite:///"):
            raise usage_error("a server-backed key store needs --log PATH for the incident log")
        plain = target[len("sqlite:///") :] if target.startswith("sqlite:///") else target
        log_path = str(Path(plain).parent / "incidents.jsonl")
    # A missing store is the one-line "no key store at PATH" usage error; nothing is created.
    store = KeyStore.open(require_store(args), read_only=not write, create=False)
    try:
        return store, IncidentLog.open(log_path, store=store)
    except BaseException:
        store.close()
        raise


def _time(value: str | None, what: str) -> datetime | None:
    from styku_crypto.exceptions import InvalidInputError

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"{what} is not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise InvalidInputError(f"{what} needs a UTC offset, e.g. 2026-01-02T03:04:05Z")
    return parsed


def _iso(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def _print_incident(incident: Incident, fmt: str) -> None:
    from styku_crypto.incidents import incident_to_dict

    if fmt == "json":
        print(json.dumps(incident_to_dict(incident), indent=2, ensure_ascii=False))
        return
    print(f"{incident.id}  {incident.title}")
    print(f"  severity:    {incident.severity.value}")
    print(f"  status:      {incident.status}")
    print(f"  tenants:     {', '.join(incident.tenants) or '-'}")
    print(f"  detected:    {_iso(incident.detected_at)}")
    print(f"  reported:    {_iso(incident.reported_at)}")
    print(f"  resolved:    {_iso(incident.resolved_at)}")
    print(f"  disposition: {incident.disposition or '-'}")
    print(f"  description: {incident.description}")
    for action in incident.actions:
        who = f" [{action.actor}]" if action.actor else ""
        print(f"  - {_iso(action.at)}{who} {action.text}")


# -- handlers -------------------------------------------------------------------------------


def _open(args: argparse.Namespace) -> int:
    store, log = _open_log(args, write=True)
    with store:
        incident = log.open_incident(
            args.title,
            severity=args.severity,
            description=args.description,
            tenants=args.tenant,
            detected_at=_time(args.detected_at, "--detected-at"),
            actor=args.actor,
        )
    if args.format == "json":
        _print_incident(incident, "json")
    else:
        print(f"opened {incident.id} ({incident.severity.value}) in {log.location}")
    return 0


def _update(args: argparse.Namespace) -> int:
    store, log = _open_log(args, write=True)
    with store:
        incident = log.update(
            args.id,
            action=args.action,
            severity=args.severity,
            tenants=args.tenant,
            actor=args.actor,
        )
    if args.format == "json":
        _print_incident(incident, "json")
    else:
        print(f"updated {incident.id}")
    return 0


def _close(args: argparse.Namespace) -> int:
    store, log = _open_log(args, write=True)
    with store:
        incident = log.close(
            args.id,
            disposition=args.disposition,
            resolved_at=_time(args.resolved_at, "--resolved-at"),
            action=args.action,
            actor=args.actor,
        )
    if args.format == "json":
        _print_incident(incident, "json")
    else:
        print(f"closed {incident.id}: {incident.disposition}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from styku_crypto.incidents import EXPORT_SCHEMA, incident_to_dict

    store, log = _open_log(args, write=False)
    with store:
        incidents = [i for i in log.incidents() if i.is_open or not args.open_only]
    if args.format == "json":
        doc = {"schema": EXPORT_SCHEMA, "incidents": [incident_to_dict(i) for i in incidents]}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    if not incidents:
        print("no incidents")
        return 0
    header = ("ID", "SEVERITY", "STATUS", "DETECTED", "TENANTS", "TITLE")
    rows = [
        (i.id, i.severity.value, i.status, _iso(i.detected_at), ",".join(i.tenants) or "-", i.title)
        for i in incidents
    ]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(5)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row[:5])) + "  " + row[5])
    return 0


def _show(args: argparse.Namespace) -> int:
    store, log = _open_log(args, write=False)
    with store:
        incident = log.get(args.id)
    _print_incident(incident, args.format)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from styku_crypto.exceptions import TamperedLogError

    store, log = _open_log(args, write=False)
    with store:
        try:
            report = log.verify()
        except TamperedLogError as exc:
            if args.format == "json":
                print(json.dumps({"intact": False, "error": str(exc)}))
            print(f"TAMPERED: {exc}", file=sys.stderr)
            return 1
    if args.format == "json":
        print(
            json.dumps(
                {
                    "intact": True,
                    "entries": report.entries,
                    "incidents": report.incidents,
                    "head_checked": report.head_checked,
                    "incomplete_tail_bytes": report.incomplete_tail_bytes,
                    "stopped_at": report.stopped_at,
                }
            )
        )
        return 0
    print(f"intact: {report.entries} entries, {report.incidents} incidents ({log.location})")
    if report.head_checked:
        print(f"head record matches (covers {report.head_entries} entries)")
    else:
        print("warning: no head record; removal of entries from the end cannot be detected")
    if report.incomplete_tail_bytes:
        print(f"warning: {report.stopped_at}")
    return 0


def _export(args: argparse.Namespace) -> int:
    store, log = _open_log(args, write=False)
    with store:
        text = log.export(args.format)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        _atomic_write(Path(args.output), text.encode("utf-8"))
    except OSError as exc:
        from styku_crypto._cli import usage_error

        raise usage_error(
            f"cannot write {args.output}: {exc.strerror or type(exc).__name__}"
        ) from None
    print(f"wrote {args.output}")
    return 0


def _atomic_write(path: Path, data: bytes) -> None:
    """Write *data* to *path* so a crash leaves the old file or the new one, never half of it.

    The temporary file is ``fsync``'d before the rename, and the directory
    after it, so the rename itself is durable.
    """
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    except OSError as exc:  # some filesystems refuse fsync on a directory
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(dfd)

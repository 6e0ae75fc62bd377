"""``styku-crypto incidents``: the tamper-evident incident record and its runbook.

Commands: ``open``, ``update``, ``close``, ``step``, ``notify``, ``overdue``,
``playbooks``, ``list``, ``show``, ``verify``, ``export``. The log is
``incidents.jsonl`` beside the key store unless ``--log PATH`` or
``$STYKU_CRYPTO_INCIDENTS`` says otherwise; several logs can share one store
(each keeps its own head record). Entries are authenticated with a key
derived from the key store (``--store``, else ``$STYKU_CRYPTO_STORE``, else
``./styku-keys.db``). The notification policy comes from ``--config FILE``
(else ``$STYKU_CRYPTO_INCIDENTS_CONFIG``; default 72 hours for every tenant).

Exit codes: 0 success (``verify``: intact; ``overdue``: nothing overdue),
1 refused (``verify``: tampered, naming the first bad entry; ``overdue``: a
notification is overdue; key store unavailable), 2 usage error (unknown
type, status, step, tenant or channel: one line naming the valid values; no
incident log at the path).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from styku_crypto._cli import _incidents_view as view
from styku_crypto._fs import atomic_write

if TYPE_CHECKING:
    from styku_crypto.incidents import IncidentLog, NotificationPolicy
    from styku_crypto.keys import KeyStore

__all__ = ["register"]

_SEVERITIES = ("low", "medium", "high", "critical")
_DEFAULT_STORE = "styku-keys.db"
_DEFAULT_LOG = "incidents.jsonl"
_VERIFY_SCHEMA = "styku-crypto/incidents-verify/v1"
_OVERDUE_SCHEMA = "styku-crypto/incidents-overdue/v1"
_PLAYBOOKS_SCHEMA = "styku-crypto/incident-playbooks/v1"
_COMMANDS = "open, update, close, step, notify, overdue, playbooks, list, show, verify, export"


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
        "beside the key store); each log keeps its own head record",
    )
    common.add_argument(
        "--config",
        help="TOML with the [notification] policy (default: $STYKU_CRYPTO_INCIDENTS_CONFIG; "
        "72 hours for every tenant)",
    )
    books = argparse.ArgumentParser(add_help=False)
    books.add_argument(
        "--playbooks",
        action="append",
        default=[],
        metavar="DIR",
        help="a directory of your own *.toml playbooks (repeatable)",
    )
    parser = subparsers.add_parser(
        "incidents",
        help="tamper-evident security incident records",
        description="Open, move through the lifecycle, run playbooks, notify customers, "
        "verify and export security incidents.",
    )
    sub = parser.add_subparsers(dest="incidents_command", metavar="COMMAND")

    p = sub.add_parser("open", parents=[common, books], help="record a new incident")
    p.add_argument("--type", help="a playbook name: copies its checklist (see: playbooks)")
    p.add_argument("--title", help="default: the playbook's title")
    p.add_argument("--severity", choices=_SEVERITIES, help="default: the playbook's")
    p.add_argument("--description", help="default: the playbook's")
    p.add_argument("--status", default="suspected", help="suspected (default) or confirmed")
    p.add_argument("--tenant", action="append", default=[], help="affected tenant (repeatable)")
    p.add_argument("--detected-at", help="ISO 8601 time with offset (default: now)")
    p.add_argument("--actor", help="who records this")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(handler=_open)

    p = sub.add_parser("update", parents=[common], help="record an action, change or status")
    p.add_argument("id")
    p.add_argument("--action", help="what was done or found")
    p.add_argument("--severity", choices=_SEVERITIES)
    p.add_argument("--tenant", action="append", default=[], help="newly affected tenant")
    p.add_argument("--status", help="new lifecycle state (confirmed, contained, resolved, ...)")
    p.add_argument("--at", help="when the status change happened (ISO 8601; default now)")
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

    p = sub.add_parser("step", parents=[common], help="tick a checklist step or run its action")
    p.add_argument("id")
    p.add_argument("number", type=int)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--done", action="store_true", help="tick the step")
    what.add_argument("--run", action="store_true", help="run the step's library action")
    p.add_argument("--note", help="a note recorded with the tick")
    p.add_argument("--tenant", help="the tenant for rotate-and-rewrap and shred")
    p.add_argument("--target", help="host[:port] for audit")
    p.add_argument("--tokens", help="rotate-and-rewrap: file of text tokens, one per line, "
                   "rewritten in place (atomically) with the rewrapped tokens")  # fmt: skip
    p.add_argument("--audit-policy", default="intermediate", help="audit: policy name or file")
    p.add_argument("--ca-file", help="audit: PEM trust anchors")
    p.add_argument("--yes", action="store_true", help="run without asking for confirmation")
    p.add_argument("--actor")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(handler=_step)

    p = sub.add_parser("notify", parents=[common], help="record a customer notification")
    p.add_argument("id")
    p.add_argument("--tenant", required=True)
    p.add_argument(
        "--channel", required=True, help="email, phone, portal, letter, in-person, other"
    )
    p.add_argument("--reference", help="ticket or letter reference")
    p.add_argument("--at", help="when the notice went out (ISO 8601; default now)")
    p.add_argument("--actor")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(handler=_notify)

    p = sub.add_parser(
        "overdue", parents=[common], help="list overdue customer notifications (exit 1 if any)"
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=_overdue)

    p = sub.add_parser("playbooks", parents=[books], help="list the playbooks")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=_playbooks)

    p = sub.add_parser("list", parents=[common], help="list incidents")
    p.add_argument("--open-only", action="store_true", help="only incidents not yet closed")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=_list)

    p = sub.add_parser("show", parents=[common], help="show one incident with its checklist")
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

    raise usage_error(f"incidents: choose a command ({_COMMANDS})")


# -- plumbing -------------------------------------------------------------------------------


def _store_target(args: argparse.Namespace) -> str:
    return str(args.store or os.environ.get("STYKU_CRYPTO_STORE") or _DEFAULT_STORE)


def _shown(location: str) -> str:
    """*location* as the user would write it: relative when under the working directory."""
    if os.path.isabs(location):
        rel = os.path.relpath(location)
        if not rel.startswith(os.pardir):
            return rel
    return location


def _store_dir(target: str) -> Path | None:
    if "://" in target and not target.startswith("sqlite:///"):
        return None
    plain = target[len("sqlite:///") :] if target.startswith("sqlite:///") else target
    return Path(plain).parent


def _log_name(log_path: Path, store_dir: Path | None) -> str:
    """The log's name in the store's metadata: one head record per log file.

    ``incidents.jsonl`` beside the store is ``default`` (as before named logs
    existed); another file beside the store is ``file:<name>``; anything else
    ``file:<absolute path>`` (hashed when longer than the 200-character limit).
    """
    resolved = log_path.resolve()
    if store_dir is not None and resolved.parent == store_dir.resolve():
        if resolved.name == _DEFAULT_LOG:
            return "default"
        name = f"file:{resolved.name}"
    else:
        name = f"file:{resolved}"
    if len(name) > 200:
        name = "file:sha256:" + hashlib.sha256(str(resolved).encode("utf-8", "replace")).hexdigest()
    return name


@contextlib.contextmanager
def _session(
    args: argparse.Namespace, *, write: bool, create: bool = False
) -> Iterator[tuple[KeyStore, IncidentLog]]:
    """The key store and the incident log named by *args*, the store closed afterwards.

    A log file that does not exist and has no head record in the store is a
    usage error ("no incident log at PATH"), except for ``open`` (*create*).
    A log file that is gone while the store still holds its head record is
    left to verification, which reports it as tampering.
    """
    from styku_crypto._cli import usage_error
    from styku_crypto._cli._store import require_store
    from styku_crypto.incidents import IncidentLog, NotificationPolicy
    from styku_crypto.keys import KeyStore

    target = _store_target(args)
    store_dir = _store_dir(target)
    raw_log = args.log or os.environ.get("STYKU_CRYPTO_INCIDENTS")
    if raw_log is None:
        if store_dir is None:
            raise usage_error("a server-backed key store needs --log PATH for the incident log")
        raw_log = str(store_dir / _DEFAULT_LOG)
    log_path = Path(raw_log)
    config = args.config or os.environ.get("STYKU_CRYPTO_INCIDENTS_CONFIG")
    policy = NotificationPolicy.from_toml(config) if config else NotificationPolicy()
    # A missing store is the one-line "no key store at PATH" usage error; nothing is created.
    store: KeyStore = KeyStore.open(require_store(args), read_only=not write, create=False)
    with store:
        name = _log_name(log_path, store_dir)
        log = IncidentLog.open(log_path, store=store, name=name, policy=policy)
        if name != "default" and log_path.exists() and not log.has_head():
            log = _legacy(log, log_path, store, policy)
        if not create and not log_path.exists() and not log.has_head():
            raise usage_error(f"no incident log at {log_path}")
        yield store, log


def _legacy(
    log: IncidentLog, log_path: Path, store: KeyStore, policy: NotificationPolicy
) -> IncidentLog:
    """A log written before named logs kept its head as ``default``: use that head when it
    verifies this very file (same log id, sequence and MAC), else keep *log*, whose
    verification then reports the missing head."""
    from styku_crypto.exceptions import TamperedLogError
    from styku_crypto.incidents import IncidentLog

    legacy = IncidentLog.open(log_path, store=store, name="default", policy=policy)
    try:
        if legacy.has_head() and legacy.verify().head_checked:
            return legacy
    except TamperedLogError:
        pass
    return log


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


def _public_errors(
    handler: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """Re-raise the log's private tamper error as the public ``TamperedLogError``.

    The CLI prints an error's class name; the private subclass (with its
    ``code``) is an implementation detail and never shown.
    """

    def run(args: argparse.Namespace) -> int:
        from styku_crypto.exceptions import TamperedLogError

        try:
            return handler(args)
        except TamperedLogError as exc:
            if type(exc) is TamperedLogError:
                raise
            raise TamperedLogError(str(exc)) from None

    return run


# -- handlers -------------------------------------------------------------------------------


@_public_errors
def _open(args: argparse.Namespace) -> int:
    from styku_crypto.incidents import load_playbooks

    books = load_playbooks(args.playbooks) if args.type is not None else None
    with _session(args, write=True, create=True) as (_store, log):
        incident = log.open_incident(
            args.title,
            severity=args.severity,
            description=args.description,
            tenants=args.tenant,
            detected_at=_time(args.detected_at, "--detected-at"),
            actor=args.actor,
            type=args.type,
            status=args.status,
            playbooks=books,
        )
        if args.format == "json":
            view.print_incident(incident, "json")
        else:
            kind = f", {incident.type}" if incident.type else ""
            print(f"opened {incident.id} ({incident.severity.value}) in {_shown(log.location)}: "
                  f"{incident.status.value}{kind}")  # fmt: skip
    return 0


@_public_errors
def _update(args: argparse.Namespace) -> int:
    with _session(args, write=True) as (_store, log):
        incident = log.update(
            args.id,
            action=args.action,
            severity=args.severity,
            tenants=args.tenant,
            status=args.status,
            at=_time(args.at, "--at"),
            actor=args.actor,
        )
    if args.format == "json":
        view.print_incident(incident, "json")
    else:
        print(f"updated {incident.id} ({incident.status.value})")
    return 0


@_public_errors
def _close(args: argparse.Namespace) -> int:
    with _session(args, write=True) as (_store, log):
        incident = log.close(
            args.id,
            disposition=args.disposition,
            resolved_at=_time(args.resolved_at, "--resolved-at"),
            action=args.action,
            actor=args.actor,
        )
    if args.format == "json":
        view.print_incident(incident, "json")
    else:
        print(f"closed {incident.id}: {incident.disposition}")
    return 0


@_public_errors
def _step(args: argparse.Namespace) -> int:
    from styku_crypto._cli import usage_error

    with _session(args, write=True) as (store, log):
        if args.done:
            incident = log.step(args.id, args.number, note=args.note, actor=args.actor)
            if args.format == "json":
                view.print_incident(incident, "json")
            else:
                print(f"{incident.id} step {args.number} done")
            return 0
        if args.note is not None:
            raise usage_error("--note goes with --done (a run records its own result)")
        return _run_step(args, store, log)


def _run_step(args: argparse.Namespace, store: KeyStore, log: IncidentLog) -> int:
    from styku_crypto._cli import usage_error
    from styku_crypto.incidents import ACTION_NAMES, ActionContext
    from styku_crypto.incidents._rules import step_of, tenant_of

    incident = log.get(args.id)
    # the library's own checks, before anything is asked or run
    action = step_of(incident, args.number).action
    if action is None:
        raise usage_error(f"step {args.number} of {incident.id} has no library action")
    wants = ACTION_NAMES[action]
    argument = {"tenant": args.tenant, "target": args.target, None: None}[wants]
    if wants is not None and argument is None:
        raise usage_error(f"step {args.number} runs {action}: give --{wants}")
    if wants == "tenant":
        tenant_of(incident, str(argument))
    if args.tokens is not None and action != "rotate-and-rewrap":
        raise usage_error("--tokens goes with a rotate-and-rewrap step")
    tokens, lines = (None, None) if args.tokens is None else view.read_tokens(Path(args.tokens))
    label = f"{action} {argument}" if argument else action
    if action == "shred":
        label += " (irreversible: every token of the tenant becomes undecryptable)"
    if not args.yes and not _confirm(f"run {label} for {incident.id} step {args.number}?"):
        print("not run", file=sys.stderr)
        return 1
    context = ActionContext(
        store=store,
        tokens=tokens,
        audit_policy=args.audit_policy,
        audit_ca_file=args.ca_file,
    )
    incident, result = log.run_step(
        args.id, args.number, context=context, argument=argument, actor=args.actor
    )
    if tokens is not None and lines is not None and result.counts.get("rewrapped"):
        view.write_tokens(Path(args.tokens), lines, tokens)
    if args.format == "json":
        view.print_incident(incident, "json")
    else:
        print(f"{incident.id} step {args.number}: {result.outcome}: {result.summary}")
    return 0 if result.outcome == "success" else 1


def _confirm(question: str) -> bool:
    from styku_crypto._cli import usage_error

    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if not line:
        raise usage_error(f"{question} needs confirmation: answer y on stdin or pass --yes")
    return line.strip().lower() in ("y", "yes")


@_public_errors
def _notify(args: argparse.Namespace) -> int:
    with _session(args, write=True) as (_store, log):
        incident = log.notify(
            args.id,
            tenant=args.tenant,
            channel=args.channel,
            reference=args.reference,
            at=_time(args.at, "--at"),
            actor=args.actor,
        )
    if args.format == "json":
        view.print_incident(incident, "json")
    else:
        print(f"{incident.id}: notified {args.tenant} by {args.channel}")
    return 0


@_public_errors
def _overdue(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    with _session(args, write=False) as (_store, log):
        late = log.overdue(now)
    rows = [
        {
            "incident": inc.id,
            "title": inc.title,
            "status": inc.status.value,
            "confirmed_at": view.iso(inc.confirmed_at),
            "tenant": n.tenant,
            "deadline": view.iso(n.deadline),
            "hours_overdue": round((now - n.deadline).total_seconds() / 3600, 1)
            if n.deadline
            else None,
        }
        for inc, notices in late
        for n in notices
    ]
    if args.format == "json":
        view.print_json({"schema": _OVERDUE_SCHEMA, "generated_at": view.iso(now), "overdue": rows})
    elif not rows:
        print("no overdue notifications")
    else:
        view.print_table(
            ("INCIDENT", "TENANT", "DEADLINE", "OVERDUE", "STATUS", "TITLE"),
            [
                [str(r[k]) for k in ("incident", "tenant", "deadline")]
                + [f"{r['hours_overdue']} h", str(r["status"]), str(r["title"])]
                for r in rows
            ],
        )
    return 1 if rows else 0


def _playbooks(args: argparse.Namespace) -> int:
    from styku_crypto.incidents import load_playbooks

    books = load_playbooks(args.playbooks)
    if args.format == "json":
        view.print_json(
            {
                "schema": _PLAYBOOKS_SCHEMA,
                "playbooks": [view.playbook_dict(b) for b in books.values()],
            }
        )
        return 0
    view.print_table(
        ("TYPE", "OWNER", "SEVERITY", "STEPS", "ACTIONS", "SOURCE"),
        [
            (b.name, b.owner, b.severity.value, str(len(b.steps)),
             ",".join(sorted({s.action for s in b.steps if s.action})) or "-", b.source)
            for b in books.values()
        ],
    )  # fmt: skip
    return 0


@_public_errors
def _list(args: argparse.Namespace) -> int:
    from styku_crypto.incidents import EXPORT_SCHEMA, incident_to_dict

    with _session(args, write=False) as (_store, log):
        incidents = [i for i in log.incidents() if i.is_open or not args.open_only]
    if args.format == "json":
        view.print_json(
            {"schema": EXPORT_SCHEMA, "incidents": [incident_to_dict(i) for i in incidents]}
        )
        return 0
    if not incidents:
        print("no incidents")
        return 0
    view.print_table(
        ("ID", "SEVERITY", "STATUS", "TYPE", "DETECTED", "TENANTS", "TITLE"),
        [
            (i.id, i.severity.value, i.status.value, i.type or "-", view.iso(i.detected_at),
             ",".join(i.tenants) or "-", i.title)
            for i in incidents
        ],
    )  # fmt: skip
    return 0


@_public_errors
def _show(args: argparse.Namespace) -> int:
    with _session(args, write=False) as (_store, log):
        incident = log.get(args.id)
    view.print_incident(incident, args.format)
    return 0


@_public_errors
def _verify(args: argparse.Namespace) -> int:
    from styku_crypto.exceptions import TamperedLogError

    try:
        # the session itself may find tampering (a head record whose authenticated
        # copy is gone or differs): verify reports it like any other
        with _session(args, write=False) as (_store, log):
            report = log.verify()
            location = _shown(log.location)
    except TamperedLogError as exc:
        if args.format == "json":
            view.print_json({"schema": _VERIFY_SCHEMA, "intact": False, "error": str(exc)})
        print(f"TAMPERED: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        view.print_json(
            {
                "schema": _VERIFY_SCHEMA,
                "intact": True,
                "log": location,
                "entries": report.entries,
                "incidents": report.incidents,
                "head_checked": report.head_checked,
                "incomplete_tail_bytes": report.incomplete_tail_bytes,
                "stopped_at": report.stopped_at,
            }
        )
        return 0
    print(f"intact: {report.entries} entries, {report.incidents} incidents ({location})")
    if report.head_checked:
        print(f"head record matches (covers {report.head_entries} entries)")
    else:
        print("warning: no head record; removal of entries from the end cannot be detected")
    if report.incomplete_tail_bytes:
        print(f"warning: {report.stopped_at}")
    return 0


@_public_errors
def _export(args: argparse.Namespace) -> int:
    with _session(args, write=False) as (_store, log):
        text = log.export(args.format)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        atomic_write(Path(args.output), text.encode("utf-8"))
    except OSError as exc:
        from styku_crypto._cli import usage_error

        raise usage_error(
            f"cannot write {args.output}: {exc.strerror or type(exc).__name__}"
        ) from None
    print(f"wrote {args.output}")
    return 0

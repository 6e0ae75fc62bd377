"""``styku-crypto keys`` disaster-recovery commands: backup, restore, drill, check, root.

Registered into the ``keys`` group by :mod:`styku_crypto._cli._keys` via
:func:`register`. Imports here are cheap; the key store loads inside handlers.

Stores and root providers are opened by :mod:`styku_crypto._cli._store` (``--store``,
``--root SPEC``, the spec syntax, and the rule that only ``keys init`` creates a
store). ``keys backup`` refuses a directory destination that does not exist or that
shares the store's filesystem (``--same-device-ok`` allows the latter); ``keys
restore`` creates its target store only when ``--store`` names it.

Exit codes: 0 success; 1 refused (a backup destination failed, a backup does
not verify, a drill failed, the store has consistency problems); 2 usage (including
no store, a missing or same-filesystem backup directory).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from styku_crypto._cli._store import (
    PIN_ENV,
    ROOTS_ENV,
    add_parents_option,
    add_store_options,
    open_store,
    parse_root,
    require_store,
    root_specs,
    sqlite_path,
    store_named_explicitly,
    store_target,
)
from styku_crypto._fs import atomic_write

__all__ = ["PIN_ENV", "ROOTS_ENV", "parse_root", "register"]


def register(keys_sub: Any) -> None:
    """Add ``backup``, ``restore``, ``drill``, ``check`` and ``root`` to the ``keys`` group."""
    p = keys_sub.add_parser("backup", help="back up the key store to one or more destinations")
    _common(p)
    p.add_argument(
        "--to",
        dest="to",
        action="append",
        required=True,
        metavar="DEST",
        help="directory or s3://bucket/prefix (repeat for several)",
    )
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument(
        "--same-device-ok",
        action="store_true",
        help="allow a destination on the same filesystem as the store (not a second place)",
    )
    p.set_defaults(handler=_backup)

    p = keys_sub.add_parser("restore", help="restore a backup into an empty key store")
    _common(p)
    p.add_argument("source", metavar="FROM", help="a destination or one backup in it")
    p.add_argument("--backup-id", default=None, help="restore this backup (default: newest)")
    p.add_argument(
        "--shred-list",
        action="append",
        default=[],
        metavar="FILE",
        help="JSON shred list whose tenants stay shredded (repeatable)",
    )
    add_parents_option(p)
    p.set_defaults(handler=_restore)

    p = keys_sub.add_parser(
        "drill", help="DR drill: restore into a scratch store, decrypt canaries"
    )
    _common(p)
    p.add_argument("source", metavar="FROM", help="a destination or one backup in it")
    p.add_argument("--backup-id", default=None)
    p.add_argument("--shred-list", action="append", default=[], metavar="FILE")
    p.add_argument("--report", default=None, metavar="JSON", help="write the JSON report here")
    p.set_defaults(handler=_drill)

    p = keys_sub.add_parser("check", help="consistency check of the key store")
    _common(p)
    p.add_argument(
        "--deep", action="store_true", help="also unwrap every key under every root provider"
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="add wraps missing under roots that are back; remove orphan incomplete backups",
    )
    p.add_argument(
        "--backups",
        action="append",
        default=[],
        metavar="DEST",
        help="also list incomplete backups (no manifest) at this destination (repeatable)",
    )
    p.add_argument(
        "--orphan-age",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="an incomplete backup younger than this may still be uploading (default 3600)",
    )
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(handler=_check)

    p = keys_sub.add_parser("root", help="list, add or remove root-key providers")
    root_sub = p.add_subparsers(dest="root_command", metavar="ACTION")
    q = root_sub.add_parser("list", help="providers configured and the wraps stored")
    _common(q)
    q.set_defaults(handler=_root_list)
    q = root_sub.add_parser("add", help="wrap every tenant key under one more provider")
    _common(q)
    q.add_argument("spec", metavar="SPEC", help="the provider to add")
    q.set_defaults(handler=_root_add)
    q = root_sub.add_parser("remove", help="drop a provider's wraps (re-wrap under the others)")
    _common(q)
    q.add_argument("provider_id", metavar="PROVIDER_ID", help="the provider id to drop")
    q.set_defaults(handler=_root_remove)


def _common(p: argparse.ArgumentParser) -> None:
    add_store_options(p, actor=True)


# -- helpers -------------------------------------------------------------------


def _write_report(path: str, data: bytes) -> None:
    """Write *data* to *path* atomically (:func:`styku_crypto._fs.atomic_write`).

    Raises:
        InvalidInputError: the report cannot be written (exit 2); no partial file is left.
    """
    from styku_crypto.exceptions import InvalidInputError

    try:
        atomic_write(path, data)
    except OSError as exc:
        raise InvalidInputError(
            f"cannot write the drill report {path}: {exc.strerror or type(exc).__name__}"
        ) from None


def _remove_if_empty(path: Path) -> None:
    """Remove the store this restore created, if it holds no tenant (a refused restore).

    So a failed ``keys restore --store NEW`` leaves no empty store behind that looks
    like a good one. A store that holds anything is never touched.
    """
    from styku_crypto.exceptions import KeyStoreError
    from styku_crypto.keys import SQLiteBackend

    try:
        backend = SQLiteBackend(path, read_only=True)
    except KeyStoreError:
        return
    try:
        empty = not backend.list_tenants()
    except KeyStoreError:
        empty = False
    finally:
        backend.close()
    if empty:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(OSError):
                os.unlink(f"{path}{suffix}")


def same_device(a: Path, b: Path) -> bool:
    """True when *a* and *b* live on the same filesystem (equal ``st_dev``)."""
    return os.stat(a).st_dev == os.stat(b).st_dev


def _check_destinations(args: argparse.Namespace, specs: list[str]) -> None:
    """Refuse a directory destination that is missing or on the store's own filesystem.

    A backup to an unmounted ``/mnt/backup-a`` must not land on the root disk, and a
    copy on the store's own disk is not a second place (unless ``--same-device-ok``).

    Raises:
        _UsageError: a directory destination is missing, not a directory, or on the
            store's filesystem without ``--same-device-ok`` (exit 2, nothing written).
    """
    from styku_crypto._cli import usage_error

    store_path = sqlite_path(store_target(args))
    for spec in specs:
        if "://" in spec and not spec.startswith("file://"):
            continue  # object storage: the library checks the URL
        directory = Path(spec.removeprefix("file://"))
        if not directory.is_dir():
            raise usage_error(
                f"backup destination {spec} is not an existing directory (mount or create it first)"
            )
        if (
            store_path is not None
            and not args.same_device_ok
            and same_device(directory, store_path)
        ):
            raise usage_error(
                f"backup destination {spec} is on the same filesystem as the key store"
                f" {store_path}; a backup belongs in a second place"
                " (add --same-device-ok to allow it)"
            )


def _emit_json(doc: object) -> None:
    json.dump(doc, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


# -- handlers ------------------------------------------------------------------


def _backup(args: argparse.Namespace) -> int:
    from styku_crypto.exceptions import BackupError
    from styku_crypto.keys import backup

    with open_store(args) as store:
        _check_destinations(args, args.to)
        try:
            result = backup(store, args.to, actor=args.actor)
        except BackupError as exc:
            partial = getattr(exc, "result", None)
            if partial is None:
                raise
            result = partial
    if args.format == "json":
        _emit_json(
            {
                "schema": "styku-keys-backup-result/1",
                "backup_id": result.backup_id,
                "tenants": result.tenants,
                "key_versions": result.key_versions,
                "written": list(result.written),
                "failed": [{"destination": d, "reason": r} for d, r in result.failed],
                "ok": result.ok,
            }
        )
    else:
        print(
            f"backup {result.backup_id}: {result.tenants} tenant(s), {result.key_versions} key(s)"
        )
        for dest in result.written:
            print(f"  ok      {dest}")
        for dest, reason in result.failed:
            print(f"  FAILED  {dest}: {reason}")
    if not result.ok:
        names = ", ".join(d for d, _ in result.failed)
        print(f"styku-crypto: backup incomplete; failed destination(s): {names}", file=sys.stderr)
        return 1
    return 0


def _restore(args: argparse.Namespace) -> int:
    from styku_crypto.keys import restore

    # The target store may be created, but only when --store names it explicitly.
    path = sqlite_path(store_target(args))
    created = path is not None and not path.exists() and store_named_explicitly(args)
    store = open_store(args, create=store_named_explicitly(args))
    try:
        with store:
            result = restore(
                args.source,
                store,
                backup_id=args.backup_id,
                shred_lists=args.shred_list,
                actor=args.actor,
            )
            problems = store.check()
    except BaseException:
        if created and path is not None:
            _remove_if_empty(path)
        raise
    print(
        f"restored backup {result.backup_id}: {result.tenants} tenant(s),"
        f" {result.key_versions} key(s) in {result.seconds:.3f}s"
    )
    for name in result.kept_shredded:
        print(f"  kept shredded: {name}")
    for invalid in result.invalid_backups:
        print(f"styku-crypto: warning: ignored invalid backup {invalid}", file=sys.stderr)
    for problem in problems:
        print(f"  PROBLEM {problem}")
    return 0 if not problems else 1


def _drill(args: argparse.Namespace) -> int:
    from styku_crypto.keys import KeyStore, drill

    roots = [parse_root(s) for s in root_specs(args)]
    owned: KeyStore | None = None
    if not roots:
        # Development default: the local root key of the configured SQLite store.
        owned = open_store(args, read_only=True)
        roots = list(owned.providers)
    try:
        report = drill(
            args.source,
            root=roots,
            backup_id=args.backup_id,
            shred_lists=args.shred_list,
            actor=args.actor,
        )
    finally:
        if owned is not None:
            owned.close()
        else:
            for root in roots:
                root.close()
    doc = report.to_json()
    if args.report:
        _write_report(args.report, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
    print(f"drill of backup {report.backup_id} from {report.source}")
    print(f"  restore {report.restore_seconds:.3f}s, total {report.total_seconds:.3f}s")
    for t in report.tenants:
        extra = f" ({t.error})" if t.error else ""
        print(
            f"  {t.status.upper():8} {t.tenant}  {t.canaries} canary(ies)  {t.seconds:.4f}s{extra}"
        )
    for problem in report.check_problems:
        print(f"  PROBLEM {problem}")
    if report.error:
        print(f"  ERROR {report.error}")
    print("PASSED" if report.passed else "FAILED")
    return 0 if report.passed else 1


def _check(args: argparse.Namespace) -> int:
    from styku_crypto.keys._backup_destinations import destination

    repaired = 0
    with open_store(args) as store:
        if args.repair:
            repaired = store.repair_wraps()
        problems = store.check(deep=args.deep)
        location = store.backend.location
    removed: list[str] = []
    for spec in args.backups:
        dest = destination(spec)
        for name in dest.orphans(min_age=args.orphan_age):
            where = f"{dest.describe()}/{name}"
            if args.repair:
                dest.remove_orphan(name)
                removed.append(where)
            else:
                problems.append(
                    f"incomplete backup {where} (no manifest: a failed upload);"
                    " remove it with keys check --repair"
                )
    if args.format == "json":
        _emit_json(
            {
                "schema": "styku-keys-check/1",
                "store": location,
                "problems": problems,
                "wraps_repaired": repaired,
                "orphans_removed": removed,
            }
        )
    else:
        if repaired:
            print(f"repaired: added {repaired} missing wrap(s)")
        for where in removed:
            print(f"removed incomplete backup {where}")
        for problem in problems:
            print(f"PROBLEM {problem}")
        if not problems:
            print(f"ok: {location}")
    return 0 if not problems else 1


def _root_list(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        configured = [p.provider_id for p in store.providers]
        counts: dict[str, int] = {}
        for tenant in store.backend.list_tenants():
            if tenant.shredded_at is not None:
                continue
            for record in store.backend.list_keys(tenant.name):
                for provider in record.providers:
                    counts[provider] = counts.get(provider, 0) + 1
    for pid in configured:
        print(f"configured  {pid}  wraps={counts.get(pid, 0)}")
    for pid in sorted(set(counts) - set(configured)):
        print(f"stored-only {pid}  wraps={counts[pid]}")
    return 0


def _root_add(args: argparse.Namespace) -> int:
    from styku_crypto.exceptions import InvalidInputError

    new = parse_root(args.spec)
    # The configured roots (or the store's default local root) count: the new one joins them.
    with open_store(args, extra_roots=[new]) as store:
        if [p.provider_id for p in store.providers].count(new.provider_id) > 1:
            raise InvalidInputError("that provider is already configured")
        count = store.rewrap_root()
        problems = store.check(deep=True)
    print(f"re-wrapped {count} key version(s) under {new.provider_id} and the others")
    for problem in problems:
        print(f"PROBLEM {problem}")
    return 0 if not problems else 1


def _root_remove(args: argparse.Namespace) -> int:
    from styku_crypto.exceptions import InvalidInputError

    target = require_store(args)
    roots = [parse_root(s) for s in root_specs(args)]
    keep = [r for r in roots if r.provider_id != args.provider_id]
    if not roots or len(keep) == len(roots):
        raise InvalidInputError("name the provider to remove among the configured --root specs")
    if not keep:
        raise InvalidInputError("cannot remove the last root provider")
    from styku_crypto.keys import KeyStore

    with KeyStore.open(target, root=keep, create=False) as store:
        count = store.rewrap_root()
        problems = store.check(deep=True)
    for root in roots:
        if root not in keep:
            root.close()
    print(f"re-wrapped {count} key version(s) without {args.provider_id}")
    for problem in problems:
        print(f"PROBLEM {problem}")
    return 0 if not problems else 1

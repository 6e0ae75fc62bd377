"""``styku-crypto keys``: create the store, tenants, rotate, list, shred.

Every command takes ``--store`` (a path, ``sqlite:///path`` or ``postgresql://...``;
default ``$STYKU_CRYPTO_STORE`` or ``./styku-keys.db``) and ``--root SPEC``
(repeatable, failover order; default ``$STYKU_CRYPTO_ROOTS``, else the store's
local root key file, development only).

``keys list --format json`` prints schema ``styku-crypto/keys-list/v1``::

    {"schema": "styku-crypto/keys-list/v1", "store": "...",
     "tenants": [{"name": "...", "created_at": "ISO-8601", "shredded_at": null,
                  "keys": [{"purpose": "customer", "version": 1, "key_id": "tk_...",
                            "created_at": "ISO-8601", "providers": ["local:..."],
                            "primary": true}]}]}

Exit codes: 0 success, 1 refused (unknown or shredded tenant, store problem,
a shred whose bytes remain: ``ShredIncompleteError``, finish it with
``keys shred --finish TENANT``), 2 usage (including ``shred`` without ``--yes``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from typing import TYPE_CHECKING, Any

from styku_crypto._cli._store import (
    DEFAULT_STORE,
    add_parents_option,
    add_store_options,
    open_store,
    require_tenant_root_support,
    sqlite_path,
    store_target,
)

if TYPE_CHECKING:
    from styku_crypto.keys import TenantInfo

__all__ = ["DEFAULT_STORE", "add_store_options", "open_store", "register"]

_LIST_SCHEMA = "styku-crypto/keys-list/v1"


def register(subparsers: Any) -> None:
    """Register the ``keys`` command group."""
    keys = subparsers.add_parser("keys", help="manage the key store, tenants and key versions")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="KEYS_COMMAND")

    def group_help(args: argparse.Namespace) -> int:
        keys.print_help(sys.stderr)
        return 2

    keys.set_defaults(handler=group_help)

    p = keys_sub.add_parser("init", help="create the key store (and local root key) if absent")
    add_store_options(p)
    add_parents_option(p)
    p.add_argument(
        "--tenant-roots",
        action="store_true",
        help="give every tenant created from now on its own root object in each root"
        " provider (PKCS#11, KMS), destroyed at shred; recorded in the store",
    )
    p.set_defaults(handler=_init)

    p = keys_sub.add_parser("create", help="create a tenant with its customer and sensitive keys")
    add_store_options(p)
    p.add_argument("tenant", metavar="TENANT")
    p.set_defaults(handler=_create)

    p = keys_sub.add_parser("rotate", help="make new primary key versions for a tenant")
    add_store_options(p)
    p.add_argument("tenant", metavar="TENANT")
    p.add_argument("--purpose", choices=("customer", "sensitive"), default=None)
    p.set_defaults(handler=_rotate)

    p = keys_sub.add_parser("list", help="list tenants and key versions (no secrets)")
    add_store_options(p)
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument(
        "--shred-list",
        action="store_true",
        help="print the shred list as a styku-keys-shred-list/1 document (for restore)",
    )
    p.set_defaults(handler=_list)

    p = keys_sub.add_parser("shred", help="destroy every key of a tenant (irreversible)")
    add_store_options(p)
    p.add_argument("tenant", metavar="TENANT")
    p.add_argument("--yes", action="store_true", help="confirm the irreversible shred")
    p.add_argument(
        "--finish",
        action="store_true",
        help="complete an earlier shred that reported copies remaining (ShredIncompleteError)",
    )
    p.set_defaults(handler=_shred)

    p = keys_sub.add_parser(
        "reseal", help="accept the store's current rows as authentic (after keys check)"
    )
    add_store_options(p)
    p.add_argument("--yes", action="store_true", help="confirm: launders any reported change")
    p.set_defaults(handler=_reseal)

    if importlib.util.find_spec("styku_crypto._cli._keys_dr") is not None:
        importlib.import_module("styku_crypto._cli._keys_dr").register(keys_sub)


def _init(args: argparse.Namespace) -> int:
    if args.tenant_roots:
        require_tenant_root_support(args)
    with open_store(args, create=True, create_root=True) as store:
        if args.tenant_roots:
            store.enable_tenant_roots()
        ids = ", ".join(p.provider_id for p in store.providers)
        print(f"key store ready: {store.backend.location} (root: {ids})")
        if store.tenant_roots:
            print("per-tenant roots: on (each new tenant gets its own root object)")
        print(f"{len(store.tenants())} tenant(s)")
    return 0


def _create(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        info = store.create_tenant(args.tenant)
    print(
        f"created tenant {info.name!r}: "
        + ", ".join(f"{k.purpose} v{k.version}" for k in info.keys)
    )
    return 0


def _rotate(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        made = store.rotate(args.tenant, purpose=args.purpose)
    print(
        f"rotated tenant {args.tenant!r}: " + ", ".join(f"{k.purpose} v{k.version}" for k in made)
    )
    return 0


def _info_json(info: TenantInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "created_at": info.created_at.isoformat(),
        "shredded_at": None if info.shredded_at is None else info.shredded_at.isoformat(),
        "keys": [
            {
                "purpose": k.purpose,
                "version": k.version,
                "key_id": k.key_id,
                "created_at": k.created_at.isoformat(),
                "providers": list(k.providers),
                "primary": k.primary,
            }
            for k in info.keys
        ],
    }


def _list(args: argparse.Namespace) -> int:
    if getattr(args, "shred_list", False):
        from styku_crypto.keys._restore import shred_list_document

        with open_store(args, read_only=sqlite_path(store_target(args)) is not None) as store:
            json.dump(shred_list_document(store), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    with open_store(args, read_only=sqlite_path(store_target(args)) is not None) as store:
        infos = [store.describe(t.name) for t in store.tenants()]
        location = store.backend.location
    if args.format == "json":
        doc = {"schema": _LIST_SCHEMA, "store": location, "tenants": [_info_json(i) for i in infos]}
        json.dump(doc, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    if not infos:
        print(f"no tenants in {location}")
        return 0
    print(f"{'TENANT':<24} {'STATE':<9} {'CUSTOMER':<9} {'SENSITIVE':<9} CREATED")
    for info in infos:
        top = {k.purpose: k.version for k in info.keys if k.primary}
        state = "shredded" if info.shredded else "active"
        print(
            f"{info.name:<24} {state:<9} {_v(top, 'customer'):<9} {_v(top, 'sensitive'):<9}"
            f" {info.created_at:%Y-%m-%d %H:%M}"
        )
    return 0


def _v(top: dict[str, int], purpose: str) -> str:
    return f"v{top[purpose]}" if purpose in top else "-"


def _shred(args: argparse.Namespace) -> int:
    from styku_crypto._cli import usage_error

    if args.finish:
        with open_store(args) as store:
            store.finish_shred(args.tenant)
        print(f"shred of tenant {args.tenant!r} complete: no copy remains in the store files")
        return 0
    if not args.yes:
        raise usage_error(
            f"shredding {args.tenant!r} destroys its keys and data for good; add --yes to confirm"
        )
    with open_store(args) as store:
        store.shred(args.tenant)
    print(f"shredded tenant {args.tenant!r}: every key version destroyed")
    return 0


def _reseal(args: argparse.Namespace) -> int:
    from styku_crypto._cli import usage_error

    if not args.yes:
        raise usage_error(
            "reseal accepts every change `keys check` reports as authentic; add --yes to confirm"
        )
    with open_store(args) as store:
        before = store.check()
        store.reseal()
    for problem in before:
        print(f"accepted: {problem}")
    print(f"resealed {store.backend.location}")
    return 0

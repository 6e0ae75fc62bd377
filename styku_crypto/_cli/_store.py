"""Where the command line opens key stores: the one place, so nothing is created by accident.

Every command that works on a key store opens it through :func:`open_store`.
Only ``keys init`` asks for a new store and a new local root key; ``keys
restore`` may create the store it restores into, but only when ``--store``
names it. Any other command on a missing store prints one line::

    no key store at PATH (create one with: styku-crypto keys init --store PATH)

and exits 2, writing nothing. Parent directories are never created unless the
command was given ``--parents``.

Root providers are named with ``--root SPEC`` (repeatable; the order is the
failover order) or ``$STYKU_CRYPTO_ROOTS`` (whitespace-separated). Without
either, a SQLite store uses its local root key file (``<store>.rootkey`` or
``$STYKU_CRYPTO_ROOT_KEY_FILE``; development only). Specs:

* ``local:PATH``: a local root key file (it must exist);
* ``pkcs11:MODULE#token=LABEL&key=LABEL``: a key in a PKCS#11 token; the PIN
  comes from ``$STYKU_CRYPTO_PKCS11_PIN`` (never from the command line);
* ``aws-kms:KEY_ID[?region=REGION&endpoint=URL]``: a KMS key.
"""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from styku_crypto.keys import KeyStore

__all__ = [
    "DEFAULT_STORE",
    "PIN_ENV",
    "ROOTS_ENV",
    "STORE_ENV",
    "add_parents_option",
    "add_store_options",
    "missing_store_message",
    "open_store",
    "parse_root",
    "require_directory",
    "require_store",
    "root_specs",
    "sqlite_path",
    "store_named_explicitly",
    "store_target",
]

DEFAULT_STORE = "styku-keys.db"
STORE_ENV = "STYKU_CRYPTO_STORE"
ROOTS_ENV = "STYKU_CRYPTO_ROOTS"
PIN_ENV = "STYKU_CRYPTO_PKCS11_PIN"
QUORUM_ENV = "STYKU_CRYPTO_QUORUM"


def add_store_options(p: argparse.ArgumentParser, *, actor: bool = False) -> None:
    """Add ``--store`` and ``--root`` (and ``--actor`` when *actor*) to a sub-command."""
    p.add_argument(
        "--store",
        default=argparse.SUPPRESS,
        help=f"key store path or URL (default: ${STORE_ENV} or ./{DEFAULT_STORE})",
    )
    p.add_argument(
        "--root",
        dest="roots",
        action="append",
        default=None,
        metavar="SPEC",
        help=f"root provider spec (local:PATH, pkcs11:..., aws-kms:...), repeatable, "
        f"failover order (default: ${ROOTS_ENV})",
    )
    p.add_argument(
        "--quorum",
        type=int,
        default=None,
        metavar="N",
        help=f"roots that must wrap each new key (default: ${QUORUM_ENV} or 1; "
        "the number of --root specs refuses writes while any root is down)",
    )
    if actor:
        p.add_argument("--actor", default=None, help="who runs this, recorded in events")


def add_parents_option(p: argparse.ArgumentParser) -> None:
    """Add ``--parents``: create missing parent directories of the files the command creates."""
    p.add_argument(
        "--parents",
        action="store_true",
        help="create missing parent directories (by default they must exist)",
    )


def _quorum(args: argparse.Namespace, roots: int) -> int:
    """``--quorum`` or ``$STYKU_CRYPTO_QUORUM`` (default 1), checked against *roots*.

    Raises:
        _UsageError: not an integer, or outside 1..*roots* (exit 2).
    """
    from styku_crypto._cli import _UsageError

    value = getattr(args, "quorum", None)
    if value is None:
        raw = os.environ.get(QUORUM_ENV, "").strip()
        if not raw:
            return 1
        try:
            value = int(raw)
        except ValueError:
            raise _UsageError(f"${QUORUM_ENV} must be an integer, not {raw!r}") from None
    if not 1 <= value <= roots:
        raise _UsageError(f"--quorum must be 1..{roots} (the number of root providers)")
    return int(value)


def store_target(args: argparse.Namespace) -> str:
    """The store the command works on: ``--store``, else ``$STYKU_CRYPTO_STORE``, else default."""
    target = getattr(args, "store", None) or os.environ.get(STORE_ENV) or DEFAULT_STORE
    return str(target)


def store_named_explicitly(args: argparse.Namespace) -> bool:
    """True when ``--store`` was given on the command line."""
    return bool(getattr(args, "store", None))


def sqlite_path(target: str) -> Path | None:
    """The file of a SQLite store target, or None for a server URL (PostgreSQL)."""
    if target.startswith("sqlite:///"):
        return Path(target[len("sqlite:///") :])
    if "://" in target:
        return None
    return Path(target)


def missing_store_message(target: str) -> str:
    """The one line printed when a command finds no key store at *target*."""
    command = f"styku-crypto keys init --store {shlex.quote(target)}"
    return f"no key store at {target} (create one with: {command})"


def require_directory(directory: Path, *, parents: bool) -> None:
    """Make sure *directory* exists: create it (mode 0700) only when *parents* is true.

    Raises:
        _UsageError: it does not exist and *parents* is false, or it is not a directory.
    """
    from styku_crypto._cli import usage_error

    if directory.is_dir():
        return
    if directory.exists():
        raise usage_error(f"{directory} is not a directory")
    if not parents:
        raise usage_error(
            f"directory {directory} does not exist (create it first, or add --parents)"
        )
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise usage_error(f"cannot create directory {directory}: {exc.strerror}") from None


def root_specs(args: argparse.Namespace) -> list[str]:
    """The root provider specs from ``--root``, else ``$STYKU_CRYPTO_ROOTS``."""
    specs: list[str] | None = getattr(args, "roots", None)
    if specs:
        return list(specs)
    return os.environ.get(ROOTS_ENV, "").split()


def parse_root(spec: str) -> Any:
    """The root provider a spec names (:meth:`RootKeyProvider.from_spec`; never creates a key).

    Raises:
        InvalidInputError: the spec is malformed or its scheme unknown (never echoes secrets).
        KeyStoreError: a ``local:`` file is missing or unsafe.
    """
    from styku_crypto.keys import RootKeyProvider

    return RootKeyProvider.from_spec(spec)


def _default_root(path: Path, *, create: bool) -> Any:
    from styku_crypto.keys import LocalRootKey

    return LocalRootKey.for_store(path, create=create)


def _default_root_path(path: Path) -> Path:
    """Where the development root key of the SQLite store at *path* lives."""
    from styku_crypto.keys._local import ROOT_KEY_ENV

    env = os.environ.get(ROOT_KEY_ENV)
    return Path(env) if env else Path(os.fspath(path) + ".rootkey")


def require_store(args: argparse.Namespace) -> str:
    """The store target of *args*, after checking that a SQLite store there exists.

    Raises:
        _UsageError: no store at the target (exit 2, the one-line message).
    """
    from styku_crypto._cli import _UsageError

    target = store_target(args)
    path = sqlite_path(target)
    if path is not None and not path.exists():
        raise _UsageError(missing_store_message(target))
    return target


def require_tenant_root_support(args: argparse.Namespace) -> None:
    """Refuse ``--tenant-roots`` unless every configured root can hold per-tenant objects.

    Checked before anything is opened, so a refused ``keys init --tenant-roots``
    creates no store and no root key file.

    Raises:
        _UsageError: no ``--root`` (the default is a local key file) or a root
            without per-tenant objects (exit 2).
    """
    from styku_crypto._cli import _UsageError

    specs = root_specs(args)
    if not specs:
        raise _UsageError(
            "--tenant-roots needs roots that hold per-tenant objects (--root pkcs11:... or"
            " --root aws-kms:...); the default local root key file cannot"
        )
    for spec in specs:
        if spec.startswith("local:"):  # before opening it: the file need not exist
            raise _UsageError(
                "--tenant-roots: a local root key file cannot hold per-tenant objects"
                " (use PKCS#11 or AWS KMS roots)"
            )
        provider = parse_root(spec)
        try:
            if not provider.supports_tenant_roots:
                raise _UsageError(
                    f"--tenant-roots: root {provider.provider_id} cannot hold per-tenant objects"
                    " (use PKCS#11 or AWS KMS roots)"
                )
        finally:
            provider.close()


def open_store(
    args: argparse.Namespace,
    *,
    read_only: bool = False,
    create: bool = False,
    create_root: bool = False,
    extra_roots: Sequence[Any] = (),
) -> KeyStore:
    """Open the store named by *args* with the configured root providers.

    Args:
        args: the parsed command line (``store``, ``roots``, optional ``parents``).
        read_only: open without write access.
        create: create the store when missing (``keys init``, ``keys restore --store``).
        create_root: create the default local root key when missing (``keys init`` only,
            and only together with a new store).
        extra_roots: providers appended after the configured ones (``keys root add``);
            the configured default root still counts.

    Raises:
        _UsageError: no store at the target and *create* is false (exit 2), or a
            parent directory is missing without ``--parents``.
        KeyStoreError: the store or a root key cannot be opened.
    """
    from styku_crypto._cli import _UsageError
    from styku_crypto.keys import KeyStore

    target = store_target(args)
    path = sqlite_path(target)
    parents = bool(getattr(args, "parents", False))
    if path is not None and path.exists():
        # An existing store keeps its keys wrapped under its own root: a new root key
        # file could unwrap none of them, so it is never made for an existing store.
        create_root = False
    if path is not None and not path.exists():
        if not create:
            raise _UsageError(missing_store_message(target))
        require_directory(path.parent if str(path.parent) else Path("."), parents=parents)
        if create_root and not root_specs(args):
            root_file = _default_root_path(path)
            require_directory(root_file.parent, parents=parents)
    roots: list[Any] = []
    try:
        roots.extend(parse_root(spec) for spec in root_specs(args))
        if not roots and path is not None:
            # Resolve the development default here, never creating it unless asked.
            roots.append(_default_root(path, create=create_root))
        roots.extend(extra_roots)
        return KeyStore.open(
            target,
            root=roots or None,
            read_only=read_only,
            create=create,
            quorum=_quorum(args, len(roots) or 1),
        )
    except BaseException:
        for root in {id(r): r for r in [*roots, *extra_roots]}.values():
            root.close()
        raise

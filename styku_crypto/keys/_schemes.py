"""Scheme registries: root providers, key-store backends and backup destinations.

One seam per extension point. A spec or URL starts with a scheme
(``local:``, ``pkcs11:``, ``aws-kms:``; ``sqlite:///``, ``postgresql://``;
``file:///``, ``s3://``); the registry maps the scheme to a factory. The
built-in modules register their own schemes when they are imported (every
import of ``styku_crypto.keys`` imports them all), so this module imports
none of them and sits below all of them: there is no import cycle.

Adding a scheme is one call, e.g. ``register_root_scheme("vault", VaultRoot.from_spec)``
in the module that defines the provider. An unknown scheme raises
:class:`~styku_crypto.exceptions.InvalidInputError` naming the known ones.
Factories read credentials (PINs, cloud credentials) from the environment,
never from the spec, so a spec can be logged, pickled and shipped to a
worker without carrying a secret.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from styku_crypto.exceptions import InvalidInputError

if TYPE_CHECKING:
    from styku_crypto.keys._backend import KeyStoreBackend
    from styku_crypto.keys._backup_destinations import BackupDestination
    from styku_crypto.keys._provider import RootKeyProvider

__all__ = [
    "StoreScheme",
    "destination_from_url",
    "register_destination_scheme",
    "register_root_scheme",
    "register_store_scheme",
    "root_from_spec",
    "root_schemes",
    "store_scheme",
]

_NAME = re.compile(r"[a-z][a-z0-9+.-]{0,31}\Z")
_lock = threading.Lock()
_roots: dict[str, Callable[[str], RootKeyProvider]] = {}
_stores: dict[str, StoreScheme] = {}
_destinations: dict[str, Callable[[str], BackupDestination]] = {}


@dataclass(frozen=True)
class StoreScheme:
    """How to open one kind of key store.

    Attributes:
        make: ``make(location, read_only, create) -> backend`` (not yet initialised).
        exists: ``exists(location)``: whether a store is there (``None``: cannot
            tell without connecting; ``initialize`` decides).
        default_root: ``default_root(location, create)``: the development root
            used when the caller names none (``None``: a root is required).
        strip_scheme: pass the location without ``scheme://`` (file-based stores).
    """

    make: Callable[[str, bool, bool], KeyStoreBackend]
    exists: Callable[[str], bool] | None = None
    default_root: Callable[[str, bool], RootKeyProvider] | None = None
    strip_scheme: bool = False


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInputError(
            "a scheme is 1-32 lower-case letters, digits, '+', '-' or '.', starting with a letter"
        )
    return name


def _register(table: dict[str, object], name: str, value: object, *, replace: bool) -> None:
    with _lock:
        if name in table and not replace and table[name] is not value:
            raise InvalidInputError(f"scheme {name!r} is already registered")
        table[name] = value


def register_root_scheme(
    name: str, factory: Callable[[str], RootKeyProvider], *, replace: bool = False
) -> None:
    """Make ``RootKeyProvider.from_spec("NAME:...")`` call ``factory(spec)``.

    Raises:
        InvalidInputError: a malformed name, or one already taken (unless *replace*).
    """
    _register(_roots, _check_name(name), factory, replace=replace)  # type: ignore[arg-type]


def register_store_scheme(name: str, scheme: StoreScheme, *, replace: bool = False) -> None:
    """Make ``KeyStore.open("NAME://...")`` use *scheme*.

    Raises:
        InvalidInputError: a malformed name, or one already taken (unless *replace*).
    """
    _register(_stores, _check_name(name), scheme, replace=replace)  # type: ignore[arg-type]


def register_destination_scheme(
    name: str, factory: Callable[[str], BackupDestination], *, replace: bool = False
) -> None:
    """Make ``BackupDestination.from_url("NAME://...")`` call ``factory(url)``.

    Raises:
        InvalidInputError: a malformed name, or one already taken (unless *replace*).
    """
    _register(_destinations, _check_name(name), factory, replace=replace)  # type: ignore[arg-type]


def _unknown(kind: str, scheme: str, table: dict[str, object]) -> InvalidInputError:
    known = ", ".join(sorted(table)) or "none"
    return InvalidInputError(f"unknown {kind} scheme {scheme[:32]!r} (known: {known})")


def root_schemes() -> list[str]:
    """The registered root-provider schemes, sorted."""
    return sorted(_roots)


def root_from_spec(spec: str) -> RootKeyProvider:
    """Build the root provider a spec names (``SCHEME:REST``).

    Raises:
        InvalidInputError: not ``SCHEME:REST``, or an unknown scheme (the known ones
            are listed; the spec itself is never echoed: it may name internal hosts).
    """
    if not isinstance(spec, str):
        raise InvalidInputError("a root spec is a string such as local:PATH or aws-kms:KEY_ID")
    scheme, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise InvalidInputError(
            "a root spec looks like SCHEME:..., e.g. local:PATH, pkcs11:MODULE#token=T&key=K,"
            " aws-kms:KEY_ID[?region=R&endpoint=URL]"
        )
    factory = _roots.get(scheme)
    if factory is None:
        raise _unknown("root provider", scheme, _roots)  # type: ignore[arg-type]
    return factory(spec)


def store_scheme(url: str) -> tuple[StoreScheme, str]:
    """The scheme entry for a store URL (a bare path is ``sqlite``) and its location.

    Raises:
        InvalidInputError: an unknown scheme (the known ones are listed).
    """
    name, sep, rest = url.partition("://")
    if not sep:
        name, rest = "sqlite", url  # a plain path: the embedded default
    scheme = _stores.get(name)
    if scheme is None:
        raise _unknown("key store", name, _stores)  # type: ignore[arg-type]
    if not scheme.strip_scheme:
        return scheme, url
    if sep:
        # SQLAlchemy's convention: sqlite:///relative.db and sqlite:////absolute.db
        if not rest.startswith("/"):
            raise InvalidInputError(f"a {name} URL is {name}:///PATH (three slashes)")
        rest = rest[1:]
    location = rest
    if not location:
        raise InvalidInputError(f"{name}:/// URL without a path")
    return scheme, location


def destination_from_url(url: str) -> BackupDestination:
    """The backup destination a URL names (a bare path is ``file``).

    Raises:
        InvalidInputError: empty, or an unknown scheme (the known ones are listed).
    """
    if not url:
        raise InvalidInputError("empty backup destination")
    name, sep, _ = url.partition("://")
    if not sep:
        name = "file"
    factory = _destinations.get(name)
    if factory is None:
        raise _unknown("backup destination", name, _destinations)  # type: ignore[arg-type]
    return factory(url)

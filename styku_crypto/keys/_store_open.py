"""Opening a key store: root specs to providers, and a URL's scheme to its backend.

Split from :mod:`styku_crypto.keys._store` (one job per module);
:meth:`KeyStore.open <styku_crypto.keys.KeyStore.open>` calls these.
"""

from __future__ import annotations

from collections.abc import Sequence

from styku_crypto.exceptions import InvalidInputError, KeyStoreError
from styku_crypto.keys._backend import KeyStoreBackend
from styku_crypto.keys._provider import RootKeyProvider
from styku_crypto.keys._schemes import root_from_spec, store_scheme

__all__ = ["open_backend", "providers_from"]


def providers_from(roots: Sequence[str | RootKeyProvider]) -> list[RootKeyProvider]:
    """Spec strings and providers, in order, as providers (built ones closed on failure)."""
    if isinstance(roots, str):
        raise InvalidInputError("roots= is a list of specs or providers, not one string")
    built: list[RootKeyProvider] = []
    out: list[RootKeyProvider] = []
    try:
        for item in roots:
            if isinstance(item, str):
                provider = root_from_spec(item)
                built.append(provider)
                out.append(provider)
            elif isinstance(item, RootKeyProvider):
                out.append(item)
            else:
                raise InvalidInputError("roots= items are spec strings or RootKeyProvider objects")
    except BaseException:
        for provider in built:
            provider.close()
        raise
    if not out:
        raise InvalidInputError("roots= is empty")
    return out


def open_backend(
    target: str,
    root: RootKeyProvider | Sequence[RootKeyProvider] | None,
    *,
    read_only: bool,
    create: bool,
) -> tuple[KeyStoreBackend, RootKeyProvider | Sequence[RootKeyProvider]]:
    """The initialised backend *target* names, and the root(s) to use with it.

    With ``create=False`` a missing store, or one that is not an initialised
    key store, raises before anything is written.

    Raises:
        KeyStoreError: the store is missing (``create=False`` or read-only) or unusable.
        InvalidInputError: no root given for a scheme without a default root.
    """
    scheme, location = store_scheme(target)
    missing = scheme.exists is not None and not scheme.exists(location)
    if (read_only or not create) and missing:
        raise KeyStoreError(f"key store {location} does not exist")
    if root is None:
        if scheme.default_root is None:
            raise InvalidInputError(
                f"a {target.partition('://')[0]} key store needs an explicit root provider"
            )
        root = scheme.default_root(location, create and not read_only)

    def make(ro: bool) -> KeyStoreBackend:
        return scheme.make(location, ro, create)

    if not create and not read_only:
        # Prove it is an initialised key store before opening it for writing, so a
        # wrong path or database gets no schema: with create=False nothing is created.
        probe = make(True)
        try:
            probe.initialize()
        finally:
            probe.close()
    backend = make(read_only)
    try:
        backend.initialize()
    except BaseException:
        backend.close()
        raise
    return backend, root

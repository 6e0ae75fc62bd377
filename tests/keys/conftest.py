"""Fixtures for key-store tests, parametrised over every backend and root provider.

Other backends and providers join the same behavioural tests by adding a name
to ``BACKENDS`` / ``PROVIDERS`` and a factory to ``BACKEND_FACTORIES`` /
``PROVIDER_FACTORIES`` (minimal edits).

A backend factory is ``(request, tmp_path, name) -> KeyStoreBackend``: the same
*name* in one test reopens the same store (for reopen and concurrency tests);
a new name gives a new, empty store. A provider factory is
``(request, tmp_path, name) -> RootKeyProvider`` with the same convention.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from styku_crypto.keys import (
    KeyStore,
    KeyStoreBackend,
    LocalRootKey,
    RootKeyProvider,
    SQLiteBackend,
)
from tests._support.keystores import EXTRA_BACKEND_FACTORIES, EXTRA_PROVIDER_FACTORIES
from tests._support.moto_server import fault_proxy, moto_server  # noqa: F401 - fixtures
from tests._support.postgres import postgres_server, postgres_url  # noqa: F401 - fixtures
from tests._support.softhsm import softhsm_token  # noqa: F401 - fixtures

BackendFactory = Callable[[pytest.FixtureRequest, Path, str], KeyStoreBackend]
ProviderFactory = Callable[[pytest.FixtureRequest, Path, str], RootKeyProvider]


def _sqlite_backend(request: pytest.FixtureRequest, tmp_path: Path, name: str) -> KeyStoreBackend:
    return SQLiteBackend(tmp_path / f"{name}.db")


def _local_provider(request: pytest.FixtureRequest, tmp_path: Path, name: str) -> RootKeyProvider:
    return LocalRootKey(tmp_path / f"{name}.rootkey")


BACKENDS = ["sqlite", *EXTRA_BACKEND_FACTORIES]
PROVIDERS = ["local", *EXTRA_PROVIDER_FACTORIES]
BACKEND_FACTORIES: dict[str, BackendFactory] = {
    "sqlite": _sqlite_backend,
    **EXTRA_BACKEND_FACTORIES,
}
PROVIDER_FACTORIES: dict[str, ProviderFactory] = {
    "local": _local_provider,
    **EXTRA_PROVIDER_FACTORIES,
}


@pytest.fixture(params=BACKENDS)
def backend_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., KeyStoreBackend]]:
    """Open (initialised) backends of the parametrised kind; all closed at teardown."""
    opened: list[KeyStoreBackend] = []
    factory = BACKEND_FACTORIES[request.param]

    def make(name: str = "store") -> KeyStoreBackend:
        backend = factory(request, tmp_path, name)
        backend.initialize()
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.close()


@pytest.fixture(params=PROVIDERS)
def root_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., RootKeyProvider]]:
    """Root providers of the parametrised kind; all closed at teardown."""
    opened: list[RootKeyProvider] = []
    factory = PROVIDER_FACTORIES[request.param]

    def make(name: str = "root") -> RootKeyProvider:
        provider = factory(request, tmp_path, name)
        opened.append(provider)
        return provider

    yield make
    for provider in opened:
        provider.close()


@pytest.fixture
def backend(backend_factory: Callable[..., KeyStoreBackend]) -> KeyStoreBackend:
    """One fresh, initialised backend."""
    return backend_factory()


@pytest.fixture
def store(
    backend_factory: Callable[..., KeyStoreBackend], root_factory: Callable[..., RootKeyProvider]
) -> Iterator[KeyStore]:
    """A KeyStore over a fresh backend and one root provider."""
    ks = KeyStore(backend_factory(), root=root_factory())
    yield ks
    ks.close()

"""How to open an :class:`Envelope` somewhere else: :class:`EnvelopeSpec`.

The security property: a spec carries **no secret**. It names the key store
(a URL without a password) and the root providers (spec strings such as
``aws-kms:KEY_ID`` or ``pkcs11:MODULE#token=T&key=K``); every credential (a
PIN, cloud credentials, ``PGPASSWORD``) comes from the environment of the
process that opens it, exactly as the command line gets them. So a spec can be
pickled, logged and shipped to a Dask worker, while :class:`Envelope`,
:class:`~styku_crypto.keys.KeyStore` and the providers stay unpicklable.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from styku_crypto.envelope._envelope import Envelope
from styku_crypto.exceptions import InvalidInputError
from styku_crypto.keys._store import KeyStore

__all__ = ["EnvelopeSpec"]

_lock = threading.Lock()
# Opened envelopes of this process, per spec. The pid guards against a fork
# carrying a parent's open connections into a child.
_opened: dict[EnvelopeSpec, tuple[int, Envelope]] = {}


@dataclass(frozen=True, slots=True)
class EnvelopeSpec:
    """A picklable, secret-free description of a key store and its roots.

    Attributes:
        store: the key-store URL (``postgresql://user@host/db``, ``sqlite:///path``).
            A password in the URL is refused: use ``PGPASSWORD`` or a
            ``.pgpass`` file on every worker.
        roots: root-provider spec strings in failover order (see
            :meth:`~styku_crypto.keys.RootKeyProvider.from_spec`); empty means
            the store's development default (SQLite only).
        cache_ttl: seconds an unwrapped tenant key stays cached on a worker.
        cache_size: most tenant key versions cached at once per worker.

    Raises:
        InvalidInputError: a password in the store URL, a root that is not a
            string, or a negative cache setting (at construction).
    """

    store: str
    roots: tuple[str, ...] = ()
    cache_ttl: float = 300.0
    cache_size: int = 4096

    def __post_init__(self) -> None:
        if not isinstance(self.store, str) or not self.store:
            raise InvalidInputError("EnvelopeSpec.store is a key-store URL")
        if "://" in self.store and urlsplit(self.store).password is not None:
            raise InvalidInputError(
                "EnvelopeSpec.store must not carry a password: set PGPASSWORD or a"
                " .pgpass file on every worker"
            )
        roots = tuple(self.roots)
        if any(not isinstance(r, str) or not r for r in roots):
            raise InvalidInputError("EnvelopeSpec.roots are root spec strings")
        object.__setattr__(self, "roots", roots)
        if self.cache_ttl < 0 or self.cache_size < 1:
            raise InvalidInputError("cache_ttl must be >= 0 and cache_size >= 1")

    def open(self) -> Envelope:
        """The :class:`Envelope` this spec names, opened once per process and cached.

        The store is opened with ``create=False``: a worker never creates a store.

        Raises:
            KeyStoreError, RootKeyUnavailableError, InvalidInputError,
            MissingExtraError: as :meth:`KeyStore.open`.
        """
        pid = os.getpid()
        with _lock:
            hit = _opened.get(self)
            if hit is not None and hit[0] == pid:
                return hit[1]
            store = KeyStore.open(
                self.store,
                roots=list(self.roots) or None,
                cache_ttl=self.cache_ttl,
                cache_size=self.cache_size,
                create=False,
            )
            envelope = Envelope(store)
            _opened[self] = (pid, envelope)
            return envelope

    def close(self) -> None:
        """Close this process's cached envelope for this spec (a later :meth:`open` reopens)."""
        with _lock:
            hit = _opened.pop(self, None)
        if hit is not None and hit[0] == os.getpid():
            hit[1].store.close()

"""The root-key provider interface.

A root-key provider wraps and unwraps tenant keys. The embedded default is
:class:`~styku_crypto.keys.LocalRootKey` (a key file, development only);
PKCS#11 HSMs and cloud KMSs implement the same interface.
"""

from __future__ import annotations

import abc
from types import TracebackType

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.keys._schemes import root_from_spec

__all__ = ["TENANT_ROOT_MARK", "RootKeyProvider"]

#: Separates a root provider's id from a per-tenant object's reference in the id of the
#: provider that wraps under that object: ``aws-kms:arn:...#tenant=arn:...``.
TENANT_ROOT_MARK = "#tenant="


class RootKeyProvider(abc.ABC):
    """Wraps tenant keys under a root key that never leaves the provider.

    Implementations must be thread-safe. They distinguish two kinds of failure,
    because :class:`~styku_crypto.keys.KeyStore` treats them differently:

    * integrity failure (the wrapped bytes or the associated data do not
      authenticate): raise :class:`~styku_crypto.exceptions.DecryptionError`.
      The store never fails over to another provider on this.
    * availability failure (timeout, throttling, outage, session lost): raise
      :class:`~styku_crypto.exceptions.RootKeyUnavailableError`. The store may
      fail over to the next configured provider.
    """

    #: True when the provider can create and destroy one root object per tenant
    #: (:meth:`create_tenant_root`, :meth:`tenant_root`, :meth:`destroy_tenant_root`).
    supports_tenant_roots: bool = False

    @staticmethod
    def from_spec(spec: str) -> RootKeyProvider:
        """The provider a spec names, through the scheme registry.

        Built in: ``local:PATH`` (an existing root-key file; never created here),
        ``pkcs11:MODULE#token=LABEL&key=LABEL`` (PIN from
        ``$STYKU_CRYPTO_PKCS11_PIN``), ``aws-kms:KEY_ID[?region=R&endpoint=URL]``
        (credentials from the usual AWS environment). More schemes:
        :func:`~styku_crypto.keys.register_root_scheme`. A spec never holds a
        secret, so it can be logged or sent to another process.

        Raises:
            InvalidInputError: malformed, or an unknown scheme (the known ones are listed).
            KeyStoreError: a ``local:`` file is missing or unsafe.
        """
        return root_from_spec(spec)

    @property
    @abc.abstractmethod
    def provider_id(self) -> str:
        """A stable, non-secret identifier, e.g. ``local:<fingerprint hex>``.

        The store records which provider produced each wrap by this id, so it
        must not change for the same root key.
        """

    @abc.abstractmethod
    def wrap(self, key: bytes, *, aad: bytes) -> bytes:
        """Encrypt and authenticate *key*, binding it to *aad*.

        Args:
            key: the tenant key (secret) to wrap.
            aad: associated data the wrap is bound to (tenant, purpose, version).

        Returns:
            The wrapped key, opaque bytes safe to store.

        Raises:
            RootKeyUnavailableError: the provider cannot be reached.
        """

    @abc.abstractmethod
    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        """Authenticate and decrypt *wrapped*, which must be bound to *aad*.

        Raises:
            DecryptionError: the wrapped bytes or *aad* do not authenticate.
            RootKeyUnavailableError: the provider cannot be reached.
        """

    def create_tenant_root(self, tenant: str) -> str:
        """Create a root object that wraps *tenant*'s keys only; return its reference.

        The reference (a PKCS#11 object label, a KMS key ARN) is not secret; the
        store records it in the tenant's sealed metadata. The tenant name itself
        need not appear in the provider (KMS tags carry a digest of it).

        Raises:
            InvalidInputError: this provider cannot hold per-tenant objects.
            RootKeyUnavailableError: the provider cannot be reached.
        """
        raise self._no_tenant_roots()

    def tenant_root(self, ref: str) -> RootKeyProvider:
        """The provider that wraps under the per-tenant object *ref* (no I/O).

        Its :attr:`provider_id` is this provider's id, :data:`TENANT_ROOT_MARK`
        and *ref*. Once the object is destroyed its ``unwrap`` raises
        :class:`~styku_crypto.exceptions.KeyDestroyedError` (never failed over).
        Closing it releases only what it opened; the parent stays usable.

        Raises:
            InvalidInputError: this provider cannot hold per-tenant objects.
        """
        raise self._no_tenant_roots()

    def destroy_tenant_root(self, ref: str) -> str:
        """Destroy the per-tenant object *ref*; idempotent (already gone is success).

        Returns:
            A non-secret note for the operator, e.g. ``"destroyed"`` or ``"deletion
            scheduled for 2026-12-12T10:00:00+00:00 (KMS pending window 7 days)"``.

        Raises:
            InvalidInputError: this provider cannot hold per-tenant objects.
            RootKeyUnavailableError: the provider cannot be reached (retry later:
                ``KeyStore.finish_shred``).
        """
        raise self._no_tenant_roots()

    def _no_tenant_roots(self) -> InvalidInputError:
        return InvalidInputError(
            f"root provider {self.provider_id} cannot hold per-tenant root objects (only"
            " PKCS#11 and AWS KMS roots can); a shred under it relies on tombstones and shred"
            " lists, see docs/keys.md 'What a shred guarantees, per root'"
        )

    def close(self) -> None:  # noqa: B027 - optional hook with a no-op default
        """Release any resources (sessions, connections). Idempotent."""

    def __enter__(self) -> RootKeyProvider:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.provider_id}>"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError(f"{type(self).__name__} cannot be pickled")

"""The one exception tree of styku_crypto.

Every error the library raises on purpose derives from :class:`StykuCryptoError`.
Errors caused by bad input also derive from :class:`ValueError` (or
:class:`TypeError`), so generic input handling keeps working.

No message in this module, or raised anywhere in the library, contains key
material, plaintext, passwords, peppers or tokens. Messages name *what* failed
(a tenant, a key id and version, a rule id), never the secret involved.

:class:`DecryptionError` is deliberately opaque: a bad tag, a wrong key, a wrong
context, a truncated token and a failed key commitment all look the same to the
caller, so that the error cannot be used as an oracle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "BackupError",
    "CertificatePolicyError",
    "DecryptionError",
    "InvalidHashError",
    "InvalidInputError",
    "InvalidInputTypeError",
    "InvalidPolicyError",
    "KeyDestroyedError",
    "KeyNotFoundError",
    "KeyStoreError",
    "MetadataIntegrityError",
    "MissingExtraError",
    "PasswordMismatchError",
    "PasswordPolicyError",
    "PolicyViolationError",
    "RootKeyUnavailableError",
    "ShredIncompleteError",
    "StykuCryptoError",
    "TamperedLogError",
    "TenantRootRemainsError",
    "UnpepperedHashError",
    "UnsupportedFormatError",
]


class StykuCryptoError(Exception):
    """Root of every error raised on purpose by styku_crypto."""


class DecryptionError(StykuCryptoError):
    """A token could not be authenticated and decrypted.

    Raised for a bad tag, a wrong key, a wrong context, tenant or data class, a
    truncated or reordered token and a failed key commitment alike. The message
    never says which: that would be an oracle.
    """

    def __init__(self, message: str = "decryption failed") -> None:
        super().__init__(message)


class UnsupportedFormatError(StykuCryptoError, ValueError):
    """The input announces a format version, suite or algorithm we do not accept.

    Raised before any key is touched, from the authenticated header's version and
    suite bytes (or a hash's algorithm identifier). Unknown is never guessed at.
    """


class KeyStoreError(StykuCryptoError):
    """The key store is unusable: corrupt, inconsistent, or unreachable."""


class KeyNotFoundError(KeyStoreError, LookupError):
    """No key exists for the requested tenant, purpose or version."""


class KeyDestroyedError(KeyStoreError):
    """The requested key existed but was crypto-shredded.

    Distinct from :class:`DecryptionError`: a shredded key is a fact about the
    store, not about the token, and reporting it leaks nothing about plaintext.
    """


class RootKeyUnavailableError(KeyStoreError):
    """A root-key provider could not be reached (timeout, throttling, outage).

    Availability failures may fail over to another configured provider;
    integrity failures (a wrapped key that does not authenticate) never do.
    """


class BackupError(KeyStoreError):
    """A key-store backup could not be written everywhere, or does not verify.

    Raised when any destination of a backup failed (the message names each), or
    when a backup's authentication or checksums fail on restore or drill.
    """


class PolicyViolationError(StykuCryptoError):
    """An operation was refused because it would break a configured policy."""


class InvalidInputError(StykuCryptoError, ValueError):
    """An argument has the wrong shape or value (not a secret-dependent failure)."""


class InvalidInputTypeError(InvalidInputError, TypeError):
    """An argument has the wrong type (e.g. ``str`` where bytes are required)."""


class InvalidPolicyError(InvalidInputError):
    """A policy file or object is malformed; the message names the key at fault."""


class PasswordMismatchError(StykuCryptoError):
    """The password does not match the stored hash."""


class InvalidHashError(StykuCryptoError, ValueError):
    """A stored password hash is malformed, unknown, or exceeds configured limits."""


class PasswordPolicyError(InvalidInputError):
    """A new password breaks the input policy (too short, too long, blocklisted)."""


class TamperedLogError(StykuCryptoError):
    """An append-only, authenticated log failed verification."""


class MissingExtraError(StykuCryptoError, ImportError):
    """An optional integration was used without its extra installed.

    The message names the extra, e.g. ``pip install 'styku-crypto[postgres]'``.
    """


class MetadataIntegrityError(KeyStoreError):
    """The key store's authenticated metadata does not match its rows.

    Tenants, key versions, primaries, shred state or authenticated records were
    changed, removed or rolled back outside the key store (a database write
    without the root key). New encryptions are refused; ``keys check`` lists
    what changed.
    """


class ShredIncompleteError(KeyStoreError):
    """A shred deleted the keys, but copies of their bytes remain in files the store controls.

    The message names what remains and why (a blocking reader, the WAL, a
    table not yet rewritten). ``keys shred --finish TENANT`` completes it later.
    """


class TenantRootRemainsError(ShredIncompleteError):
    """A shred deleted the keys, but a per-tenant root object could not be destroyed yet.

    The tenant is shredded in the store; until the object is gone, a backup taken
    before the shred still unwraps under it (tombstones still refuse to restore
    it). The message names the provider and the object; ``keys shred --finish
    TENANT`` (``KeyStore.finish_shred``) retries the destruction.
    """


class UnpepperedHashError(InvalidHashError):
    """A stored hash without a pepper was refused because a pepper is required.

    Raised when the hasher runs with ``require_pepper=True`` and the stored hash
    is unpeppered Argon2 or a legacy format that was never pepper-wrapped
    (``PasswordHasher.pepper_wrap``). A subclass of :class:`InvalidHashError`,
    so handlers of refused hashes keep working.
    """


# CertificatePolicyError must subclass ssl.SSLCertVerificationError, but importing
# ssl here would cost every ``import styku_crypto`` ~30 ms: the class is built on
# first access (PEP 562) and then stored in the module like any other.
if TYPE_CHECKING:
    import ssl

    class CertificatePolicyError(ssl.SSLCertVerificationError, PolicyViolationError):
        """The peer's certificate verified but violates the TLS policy."""

else:

    def __getattr__(name: str) -> Any:
        if name != "CertificatePolicyError":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        import ssl

        class CertificatePolicyError(ssl.SSLCertVerificationError, PolicyViolationError):
            """The peer's certificate verified but violates the TLS policy.

            Subclasses :class:`ssl.SSLCertVerificationError` (so HTTP clients treat
            it as a certificate failure) and :class:`PolicyViolationError`.
            """

        CertificatePolicyError.__module__ = __name__
        CertificatePolicyError.__qualname__ = "CertificatePolicyError"  # picklable, readable
        globals()["CertificatePolicyError"] = CertificatePolicyError
        return CertificatePolicyError

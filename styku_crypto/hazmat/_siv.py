"""AES-SIV (RFC 5297): deterministic authenticated encryption over ``cryptography``'s AESSIV.

.. danger::
    Deterministic encryption leaks equality: the same plaintext under the same key and
    associated data always gives the same ciphertext. Use it only where equality search
    is the explicit requirement, with a key dedicated to that one purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from styku_crypto.exceptions import DecryptionError, InvalidInputError

__all__ = ["AesSiv"]

_KEY_SIZES = frozenset({32, 48, 64})
SIV_SIZE = 16


class AesSiv:
    """AES-SIV-CMAC deterministic AEAD (RFC 5297) with a key held privately.

    The key is 32, 48 or 64 bytes (AES-128, -192 or -256 in SIV mode: the key is split
    into a CMAC half and a CTR half). Output is ``SIV (16 bytes) || ciphertext``.

    .. danger::
        Encryption is deterministic: identical (plaintext, associated data) pairs give
        identical ciphertexts, which tells an observer that two values are equal and how
        often a value occurs. Pass a unique ``nonce`` to get probabilistic encryption
        (RFC 5297 section 5: the nonce is the last associated-data component).

    Raises:
        InvalidInputError: the key has the wrong size or type.
    """

    __slots__ = ("_aead", "_key_size")

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray | memoryview):
            raise InvalidInputError("AES-SIV key must be bytes")
        if len(key) not in _KEY_SIZES:
            raise InvalidInputError("AES-SIV key must be 32, 48 or 64 bytes")
        self._aead = AESSIV(bytes(key))
        self._key_size = len(key)

    def __repr__(self) -> str:
        return f"<AesSiv AES-{self._key_size * 4}-SIV, {self._key_size * 8}-bit key>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("AesSiv objects hold key material and cannot be pickled")

    def encrypt(
        self,
        plaintext: bytes,
        *,
        associated_data: Sequence[bytes] = (),
        nonce: bytes | None = None,
    ) -> bytes:
        """Encrypt *plaintext*, authenticating each *associated_data* component.

        Args:
            plaintext: the data to encrypt (may be empty).
            associated_data: components authenticated but not encrypted, in order;
                each is a separate S2V input, so ``[b"a", b"b"]`` differs from ``[b"ab"]``.
            nonce: optional nonce, appended as the final associated-data component
                (RFC 5297 nonce-based AEAD). With a unique nonce the output is
                probabilistic.

        Returns:
            ``SIV || ciphertext`` (16 bytes longer than *plaintext*).

        Raises:
            InvalidInputError: more than 126 associated-data components.
        """
        components = self._components(associated_data, nonce)
        return self._aead.encrypt(plaintext, components or None)

    def decrypt(
        self,
        ciphertext: bytes,
        *,
        associated_data: Sequence[bytes] = (),
        nonce: bytes | None = None,
    ) -> bytes:
        """Authenticate and decrypt *ciphertext* (``SIV || ciphertext``).

        Raises:
            DecryptionError: the SIV does not verify (tampering, wrong key, wrong
                associated data or nonce) or the input is too short.
        """
        components = self._components(associated_data, nonce)
        if len(ciphertext) < SIV_SIZE:
            raise DecryptionError("decryption failed")
        try:
            return self._aead.decrypt(ciphertext, components or None)
        except InvalidTag:
            raise DecryptionError("decryption failed") from None

    @staticmethod
    def _components(associated_data: Sequence[bytes], nonce: bytes | None) -> list[bytes]:
        if isinstance(associated_data, bytes | bytearray | memoryview):
            raise InvalidInputError("associated_data is a sequence of byte strings")
        components = [bytes(c) for c in associated_data]
        if nonce is not None:
            components.append(bytes(nonce))
        if len(components) > 126:
            raise InvalidInputError("AES-SIV accepts at most 126 associated-data components")
        return components

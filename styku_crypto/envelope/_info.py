"""What a token's header says, read without any key: :class:`TokenInfo`."""

from __future__ import annotations

from dataclasses import dataclass

from styku_crypto.envelope._format import (
    PURPOSE_NAMES,
    SUITE_STREAM,
    TAG_LEN,
    DataClass,
    from_text,
    parse_header,
)
from styku_crypto.envelope._stream import plaintext_length as _stream_plaintext_length
from styku_crypto.exceptions import DecryptionError, InvalidInputTypeError

__all__ = ["TokenInfo", "token_info"]

_SUITE_NAMES = {1: "one-shot", 2: "streamed", 3: "cached-data-key"}


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """The non-secret facts in a token's header (nothing here is authenticated yet).

    Attributes:
        format_version: the token format version (``1``).
        suite: ``1`` one-shot, ``2`` streamed, ``3`` cached data key.
        data_class: the token's :class:`DataClass`.
        key_versions: ``(purpose, key version)`` per layer, outermost first, e.g.
            ``(("customer", 2), ("sensitive", 1))``.
        header_length: bytes before the payload.
        token_length: bytes of the whole (binary) token.
        plaintext_length: what the token decrypts to if it authenticates.
    """

    format_version: int
    suite: int
    data_class: DataClass
    key_versions: tuple[tuple[str, int], ...]
    header_length: int
    token_length: int
    plaintext_length: int

    @property
    def suite_name(self) -> str:
        """``"one-shot"``, ``"streamed"`` or ``"cached-data-key"``."""
        return _SUITE_NAMES[self.suite]


def token_info(token: bytes | bytearray | memoryview | str) -> TokenInfo:
    """Parse *token* (binary or text form) into a :class:`TokenInfo`; no key is used.

    Raises:
        UnsupportedFormatError: unknown format version, suite, data class or text prefix.
        DecryptionError: truncated or structurally invalid.
        InvalidInputTypeError: not bytes-like or str.
    """
    if isinstance(token, str):
        token = from_text(token)
    elif not isinstance(token, bytes | bytearray | memoryview):
        raise InvalidInputTypeError("token must be bytes-like or a text token")
    header = parse_header(token)
    size = len(token)
    if header.suite == SUITE_STREAM:
        plaintext = _stream_plaintext_length(size - header.length)
    else:
        plaintext = size - header.length - TAG_LEN * len(header.layers)
        if plaintext < 0:
            raise DecryptionError()
    return TokenInfo(
        format_version=header.version,
        suite=header.suite,
        data_class=header.data_class,
        key_versions=tuple((PURPOSE_NAMES[x.purpose], x.key_version) for x in header.layers),
        header_length=header.length,
        token_length=size,
        plaintext_length=plaintext,
    )

"""Streamed tokens (suite 2): chunked, key-committing encryption of objects of any size.

The payload of a streamed token is a C2SP chunked-encryption message
(https://c2sp.org/chunked-encryption, "Cobblestone-256": HKDF-Expand-SHA-512 key
derivation with a 32-byte key commitment, AES-256-GCM over 16 KiB chunks, the chunk
counter XOR'd into the base nonce, a final chunk that is always short). Streaming
encryption and decryption run in ``cryptography.cobblestone``; random access
(:func:`decrypt_range`) uses the same vetted primitives (``HKDFExpand``, ``AESGCM``)
with the derivation and nonce schedule that the C2SP specification documents, because
``cryptography`` 50 exposes only ``update``/``finalize`` for Cobblestone.

Release rule (what a reader may hand out before a later check fails): plaintext of
chunk *i* is released only after chunk *i* authenticated. Truncation, a missing final
chunk and appended data can only be detected at the end of the ciphertext; they raise
:class:`~styku_crypto.exceptions.DecryptionError` from the ``read()`` that reaches the
end, never a clean end-of-file (``DecryptingReader.complete`` tells whether the end was
reached and authenticated). Callers that must not act on unverified data read to the end
before using it, or use ``decrypt_file``, which publishes nothing until the whole
stream authenticated.
"""

from __future__ import annotations

import hmac
import io
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn, TypeAlias

from cryptography.cobblestone import (
    Cobblestone128Decryptor,
    Cobblestone128Encryptor,
    Cobblestone256Decryptor,
    Cobblestone256Encryptor,
)
from cryptography.exceptions import AlreadyFinalized, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from styku_crypto.envelope import _events
from styku_crypto.envelope._format import (
    LAYER_LEN,
    PREFIX_LEN,
    SUITE_STREAM,
    DataClass,
    Header,
    check_class,
    encode_context,
    parse_header,
    prefix,
)
from styku_crypto.envelope._layers import (
    check_data_class,
    encode_tenant,
    fresh_layers,
    open_layers,
)
from styku_crypto.envelope._output import publish
from styku_crypto.exceptions import (
    DecryptionError,
    InvalidInputError,
    KeyDestroyedError,
    KeyNotFoundError,
    UnsupportedFormatError,
)

if TYPE_CHECKING:
    from styku_crypto.keys import KeyStore

_LOG = logging.getLogger("styku_crypto.envelope")
_FAILURES = (DecryptionError, UnsupportedFormatError, KeyNotFoundError, KeyDestroyedError)

CHUNK_SIZE = 16384
TAG_SIZE = 16
SEALED_CHUNK = CHUNK_SIZE + TAG_SIZE
SALT_SIZE = 24
COMMITMENT_SIZE = 32
C2SP_HEADER_SIZE = SALT_SIZE + COMMITMENT_SIZE
NONCE_SIZE = 12
MAX_CHUNKS = 1 << 38
_INFO_PREFIX = b"c2sp.org/chunked-encryption@v1+"
#: I/O granularity: how much ciphertext or plaintext is handled per call (bounds memory).
IO_BLOCK = 1 << 20

Buffer: TypeAlias = bytes | bytearray | memoryview

_SUITES = {
    16: (b"AEAD_AES_128_GCM", Cobblestone128Encryptor, Cobblestone128Decryptor),
    32: (b"AEAD_AES_256_GCM", Cobblestone256Encryptor, Cobblestone256Decryptor),
}


def _write_all(sink: Any, data: Buffer) -> None:
    """Write all of *data*, looping over partial writes of raw (unbuffered) files.

    A ``write`` returning ``None`` is taken to have consumed everything (file-likes that
    return nothing); destinations must be blocking.
    """
    view = memoryview(data)
    while view:
        n = sink.write(view)
        if n is None:
            return
        view = view[n:]


def _failed() -> DecryptionError:
    return DecryptionError("decryption failed")


def _suite(key: bytes) -> tuple[bytes, type, type]:
    try:
        return _SUITES[len(key)]
    except KeyError:
        raise InvalidInputError("chunked-encryption key must be 16 or 32 bytes") from None


def sealed_length(plaintext_length: int) -> int:
    """Ciphertext length of a C2SP message of *plaintext_length* bytes (header included)."""
    return C2SP_HEADER_SIZE + plaintext_length + (plaintext_length // CHUNK_SIZE + 1) * TAG_SIZE


def plaintext_length(sealed: int) -> int:
    """Plaintext length of a well-formed C2SP message of *sealed* bytes.

    Raises:
        DecryptionError: no plaintext length maps to *sealed* (truncated or padded).
    """
    body = sealed - C2SP_HEADER_SIZE
    if body < TAG_SIZE:
        raise _failed()
    full, rest = divmod(body, SEALED_CHUNK)
    if rest < TAG_SIZE:
        raise _failed()
    return full * CHUNK_SIZE + rest - TAG_SIZE


class ChunkedEncryptor:
    """Incremental C2SP encryption into a bounded, reusable output buffer."""

    __slots__ = ("_buf", "_enc")

    def __init__(self, key: bytes, context: bytes) -> None:
        _, enc_cls, _ = _suite(key)
        self._enc = enc_cls(key, context)
        self._buf = bytearray(IO_BLOCK + IO_BLOCK // 512 + CHUNK_SIZE + 4 * C2SP_HEADER_SIZE)

    def __reduce__(self) -> NoReturn:
        raise TypeError("encryptors hold key material and cannot be pickled")

    def update(self, data: Buffer, sink: BinaryIO) -> None:
        """Encrypt *data* and write whatever ciphertext is complete to *sink*."""
        view = memoryview(data).cast("B")
        buf = self._buf
        out = memoryview(buf)
        for start in range(0, len(view), IO_BLOCK):
            n = self._enc.update_into(view[start : start + IO_BLOCK], buf)
            if n:
                _write_all(sink, out[:n])

    def finalize(self, sink: BinaryIO) -> None:
        """Write the final (short) chunk."""
        _write_all(sink, self._enc.finalize())


class ChunkedDecryptor:
    """Incremental C2SP decryption; output only for authenticated chunks; errors are sticky."""

    __slots__ = ("_buf", "_dec", "_done", "_failed")

    def __init__(self, key: bytes, context: bytes) -> None:
        _, _, dec_cls = _suite(key)
        self._dec = dec_cls(key, context)
        self._buf = bytearray(IO_BLOCK + 2 * SEALED_CHUNK + C2SP_HEADER_SIZE)
        self._failed = False
        self._done = False

    def __reduce__(self) -> NoReturn:
        raise TypeError("decryptors hold key material and cannot be pickled")

    def update(self, data: Buffer) -> memoryview:
        """Decrypt *data* (at most :data:`IO_BLOCK` bytes); return authenticated plaintext.

        The returned view is only valid until the next call.
        """
        if len(data) > IO_BLOCK:
            raise InvalidInputError("feed the decryptor at most IO_BLOCK bytes per update")
        n = self.update_into(data, self._buf)
        return memoryview(self._buf)[:n]

    def update_into(self, data: Buffer, out: Any) -> int:
        """Decrypt *data* into *out* (at least ``len(data) + SEALED_CHUNK`` bytes).

        Returns how many plaintext bytes (whole authenticated chunks) were written.
        """
        if self._failed or self._done:
            raise _failed()
        if memoryview(out).nbytes < len(data) + SEALED_CHUNK:
            raise InvalidInputError("output buffer too small")
        try:
            n: int = self._dec.update_into(data, out)
        except (InvalidTag, AlreadyFinalized, ValueError):
            self._failed = True
            raise _failed() from None
        return n

    def finalize(self) -> bytes:
        """Check the final chunk; return its plaintext.

        Raises:
            DecryptionError: truncated, extended or tampered message.
        """
        if self._failed or self._done:
            raise _failed()
        try:
            tail: bytes = self._dec.finalize()
        except (InvalidTag, AlreadyFinalized, ValueError):
            self._failed = True
            raise _failed() from None
        self._done = True
        return tail


def derive(key: bytes, salt: bytes, context: bytes) -> tuple[bytes, bytes, bytes]:
    """C2SP key schedule: ``(aead key, base nonce, commitment)`` for one message."""
    aead_name, _, _ = _suite(key)
    info = _INFO_PREFIX + aead_name + b"\x00" + salt + context
    okm = HKDFExpand(
        algorithm=hashes.SHA512(), length=len(key) + NONCE_SIZE + COMMITMENT_SIZE, info=info
    ).derive(key)
    k = len(key)
    return okm[:k], okm[k : k + NONCE_SIZE], okm[k + NONCE_SIZE :]


def _chunk_nonce(base_nonce: bytes, index: int) -> bytes:
    return (int.from_bytes(base_nonce, "big") ^ index).to_bytes(NONCE_SIZE, "big")


class RangeReader:
    """Random-access decryption of a C2SP message stored in a seekable file.

    The commitment is checked when the reader is built (before any chunk is decrypted)
    and the message length is authenticated by decrypting the final chunk, so a range
    read never trusts the file size alone.
    """

    __slots__ = ("_aead", "_base", "_length", "_nonce", "_src")

    def __init__(self, src: BinaryIO, *, base: int, key: bytes, context: bytes) -> None:
        _suite(key)
        self._src = src
        self._base = base
        end = src.seek(0, io.SEEK_END)
        src.seek(base)
        head = _read_exact(src, C2SP_HEADER_SIZE)
        if len(head) != C2SP_HEADER_SIZE:
            raise _failed()
        aead_key, nonce, commitment = derive(key, head[:SALT_SIZE], context)
        if not hmac.compare_digest(commitment, head[SALT_SIZE:]):
            raise _failed()
        self._aead = AESGCM(aead_key)
        self._nonce = nonce
        self._length = plaintext_length(end - base)
        last = self._length // CHUNK_SIZE
        if last >= MAX_CHUNKS:
            raise _failed()
        self._open(last, last)  # authenticates the message length

    def __reduce__(self) -> NoReturn:
        raise TypeError("range readers hold key material and cannot be pickled")

    @property
    def length(self) -> int:
        """Authenticated plaintext length of the whole message."""
        return self._length

    def _open(self, first: int, last: int) -> bytes:
        final = self._length // CHUNK_SIZE
        src = self._src
        src.seek(self._base + C2SP_HEADER_SIZE + first * SEALED_CHUNK)
        end_pt = min((last + 1) * CHUNK_SIZE, self._length)
        sealed = _read_exact(src, end_pt - first * CHUNK_SIZE + (last - first + 1) * TAG_SIZE)
        view = memoryview(sealed)
        out = bytearray()
        for i in range(first, last + 1):
            off = (i - first) * SEALED_CHUNK
            size = SEALED_CHUNK if i < final else (self._length % CHUNK_SIZE) + TAG_SIZE
            piece = view[off : off + size]
            if len(piece) != size:
                raise _failed()
            try:
                out += self._aead.decrypt(_chunk_nonce(self._nonce, i), piece, None)
            except InvalidTag:
                raise _failed() from None
        return bytes(out)

    def read(self, offset: int, length: int) -> bytes:
        """Return plaintext ``[offset, offset + length)``, clipped at the message end.

        Raises:
            InvalidInputError: negative *offset* or *length*.
            DecryptionError: a chunk in the range fails authentication.
        """
        if offset < 0 or length < 0:
            raise InvalidInputError("offset and length must be non-negative")
        stop = min(offset + length, self._length)
        if offset >= stop:
            return b""
        first, last = offset // CHUNK_SIZE, (stop - 1) // CHUNK_SIZE
        data = self._open(first, last)
        skip = offset - first * CHUNK_SIZE
        return data[skip : skip + (stop - offset)]


def _read_exact(src: BinaryIO, n: int) -> bytes:
    parts = []
    remaining = n
    while remaining > 0:
        got = src.read(remaining)
        if not got:
            break
        parts.append(got)
        remaining -= len(got)
    return b"".join(parts)


class EncryptingWriter(io.RawIOBase):
    """A writable file object that encrypts into *dst* as a streamed token.

    Bytes written are encrypted in 16 KiB chunks and written to *dst* as soon as each
    chunk is complete; at most one partial chunk (plus one I/O block of output) is held
    in memory. :meth:`close` writes the final chunk: a stream that is never closed, or
    whose ``with`` block raised, is left without its final chunk and therefore fails
    to decrypt (it can never be mistaken for a complete object). *dst* is flushed but
    not closed.
    """

    def __init__(
        self, dst: BinaryIO, *, header: bytes, key: bytes, context: bytes, on_close: Any = None
    ) -> None:
        super().__init__()
        self._dst = dst
        self._enc: ChunkedEncryptor | None = ChunkedEncryptor(key, context)
        self._written = 0
        self._on_close = on_close
        _write_all(dst, header)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<EncryptingWriter {state} written={self._written}>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("stream writers hold key material and cannot be pickled")

    def writable(self) -> bool:
        return True

    def write(self, data: Buffer) -> int:  # type: ignore[override]
        """Encrypt *data*; return its length (every byte is always consumed)."""
        if self.closed or self._enc is None:
            raise ValueError("write to a closed stream")
        size = memoryview(data).nbytes
        self._enc.update(data, self._dst)
        self._written += size
        return size

    @property
    def bytes_written(self) -> int:
        """Plaintext bytes accepted so far."""
        return self._written

    def abort(self) -> None:
        """Close *without* the final chunk: the output stays undecryptable."""
        self._enc = None
        super().close()

    def close(self) -> None:
        """Write the final chunk and flush *dst* (idempotent)."""
        if self.closed:
            return
        enc, self._enc = self._enc, None
        try:
            if enc is not None:
                enc.finalize(self._dst)
                self._dst.flush()
                if self._on_close is not None:
                    self._on_close(self._written)
        finally:
            super().close()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


class DecryptingReader(io.RawIOBase):
    """A readable file object over a streamed token's payload.

    Plaintext of a chunk is handed out only after that chunk authenticated. The end
    of the object is authenticated when *src* reaches end-of-file: a truncated,
    extended or tampered stream raises :class:`DecryptionError` from the ``read`` that
    gets there, instead of returning end-of-file, and every later ``read`` raises too.
    A caller that stops reading early has seen only authenticated chunks but has NOT
    learned that the object is complete.
    """

    def __init__(self, src: BinaryIO, *, decryptor: ChunkedDecryptor, on_fail: Any = None) -> None:
        super().__init__()
        self._src = src
        self._dec = decryptor
        self._pending = memoryview(b"")
        self._eof = False
        self._failed = False
        self._on_fail = on_fail
        self._read = 0
        self._inbuf = bytearray(IO_BLOCK)
        self._readinto = getattr(src, "readinto", None)

    def __repr__(self) -> str:
        return f"<DecryptingReader read={self._read} eof={self._eof}>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("stream readers hold key material and cannot be pickled")

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while not self._pending and not self._eof:
            if self._failed:
                raise _failed()
            block: Buffer
            if self._readinto is not None:
                got = self._readinto(self._inbuf)
                block = memoryview(self._inbuf)[: got or 0]
            else:
                block = self._src.read(IO_BLOCK)
            try:
                if block:
                    self._pending = self._dec.update(block)
                else:
                    self._pending = memoryview(self._dec.finalize())
                    self._eof = True
            except DecryptionError:
                self._failed = True
                if self._on_fail is not None:
                    self._on_fail()
                raise

    def readinto(self, buffer: Any) -> int:
        """Fill *buffer* with authenticated plaintext; 0 only at an authenticated end."""
        if self.closed:
            raise ValueError("read from a closed stream")
        out = memoryview(buffer).cast("B")
        if not self._pending and self._readinto is not None and len(out) >= 2 * SEALED_CHUNK:
            # Fast path: decrypt straight into the caller's buffer (no extra copy).
            room = min(IO_BLOCK, len(out) - SEALED_CHUNK)
            while not self._eof:
                if self._failed:
                    raise _failed()
                got = self._readinto(memoryview(self._inbuf)[:room])
                if not got:
                    break
                n = self._guard(self._dec.update_into, memoryview(self._inbuf)[:got], out)
                if n:
                    self._read += n
                    return n
        self._fill()
        n = min(len(out), len(self._pending))
        out[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self._read += n
        return n

    def _guard(self, step: Any, *args: Any) -> int:
        try:
            result: int = step(*args)
        except DecryptionError:
            self._failed = True
            if self._on_fail is not None:
                self._on_fail()
            raise
        return result

    def read(self, size: int | None = -1) -> bytes:
        """Read up to *size* bytes (all remaining when negative or None)."""
        if size is None or size < 0:
            return self.readall()
        if self.closed:
            raise ValueError("read from a closed stream")
        self._fill()
        n = min(size, len(self._pending))
        data = bytes(self._pending[:n])
        self._pending = self._pending[n:]
        self._read += n
        return data

    def readall(self) -> bytes:
        """Read to the authenticated end of the object."""
        parts: list[bytes] = []
        while True:
            self._fill()
            if not self._pending:
                return b"".join(parts)
            parts.append(bytes(self._pending))
            self._read += len(self._pending)
            self._pending = memoryview(b"")

    @property
    def complete(self) -> bool:
        """True once the whole object, final chunk included, authenticated."""
        return self._eof and not self._failed


# -- streamed tokens (suite 2) on top of the envelope's key hierarchy ----------------

_STREAM_KEY_DOMAIN = b"styku-crypto/v1/stream-key\x00"
_STREAM_CTX_DOMAIN = b"styku-crypto/v1/stream-context\x00"


def _stream_key(deks: list[bytes], pre: bytes) -> bytes:
    """The Cobblestone input key: HKDF-SHA-256 over every layer's data key.

    With two layers (``SENSITIVE``) the key depends on both data keys, so reading
    needs both tenant keys, as for one-shot tokens.
    """
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=_STREAM_KEY_DOMAIN + pre
    ).derive(b"".join(deks))


def _stream_context(pre: bytes, commitments: bytes, tenant_lp: bytes, context: bytes) -> bytes:
    """The Cobblestone context: everything a rewrap does not change (not the wraps)."""
    return _STREAM_CTX_DOMAIN + pre + commitments + tenant_lp + context


def encrypt_stream(
    store: KeyStore,
    dst: BinaryIO,
    *,
    tenant: str,
    context: Mapping[str, str],
    data_class: DataClass,
) -> EncryptingWriter:
    """See :meth:`styku_crypto.envelope.Envelope.encrypt_stream`."""
    ctx = encode_context(context)
    tenant_lp = encode_tenant(tenant)
    dc = check_data_class(data_class)
    header, commits, deks, keys = fresh_layers(store, tenant, tenant_lp, dc, SUITE_STREAM, ctx)
    pre = header[:PREFIX_LEN]
    version = keys[0].version

    def done(_: int) -> None:
        if _LOG.isEnabledFor(logging.DEBUG):
            _events.encrypted(tenant, dc, SUITE_STREAM, version)

    return EncryptingWriter(
        dst,
        header=header,
        key=_stream_key(deks, pre),
        context=_stream_context(pre, commits, tenant_lp, ctx),
        on_close=done,
    )


def _read_header(src: BinaryIO) -> Header:
    head = _read_exact(src, PREFIX_LEN)
    if len(head) == PREFIX_LEN:
        head += _read_exact(src, LAYER_LEN * head[3])
    header = parse_header(head)
    if header.suite != SUITE_STREAM:
        raise UnsupportedFormatError(
            "not a streamed token (suite 2): decrypt it with Envelope.decrypt"
        )
    return header


def _open(
    store: KeyStore, header: Header, tenant: str, tenant_lp: bytes, ctx: bytes
) -> tuple[bytes, bytes]:
    """(stream key, stream context) of a parsed streamed-token header."""
    deks = open_layers(store, header, tenant, tenant_lp, ctx)
    pre = prefix(header.suite, header.data_class)
    return _stream_key(deks, pre), _stream_context(pre, header.commitments, tenant_lp, ctx)


def decrypt_stream(
    store: KeyStore,
    src: BinaryIO,
    *,
    tenant: str,
    context: Mapping[str, str],
    data_class: DataClass | None = None,
) -> DecryptingReader:
    """See :meth:`styku_crypto.envelope.Envelope.decrypt_stream`."""
    try:
        ctx = encode_context(context)
        tenant_lp = encode_tenant(tenant)
        header = _read_header(src)
        check_class(header, data_class)
        key, sctx = _open(store, header, tenant, tenant_lp, ctx)
        decryptor = ChunkedDecryptor(key, sctx)
    except _FAILURES as exc:
        _events.failed(exc, tenant)
        raise
    return DecryptingReader(
        src,
        decryptor=decryptor,
        on_fail=lambda: _events.failed(DecryptionError(), tenant),
    )


def decrypt_token(
    store: KeyStore, token: Buffer, header: Header, tenant: str, tenant_lp: bytes, ctx: bytes
) -> bytes:
    """One-shot decryption of a streamed token; ``Envelope.decrypt`` calls it for suite 2.

    *tenant_lp* and *ctx* are the envelope's encoded tenant and context. Raises as
    ``Envelope.decrypt``; returns nothing unless the whole token authenticated.
    """
    view = memoryview(token).cast("B")
    key, sctx = _open(store, header, tenant, tenant_lp, ctx)
    dec = ChunkedDecryptor(key, sctx)
    out = bytearray()
    for start in range(header.length, len(view), IO_BLOCK):
        out += dec.update(view[start : start + IO_BLOCK])
    out += dec.finalize()
    return bytes(out)


def decrypt_range(
    store: KeyStore,
    src: BinaryIO | str | os.PathLike[str],
    offset: int,
    length: int,
    *,
    tenant: str,
    context: Mapping[str, str],
    data_class: DataClass | None = None,
) -> bytes:
    """See :meth:`styku_crypto.envelope.Envelope.decrypt_range`."""
    if isinstance(src, str | os.PathLike):
        with open(src, "rb") as fh:
            return decrypt_range(
                store,
                fh,
                offset,
                length,
                tenant=tenant,
                context=context,
                data_class=data_class,
            )
    if not isinstance(offset, int) or not isinstance(length, int) or offset < 0 or length < 0:
        raise InvalidInputError("offset and length must be non-negative integers")
    try:
        ctx = encode_context(context)
        tenant_lp = encode_tenant(tenant)
        start = src.tell()
        header = _read_header(src)
        check_class(header, data_class)
        key, sctx = _open(store, header, tenant, tenant_lp, ctx)
        reader = RangeReader(src, base=start + header.length, key=key, context=sctx)
        return reader.read(offset, length)
    except _FAILURES as exc:
        _events.failed(exc, tenant)
        raise


def _copy(src: BinaryIO, writer: Any) -> None:
    buf = bytearray(IO_BLOCK)
    view = memoryview(buf)
    while n := src.readinto(buf):  # type: ignore[attr-defined]
        writer.write(view[:n])


def encrypt_file(
    store: KeyStore,
    src_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    *,
    tenant: str,
    context: Mapping[str, str],
    data_class: DataClass,
) -> int:
    """See :meth:`styku_crypto.envelope.Envelope.encrypt_file`."""
    written = 0

    def produce(fh: BinaryIO) -> None:
        nonlocal written
        with open(src_path, "rb") as src:
            writer = encrypt_stream(
                store, fh, tenant=tenant, context=context, data_class=data_class
            )
            with writer:
                _copy(src, writer)
            written = writer.bytes_written

    publish(Path(dst_path), produce)
    return written


def decrypt_file(
    store: KeyStore,
    src_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    *,
    tenant: str,
    context: Mapping[str, str],
    data_class: DataClass | None = None,
) -> int:
    """See :meth:`styku_crypto.envelope.Envelope.decrypt_file`."""
    total = 0

    def produce(fh: BinaryIO) -> None:
        nonlocal total
        with open(src_path, "rb") as src:
            reader = decrypt_stream(
                store, src, tenant=tenant, context=context, data_class=data_class
            )
            buf = bytearray(IO_BLOCK)
            view = memoryview(buf)
            while n := reader.readinto(buf):
                fh.write(view[:n])
                total += n
            if not reader.complete:  # pragma: no cover - readinto raises first
                raise _failed()

    publish(Path(dst_path), produce)
    return total

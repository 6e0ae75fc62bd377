"""The chunked stream engine: any write/read chunking, boundary sizes, every tampering case."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.envelope import _stream
from styku_crypto.exceptions import DecryptionError, InvalidInputError

KEY = bytes(range(32))
CTX = b"engine-test-context"
C = _stream.CHUNK_SIZE
S = _stream.SEALED_CHUNK
H = _stream.C2SP_HEADER_SIZE
HEADER = b"HDR!"

BOUNDARY_SIZES = sorted({0, 1, C - 1, C, C + 1, 2 * C - 1, 2 * C, 2 * C + 1, 3 * C + 7})


def _seal(data: bytes, *, writes: list[int] | None = None, key: bytes = KEY) -> bytes:
    sink = io.BytesIO()
    with _stream.EncryptingWriter(sink, header=HEADER, key=key, context=CTX) as w:
        pos = 0
        for size in writes or []:
            w.write(data[pos : pos + size])
            pos += size
        w.write(data[pos:])
    return sink.getvalue()


def _open(sealed: bytes, *, reads: list[int] | None = None, key: bytes = KEY) -> bytes:
    src = io.BytesIO(sealed)
    assert src.read(len(HEADER)) == HEADER
    reader = _stream.DecryptingReader(src, decryptor=_stream.ChunkedDecryptor(key, CTX))
    out = bytearray()
    for size in reads or []:
        out += reader.read(size)
    out += reader.read()
    assert reader.complete
    return bytes(out)


@given(
    size=st.sampled_from(BOUNDARY_SIZES) | st.integers(min_value=0, max_value=5 * C),
    writes=st.lists(st.integers(min_value=0, max_value=3 * C), max_size=6),
    reads=st.lists(st.integers(min_value=0, max_value=3 * C), max_size=6),
)
def test_any_chunking_round_trips(size: int, writes: list[int], reads: list[int]) -> None:
    """Whatever the write and read sizes, the plaintext comes back intact, length exact."""
    data = os.urandom(size)
    sealed = _seal(data, writes=writes)
    assert len(sealed) == len(HEADER) + _stream.sealed_length(size)
    assert _open(sealed, reads=reads) == data


@pytest.mark.parametrize("bufsize", [5000, 2 * S, 3 * S + 1, _stream.IO_BLOCK + S])
@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_boundary_sizes_and_readinto(size: int, bufsize: int) -> None:
    """Sizes around chunk boundaries round-trip through readinto, small and large buffers."""
    data = os.urandom(size)
    sealed = _seal(data)
    src = io.BytesIO(sealed[len(HEADER) :])
    reader = _stream.DecryptingReader(src, decryptor=_stream.ChunkedDecryptor(KEY, CTX))
    buf = bytearray(bufsize)
    out = bytearray()
    while n := reader.readinto(buf):
        out += buf[:n]
    assert out == data
    assert _stream.plaintext_length(len(sealed) - len(HEADER)) == size


def _body(sealed: bytes) -> bytes:
    return sealed[len(HEADER) :]


def _tampered_cases(size: int) -> dict[str, bytes]:
    sealed = _seal(os.urandom(size))
    b = _body(sealed)
    head, chunks = b[:H], [b[i : i + S] for i in range(H, len(b), S)]
    cases = {
        "truncated_one_byte": b[:-1],
        "missing_final_chunk": head + b"".join(chunks[:-1]),
        "appended_garbage": b + b"\x00",
        "appended_chunk": b + chunks[-1],
        "header_only": head,
        "empty": b"",
    }
    if len(chunks) >= 3:
        cases["reordered"] = head + chunks[1] + chunks[0] + b"".join(chunks[2:])
        cases["duplicated"] = head + chunks[0] + chunks[0] + b"".join(chunks[2:])
        cases["dropped_middle"] = head + chunks[0] + b"".join(chunks[2:])
    return cases


@pytest.mark.parametrize(
    "case",
    [
        "truncated_one_byte",
        "missing_final_chunk",
        "appended_garbage",
        "appended_chunk",
        "header_only",
        "empty",
        "reordered",
        "duplicated",
        "dropped_middle",
    ],
)
def test_every_tampering_case_detected(case: str) -> None:
    """Truncation, missing final chunk, appended data, reordering and duplication all fail."""
    body = _tampered_cases(2 * C + 100)[case]
    with pytest.raises(DecryptionError):
        _open(HEADER + body)


@given(data=st.data())
def test_any_bit_flip_detected(data: st.DataObject) -> None:
    """Flipping any single bit of the payload (salt, commitment, chunk, tag) is detected."""
    size = data.draw(st.sampled_from([0, 5, C, C + 3]))
    body = bytearray(_body(_seal(os.urandom(size))))
    bit = data.draw(st.integers(min_value=0, max_value=len(body) * 8 - 1))
    body[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(DecryptionError):
        _open(HEADER + bytes(body))


def test_failure_is_sticky_and_prefix_is_authenticated() -> None:
    """A reader releases only authenticated chunks, then raises on every later read."""
    data = os.urandom(3 * C)
    body = bytearray(_body(_seal(data)))
    body[H + 2 * S + 3] ^= 1  # third chunk corrupted
    reader = _stream.DecryptingReader(
        io.BytesIO(bytes(body)), decryptor=_stream.ChunkedDecryptor(KEY, CTX)
    )
    got = bytearray()

    def drain() -> None:
        while piece := reader.read(1000):
            got.extend(piece)

    def drain_fast() -> None:
        buf = bytearray(4 * S)
        while n := reader2.readinto(buf):
            got2.extend(buf[:n])

    with pytest.raises(DecryptionError):
        drain()
    assert len(got) <= 2 * C
    assert data.startswith(bytes(got))
    for _ in range(3):
        with pytest.raises(DecryptionError):
            reader.read(1)
    assert not reader.complete
    reader2 = _stream.DecryptingReader(
        io.BytesIO(bytes(body)), decryptor=_stream.ChunkedDecryptor(KEY, CTX)
    )
    got2 = bytearray()
    with pytest.raises(DecryptionError):
        drain_fast()
    assert data.startswith(bytes(got2))
    assert len(got2) <= 2 * C
    with pytest.raises(DecryptionError):
        reader2.readinto(bytearray(4 * S))


def test_wrong_key_or_context_fails_before_any_plaintext() -> None:
    """The key commitment rejects a wrong key or context before releasing a byte."""
    sealed = _seal(os.urandom(3 * C))
    for key, ctx in ((bytes(32), CTX), (KEY, b"other")):
        reader = _stream.DecryptingReader(
            io.BytesIO(_body(sealed)), decryptor=_stream.ChunkedDecryptor(key, ctx)
        )
        with pytest.raises(DecryptionError):
            reader.read(1)


def test_aborted_writer_leaves_undecryptable_output() -> None:
    """A with-block that raises never writes the final chunk: the output cannot pass as complete."""
    sink = io.BytesIO()
    w = _stream.EncryptingWriter(sink, header=HEADER, key=KEY, context=CTX)

    def crash() -> None:
        with w:
            w.write(os.urandom(C + 10))
            raise RuntimeError("crash mid-stream")

    with pytest.raises(RuntimeError):
        crash()
    with pytest.raises(DecryptionError):
        _open(sink.getvalue())
    with pytest.raises(ValueError, match="closed"):
        w.write(b"x")


@given(
    size=st.integers(min_value=0, max_value=4 * C + 50),
    offset=st.integers(min_value=0, max_value=5 * C),
    length=st.integers(min_value=0, max_value=3 * C),
)
def test_range_reads_match_slices(size: int, offset: int, length: int) -> None:
    """Random access returns exactly the slice of the plaintext, clipped at the end."""
    data = os.urandom(size)
    reader = _stream.RangeReader(io.BytesIO(_seal(data)), base=len(HEADER), key=KEY, context=CTX)
    assert reader.length == size
    assert reader.read(offset, length) == data[offset : offset + length]


@pytest.mark.parametrize(
    "case",
    [
        "truncated_one_byte",
        "missing_final_chunk",
        "appended_garbage",
        "appended_chunk",
        "header_only",
        "empty",
    ],
)
def test_range_reader_authenticates_length(case: str) -> None:
    """Random access refuses truncated or extended objects even for a range at the start."""
    body = _tampered_cases(2 * C + 100)[case]
    with pytest.raises(DecryptionError):
        _stream.RangeReader(io.BytesIO(body), base=0, key=KEY, context=CTX).read(0, 10)


def test_range_reader_detects_swapped_chunks_in_range() -> None:
    """A range covering reordered chunks fails; negative offsets are input errors."""
    body = _tampered_cases(3 * C + 100)["reordered"]
    reader = _stream.RangeReader(io.BytesIO(body), base=0, key=KEY, context=CTX)
    with pytest.raises(DecryptionError):
        reader.read(0, 10)
    with pytest.raises(InvalidInputError):
        reader.read(-1, 10)


def test_engine_objects_refuse_pickling_and_hide_state() -> None:
    """Writers, readers and decryptors cannot be pickled; reprs show sizes only."""
    import pickle

    w = _stream.EncryptingWriter(io.BytesIO(), header=b"", key=KEY, context=CTX)
    r = _stream.DecryptingReader(io.BytesIO(), decryptor=_stream.ChunkedDecryptor(KEY, CTX))
    for obj in (w, r, _stream.ChunkedDecryptor(KEY, CTX), _stream.ChunkedEncryptor(KEY, CTX)):
        with pytest.raises(TypeError):
            pickle.dumps(obj)
    assert KEY.hex() not in repr(w) + repr(r)
    with pytest.raises(InvalidInputError):
        _stream.ChunkedEncryptor(bytes(20), CTX)


class _Trickle(io.RawIOBase):
    """A raw sink that accepts at most 1000 bytes per write call."""

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        chunk = bytes(memoryview(b)[:1000])
        self.data += chunk
        return len(chunk)


def test_partial_writes_of_raw_sinks_are_completed() -> None:
    """A destination that accepts few bytes per write still receives the whole token."""
    data = os.urandom(3 * C + 5)
    sink = _Trickle()
    with _stream.EncryptingWriter(sink, header=HEADER, key=KEY, context=CTX) as w:
        w.write(data)
    assert _open(bytes(sink.data)) == data

"""``envelope._output.WriteBehind`` (issue 15): early write-back never changes the bytes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from styku_crypto.envelope import _output


@settings(max_examples=40, deadline=None)
@given(pieces=st.lists(st.binary(min_size=0, max_size=3000), max_size=30))
def test_write_behind_writes_the_same_bytes_as_plain_writes(
    pieces: list[bytes], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Whatever the write sizes, the published file holds exactly the bytes written."""
    directory = tmp_path_factory.mktemp("wb")
    old = _output.WRITEBACK_STEP
    _output.WRITEBACK_STEP = 1000  # many write-back calls on small inputs
    try:

        def produce(fh: BinaryIO) -> None:
            for piece in pieces:
                assert fh.write(piece) == len(piece)

        _output.publish(directory / "out.bin", produce)
    finally:
        _output.WRITEBACK_STEP = old
    assert (directory / "out.bin").read_bytes() == b"".join(pieces)


def test_write_behind_on_a_pipe_is_a_pass_through(tmp_path: Path) -> None:
    """Where the kernel refuses ``posix_fadvise`` (a pipe), writing still works."""
    r, w = os.pipe()
    with os.fdopen(w, "wb") as fh, os.fdopen(r, "rb") as rh:
        old = _output.WRITEBACK_STEP
        _output.WRITEBACK_STEP = 4
        try:
            wb = _output.WriteBehind(fh)
            assert wb.write(b"0123456789") == 10
            wb.write(b"ab")
            wb.flush()
        finally:
            _output.WRITEBACK_STEP = old
        fh.close()
        assert rh.read() == b"0123456789ab"

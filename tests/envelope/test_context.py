"""The canonical encryption-context encoding is injective and decodable."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from styku_crypto.envelope._format import encode_context
from styku_crypto.exceptions import InvalidInputError

contexts = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=5)


def _decode(raw: bytes) -> dict[str, str]:
    """An independent decoder written from docs/format.md (u32 count, then u32-prefixed pairs)."""
    (count,) = struct.unpack_from(">I", raw, 0)
    pos = 4
    out: dict[str, str] = {}
    previous = None
    for _ in range(count):
        (klen,) = struct.unpack_from(">I", raw, pos)
        key = raw[pos + 4 : pos + 4 + klen]
        pos += 4 + klen
        (vlen,) = struct.unpack_from(">I", raw, pos)
        value = raw[pos + 4 : pos + 4 + vlen]
        pos += 4 + vlen
        assert previous is None or previous < key, "keys must be strictly sorted by bytes"
        previous = key
        out[key.decode("utf-8")] = value.decode("utf-8")
    assert pos == len(raw), "no trailing bytes"
    return out


@given(a=contexts)
def test_encoding_decodes_back(a: dict[str, str]) -> None:
    """Every context decodes back from its encoding, so the encoding is injective."""
    assert _decode(encode_context(a)) == a


@given(a=contexts, b=contexts)
def test_distinct_contexts_encode_distinctly(a: dict[str, str], b: dict[str, str]) -> None:
    """Two mappings encode equally exactly when they are equal."""
    assert (encode_context(a) == encode_context(b)) == (a == b)


@given(a=contexts)
def test_insertion_order_irrelevant(a: dict[str, str]) -> None:
    """The encoding ignores the mapping's insertion order."""
    assert encode_context(dict(reversed(list(a.items())))) == encode_context(a)


def test_classic_ambiguities() -> None:
    """Concatenation ambiguities that break naive encodings do not collide here."""
    pairs = [
        ({"ab": "c"}, {"a": "bc"}),
        ({"a": "b=c"}, {"a=b": "c"}),
        ({"a": "", "b": ""}, {"a": "b"}),
        ({}, {"": ""}),
        ({"k": "v\x00"}, {"k\x00": "v"}),
    ]
    for x, y in pairs:
        assert encode_context(x) != encode_context(y)
    assert encode_context({}) == b"\x00\x00\x00\x00"
    assert encode_context({"é": "1", "z": "2"}) == (
        b"\x00\x00\x00\x02" + b"\x00\x00\x00\x01z\x00\x00\x00\x012"
        b"\x00\x00\x00\x02\xc3\xa9\x00\x00\x00\x011"
    )


@given(
    st.dictionaries(
        st.text(max_size=40),
        st.text(max_size=200),
        max_size=8,
    )
)
def test_fast_encoder_matches_reference_encoder(context: dict[str, str]) -> None:
    """The hot-path context encoder gives byte-for-byte the reference encoder's output."""
    from styku_crypto.envelope._format import _encode_context

    try:
        expected = _encode_context(context)
    except InvalidInputError:
        with pytest.raises(InvalidInputError):
            encode_context(context)
        return
    assert encode_context(context) == expected

"""Golden vectors pin format v1; an independent decoder written from docs/format.md reads them.

``tests/vectors/envelope_v1.json`` holds a local root key, root-wrapped tenant keys, fixed
data keys and nonces, the tokens they produce (suites 1, 2 and 3, both data classes) and
expected-failure tokens, each with the error it must raise. ``independent_decoder.py``
decodes them from the spec alone; ``Envelope`` must agree with it on every vector.
Regenerate (only for a deliberate format change) with ``python -m tests.envelope.make_vectors``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from styku_crypto import exceptions
from styku_crypto.envelope import DataClass, Envelope
from tests._support import leaks
from tests._support.vectors import load_golden
from tests.envelope import independent_decoder as ind
from tests.envelope.make_vectors import NAME, build_store

SPEC = load_golden(NAME)


def _h(x: str) -> bytes:
    return bytes.fromhex(x)


@pytest.fixture(scope="module")
def golden_env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """An Envelope over a real SQLite store that holds the golden root-wrapped keys."""
    for k in SPEC["tenant_keys"]:
        leaks.register_secret(_h(k["secret"]))
    store = build_store(SPEC, tmp_path_factory.mktemp("golden"))
    yield Envelope(store)
    store.close()


def _token(entry: dict[str, Any]) -> bytes | str:
    return entry["text"] if "text" in entry else _h(entry["token"])


def _library_decrypt(env: Envelope, entry: dict[str, Any]) -> bytes:
    token = _token(entry)
    kwargs: dict[str, Any] = {"tenant": entry["tenant"], "context": entry["context"]}
    if "data_class" in entry:  # the class the reader requires
        kwargs["data_class"] = DataClass(entry["data_class"])
    if isinstance(token, str):
        return env.decrypt_text(token, **kwargs)
    return env.decrypt(token, **kwargs)


def _independent_decrypt(keys: ind.Keys, entry: dict[str, Any]) -> bytes:
    token = _token(entry)
    raw = ind.from_text(token) if isinstance(token, str) else token
    wanted = entry.get("data_class")
    return ind.decode(
        raw, tenant=entry["tenant"], context=entry["context"], keys=keys, data_class=wanted
    )


def test_vector_file_covers_the_spec() -> None:
    """Every suite and data class has a case; failures cover format, tamper, context, text."""
    kinds = {(c["suite"], c["data_class"]) for c in SPEC["cases"]}
    assert kinds == {(s, d) for s in (1, 2, 3) for d in (1, 2)}
    errors = {f["error"] for f in SPEC["failures"]}
    assert errors == {"UnsupportedFormatError", "DecryptionError", "KeyNotFoundError"}
    assert any("text" in f for f in SPEC["failures"])
    assert all(re.fullmatch(r"tk_[0-9a-f]{16}", k["key_id"]) for k in SPEC["tenant_keys"])
    assert all(c["text"].startswith("stk1.") for c in SPEC["cases"])


def test_golden_tokens_are_reproduced(golden_env: Envelope) -> None:
    """The private deterministic hook reproduces every suite 1/3 golden token byte for byte."""
    store = golden_env.store
    for case in SPEC["cases"]:
        if not case["reproducible"]:
            continue
        for purpose, version in case["primary"]:
            assert store._tenant_key(case["tenant"], purpose).version == version
        token = golden_env._encrypt_from_parts(
            _h(case["plaintext"]),
            tenant=case["tenant"],
            context=case["context"],
            data_class=DataClass(case["data_class"]),
            deks=[_h(d) for d in case["deks"]],
            nonces=None if case["nonces"] is None else [_h(n) for n in case["nonces"]],
        )
        assert token.hex() == case["token"], case["name"]


def test_stream_vectors_carry_the_golden_data_keys(golden_env: Envelope) -> None:
    """Suite-2 cases (random Cobblestone salt) still pin the layers: same header bytes."""
    from styku_crypto.envelope._format import SUITE_STREAM, encode_context

    for case in SPEC["cases"]:
        if case["suite"] != SUITE_STREAM:
            continue
        tlp = golden_env._tenant_lp(case["tenant"])
        header, _, _, _ = golden_env._fresh_layers(
            case["tenant"],
            tlp,
            DataClass(case["data_class"]),
            SUITE_STREAM,
            encode_context(case["context"]),
            [_h(d) for d in case["deks"]],
        )
        assert _h(case["token"])[: len(header)] == header, case["name"]


@pytest.mark.parametrize("case", SPEC["cases"], ids=lambda c: c["name"])
def test_library_decrypts_every_case(golden_env: Envelope, case: dict[str, Any]) -> None:
    """Envelope.decrypt (binary and text, with the right data_class) reads every golden token."""
    pt = _h(case["plaintext"])
    ctx, tenant, dc = case["context"], case["tenant"], DataClass(case["data_class"])
    assert golden_env.decrypt(_h(case["token"]), tenant=tenant, context=ctx, data_class=dc) == pt
    assert golden_env.decrypt_text(case["text"], tenant=tenant, context=ctx) == pt
    info = Envelope.inspect(case["text"])
    assert (info.suite, info.data_class, info.plaintext_length) == (case["suite"], dc, len(pt))


@pytest.mark.parametrize("case", SPEC["cases"], ids=lambda c: c["name"])
def test_independent_decoder_reads_every_case(case: dict[str, Any]) -> None:
    """The decoder built from docs/format.md alone decrypts every golden token (text too)."""
    keys = ind.Keys(SPEC)
    for token in (_h(case["token"]), ind.from_text(case["text"])):
        out = ind.decode(token, tenant=case["tenant"], context=case["context"], keys=keys)
        assert out == _h(case["plaintext"])


@pytest.mark.parametrize("failure", SPEC["failures"], ids=lambda f: f["name"])
def test_expected_failures_raise_their_error(golden_env: Envelope, failure: dict[str, Any]) -> None:
    """Each failure vector raises exactly its named error, in the library and the decoder."""
    lib_error = getattr(exceptions, failure["error"])
    with pytest.raises(lib_error) as caught:
        _library_decrypt(golden_env, failure)
    # A DecryptionError must not be a subclass surprise (e.g. KeyNotFoundError is distinct).
    assert type(caught.value).__name__ == failure["error"]
    with pytest.raises(getattr(ind, failure["error"])):
        _independent_decrypt(ind.Keys(SPEC), failure)


def test_independent_decoder_reads_fresh_tokens(golden_env: Envelope) -> None:
    """Random (non-golden) tokens of every suite are readable by the independent decoder."""
    import io

    from styku_crypto.envelope import DataKeyCache

    keys = ind.Keys(SPEC)
    ctx = {"a": "b"}
    cached = Envelope(golden_env.store, data_key_cache=DataKeyCache())
    for dc in DataClass:
        tokens = [
            golden_env.encrypt(b"fresh", tenant="acme", context=ctx, data_class=dc),
            cached.encrypt(b"fresh", tenant="acme", context=ctx, data_class=dc),
        ]
        sink = io.BytesIO()
        with golden_env.encrypt_stream(sink, tenant="acme", context=ctx, data_class=dc) as w:
            w.write(b"fresh")
        tokens.append(sink.getvalue())
        for token in tokens:
            assert ind.decode(token, tenant="acme", context=ctx, keys=keys) == b"fresh"


def test_independent_decoder_imports_no_library_code() -> None:
    """The independent decoder depends on cryptography and the stdlib only."""
    source = Path(ind.__file__).read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        assert not any(n.startswith(("styku_crypto", "tests")) for n in names), names

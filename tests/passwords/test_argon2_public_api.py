"""Issue 20: the Argon2 core is driven through argon2-cffi's public API only."""

from __future__ import annotations

import ast
from pathlib import Path

import argon2
from hypothesis import given, settings
from hypothesis import strategies as st

from styku_crypto.passwords._argon2 import ARGON2D, ARGON2I, ARGON2ID, argon2_raw
from styku_crypto.passwords._buffers import WorkBufferPool

PACKAGE = Path(__file__).parents[2] / "styku_crypto"


def test_no_module_imports_the_bindings() -> None:
    """No module (at any level, even inside a function) imports argon2-cffi-bindings, which
    the project does not declare; argon2-cffi, which it declares, is what is used."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("_argon2_cffi")]
    assert offenders == []
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    assert '"argon2-cffi>=' in pyproject


_TYPES = {ARGON2ID: argon2.Type.ID, ARGON2I: argon2.Type.I, ARGON2D: argon2.Type.D}
_POOL = WorkBufferPool(max_buffers=1, idle_seconds=0)


@settings(max_examples=40, deadline=None)
@given(
    password=st.binary(max_size=64),
    salt=st.binary(min_size=8, max_size=32),
    memory=st.integers(8, 256),
    time_cost=st.integers(1, 3),
    lanes=st.integers(1, 4),
    variant=st.sampled_from([ARGON2ID, ARGON2I, ARGON2D]),
    pooled=st.booleans(),
)
def test_same_bytes_as_argon2_cffi(
    password: bytes,
    salt: bytes,
    memory: int,
    time_cost: int,
    lanes: int,
    variant: int,
    pooled: bool,
) -> None:
    """The pooled fast path through argon2.low_level.core yields hash_secret_raw's bytes."""
    memory = max(memory, 8 * lanes)
    ours = argon2_raw(
        password,
        salt=salt,
        memory_kib=memory,
        time_cost=time_cost,
        lanes=lanes,
        hash_len=32,
        variant=variant,
        version=0x13,
        pool=_POOL if pooled else None,
    )
    theirs = argon2.low_level.hash_secret_raw(
        password, salt, time_cost, memory, lanes, 32, _TYPES[variant]
    )
    assert ours == theirs

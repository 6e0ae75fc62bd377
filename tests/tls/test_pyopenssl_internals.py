"""The pyOpenSSL internals shim fails loudly when pyOpenSSL moves (issue 20)."""

from __future__ import annotations

import OpenSSL
import pytest
from OpenSSL import SSL

from styku_crypto.exceptions import PolicyViolationError
from styku_crypto.tls import _pyopenssl_internals as shim


def test_installed_pyopenssl_is_in_the_tested_range_and_internals_exist() -> None:
    """This fails on a pyOpenSSL upgrade outside the tested majors or when an internal moves.

    If it fails: check ``OpenSSL._util.lib`` still exposes the functions in
    ``shim._FUNCTIONS``, that ``Context._context`` and ``Connection._ssl`` still
    hold the raw pointers, then widen ``TESTED_MAJORS``.
    """
    major = int(OpenSSL.__version__.split(".")[0])
    assert major in shim.TESTED_MAJORS, OpenSSL.__version__
    lib = shim.internals()
    for name in shim._FUNCTIONS:
        assert callable(getattr(lib, name)), name


def test_groups_are_really_set() -> None:
    """A list OpenSSL knows is accepted; an unknown group is refused (return codes checked)."""
    ctx = SSL.Context(SSL.TLS_METHOD)
    assert shim.set_groups_list(ctx, "X25519:P-256")
    assert not shim.group_list_accepted("no-such-group")


def test_untested_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pyOpenSSL major outside the tested range raises, naming the version, never guesses."""
    shim.internals.cache_clear()
    monkeypatch.setattr(OpenSSL, "__version__", "99.0.0")
    try:
        with pytest.raises(PolicyViolationError, match=r"pyOpenSSL 99\.0\.0"):
            shim.internals()
    finally:
        monkeypatch.undo()
        shim.internals.cache_clear()


def test_moved_internal_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A binding function that is gone is reported by name instead of failing later."""
    shim.internals.cache_clear()
    monkeypatch.setattr(shim, "_FUNCTIONS", (*shim._FUNCTIONS, "SSL_renamed_in_a_future_release"))
    try:
        with pytest.raises(PolicyViolationError, match="SSL_renamed_in_a_future_release"):
            shim.internals()
    finally:
        monkeypatch.undo()
        shim.internals.cache_clear()


def test_only_the_shim_touches_pyopenssl_internals() -> None:
    """No other module of styku_crypto names ``OpenSSL._util`` or the raw pointers."""
    from pathlib import Path

    root = Path(shim.__file__).resolve().parents[1]
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.name != "_pyopenssl_internals.py"
        and any(
            marker in path.read_text(encoding="utf-8")
            for marker in ("OpenSSL._util", "._context)", "._context,", "conn._ssl")
        )
    ]
    assert offenders == []

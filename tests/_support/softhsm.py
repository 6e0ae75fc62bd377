"""A REAL SoftHSM2 token for the tests, initialised in a temporary directory.

The token lives in its own directory named by a private ``softhsm2.conf``; the
``SOFTHSM2_CONF`` environment variable points the library at it (SoftHSM2 reads
it when the module is first initialised in a process, so one configuration is
used per test session). The Debian ``softhsm2`` package provides
``softhsm2-util`` and ``/usr/lib/softhsm/libsofthsm2.so``
(``scripts/system-deps.sh`` installs it).

Use it from a ``conftest.py``::

    from tests._support.softhsm import softhsm_token  # noqa: F401
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["SOFTHSM_MODULE", "SoftHSMToken", "init_token", "softhsm_token"]

SOFTHSM_MODULE = os.environ.get("STYKU_SOFTHSM_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
_UTIL = shutil.which("softhsm2-util") or "/usr/bin/softhsm2-util"

# One directory and config per process: SoftHSM2 reads SOFTHSM2_CONF once.
_state: dict[str, Path] = {}


@dataclass(frozen=True)
class SoftHSMToken:
    """An initialised token: where the module is, its label and its user PIN."""

    module: str
    label: str
    pin: str
    conf: Path


def _conf() -> Path:
    if "conf" not in _state:
        base = Path(tempfile.mkdtemp(prefix="styku-softhsm-"))
        tokens = base / "tokens"
        tokens.mkdir()
        conf = base / "softhsm2.conf"
        conf.write_text(
            f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n",
            encoding="utf-8",
        )
        _state["base"] = base
        _state["conf"] = conf
        os.environ["SOFTHSM2_CONF"] = str(conf)
    return _state["conf"]


def init_token(label: str | None = None) -> SoftHSMToken:
    """Initialise a new token (fresh label and PINs) in the session's token directory."""
    if not os.path.exists(SOFTHSM_MODULE) or not os.path.exists(_UTIL):
        pytest.fail(
            f"SoftHSM2 missing ({SOFTHSM_MODULE}, {_UTIL}); run scripts/system-deps.sh "
            "(it must be present; not skipping)"
        )
    conf = _conf()
    label = label or f"styku-{secrets.token_hex(4)}"
    pin = secrets.token_hex(8)
    so_pin = secrets.token_hex(8)
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    proc = subprocess.run(
        [_UTIL, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"softhsm2-util failed: {proc.stderr.strip()}")
    return SoftHSMToken(module=SOFTHSM_MODULE, label=label, pin=pin, conf=conf)


# The session's token, shared by every conftest that imports the fixture: a PKCS#11
# module loaded once per process does not see tokens initialised after it.
_shared: list[SoftHSMToken] = []


@pytest.fixture(scope="session")
def softhsm_token() -> Iterator[SoftHSMToken]:
    """One SoftHSM2 token for the whole session (its directory removed at the end)."""
    if not _shared:
        from tests._support import leaks

        _shared.append(init_token())
        leaks.register_secret(_shared[0].pin)
    token = _shared[0]
    try:
        yield token
    finally:
        base = _state.get("base")
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)

"""styku_crypto.testing writes private keys owner-only and refuses unknown key types."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.testing import CertificateFactory


def test_written_key_file_is_owner_only_from_creation(tmp_path: Path) -> None:
    """write() creates the key 0600 even under a permissive umask, and leaves no temp file."""
    issued = CertificateFactory().good()
    old = os.umask(0o000)
    try:
        certfile, keyfile = issued.write(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([certfile.name, keyfile.name])


def test_unknown_key_type_is_refused() -> None:
    """An unknown CA key type raises InvalidInputError instead of silently using ECDSA."""
    with pytest.raises(InvalidInputError):
        CertificateFactory(key_type="dsa")

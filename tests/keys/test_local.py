"""LocalRootKey: file creation, permissions, wrap binding."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from styku_crypto.exceptions import DecryptionError, KeyStoreError
from styku_crypto.keys import LocalRootKey
from styku_crypto.keys._local import ROOT_KEY_ENV


def test_created_with_mode_0600(tmp_path: Path) -> None:
    """A new root key file is 32 bytes with mode 0600."""
    root = LocalRootKey(tmp_path / "sub" / "root.key")
    st = (tmp_path / "sub" / "root.key").stat()
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_size == 32
    assert root.provider_id.startswith("local:")
    assert len(root.provider_id) == len("local:") + 16
    assert not [p for p in (tmp_path / "sub").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_refuses_readable_file(tmp_path: Path, mode: int) -> None:
    """An existing root key file readable by group or others is refused."""
    path = tmp_path / "root.key"
    LocalRootKey(path)
    path.chmod(mode)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        LocalRootKey(path)


def test_refuses_malformed_and_missing(tmp_path: Path) -> None:
    """A root key of the wrong length, or missing with create=False, is refused."""
    path = tmp_path / "root.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"short")
    os.close(fd)
    with pytest.raises(KeyStoreError, match="malformed"):
        LocalRootKey(path)
    with pytest.raises(KeyStoreError, match="does not exist"):
        LocalRootKey(tmp_path / "nope.key", create=False)


def test_reopen_same_key(tmp_path: Path) -> None:
    """Reopening the file yields the same provider id and unwraps earlier wraps."""
    a = LocalRootKey(tmp_path / "root.key")
    wrapped = a.wrap(b"\x01" * 32, aad=b"t")
    b = LocalRootKey(tmp_path / "root.key")
    assert a.provider_id == b.provider_id
    assert b.unwrap(wrapped, aad=b"t") == b"\x01" * 32


def test_concurrent_creation_agrees(tmp_path: Path) -> None:
    """Threads racing to create the file all end up with the same key."""
    ids: list[str] = []

    def make() -> None:
        ids.append(LocalRootKey(tmp_path / "root.key").provider_id)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(ids) == 8
    assert len(set(ids)) == 1


def test_env_var_overrides_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """for_store uses STYKU_CRYPTO_ROOT_KEY_FILE when set, else <store>.rootkey."""
    root = LocalRootKey.for_store(tmp_path / "s.db")
    assert root.path == tmp_path / "s.db.rootkey"
    monkeypatch.setenv(ROOT_KEY_ENV, str(tmp_path / "elsewhere.key"))
    root2 = LocalRootKey.for_store(tmp_path / "s.db")
    assert root2.path == tmp_path / "elsewhere.key"
    assert (tmp_path / "elsewhere.key").exists()


def test_wrap_tamper_and_aad(tmp_path: Path) -> None:
    """Every bit flip of a wrap, a truncation and a different AAD raise DecryptionError."""
    root = LocalRootKey(tmp_path / "root.key")
    wrapped = root.wrap(b"\x02" * 32, aad=b"tenant")
    with pytest.raises(DecryptionError):
        root.unwrap(wrapped, aad=b"tenanT")
    for i in range(len(wrapped) * 8):
        bad = bytearray(wrapped)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(DecryptionError):
            root.unwrap(bytes(bad), aad=b"tenant")
    for n in range(len(wrapped)):
        with pytest.raises(DecryptionError):
            root.unwrap(wrapped[:n], aad=b"tenant")

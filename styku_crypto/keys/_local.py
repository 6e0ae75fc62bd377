"""A root key held in a local file (development and single-host use only)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from styku_crypto._fs import fsync_dir
from styku_crypto.exceptions import DecryptionError, KeyStoreError, RootKeyUnavailableError
from styku_crypto.keys._provider import RootKeyProvider
from styku_crypto.keys._schemes import register_root_scheme

__all__ = ["ROOT_KEY_ENV", "LocalRootKey"]

#: Environment variable naming the root key file; overrides the default path.
ROOT_KEY_ENV = "STYKU_CRYPTO_ROOT_KEY_FILE"

_KEY_LEN = 32
_WRAP_VERSION = b"\x01"
_NONCE_LEN = 12
_AAD_PREFIX = b"styku-crypto/local-root/v1\x00"
_FPR_DOMAIN = b"styku-crypto/local-root/fingerprint/v1\x00"


class LocalRootKey(RootKeyProvider):
    """A 32-byte AES-256-GCM root key in a file with mode 0600.

    .. danger::
       Development and single-host use only. The root key sits on the same disk
       as the key store, so anyone who can read both can decrypt everything.
       Production deployments use an HSM (PKCS#11) or a cloud KMS provider.

    The file is created atomically (written to a temporary file, fsynced, then
    hard-linked into place so an existing file is never overwritten) with mode
    0600. An existing file that is group- or world-accessible, or is not exactly
    32 bytes, is refused with :class:`~styku_crypto.exceptions.KeyStoreError`.

    Wrap format: ``0x01 || nonce(12) || AES-256-GCM(key) || tag(16)`` with the
    caller's associated data behind a fixed domain prefix.
    """

    __slots__ = ("_aead", "_lock", "_path", "_provider_id")

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        """Load the root key at *path*, creating it when absent and *create* is true.

        Raises:
            KeyStoreError: the file is unsafe (permissions), malformed, or absent
                and *create* is false.
        """
        self._path = Path(path)
        self._lock = threading.Lock()
        key = _load_or_create(self._path, create=create)
        digest = hashlib.sha256(_FPR_DOMAIN + key).digest()
        self._provider_id = "local:" + digest[:8].hex()
        self._aead = AESGCM(key)
        del key

    @classmethod
    def for_store(cls, store_path: str | os.PathLike[str], *, create: bool = True) -> LocalRootKey:
        """Root key of a SQLite store: ``$STYKU_CRYPTO_ROOT_KEY_FILE`` else ``<store>.rootkey``."""
        env = os.environ.get(ROOT_KEY_ENV)
        path = Path(env) if env else Path(os.fspath(store_path) + ".rootkey")
        return cls(path, create=create)

    @property
    def provider_id(self) -> str:
        """``local:`` and the first 8 bytes of a domain-separated SHA-256 of the key, hex."""
        return self._provider_id

    @property
    def path(self) -> Path:
        """Where the key file lives."""
        return self._path

    def wrap(self, key: bytes, *, aad: bytes) -> bytes:
        """Wrap *key* under the root key, bound to *aad* (AES-256-GCM, random nonce)."""
        nonce = os.urandom(_NONCE_LEN)
        return _WRAP_VERSION + nonce + self._aead.encrypt(nonce, key, _AAD_PREFIX + aad)

    def unwrap(self, wrapped: bytes, *, aad: bytes) -> bytes:
        """Unwrap *wrapped*; :class:`DecryptionError` if it or *aad* does not authenticate."""
        if len(wrapped) < 1 + _NONCE_LEN + 16 or wrapped[:1] != _WRAP_VERSION:
            raise DecryptionError()
        try:
            return self._aead.decrypt(
                wrapped[1 : 1 + _NONCE_LEN], wrapped[1 + _NONCE_LEN :], _AAD_PREFIX + aad
            )
        except InvalidTag:
            raise DecryptionError() from None

    def close(self) -> None:
        """Nothing to release; the key object is dropped with this provider."""


def _check_mode(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise KeyStoreError(f"root key file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise KeyStoreError(
            f"refusing root key file {path}: it is group- or world-accessible "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it"
        )


def _load_or_create(path: Path, *, create: bool) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        if not create:
            raise KeyStoreError(f"root key file {path} does not exist") from None
        try:
            return _create(path)
        except OSError as exc:
            raise KeyStoreError(
                f"cannot create root key file {path}: {exc.strerror or type(exc).__name__}"
            ) from None
    except OSError as exc:
        raise RootKeyUnavailableError(f"cannot open root key file {path}: {exc.strerror}") from None
    try:
        _check_mode(path, os.fstat(fd))
        data = os.read(fd, _KEY_LEN + 1)
    finally:
        os.close(fd)
    if len(data) != _KEY_LEN:
        raise KeyStoreError(f"root key file {path} is malformed (expected {_KEY_LEN} bytes)")
    return data


def _create(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(_KEY_LEN)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            if os.write(fd, key) != _KEY_LEN:
                raise OSError(errno.EIO, "short write of the root key file")
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # never leave a stray copy of the key behind
        raise
    try:
        os.link(tmp, path)  # atomic; never replaces an existing key
    except FileExistsError:
        # Another process created it first: use theirs.
        return _load_or_create(path, create=False)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(path.parent)
    return key


def _from_spec(spec: str) -> LocalRootKey:
    """``local:PATH``: an existing root-key file (a spec never creates one)."""
    return LocalRootKey(spec[len("local:") :], create=False)


register_root_scheme("local", _from_spec)

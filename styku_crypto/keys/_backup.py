"""Authenticated key-store backups to several destinations, and restores.

A backup is three files under one backup id (``20261127T031500Z-1a2b3c4d``)::

    <destination>/<backup id>/snapshot.json   the whole store: tenants, key versions
                                              (still WRAPPED under the root providers),
                                              shred list, metadata
    <destination>/<backup id>/canaries.json   one canary per live key version (see drill)
    <destination>/<backup id>/manifest.json   format, id, time, provider ids, shred list,
                                              SHA-256 and size of each file above,
                                              the wrapped MAC key(s) and the MAC

Authentication: every backup draws a fresh random 32-byte MAC key, wraps it
under *every* root provider of the store (associated data binds the backup
id), and puts the wraps in the manifest. The MAC is HMAC-SHA256 over the
canonical JSON of the manifest without its ``mac`` field; the manifest carries
the SHA-256 of every other file. A restore unwraps the MAC key with the
configured root provider(s) (failing over on unavailability), checks the MAC
with :func:`hmac.compare_digest`, then every file's size and SHA-256. A backup
that was altered, truncated, mixed with another's files, or made under another
root fails with :class:`~styku_crypto.exceptions.BackupError` before anything
is imported. Nobody without access to a root provider can forge one.

Atomicity: a directory destination receives the files in a hidden temporary
directory (each file fsynced, then the directory), which is renamed into place
and the parent fsynced; a crash leaves either no backup or a complete one, and
readers ignore hidden directories. An S3 destination receives the data files
first and ``manifest.json`` last; a backup without a manifest is incomplete and
never listed.

Shred list rule (crypto-shredding wins): every backup records the store's
complete shred list in its (authenticated) manifest. A restore removes the
keys of every tenant named in the shred list of the backup itself, of every
other *verifying* backup found at the same source (older or newer), of the
target store, of any shred-list files the operator passes, and of every signed
tombstone at the source: a shred writes ``tombstones/<tenant>.json`` to every
destination the store was backed up to *before* it commits (and every backup
writes the tombstones that are missing), so a tenant shredded after the newest
backup stays shredded even when that backup is lost or corrupted. A tombstone
that does not authenticate stops the restore (no silent fallback).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from styku_crypto._extras import require
from styku_crypto.events import emit
from styku_crypto.exceptions import (
    BackupError,
    DecryptionError,
    InvalidInputError,
    KeyDestroyedError,
    KeyStoreError,
    MetadataIntegrityError,
    RootKeyUnavailableError,
)
from styku_crypto.keys._backend import KeyRecord, StoreSnapshot, TenantRecord
from styku_crypto.keys._provider import RootKeyProvider
from styku_crypto.keys._schemes import destination_from_url, register_destination_scheme
from styku_crypto.keys._store import SHRED_HOOKS, KeyStore

__all__ = [
    "BACKUP_FORMAT",
    "SHRED_LIST_FORMAT",
    "TOMBSTONE_FORMAT",
    "BackupResult",
    "BackupDestination",
    "DirectoryDestination",
    "RestoreResult",
    "S3Destination",
    "VerifiedBackup",
    "backup",
    "destination",
    "load_backup",
    "restore",
]

BACKUP_FORMAT = "styku-keys-backup/1"
#: The versioned shred-list file format (``keys list --shred-list``, ``--shred-list FILE``).
SHRED_LIST_FORMAT = "styku-keys-shred-list/1"
_MAC_AAD = b"styku-crypto/v1/backup-mac\x00"
_CANARY_LABEL = b"styku-crypto/v1/backup-canary"
_CANARY_AAD = b"styku-crypto/v1/backup-canary\x00"
_FILES = ("snapshot.json", "canaries.json")
_MAX_FILE = 256 * 1024 * 1024
#: Largest manifest, tombstone or shred-list file accepted (bytes).
MAX_SMALL_FILE = 4 * 1024 * 1024
_TOMBSTONES = "tombstones"
#: Format of the signed shred tombstones written to backup destinations.
TOMBSTONE_FORMAT = "styku-keys-tombstone/1"
_TOMBSTONE_INFO = b"styku-crypto/v1/tombstone-mac"
_DESTINATIONS_RECORD = "backup/destinations"
#: Deepest JSON nesting accepted in any backup file (the real formats use at most 5).
MAX_DEPTH = 16


# -- destinations ------------------------------------------------------------


class BackupDestination:
    """Where backups are written and read. Subclasses: directory, S3 bucket."""

    @staticmethod
    def from_url(url: str | os.PathLike[str]) -> BackupDestination:
        """The destination a URL names: a directory path, ``file:///path``,
        ``s3://bucket/prefix``, or any scheme added with
        :func:`~styku_crypto.keys.register_destination_scheme`.

        Raises:
            InvalidInputError: empty, or an unknown scheme (the known ones are listed).
        """
        return destination_from_url(os.fspath(url))

    def describe(self) -> str:
        """A non-secret name of the destination, for messages and events."""
        raise NotImplementedError

    def write_backup(self, backup_id: str, files: dict[str, bytes]) -> None:
        """Store *files* of *backup_id* atomically (``manifest.json`` visible last)."""
        raise NotImplementedError

    def list_backups(self) -> list[str]:
        """Ids of complete backups (with a manifest), oldest first."""
        raise NotImplementedError

    def read_file(self, backup_id: str, name: str) -> bytes:
        """One file of one backup."""
        raise NotImplementedError

    def write_tombstone(self, tenant: str, data: bytes) -> None:
        """Store the shred tombstone of *tenant* atomically (``tombstones/<tenant>.json``)."""
        raise NotImplementedError

    def list_tombstones(self) -> list[str]:
        """Tenants with a tombstone file (unverified names)."""
        raise NotImplementedError

    def read_tombstone(self, tenant: str) -> bytes:
        """The tombstone file of *tenant* (bounded size)."""
        raise NotImplementedError

    def tombstone_name(self, tenant: str) -> str:
        """Where the tombstone of *tenant* lives, for messages."""
        return f"{self.describe()}/{_TOMBSTONES}/{tenant}.json"

    def orphans(self, *, min_age: float = 3600.0) -> list[str]:
        """Incomplete backups older than *min_age* seconds: files without a manifest.

        A failed or killed upload leaves them (``snapshot.json`` holds wrapped
        keys, so they are not harmless); they are never listed as backups. A
        younger one may be a backup being written right now, so it is left alone.
        """
        raise NotImplementedError

    def remove_orphan(self, name: str) -> None:
        """Delete one incomplete backup listed by :meth:`orphans` (never one with a manifest)."""
        raise NotImplementedError


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirectoryDestination(BackupDestination):
    """Backups as sub-directories of a local (or mounted) directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        """The directory path."""
        return str(self.path)

    def write_backup(self, backup_id: str, files: dict[str, bytes]) -> None:
        """Write into a hidden temp dir, fsync everything, rename into place, fsync parent."""
        self.path.mkdir(parents=True, exist_ok=True)
        final = self.path / backup_id
        if final.exists():
            raise BackupError(f"backup {backup_id} already exists at {self.path}")
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{backup_id}-", dir=self.path))
        try:
            for name in sorted(files, key=lambda n: n == "manifest.json"):
                fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(files[name])
                    fh.flush()
                    os.fsync(fh.fileno())
            _fsync_dir(tmp)
            os.rename(tmp, final)
            _fsync_dir(self.path)
        except BaseException:
            for child in tmp.glob("*"):
                child.unlink(missing_ok=True)
            if tmp.exists():
                tmp.rmdir()
            raise

    def list_backups(self) -> list[str]:
        """Complete backups: visible sub-directories holding a manifest."""
        try:
            if not self.path.is_dir():
                return []
            return sorted(
                p.name
                for p in self.path.iterdir()
                if not p.name.startswith(".")
                and p.name != _TOMBSTONES
                and (p / "manifest.json").is_file()
            )
        except OSError as exc:
            raise BackupError(
                f"cannot list {self.path}: {exc.strerror or type(exc).__name__}"
            ) from None

    def orphans(self, *, min_age: float = 3600.0) -> list[str]:
        """Sub-directories without a manifest (``.tmp-*`` ones included), older than *min_age*."""
        found = []
        try:
            if not self.path.is_dir():
                return []
            now = time.time()
            for p in self.path.iterdir():
                if (
                    p.is_dir()
                    and not p.is_symlink()
                    and not (p / "manifest.json").exists()
                    and now - p.stat().st_mtime >= min_age
                ):
                    found.append(p.name)
        except OSError as exc:
            raise BackupError(
                f"cannot list {self.path}: {exc.strerror or type(exc).__name__}"
            ) from None
        return sorted(found)

    def remove_orphan(self, name: str) -> None:
        """Delete the files of one incomplete backup directory, then the directory."""
        target = self.path / name
        if "/" in name or name in ("", ".", "..") or (target / "manifest.json").exists():
            raise BackupError(f"{target} is not an incomplete backup")
        try:
            for child in target.iterdir():
                child.unlink()
            target.rmdir()
            _fsync_dir(self.path)
        except OSError as exc:
            raise BackupError(
                f"cannot remove {target}: {exc.strerror or type(exc).__name__}"
            ) from None

    def read_file(self, backup_id: str, name: str) -> bytes:
        """Read one file (bounded size)."""
        path = self.path / backup_id / name
        try:
            if path.stat().st_size > _MAX_FILE:
                raise BackupError(f"{path} is too large to be a backup file")
            return path.read_bytes()
        except OSError as exc:
            raise BackupError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None

    def write_tombstone(self, tenant: str, data: bytes) -> None:
        """Temp file, fsync, rename, fsync the directory."""
        folder = self.path / _TOMBSTONES
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{tenant}.", suffix=".tmp", dir=folder)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, folder / f"{tenant}.json")
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            _fsync_dir(folder)
        except OSError as exc:
            raise BackupError(
                f"cannot write {self.tombstone_name(tenant)}: {exc.strerror or type(exc).__name__}"
            ) from None

    def list_tombstones(self) -> list[str]:
        """Names of ``tombstones/*.json`` (hidden temp files ignored)."""
        folder = self.path / _TOMBSTONES
        try:
            if not folder.is_dir():
                return []
            return sorted(
                p.name[: -len(".json")]
                for p in folder.iterdir()
                if p.name.endswith(".json") and not p.name.startswith(".")
            )
        except OSError as exc:
            raise BackupError(
                f"cannot list {folder}: {exc.strerror or type(exc).__name__}"
            ) from None

    def read_tombstone(self, tenant: str) -> bytes:
        """Read one tombstone (at most :data:`MAX_SMALL_FILE` bytes)."""
        path = self.path / _TOMBSTONES / f"{tenant}.json"
        try:
            with open(path, "rb") as fh:
                return fh.read(MAX_SMALL_FILE + 1)
        except OSError as exc:
            raise BackupError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None


class S3Destination(BackupDestination):
    """Backups as objects ``<prefix>/<backup id>/<file>`` in an S3-compatible bucket.

    Needs the ``aws`` extra. The endpoint comes from *endpoint_url*, else from
    boto3's configuration (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        client: Any = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not bucket:
            raise InvalidInputError("an S3 destination needs a bucket name")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._endpoint = endpoint_url
        self._client = client
        self._client_kwargs = dict(client_kwargs or {})

    def describe(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def __repr__(self) -> str:
        return f"<S3Destination {self.describe()}>"

    def __reduce__(self) -> str | tuple[object, ...]:
        # client_kwargs may carry credentials (aws_secret_access_key, session tokens).
        raise TypeError("S3Destination may hold credentials and cannot be pickled")

    def _s3(self) -> Any:
        if self._client is None:
            boto3 = require("boto3", extra="aws")
            config = require("botocore.config", extra="aws").Config(
                connect_timeout=5, read_timeout=30, retries={"max_attempts": 3}
            )
            kwargs: dict[str, Any] = {"config": config, **self._client_kwargs}
            if self._endpoint:
                kwargs["endpoint_url"] = self._endpoint
            exceptions = require("botocore.exceptions", extra="aws")
            try:
                self._client = boto3.client("s3", **kwargs)
            except (ValueError, exceptions.BotoCoreError) as exc:  # bad endpoint, region
                raise BackupError(
                    f"{self.describe()}: cannot create the S3 client ({type(exc).__name__})"
                ) from None
        return self._client

    def _key(self, backup_id: str, name: str) -> str:
        return "/".join(p for p in (self.prefix, backup_id, name) if p)

    def write_backup(self, backup_id: str, files: dict[str, bytes]) -> None:
        """PUT the data files, then the manifest (whose presence marks completion)."""
        exceptions = require("botocore.exceptions", extra="aws")
        s3 = self._s3()
        try:
            for name in sorted(files, key=lambda n: n == "manifest.json"):
                data = files[name]
                s3.put_object(
                    Bucket=self.bucket,
                    Key=self._key(backup_id, name),
                    Body=data,
                    ChecksumAlgorithm="SHA256",
                )
        except (exceptions.BotoCoreError, exceptions.ClientError) as exc:
            raise BackupError(f"{self.describe()}: {_aws_error(exc)}") from None

    def list_backups(self) -> list[str]:
        """Backup ids having a ``manifest.json`` object."""
        exceptions = require("botocore.exceptions", extra="aws")
        s3 = self._s3()
        base = f"{self.prefix}/" if self.prefix else ""
        found: set[str] = set()
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base
            ):
                for obj in page.get("Contents", []):
                    rest = obj["Key"][len(base) :]
                    parts = rest.split("/")
                    if len(parts) == 2 and parts[1] == "manifest.json" and parts[0] != _TOMBSTONES:
                        found.add(parts[0])
        except (exceptions.BotoCoreError, exceptions.ClientError) as exc:
            raise BackupError(f"{self.describe()}: {_aws_error(exc)}") from None
        return sorted(found)

    def _objects(self) -> dict[str, list[tuple[str, float]]]:
        """Objects under the prefix grouped by backup id: (key, last-modified epoch)."""
        exceptions = require("botocore.exceptions", extra="aws")
        base = f"{self.prefix}/" if self.prefix else ""
        grouped: dict[str, list[tuple[str, float]]] = {}
        try:
            for page in (
                self._s3()
                .get_paginator("list_objects_v2")
                .paginate(Bucket=self.bucket, Prefix=base)
            ):
                for obj in page.get("Contents", []):
                    parts = obj["Key"][len(base) :].split("/")
                    if len(parts) == 2:
                        grouped.setdefault(parts[0], []).append(
                            (obj["Key"], obj["LastModified"].timestamp())
                        )
        except (exceptions.BotoCoreError, exceptions.ClientError) as exc:
            raise BackupError(f"{self.describe()}: {_aws_error(exc)}") from None
        return grouped

    def orphans(self, *, min_age: float = 3600.0) -> list[str]:
        """Backup ids without a ``manifest.json`` object (a failed upload), older than *min_age*."""
        now = time.time()
        return sorted(
            bid
            for bid, objs in self._objects().items()
            if not any(k.endswith("/manifest.json") for k, _ in objs)
            and now - max(t for _, t in objs) >= min_age
        )

    def remove_orphan(self, name: str) -> None:
        """Delete every object of one incomplete backup (refused if it has a manifest)."""
        exceptions = require("botocore.exceptions", extra="aws")
        objs = self._objects().get(name, [])
        if any(k.endswith("/manifest.json") for k, _ in objs):
            raise BackupError(f"{self.describe()}/{name} is not an incomplete backup")
        try:
            for key, _ in objs:
                self._s3().delete_object(Bucket=self.bucket, Key=key)
        except (exceptions.BotoCoreError, exceptions.ClientError) as exc:
            raise BackupError(f"{self.describe()}/{name}: {_aws_error(exc)}") from None

    def read_file(self, backup_id: str, name: str) -> bytes:
        """GET one object (bounded size)."""
        exceptions = require("botocore.exceptions", extra="aws")
        try:
            resp = self._s3().get_object(Bucket=self.bucket, Key=self._key(backup_id, name))
            if int(resp.get("ContentLength", 0)) > _MAX_FILE:
                raise BackupError(f"{self.describe()}/{backup_id}/{name} is too large")
            data: bytes = resp["Body"].read()
            return data
        except (exceptions.BotoCoreError, exceptions.ClientError) as exc:
            raise BackupError(f"{self.describe()}/{backup_id}/{name}: {_aws_error(exc)}") from None

    def write_tombstone(self, tenant: str, data: bytes) -> None:
        """PUT ``<prefix>/tombstones/<tenant>.json`` (a single PUT is atomic)."""
        exceptions = require("botocore.exceptions", extra="aws")
        try:
            self._s3().put_object(
                Bucket=self.bucket,
                Key=self._key(_TOMBSTONES, f"{tenant}.json"),
                Body=data,
                ChecksumAlgorithm="SHA256",
            )
        except (exceptions.BotoCoreError, exceptions.ClientError) as exc:
            raise BackupError(f"{self.tombstone_name(tenant)}: {_aws_error(exc)}") from None

    def list_tombstones(self) -> list[str]:
        """Tenants having a ``tombstones/<tenant>.json`` object."""
        exceptions = require("botocore.exceptions", extra="aws")
        base = self._key(_TOMBSTONES, "") + "/"
        found: list[str] = []
        try:
            for page in (
                self._s3()
                .get_paginator("list_objects_v2")
                .paginate(Bucket=self.bucket, Prefix=base)
            ):
                for obj in page.get("Contents", []):
                    rest = obj["Key"][len(base) :]
                    if "/" not in rest and rest.endswith(".json"):
                        found.append(rest[: -len(".json")])
        except (exceptions.BotoCoreError, exceptions.ClientError) as exc:
            raise BackupError(f"{self.describe()}: {_aws_error(exc)}") from None
        return sorted(found)

    def read_tombstone(self, tenant: str) -> bytes:
        """GET one tombstone (bounded size)."""
        return self.read_file(_TOMBSTONES, f"{tenant}.json")


def _aws_error(exc: Any) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", type(exc).__name__))
    return type(exc).__name__


def destination(spec: str | os.PathLike[str] | BackupDestination) -> BackupDestination:
    """*spec* itself when it is a destination, else :meth:`BackupDestination.from_url`."""
    if isinstance(spec, BackupDestination):
        return spec
    return BackupDestination.from_url(spec)


def _directory_from_url(url: str) -> BackupDestination:
    text = url[len("file://") :] if url.startswith("file://") else url
    if not text:
        raise InvalidInputError("empty backup destination")
    return DirectoryDestination(text)


def _s3_from_url(url: str) -> BackupDestination:
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise InvalidInputError("an S3 destination is s3://bucket[/prefix]")
    return S3Destination(bucket, prefix)


register_destination_scheme("file", _directory_from_url)
register_destination_scheme("s3", _s3_from_url)


# -- serialisation ------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise BackupError("malformed backup (expected base64 text)")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise BackupError("malformed backup (bad base64)") from None


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="microseconds")


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def parse_json(raw: bytes, what: str, *, max_size: int = _MAX_FILE) -> Any:
    """Parse one backup file with a size and a nesting-depth limit.

    A planted file (huge, deeply nested, not UTF-8, not JSON) raises
    :class:`~styku_crypto.exceptions.BackupError` naming *what*; never
    ``RecursionError`` or ``MemoryError``.
    """
    if len(raw) > max_size:
        raise BackupError(f"{what} is too large ({len(raw)} bytes, limit {max_size})")
    try:
        doc = json.loads(raw)
    except RecursionError:
        raise BackupError(f"{what} is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise BackupError(f"{what} is not valid JSON") from None
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BackupError(f"{what} is nested too deeply (limit {MAX_DEPTH})")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return doc


def _snapshot_to_json(snap: StoreSnapshot) -> dict[str, Any]:
    return {
        "format_version": snap.format_version,
        "tenants": [
            {"name": t.name, "created_at": _ts(t.created_at), "shredded_at": _ts(t.shredded_at)}
            for t in snap.tenants
        ],
        "keys": [
            {
                "tenant": k.tenant,
                "purpose": k.purpose,
                "version": k.version,
                "key_id": k.key_id,
                "created_at": _ts(k.created_at),
                "wraps": [[p, _b64(w)] for p, w in k.wraps],
            }
            for k in snap.keys
        ],
        "shredded": [[name, _ts(when)] for name, when in snap.shredded],
        "meta": [[name, _b64(value)] for name, value in snap.meta],
    }


def _parse_ts(value: object) -> datetime:
    if not isinstance(value, str):
        raise BackupError("malformed backup (bad timestamp)")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise BackupError("malformed backup (bad timestamp)") from None


def _snapshot_from_json(doc: Any) -> StoreSnapshot:
    try:
        if doc["format_version"] != 1:
            raise BackupError(f"unsupported snapshot format {doc['format_version']!r}")
        tenants = tuple(
            TenantRecord(
                name=str(t["name"]),
                created_at=_parse_ts(t["created_at"]),
                shredded_at=None if t["shredded_at"] is None else _parse_ts(t["shredded_at"]),
            )
            for t in doc["tenants"]
        )
        keys = tuple(
            KeyRecord(
                tenant=str(k["tenant"]),
                purpose=str(k["purpose"]),
                version=int(k["version"]),
                key_id=str(k["key_id"]),
                wraps=tuple((str(p), _unb64(w)) for p, w in k["wraps"]),
                created_at=_parse_ts(k["created_at"]),
            )
            for k in doc["keys"]
        )
        shredded = tuple((str(n), _parse_ts(w)) for n, w in doc["shredded"])
        meta = tuple((str(n), _unb64(v)) for n, v in doc["meta"])
    except (KeyError, TypeError, ValueError):
        raise BackupError("malformed backup snapshot") from None
    return StoreSnapshot(tenants=tenants, keys=keys, shredded=shredded, meta=meta)


# -- shred tombstones -----------------------------------------------------------


def _tombstone_mac_key(seal_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_TOMBSTONE_INFO).derive(
        seal_key
    )


def make_tombstone(store: KeyStore, tenant: str, when: datetime) -> bytes:
    """A signed tombstone of *tenant*: HMAC-SHA256 under a key derived from the store's seal key.

    The tombstone carries the seal key's root wraps, so a restore into an empty
    store can verify it with the root provider(s) alone.
    """
    blob, seal_key = store._seal_material()
    body: dict[str, Any] = {
        "format": TOMBSTONE_FORMAT,
        "tenant": tenant,
        "shredded_at": _ts(when),
        "store": store.backend.location,
        "key": _b64(blob),
    }
    body["mac"] = hmac.new(
        _tombstone_mac_key(seal_key), _canonical(body), hashlib.sha256
    ).hexdigest()
    return json.dumps(body, sort_keys=True, indent=1).encode()


def tombstones_at(
    dest: BackupDestination, store: KeyStore
) -> tuple[dict[str, datetime], list[str]]:
    """Every tombstone at *dest*, verified with *store*'s root provider(s).

    Returns:
        ``({tenant: shred time}, [tombstones made under other roots, ignored])``.

    Raises:
        BackupError: a tombstone is malformed, names another tenant than its
            file, or fails its MAC (the message names the file). There is no
            silent fallback: a restore stops.
    """
    found: dict[str, datetime] = {}
    foreign: list[str] = []
    for tenant in dest.list_tombstones():
        what = dest.tombstone_name(tenant)
        doc = parse_json(dest.read_tombstone(tenant), f"tombstone {what}", max_size=MAX_SMALL_FILE)
        bad = BackupError(f"tombstone {what} is malformed or does not authenticate")
        if not isinstance(doc, dict) or doc.get("format") != TOMBSTONE_FORMAT:
            raise bad
        if doc.get("tenant") != tenant or not isinstance(doc.get("mac"), str):
            raise bad
        try:
            seal_key = store._sealer.key_from_blob(_unb64(doc.get("key")))
        except MetadataIntegrityError as exc:
            if "not wrapped under any configured root" in str(exc):
                foreign.append(what)
                continue
            raise bad from None
        except BackupError:
            raise bad from None
        body = {k: v for k, v in doc.items() if k != "mac"}
        expect = hmac.new(
            _tombstone_mac_key(seal_key), _canonical(body), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(doc["mac"], expect):
            raise bad
        found[tenant] = _parse_ts(doc.get("shredded_at"))
    return found, foreign


def recorded_destinations(store: KeyStore) -> list[str]:
    """The destinations this store was backed up to (an authenticated record)."""
    raw = store._read_record(_DESTINATIONS_RECORD)
    if raw is None:
        return []
    doc = parse_json(raw, "the recorded backup destinations", max_size=MAX_SMALL_FILE)
    if not isinstance(doc, list) or not all(isinstance(d, str) for d in doc):
        raise BackupError("the recorded backup destinations are malformed")
    return doc


def _record_destinations(store: KeyStore, dests: Sequence[BackupDestination]) -> None:
    known = recorded_destinations(store)
    new = [d.describe() for d in dests if d.describe() not in known]
    if new:
        store._write_record(_DESTINATIONS_RECORD, _canonical(sorted(known + new)))


def write_tombstones(
    store: KeyStore,
    tenants: Iterable[tuple[str, datetime]],
    dests: Sequence[BackupDestination],
    *,
    skip_existing: bool = False,
) -> list[tuple[str, str]]:
    """Write a tombstone for each tenant to each destination.

    Returns:
        ``(destination, reason)`` for every destination that failed.
    """
    failed: list[tuple[str, str]] = []
    items = list(tenants)
    for dest in dests:
        try:
            have = set(dest.list_tombstones()) if skip_existing else set()
            for tenant, when in items:
                if tenant not in have:
                    dest.write_tombstone(tenant, make_tombstone(store, tenant, when))
        except (BackupError, OSError) as exc:
            failed.append(
                (dest.describe(), str(exc) if isinstance(exc, BackupError) else type(exc).__name__)
            )
    return failed


def _tombstone_on_shred(store: KeyStore, tenant: str) -> None:
    """Shred hook: tombstone *tenant* at every destination the store was backed up to."""
    dests = [destination(d) for d in recorded_destinations(store)]
    failed = write_tombstones(store, [(tenant, datetime.now(UTC))], dests)
    if failed:
        names = "; ".join(f"{d}: {why}" for d, why in failed)
        raise BackupError(
            f"tenant {tenant!r} was shredded, but its tombstone could not be written to: {names}."
            " Older backups there would still restore it until `keys backup` writes the"
            " tombstone (it retries every shredded tenant)."
        )


SHRED_HOOKS.append(_tombstone_on_shred)


# -- canaries -----------------------------------------------------------------


def _canary_aad(backup_id: str, tenant: str, purpose: str, version: int) -> bytes:
    return _CANARY_AAD + _canonical([backup_id, tenant, purpose, version])


def _make_canaries(store: KeyStore, snap: StoreSnapshot, backup_id: str) -> list[dict[str, Any]]:
    """One AES-GCM canary per live key version, under a key derived from that version."""
    canaries = []
    for record in snap.keys:
        key, _ = store._derive_key(
            record.tenant, purpose=record.purpose, label=_CANARY_LABEL, version=record.version
        )
        plain = secrets.token_bytes(16)
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(key).encrypt(
            nonce, plain, _canary_aad(backup_id, record.tenant, record.purpose, record.version)
        )
        canaries.append(
            {
                "tenant": record.tenant,
                "purpose": record.purpose,
                "version": record.version,
                "key_id": record.key_id,
                "nonce": _b64(nonce),
                "sealed": _b64(sealed),
                "expect_sha256": hashlib.sha256(plain).hexdigest(),
            }
        )
    return canaries


def check_canary(store: KeyStore, backup_id: str, canary: dict[str, Any]) -> None:
    """Decrypt one canary through *store*; raise unless it yields the recorded value.

    Raises:
        BackupError: the canary is malformed or decrypts to something else.
        DecryptionError: the key unwrapped but does not decrypt the canary.
        KeyStoreError: the key cannot be loaded or unwrapped.
    """
    try:
        tenant = str(canary["tenant"])
        purpose = str(canary["purpose"])
        version = int(canary["version"])
        nonce = _unb64(canary["nonce"])
        sealed = _unb64(canary["sealed"])
        expect = str(canary["expect_sha256"])
    except (KeyError, TypeError, ValueError):
        raise BackupError("malformed canary") from None
    key, _ = store._derive_key(tenant, purpose=purpose, label=_CANARY_LABEL, version=version)
    try:
        plain = AESGCM(key).decrypt(nonce, sealed, _canary_aad(backup_id, tenant, purpose, version))
    except (InvalidTag, ValueError):
        raise DecryptionError("canary does not decrypt") from None
    if not hmac.compare_digest(hashlib.sha256(plain).hexdigest(), expect):
        raise BackupError("canary decrypted to an unexpected value")


# -- backup ---------------------------------------------------------------------


@dataclass(frozen=True)
class BackupResult:
    """What a backup wrote, and where it failed.

    Attributes:
        backup_id: the id shared by every copy.
        tenants: tenants in the snapshot (shredded ones included).
        key_versions: wrapped key versions in the snapshot.
        written: destinations that hold a complete copy.
        failed: ``(destination, reason)`` for each destination that does not.
    """

    backup_id: str
    tenants: int
    key_versions: int
    written: tuple[str, ...]
    failed: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        """True when every destination holds a complete copy."""
        return not self.failed


def _new_backup_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(4)


def build_backup(store: KeyStore) -> tuple[str, dict[str, bytes], StoreSnapshot]:
    """Snapshot *store* and produce the authenticated backup files (not yet written).

    A tenant shredded between the snapshot and its canaries makes the snapshot
    stale; it is then taken again (at most three times), so a backup never
    carries keys of a tenant that was already shredded when it was made.
    """
    backup_id = _new_backup_id()
    for attempt in range(3):
        snap = store.backend.export_snapshot()
        try:
            canaries = _make_canaries(store, snap, backup_id)
            break
        except KeyDestroyedError:
            if attempt == 2:
                raise
    snapshot_bytes = _canonical(_snapshot_to_json(snap))
    canaries_bytes = _canonical({"backup_id": backup_id, "canaries": canaries})
    mac_key = secrets.token_bytes(32)
    mac_aad = _MAC_AAD + backup_id.encode("ascii")
    # Every available root (at least the store's quorum): one root down does not block backups.
    wraps = {pid: _b64(w) for pid, w in store._wrap_all(mac_key, aad=mac_aad)}
    manifest: dict[str, Any] = {
        "format": BACKUP_FORMAT,
        "backup_id": backup_id,
        "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "source": store.backend.location,
        "providers": [p.provider_id for p in store.providers],
        "tenants": len(snap.tenants),
        "key_versions": len(snap.keys),
        "shred_list": [[name, _ts(when)] for name, when in snap.shredded],
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in (("snapshot.json", snapshot_bytes), ("canaries.json", canaries_bytes))
        },
        "mac_key_wraps": wraps,
        "mac_alg": "HMAC-SHA256",
    }
    manifest["mac"] = hmac.new(mac_key, _canonical(manifest), hashlib.sha256).hexdigest()
    del mac_key
    files = {
        "snapshot.json": snapshot_bytes,
        "canaries.json": canaries_bytes,
        "manifest.json": json.dumps(manifest, sort_keys=True, indent=1).encode(),
    }
    return backup_id, files, snap


def backup(
    store: KeyStore,
    destinations: Sequence[str | os.PathLike[str] | BackupDestination],
    *,
    actor: str | None = None,
) -> BackupResult:
    """Back up *store* to every destination (the same backup id and bytes everywhere).

    Tenant keys stay wrapped under the root providers; the backup is
    authenticated (see the module documentation) and written atomically to each
    destination. Emits ``key.backup``.

    Args:
        store: the key store to back up.
        destinations: directories and/or ``s3://bucket/prefix`` URLs (at least one).
        actor: who asked, for the event (optional).

    Returns:
        The :class:`BackupResult` (every destination succeeded).

    Raises:
        BackupError: any destination failed; the message names each failed one,
            and ``exc.result`` holds the full :class:`BackupResult`.
        RootKeyUnavailableError: a root provider could not wrap the MAC key.
    """
    if not destinations:
        raise InvalidInputError("a backup needs at least one destination")
    dests = [destination(d) for d in destinations]
    backup_id, files, snap = build_backup(store)
    written: list[str] = []
    failed: list[tuple[str, str]] = []
    for dest in dests:
        try:
            dest.write_backup(backup_id, files)
            written.append(dest.describe())
        except BackupError as exc:
            failed.append((dest.describe(), str(exc)))
        except OSError as exc:
            failed.append((dest.describe(), exc.strerror or type(exc).__name__))
    # Every shredded tenant gets a tombstone at every destination (retrying any that
    # a shred could not write), and the store remembers where its backups go, so
    # later shreds tombstone there at once.
    if snap.shredded:
        failed.extend(write_tombstones(store, snap.shredded, dests, skip_existing=True))
    with contextlib.suppress(KeyStoreError):  # read-only store: nothing to record
        _record_destinations(store, dests)
    result = BackupResult(
        backup_id=backup_id,
        tenants=len(snap.tenants),
        key_versions=len(snap.keys),
        written=tuple(w for w in written if w not in {d for d, _ in failed}),
        failed=tuple(failed),
    )
    emit(
        "key.backup",
        capability="keys",
        outcome="success" if result.ok else "failure",
        level=logging.INFO if result.ok else logging.WARNING,
        actor=actor,
        reason=None if result.ok else "destination_failed",
        attributes={
            "backup_id": backup_id,
            "tenants": result.tenants,
            "key_versions": result.key_versions,
            "destinations_ok": len(written),
            "destinations_failed": len(failed),
        },
    )
    if failed:
        names = "; ".join(f"{d}: {why}" for d, why in failed)
        err = BackupError(f"backup {backup_id} incomplete, failed destination(s): {names}")
        err.result = result  # type: ignore[attr-defined]
        raise err
    return result


# -- verification and restore ------------------------------------------------------


@dataclass(frozen=True)
class VerifiedBackup:
    """A backup whose MAC and checksums verified under the configured root."""

    backup_id: str
    created_at: datetime
    manifest: dict[str, Any] = field(repr=False)
    snapshot: StoreSnapshot = field(repr=False)
    canaries: tuple[dict[str, Any], ...] = field(repr=False)
    shred_list: tuple[tuple[str, datetime], ...] = ()


def _unwrap_mac_key(manifest: dict[str, Any], providers: Sequence[RootKeyProvider]) -> bytes:
    wraps = manifest.get("mac_key_wraps")
    backup_id = manifest.get("backup_id")
    if not isinstance(wraps, dict) or not isinstance(backup_id, str):
        raise BackupError("malformed backup manifest")
    aad = _MAC_AAD + backup_id.encode("ascii", "replace")
    tried: list[str] = []
    for provider in providers:
        wrapped = wraps.get(provider.provider_id)
        if wrapped is None:
            continue
        tried.append(provider.provider_id)
        try:
            return provider.unwrap(_unb64(wrapped), aad=aad)
        except RootKeyUnavailableError:
            continue
        except DecryptionError:
            raise BackupError(
                f"backup {backup_id} does not authenticate under {provider.provider_id}"
            ) from None
    if not tried:
        raise BackupError(
            f"backup {backup_id} was made under other root provider(s)"
            f" ({', '.join(sorted(wraps))}); configure the same root to restore it"
        )
    raise RootKeyUnavailableError("no root provider available; tried " + ", ".join(tried))


def _parse_manifest(raw: bytes, what: str = "backup manifest") -> dict[str, Any]:
    manifest = parse_json(raw, what, max_size=MAX_SMALL_FILE)
    if not isinstance(manifest, dict):
        raise BackupError(f"{what} is malformed (not an object)")
    if manifest.get("format") != BACKUP_FORMAT:
        raise BackupError(f"unsupported backup format {str(manifest.get('format'))[:40]!r}")
    return manifest


def _verified_manifest(
    dest: BackupDestination, backup_id: str, providers: Sequence[RootKeyProvider]
) -> dict[str, Any]:
    """Read one backup's manifest and check its MAC under the configured root."""
    what = f"{dest.describe()}/{backup_id}/manifest.json"
    manifest = _parse_manifest(dest.read_file(backup_id, "manifest.json"), what)
    if manifest.get("backup_id") != backup_id:
        raise BackupError(f"backup {backup_id}: manifest names another backup")
    mac_key = _unwrap_mac_key(manifest, providers)
    claimed = manifest.get("mac")
    body = {k: v for k, v in manifest.items() if k != "mac"}
    expect = hmac.new(mac_key, _canonical(body), hashlib.sha256).hexdigest()
    del mac_key
    if not isinstance(claimed, str) or not hmac.compare_digest(claimed, expect):
        raise BackupError(f"backup {backup_id} failed its integrity check (manifest MAC)")
    return manifest


def load_backup(
    source: str | os.PathLike[str] | BackupDestination,
    providers: Sequence[RootKeyProvider],
    *,
    backup_id: str | None = None,
) -> VerifiedBackup:
    """Read and verify one backup (the newest at *source* unless *backup_id* is given).

    *source* may name a destination (its newest backup is used) or one backup
    directory (``<dest>/<backup id>``, or ``s3://bucket/prefix/<backup id>``).

    Raises:
        BackupError: nothing found, or the MAC or a checksum does not verify.
        RootKeyUnavailableError: no configured provider could unwrap the MAC key.
    """
    dest, backup_id = _locate(source, backup_id)
    manifest = _verified_manifest(dest, backup_id, providers)
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != set(_FILES):
        raise BackupError(f"backup {backup_id}: manifest lists unexpected files")
    data: dict[str, bytes] = {}
    for name in _FILES:
        blob = dest.read_file(backup_id, name)
        entry = files[name]
        if len(blob) != entry.get("size") or not hmac.compare_digest(
            hashlib.sha256(blob).hexdigest(), str(entry.get("sha256"))
        ):
            raise BackupError(f"backup {backup_id} failed its integrity check ({name} checksum)")
        data[name] = blob
    base = f"{dest.describe()}/{backup_id}"
    snapshot = _snapshot_from_json(parse_json(data["snapshot.json"], f"{base}/snapshot.json"))
    canary_doc = parse_json(data["canaries.json"], f"{base}/canaries.json")
    try:
        canaries = tuple(canary_doc["canaries"])
        if not all(isinstance(c, dict) for c in canaries):
            raise TypeError
    except (KeyError, TypeError):
        raise BackupError(f"backup {backup_id}: malformed content ({base}/canaries.json)") from None
    try:
        shred_list = tuple((str(n), _parse_ts(w)) for n, w in manifest.get("shred_list", []))
    except (TypeError, ValueError):
        raise BackupError(f"backup {backup_id}: malformed shred list") from None
    return VerifiedBackup(
        backup_id=backup_id,
        created_at=_parse_ts(manifest.get("created_at")),
        manifest=manifest,
        snapshot=snapshot,
        canaries=canaries,
        shred_list=shred_list,
    )


def _locate(
    source: str | os.PathLike[str] | BackupDestination, backup_id: str | None
) -> tuple[BackupDestination, str]:
    """Resolve *source* (a destination, or one backup in it) to (destination, backup id)."""
    dest = destination(source)
    single: tuple[BackupDestination, str] | None = None
    if isinstance(dest, DirectoryDestination) and (dest.path / "manifest.json").is_file():
        single = DirectoryDestination(dest.path.parent), dest.path.name
    elif isinstance(dest, S3Destination) and dest.prefix:
        parent, _, last = dest.prefix.rpartition("/")
        parent_dest = S3Destination(dest.bucket, parent, client=dest._s3())
        if last in parent_dest.list_backups():
            single = parent_dest, last
    if single is not None:
        if backup_id not in (None, single[1]):
            raise BackupError(f"{dest.describe()} is backup {single[1]}, not {backup_id}")
        return single
    if backup_id is not None:
        return dest, backup_id
    ids = dest.list_backups()
    if not ids:
        raise BackupError(f"no complete backup found at {dest.describe()}")
    return dest, ids[-1]


def shred_lists_at(
    source: str | os.PathLike[str] | BackupDestination, providers: Sequence[RootKeyProvider]
) -> tuple[dict[str, datetime], list[str]]:
    """Union of the shred lists of every verifying backup at *source*.

    Returns:
        ``({tenant: shred time}, [ids of backups that did not verify])``.
    """
    dest, _ = _locate(source, None)
    merged: dict[str, datetime] = {}
    unverified: list[str] = []
    for bid in dest.list_backups():
        # The shred list lives in the manifest, which the MAC covers: no need
        # to read (or trust) the data files of the other backups. A planted or
        # corrupt manifest (bounded parse) is reported, never fatal here: the
        # chosen backup is verified on its own, and shreds are also recorded as
        # signed tombstones at the destination.
        try:
            manifest = _verified_manifest(dest, bid, providers)
            entries = [(str(n), _parse_ts(w)) for n, w in manifest.get("shred_list", [])]
        except (BackupError, KeyStoreError, TypeError, ValueError) as exc:
            unverified.append(f"{bid}: {exc}" if isinstance(exc, KeyStoreError) else bid)
            continue
        for name, when in entries:
            merged.setdefault(name, when)
    return merged, unverified


def shred_list_document(store: KeyStore) -> dict[str, Any]:
    """The store's shred list as a versioned document (``keys list --shred-list``)."""
    return {
        "schema": SHRED_LIST_FORMAT,  # like every JSON output of the CLI
        "format": SHRED_LIST_FORMAT,  # repeated for readers of the first documents
        "store": store.backend.location,
        "shredded": [
            {"tenant": name, "shredded_at": _ts(when)} for name, when in store.backend.shred_list()
        ],
    }


def read_shred_list_file(path: str | os.PathLike[str]) -> dict[str, datetime]:
    """Read a shred-list file (format ``styku-keys-shred-list/1``, see docs/keys.md).

    Only that versioned format is accepted: ``{"format": "styku-keys-shred-list/1",
    "shredded": [{"tenant": NAME, "shredded_at": ISO-8601}, ...]}`` (other keys
    ignored). Anything else, ``{}``, a bare list, ``keys list --format json``
    output, is refused rather than silently read as "nothing shredded".

    Raises:
        InvalidInputError: the file cannot be read (missing, unreadable).
        BackupError: the file is not a valid shred list (the message names it).
    """
    name = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SMALL_FILE + 1)
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read shred list {name}: {exc.strerror or type(exc).__name__}"
        ) from None
    doc = parse_json(raw, f"shred list {name}", max_size=MAX_SMALL_FILE)
    bad = BackupError(
        f"shred list {name} is not a {SHRED_LIST_FORMAT} document"
        " (export one with `keys list --shred-list`)"
    )
    if not isinstance(doc, dict):
        raise bad
    tags = {doc[k] for k in ("schema", "format") if k in doc}
    if tags != {SHRED_LIST_FORMAT}:  # at least one, and never two that disagree
        raise bad
    entries = doc.get("shredded")
    if not isinstance(entries, list):
        raise bad
    out: dict[str, datetime] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("tenant"), str):
            raise bad
        try:
            out.setdefault(entry["tenant"], _parse_ts(entry.get("shredded_at")))
        except BackupError:
            raise bad from None
    return out


def apply_shred_list(snapshot: StoreSnapshot, shredded: dict[str, datetime]) -> StoreSnapshot:
    """*snapshot* with every key of every tenant in *shredded* removed and marked shredded."""
    merged = dict(snapshot.shredded)
    for name, when in shredded.items():
        merged.setdefault(name, when)
    tenants = tuple(
        TenantRecord(t.name, t.created_at, t.shredded_at or merged[t.name])
        if t.name in merged
        else t
        for t in snapshot.tenants
    )
    keys = tuple(k for k in snapshot.keys if k.tenant not in merged)
    return StoreSnapshot(
        tenants=tenants,
        keys=keys,
        shredded=tuple(sorted(merged.items())),
        meta=snapshot.meta,
        format_version=snapshot.format_version,
    )


@dataclass(frozen=True)
class RestoreResult:
    """What a restore did.

    Attributes:
        backup_id: the restored backup.
        tenants: tenants restored with live keys.
        key_versions: key versions restored.
        kept_shredded: tenants the backup still held keys for but that stay
            shredded because a shred list names them.
        seconds: wall time of the restore.
        invalid_backups: other backups at the source that did not parse or
            verify (``"<id>: <reason>"``); reported, not fatal.
    """

    backup_id: str
    tenants: int
    key_versions: int
    kept_shredded: tuple[str, ...]
    seconds: float
    invalid_backups: tuple[str, ...] = ()


def _verify_unwraps(store: KeyStore, snapshot: StoreSnapshot) -> None:
    """Every key version must unwrap under the configured providers (with failover)."""
    for record in snapshot.keys:
        try:
            store._unwrap(record)
        except RootKeyUnavailableError:
            raise
        except KeyStoreError as exc:
            raise BackupError(
                f"tenant {record.tenant!r} {record.purpose} v{record.version}"
                f" does not unwrap under the configured root: {exc}"
            ) from None


def restore(
    source: str | os.PathLike[str] | BackupDestination,
    store: KeyStore,
    *,
    backup_id: str | None = None,
    shred_lists: Iterable[str | os.PathLike[str]] = (),
    actor: str | None = None,
) -> RestoreResult:
    """Restore a verified backup into the EMPTY *store* (same root provider(s)).

    Order: verify the backup (MAC, checksums), merge shred lists (backup,
    every verifying backup at *source*, the target store, *shred_lists*),
    drop shredded tenants' keys, check every remaining key unwraps under the
    store's providers, then import in one transaction. Emits ``key.restored``.

    Raises:
        BackupError: the backup does not verify, or keys do not unwrap.
        KeyStoreError: the target store is not empty.
        RootKeyUnavailableError: no configured root provider is reachable.
    """
    try:
        return _restore(source, store, backup_id=backup_id, shred_lists=shred_lists, actor=actor)
    except KeyStoreError as exc:
        emit(
            "key.restored",
            capability="keys",
            outcome="failure",
            level=logging.WARNING,
            actor=actor,
            reason=type(exc).__name__,
        )
        raise


def _restore(
    source: str | os.PathLike[str] | BackupDestination,
    store: KeyStore,
    *,
    backup_id: str | None,
    shred_lists: Iterable[str | os.PathLike[str]],
    actor: str | None,
) -> RestoreResult:
    start = time.perf_counter()
    if store.backend.list_tenants():
        raise KeyStoreError("restore needs an empty key store (it has tenants)")
    vb = load_backup(source, store.providers, backup_id=backup_id)
    shredded: dict[str, datetime] = dict(vb.shred_list)
    at_source, unverified = shred_lists_at(source, store.providers)
    for name, when in at_source.items():
        shredded.setdefault(name, when)
    tomb_dest, _ = _locate(source, None)
    tombstoned, _foreign = tombstones_at(tomb_dest, store)
    for name, when in tombstoned.items():
        shredded.setdefault(name, when)
    for name, when in store.backend.shred_list():
        shredded.setdefault(name, when)
    for path in shred_lists:
        for name, when in read_shred_list_file(path).items():
            shredded.setdefault(name, when)
    # Tenants whose own root object was destroyed (per-tenant roots) are shredded by
    # construction, tombstone or not: their keys in this backup unwrap for nobody.
    destroyed = store._destroyed_tenants(vb.snapshot.keys)
    for name in destroyed:
        shredded.setdefault(name, datetime.now(UTC))
    live_before = {k.tenant for k in vb.snapshot.keys}
    snapshot = apply_shred_list(vb.snapshot, shredded)
    kept = tuple(sorted(live_before - {k.tenant for k in snapshot.keys}))
    _verify_unwraps(store, snapshot)
    store.backend.import_snapshot(snapshot)
    store._note_destroyed(destroyed)
    seconds = time.perf_counter() - start
    result = RestoreResult(
        backup_id=vb.backup_id,
        tenants=len({k.tenant for k in snapshot.keys}),
        key_versions=len(snapshot.keys),
        kept_shredded=kept,
        seconds=seconds,
        invalid_backups=tuple(u for u in unverified if not u.startswith(vb.backup_id)),
    )
    emit(
        "key.restored",
        capability="keys",
        outcome="success",
        level=logging.WARNING,  # a restore changes the key store wholesale: always visible
        actor=actor,
        attributes={
            "backup_id": vb.backup_id,
            "tenants": result.tenants,
            "key_versions": result.key_versions,
            "kept_shredded": len(kept),
            "seconds": round(seconds, 3),
        },
    )
    return result

"""Backup destinations: where backups and shred tombstones are stored.

A destination stores opaque, already-authenticated files; it is trusted for
availability only, never for integrity (a restore verifies everything it reads).
A directory destination writes each backup into a hidden temporary directory
(each file fsynced, then the directory), renames it into place and fsyncs the
parent: a crash leaves no backup or a complete one. An S3 destination writes
``manifest.json`` last; a backup without a manifest is incomplete and never listed.
New kinds register a URL scheme with
:func:`~styku_crypto.keys.register_destination_scheme`.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from styku_crypto._extras import require
from styku_crypto._fs import atomic_write, fsync_dir
from styku_crypto.exceptions import (
    BackupError,
    InvalidInputError,
)
from styku_crypto.keys._backup_format import _MAX_FILE, _TOMBSTONES, MAX_SMALL_FILE
from styku_crypto.keys._schemes import destination_from_url, register_destination_scheme

__all__ = [
    "BackupDestination",
    "DirectoryDestination",
    "S3Destination",
    "destination",
]

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
            fsync_dir(tmp)
            os.rename(tmp, final)
            fsync_dir(self.path)
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
            fsync_dir(self.path)
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
        """Write atomically (:func:`styku_crypto._fs.atomic_write`): old or new, never half."""
        folder = self.path / _TOMBSTONES
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(folder / f"{tenant}.json", data)
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

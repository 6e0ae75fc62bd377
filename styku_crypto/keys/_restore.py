"""Verifying and restoring key-store backups, and the shred-list rule.

Nothing is imported before the whole backup verifies: the manifest MAC under the
configured root provider(s), then every file's size and SHA-256; a backup that was
altered, truncated, mixed with another's files or made under another root raises
:class:`~styku_crypto.exceptions.BackupError`. Every tenant named in any verifying
backup's shred list at the source, in the target store's, in operator-supplied
shred-list files or in a signed tombstone at the source is removed from the restored
snapshot (crypto-shredding wins); a tombstone that does not authenticate stops the
restore.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from styku_crypto.events import emit
from styku_crypto.exceptions import (
    BackupError,
    InvalidInputError,
    KeyStoreError,
    RootKeyUnavailableError,
)
from styku_crypto.keys._backend import StoreSnapshot, TenantRecord
from styku_crypto.keys._backup_destinations import (
    BackupDestination,
    DirectoryDestination,
    S3Destination,
    destination,
)
from styku_crypto.keys._backup_format import (
    _FILES,
    MAX_SMALL_FILE,
    SHRED_LIST_FORMAT,
    _parse_manifest,
    _parse_ts,
    _snapshot_from_json,
    _ts,
    _unwrap_mac_key,
    manifest_mac,
    parse_json,
)
from styku_crypto.keys._provider import RootKeyProvider
from styku_crypto.keys._store import KeyStore
from styku_crypto.keys._tombstones import tombstones_at

__all__ = [
    "RestoreResult",
    "VerifiedBackup",
    "apply_shred_list",
    "load_backup",
    "read_shred_list_file",
    "restore",
    "shred_list_document",
    "shred_lists_at",
]

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
    expect = manifest_mac(mac_key, manifest)
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

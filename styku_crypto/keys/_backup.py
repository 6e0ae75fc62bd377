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

import contextlib
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from styku_crypto.events import emit
from styku_crypto.exceptions import (
    BackupError,
    InvalidInputError,
    KeyDestroyedError,
    KeyStoreError,
)
from styku_crypto.keys._backend import StoreSnapshot
from styku_crypto.keys._backup_destinations import BackupDestination, destination
from styku_crypto.keys._backup_format import (
    _MAC_AAD,
    BACKUP_FORMAT,
    _b64,
    _canonical,
    _make_canaries,
    _snapshot_to_json,
    _ts,
    manifest_mac,
)
from styku_crypto.keys._store import KeyStore
from styku_crypto.keys._tombstones import _record_destinations, write_tombstones

__all__ = [
    "BackupResult",
    "backup",
    "build_backup",
]


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
    manifest["mac"] = manifest_mac(mac_key, manifest)
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

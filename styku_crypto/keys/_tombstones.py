"""Signed shred tombstones at backup destinations (crypto-shredding wins).

A shred writes ``tombstones/<tenant>.json`` to every destination the store was
backed up to *before* it commits, and every backup writes the tombstones that are
missing, so a tenant shredded after the newest backup stays shredded even when that
backup is lost. A tombstone carries an HMAC under a key derived from the tenant's
(sealed) key material; one that does not authenticate stops a restore.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from styku_crypto.exceptions import (
    BackupError,
    MetadataIntegrityError,
)
from styku_crypto.keys._backup_destinations import BackupDestination, destination
from styku_crypto.keys._backup_format import (
    _DESTINATIONS_RECORD,
    _TOMBSTONE_INFO,
    MAX_SMALL_FILE,
    TOMBSTONE_FORMAT,
    _b64,
    _canonical,
    _parse_ts,
    _ts,
    _unb64,
    parse_json,
)
from styku_crypto.keys._store import SHRED_HOOKS, KeyStore

__all__ = [
    "make_tombstone",
    "recorded_destinations",
    "tombstones_at",
    "write_tombstones",
]

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

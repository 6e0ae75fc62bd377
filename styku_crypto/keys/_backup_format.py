"""The key-store backup file format: constants, canonical JSON, snapshot
(de)serialisation, the manifest MAC and the canaries.

Security property: everything a backup carries is authenticated by one HMAC-SHA256
over the canonical JSON of its manifest (the manifest carries the SHA-256 of every
other file); the MAC key is fresh per backup and travels only wrapped under the
store's root providers, with the backup id bound as associated data. Parsers here are
size- and depth-limited and raise :class:`~styku_crypto.exceptions.BackupError` on
anything malformed. See :mod:`styku_crypto.keys._backup` for the whole design.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from styku_crypto.exceptions import (
    BackupError,
    DecryptionError,
    RootKeyUnavailableError,
)
from styku_crypto.keys._backend import KeyRecord, StoreSnapshot, TenantRecord
from styku_crypto.keys._provider import RootKeyProvider
from styku_crypto.keys._store import KeyStore

__all__ = [
    "BACKUP_FORMAT",
    "MAX_DEPTH",
    "MAX_SMALL_FILE",
    "SHRED_LIST_FORMAT",
    "TOMBSTONE_FORMAT",
    "check_canary",
    "manifest_mac",
    "parse_json",
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


def manifest_mac(mac_key: bytes, manifest: dict[str, Any]) -> str:
    """HMAC-SHA256 (hex) over the canonical JSON of *manifest* without its ``mac`` field."""
    body = {k: v for k, v in manifest.items() if k != "mac"}
    return hmac.new(mac_key, _canonical(body), hashlib.sha256).hexdigest()


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

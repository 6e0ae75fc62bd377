"""Golden tokens pin format v1; an independent decoder written from docs/format.md reads them.

``tests/vectors/envelope_v1.json`` holds fixed tenant keys, data keys and nonces and
the tokens they must produce. Regenerate (only for a deliberate format change, which
needs a new format version) with ``python -m tests.envelope.test_golden``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from styku_crypto.envelope import DataClass, Envelope
from styku_crypto.keys import KeyRecord, KeyStore, LocalRootKey, SQLiteBackend
from styku_crypto.keys._material import wrap_aad as root_wrap_aad
from tests._support import leaks
from tests._support.vectors import GOLDEN_DIR, load_golden

NAME = "envelope_v1.json"


def _h(x: str) -> bytes:
    return bytes.fromhex(x)


def build_store(spec: dict[str, Any], tmp: Path) -> KeyStore:
    """A real SQLite store whose tenant keys are the fixed ones in *spec*."""
    root = LocalRootKey(tmp / "root.key")
    backend = SQLiteBackend(tmp / "golden.db")
    backend.initialize()
    records = []
    for k in spec["tenant_keys"]:
        aad = root_wrap_aad(spec["tenant"], k["purpose"], k["version"], k["key_id"])
        records.append(
            KeyRecord(
                tenant=spec["tenant"],
                purpose=k["purpose"],
                version=k["version"],
                key_id=k["key_id"],
                wraps=((root.provider_id, root.wrap(_h(k["secret"]), aad=aad)),),
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
    store = KeyStore(backend, root=root)  # first, so that the write below is sealed
    backend.create_tenant(spec["tenant"], records)
    return store


# --- an independent decoder, written from docs/format.md only ----------------


def _lp(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _ctx(context: dict[str, str]) -> bytes:
    items = sorted((k.encode(), v.encode()) for k, v in context.items())
    return struct.pack(">I", len(items)) + b"".join(_lp(k) + _lp(v) for k, v in items)


def _siv_key(secret: bytes, tenant: str, purpose: str, version: int) -> bytes:
    info = (
        b"styku-crypto/v1/envelope-wrap\x00"
        + _lp(tenant.encode())
        + _lp(purpose.encode())
        + struct.pack(">I", version)
        + _lp(b"")
        + struct.pack(">H", 64)
    )
    return HKDF(hashes.SHA256(), 64, None, info).derive(secret)


def decode(token: bytes, tenant: str, context: dict[str, str], secrets: dict[Any, bytes]) -> bytes:
    """Decrypt *token* byte by byte as docs/format.md describes."""
    version, suite, data_class, count = token[0], token[1], token[2], token[3]
    assert version == 1
    assert suite in (1, 3)
    assert (data_class, count) in ((1, 1), (2, 2))
    pos = 4
    layers = []
    for i in range(count):
        purpose = token[pos]
        assert purpose == i + 1  # layer 0 customer, layer 1 sensitive
        (key_version,) = struct.unpack(">I", token[pos + 1 : pos + 5])
        commitment = token[pos + 5 : pos + 37]
        wrapped = token[pos + 37 : pos + 85]
        layers.append((purpose, key_version, commitment, wrapped))
        pos += 85
    nonces = [bytes(12)] * count
    if suite == 3:
        nonces = [token[pos + 12 * i : pos + 12 * (i + 1)] for i in range(count)]
        pos += 12 * count
    prefix = token[:4]
    tlp = _lp(tenant.encode())
    commitments = b"".join(layer[2] for layer in layers)
    deks = []
    for i, (purpose, key_version, commitment, wrapped) in enumerate(layers):
        name = {1: "customer", 2: "sensitive"}[purpose]
        siv = AESSIV(_siv_key(secrets[(name, key_version)], tenant, name, key_version))
        aad = (
            b"styku-crypto/v1/dek-wrap\x00"
            + prefix
            + bytes([i, purpose])
            + struct.pack(">I", key_version)
            + commitment
            + tlp
        )
        dek = siv.decrypt(wrapped, [aad])
        assert hashlib.sha256(b"styku-crypto/v1/dek-commitment\x00" + dek).digest() == commitment
        deks.append(dek)
    payload = token[pos:]
    for i in range(count):
        aad = (
            b"styku-crypto/v1/payload\x00" + prefix + bytes([i]) + commitments + tlp + _ctx(context)
        )
        payload = AESGCM(deks[i]).decrypt(nonces[i], payload, aad)
    return payload


# --- tests -------------------------------------------------------------------


def test_golden_tokens_are_reproduced(tmp_path: Path) -> None:
    """The private deterministic hook reproduces every golden token byte for byte."""
    spec = load_golden(NAME)
    for k in spec["tenant_keys"]:
        leaks.register_secret(_h(k["secret"]))
    with build_store(spec, tmp_path) as store:
        env = Envelope(store)
        for case in spec["cases"]:
            for purpose, version in case["primary"]:
                assert store._tenant_key(spec["tenant"], purpose).version == version
            token = env._encrypt_from_parts(
                _h(case["plaintext"]),
                tenant=spec["tenant"],
                context=case["context"],
                data_class=DataClass(case["data_class"]),
                deks=[_h(d) for d in case["deks"]],
                nonces=None if case["nonces"] is None else [_h(n) for n in case["nonces"]],
            )
            assert token.hex() == case["token"], case["name"]


def test_golden_tokens_decrypt(tmp_path: Path) -> None:
    """Envelope.decrypt reads every golden token (text form too) back to its plaintext."""
    spec = load_golden(NAME)
    with build_store(spec, tmp_path) as store:
        env = Envelope(store)
        for case in spec["cases"]:
            pt = _h(case["plaintext"])
            assert (
                env.decrypt(_h(case["token"]), tenant=spec["tenant"], context=case["context"]) == pt
            )
            assert (
                env.decrypt_text(case["text"], tenant=spec["tenant"], context=case["context"]) == pt
            )


def test_independent_decoder_reads_golden_tokens() -> None:
    """A decoder built from the spec alone (no styku_crypto code) decrypts every golden token."""
    spec = load_golden(NAME)
    secrets = {(k["purpose"], k["version"]): _h(k["secret"]) for k in spec["tenant_keys"]}
    for case in spec["cases"]:
        out = decode(_h(case["token"]), spec["tenant"], case["context"], secrets)
        assert out == _h(case["plaintext"]), case["name"]


def test_independent_decoder_reads_fresh_tokens(tmp_path: Path) -> None:
    """Random (non-golden) tokens from Envelope.encrypt are readable by the independent decoder."""
    spec = load_golden(NAME)
    secrets = {(k["purpose"], k["version"]): _h(k["secret"]) for k in spec["tenant_keys"]}
    with build_store(spec, tmp_path) as store:
        env = Envelope(store)
        for dc in DataClass:
            token = env.encrypt(b"fresh", tenant=spec["tenant"], context={"a": "b"}, data_class=dc)
            assert decode(token, spec["tenant"], {"a": "b"}, secrets) == b"fresh"


def _generate(tmp: Path) -> dict[str, Any]:
    tenant = "acme"
    keys = [
        ("customer", 1, "tk_0000000000000c01", bytes(range(32))),
        ("customer", 2, "tk_0000000000000c02", bytes(range(32, 64))),
        ("sensitive", 1, "tk_0000000000000501", bytes(range(64, 96))),
    ]
    spec: dict[str, Any] = {
        "description": "styku-crypto envelope token format v1 golden vectors (see docs/format.md)",
        "tenant": tenant,
        "tenant_keys": [
            {"purpose": p, "version": v, "key_id": i, "secret": s.hex()} for p, v, i, s in keys
        ],
        "cases": [],
    }
    plans = [
        ("customer, suite 1, empty plaintext", 1, b"", {}, None),
        ("customer, suite 1", 1, b"hello, styku", {"table": "scans", "id": "42"}, None),
        ("sensitive, suite 1", 2, b"1970-01-01", {"table": "people", "field": "dob"}, None),
        ("customer, suite 3 (cached data key)", 1, b"cached", {"k": "v"}, 1),
        ("sensitive, suite 3 (cached data keys)", 2, b"cached sensitive", {"\u00e9": "\u2603"}, 2),
    ]
    with build_store(spec, tmp) as store:
        env = Envelope(store)
        for n, (name, dc, pt, ctx, nonces) in enumerate(plans):
            layers = 1 if dc == 1 else 2
            deks = [bytes([0xD0 + n + i]) * 32 for i in range(layers)]
            nonce_list = None if nonces is None else [bytes([0xA0 + i]) * 12 for i in range(layers)]
            token = env._encrypt_from_parts(
                pt,
                tenant=tenant,
                context=ctx,
                data_class=DataClass(dc),
                deks=deks,
                nonces=nonce_list,
            )
            spec["cases"].append(
                {
                    "name": name,
                    "data_class": dc,
                    "primary": [["customer", 2], ["sensitive", 1]],
                    "plaintext": pt.hex(),
                    "context": ctx,
                    "deks": [d.hex() for d in deks],
                    "nonces": None if nonce_list is None else [x.hex() for x in nonce_list],
                    "token": token.hex(),
                    "text": "stk1." + base64.urlsafe_b64encode(token).decode().rstrip("="),
                }
            )
    return spec


@pytest.mark.parametrize("field", ["token", "text"])
def test_golden_file_is_well_formed(field: str) -> None:
    """The golden file has the five documented cases with tokens and text forms."""
    spec = load_golden(NAME)
    assert len(spec["cases"]) == 5
    assert all(case[field] for case in spec["cases"])


if __name__ == "__main__":  # pragma: no cover - regeneration helper
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        out = _generate(Path(d))
    (GOLDEN_DIR / NAME).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {GOLDEN_DIR / NAME}", file=sys.stderr)

"""Generate ``tests/vectors/envelope_v1.json`` (the golden vectors of docs/format.md).

Run ``python -m tests.envelope.make_vectors`` from the project root, only for a deliberate
format change. Everything is fixed (root key, root-wrap nonces, tenant keys, data keys,
suite-3 nonces) except the 24-byte salt that ``cryptography``'s Cobblestone draws for
suite-2 tokens, so suite-2 cases are decode-only: their tokens are checked by decoding.
"""

from __future__ import annotations

import io
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from styku_crypto.envelope import DataClass, Envelope
from styku_crypto.envelope._format import SUITE_STREAM, encode_context, to_text
from styku_crypto.envelope._stream import EncryptingWriter, _stream_context, _stream_key
from styku_crypto.keys import KeyRecord, KeyStore, LocalRootKey, SQLiteBackend
from styku_crypto.keys._material import wrap_aad as root_wrap_aad
from tests._support.vectors import GOLDEN_DIR

NAME = "envelope_v1.json"
ROOT_SECRET = bytes(range(0xE0, 0x100))
#: (tenant, purpose, version, key_id, secret)
TENANT_KEYS = [
    ("acme", "customer", 1, "tk_0000000000000c01", bytes(range(32))),
    ("acme", "customer", 2, "tk_0000000000000c02", bytes(range(32, 64))),
    ("acme", "sensitive", 1, "tk_0000000000000501", bytes(range(64, 96))),
    ("globex", "customer", 1, "tk_0000000000060c01", bytes(range(96, 128))),
]
_LOCAL_ROOT_AAD = b"styku-crypto/local-root/v1\x00"


def root_wrap(tenant: str, purpose: str, version: int, key_id: str, secret: bytes) -> bytes:
    """The local root provider's wrap with a fixed nonce (its format, deterministic)."""
    nonce = bytes([version, len(purpose), len(tenant)]) + bytes(9)
    aad = _LOCAL_ROOT_AAD + root_wrap_aad(tenant, purpose, version, key_id)
    return b"\x01" + nonce + AESGCM(ROOT_SECRET).encrypt(nonce, secret, aad)


def build_store(spec: dict[str, Any], tmp: Path) -> KeyStore:
    """A real SQLite store holding the golden file's root-wrapped tenant keys."""
    root_path = tmp / "root.key"
    fd = os.open(root_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(bytes.fromhex(spec["root_key"]["secret"]))
    root = LocalRootKey(root_path, create=False)
    backend = SQLiteBackend(tmp / "golden.db")
    backend.initialize()
    by_tenant: dict[str, list[KeyRecord]] = {}
    for k in spec["tenant_keys"]:
        by_tenant.setdefault(k["tenant"], []).append(
            KeyRecord(
                tenant=k["tenant"],
                purpose=k["purpose"],
                version=k["version"],
                key_id=k["key_id"],
                wraps=((root.provider_id, bytes.fromhex(k["root_wrap"])),),
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
    store = KeyStore(backend, root=root)  # first, so that the writes below are sealed
    for tenant, records in by_tenant.items():
        backend.create_tenant(tenant, records)
    return store


def _stream_token(
    env: Envelope, plaintext: bytes, tenant: str, ctx: dict[str, str], dc: DataClass, deks: list
) -> bytes:
    """A suite-2 token with injected data keys (the Cobblestone salt stays random)."""
    encoded = encode_context(ctx)
    tlp = env._tenant_lp(tenant)
    header, commits, _, _ = env._fresh_layers(tenant, tlp, dc, SUITE_STREAM, encoded, deks)
    pre = header[:4]
    sink = io.BytesIO()
    writer = EncryptingWriter(
        sink,
        header=header,
        key=_stream_key(deks, pre),
        context=_stream_context(pre, commits, tlp, encoded),
    )
    with writer:
        writer.write(plaintext)
    return sink.getvalue()


def _flip(token: bytes, index: int) -> str:
    out = bytearray(token)
    out[index] ^= 0x01
    return bytes(out).hex()


def generate(tmp: Path) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "description": (
            "styku-crypto envelope token format v1 golden vectors (see docs/format.md). "
            "Tenant keys are stored wrapped by a local root key; a decoder unwraps them, "
            "then decodes each case. 'failures' must raise the named error."
        ),
        "root_key": {"provider": "local", "secret": ROOT_SECRET.hex()},
        "tenant_keys": [
            {
                "tenant": t,
                "purpose": p,
                "version": v,
                "key_id": i,
                "secret": s.hex(),
                "root_wrap": root_wrap(t, p, v, i, s).hex(),
            }
            for t, p, v, i, s in TENANT_KEYS
        ],
        "cases": [],
        "failures": [],
    }
    plans: list[tuple[str, int, int, bytes, dict[str, str]]] = [
        ("customer, suite 1, empty plaintext", 1, 1, b"", {}),
        ("customer, suite 1", 1, 1, b"hello, styku", {"table": "scans", "id": "42"}),
        ("sensitive, suite 1", 2, 1, b"1970-01-01", {"table": "people", "field": "dob"}),
        ("customer, suite 3 (cached data key)", 1, 3, b"cached", {"k": "v"}),
        ("sensitive, suite 3 (cached data keys)", 2, 3, b"cached sensitive", {"\u00e9": "\u2603"}),
        ("customer, suite 2 (streamed), empty", 1, 2, b"", {"file": "empty"}),
        (
            "customer, suite 2 (streamed), two chunks",
            1,
            2,
            bytes(range(256)) * 64 + b"end",
            {"f": "a"},
        ),
        ("sensitive, suite 2 (streamed)", 2, 2, b"streamed sensitive", {"f": "b"}),
    ]
    tenant = "acme"
    with build_store(spec, tmp) as store:
        env = Envelope(store)
        for n, (name, dc, suite, pt, ctx) in enumerate(plans):
            layers = 1 if dc == 1 else 2
            deks = [bytes([0xD0 + n + i]) * 32 for i in range(layers)]
            nonces = [bytes([0xA0 + n + i]) * 12 for i in range(layers)] if suite == 3 else None
            if suite == SUITE_STREAM:
                token = _stream_token(env, pt, tenant, ctx, DataClass(dc), deks)
            else:
                token = env._encrypt_from_parts(
                    pt,
                    tenant=tenant,
                    context=ctx,
                    data_class=DataClass(dc),
                    deks=deks,
                    nonces=nonces,
                )
            spec["cases"].append(
                {
                    "name": name,
                    "tenant": tenant,
                    "suite": suite,
                    "data_class": dc,
                    "primary": [["customer", 2], ["sensitive", 1]],
                    "plaintext": pt.hex(),
                    "context": ctx,
                    "deks": [d.hex() for d in deks],
                    "nonces": None if nonces is None else [x.hex() for x in nonces],
                    "reproducible": suite != SUITE_STREAM,
                    "token": token.hex(),
                    "text": to_text(token),
                }
            )
    spec["failures"] = _failures(spec["cases"])
    return spec


def _one_mod_four(text: str) -> str:
    """*text* padded with ``A`` until its base64url body is 1 (mod 4) characters long."""
    return text + "A" * ((1 - len(text[5:])) % 4)


def _failures(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    c1 = bytes.fromhex(cases[1]["token"])
    s1 = bytes.fromhex(cases[2]["token"])
    c3 = bytes.fromhex(cases[3]["token"])
    c2 = bytes.fromhex(cases[6]["token"])
    e2 = bytes.fromhex(cases[5]["token"])
    e2ctx = cases[5]["context"]
    ctx1 = cases[1]["context"]

    def fail(name: str, error: str, token: bytes | str, **kw: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": name, "error": error, "tenant": "acme", "context": ctx1}
        if isinstance(token, str):
            entry["text"] = token
        else:
            entry["token"] = token.hex()
        entry.update(kw)
        return entry

    s1ctx = cases[2]["context"]
    c3ctx = cases[3]["context"]
    c2ctx = cases[6]["context"]
    return [
        fail("format version 2", "UnsupportedFormatError", b"\x02" + c1[1:]),
        fail("suite 9", "UnsupportedFormatError", c1[:1] + b"\x09" + c1[2:]),
        fail("data class 3", "UnsupportedFormatError", c1[:2] + b"\x03" + c1[3:]),
        fail("layer count 2 in a CUSTOMER token", "DecryptionError", c1[:3] + b"\x02" + c1[4:]),
        fail("layer 0 purpose 2", "DecryptionError", c1[:4] + b"\x02" + c1[5:]),
        fail("truncated header", "DecryptionError", c1[:60]),
        fail("truncated payload (no tag)", "DecryptionError", c1[: 89 + 8]),
        fail("commitment bit flipped", "DecryptionError", bytes.fromhex(_flip(c1, 9))),
        fail("wrapped key bit flipped", "DecryptionError", bytes.fromhex(_flip(c1, 50))),
        fail("tag bit flipped", "DecryptionError", bytes.fromhex(_flip(c1, len(c1) - 1))),
        fail("other context", "DecryptionError", c1, context={"table": "scans", "id": "43"}),
        fail("empty context", "DecryptionError", c1, context={}),
        fail("other tenant (has no customer version 2)", "DecryptionError", c1, tenant="globex"),
        fail("unknown tenant", "KeyNotFoundError", c1, tenant="initech"),
        fail("key version 9", "DecryptionError", c1[:5] + b"\x00\x00\x00\x09" + c1[9:]),
        fail("CUSTOMER token read as SENSITIVE", "DecryptionError", c1, data_class=2),
        fail(
            "SENSITIVE token read as CUSTOMER", "DecryptionError", s1, context=s1ctx, data_class=1
        ),
        fail(
            "SENSITIVE inner commitment flipped",
            "DecryptionError",
            bytes.fromhex(_flip(s1, 89 + 5)),
            context=s1ctx,
        ),
        fail(
            "SENSITIVE layers swapped",
            "DecryptionError",
            s1[:4] + s1[89:174] + s1[4:89] + s1[174:],
            context=s1ctx,
        ),
        fail(
            "suite 3 context commitment flipped",
            "DecryptionError",
            bytes.fromhex(_flip(c3, 89 + 12)),
            context=c3ctx,
        ),
        fail(
            "suite 3 nonce flipped",
            "DecryptionError",
            bytes.fromhex(_flip(c3, 89)),
            context=c3ctx,
        ),
        fail("suite 3 other context", "DecryptionError", c3, context={"k": "w"}),
        fail(
            "suite 2 final chunk dropped", "DecryptionError", c2[: 89 + 56 + 16400], context=c2ctx
        ),
        fail("suite 2 extra byte", "DecryptionError", e2 + b"\x00", context=e2ctx),
        fail(
            "suite 2 salt bit flipped",
            "DecryptionError",
            bytes.fromhex(_flip(e2, 89)),
            context=e2ctx,
        ),
        fail(
            "suite 2 tag bit flipped",
            "DecryptionError",
            bytes.fromhex(_flip(e2, len(e2) - 1)),
            context=e2ctx,
        ),
        fail("suite 2 other context", "DecryptionError", e2, context={"file": "other"}),
        fail("text: other version prefix", "UnsupportedFormatError", "stk2." + to_text(c1)[5:]),
        fail("text: no prefix", "UnsupportedFormatError", to_text(c1)[5:]),
        fail("text: padding character", "DecryptionError", to_text(c1) + "="),
        fail("text: standard base64 alphabet", "DecryptionError", "stk1.AQEB+/AA"),
        fail("text: length 1 mod 4", "DecryptionError", _one_mod_four(to_text(c1))),
        fail("text: non-canonical trailing bits", "DecryptionError", "stk1.AB"),
    ]


if __name__ == "__main__":  # pragma: no cover - regeneration helper
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        out = generate(Path(d))
    (GOLDEN_DIR / NAME).write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {GOLDEN_DIR / NAME}", file=sys.stderr)

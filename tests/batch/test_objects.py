"""rewrap_objects on moto's S3 server and on a local directory, on a real LocalCluster."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import boto3

from styku_crypto.batch import rewrap_objects
from styku_crypto.batch._objects import PART_SIZE
from tests._support.moto_server import AWS_ENV

SIZES = {"1k": 1024, "64k": 64 * 1024, "1m": 1 << 20, "9m": 9 << 20, "64m": 64 << 20}
CTX = {"kind": "scan"}


def _data(size: int) -> bytes:
    return (b"styku-scan-bytes" * (size // 16 + 1))[:size]


def _token(keys: Any, size: int) -> bytes:
    out = io.BytesIO()
    with keys.env.encrypt_stream(out, tenant="acme", context=CTX) as w:
        w.write(_data(size))
    return out.getvalue()


def _decrypts(keys: Any, token: bytes, size: int) -> bool:
    plain = keys.env.decrypt_stream(io.BytesIO(token), tenant="acme", context=CTX).read()
    return plain == _data(size)


def test_s3_objects_1k_to_64m_header_only_bytes_measured(
    keys: Any, client: Any, moto_server: Any, fault_proxy: Any
) -> None:
    """Objects 1 KiB..64 MiB are rewrapped; only the first part of each crosses the network."""
    s3 = boto3.client("s3", endpoint_url=moto_server.endpoint, **AWS_ENV)
    s3.create_bucket(Bucket="scans")
    tokens = {}
    for name, size in SIZES.items():
        tokens[name] = _token(keys, size)
        s3.put_object(Bucket="scans", Key=f"t/{name}", Body=tokens[name])
    keys.store.rotate("acme")
    fault_proxy.reset_counts()
    report = rewrap_objects(
        "s3://scans/t/",
        spec=keys.spec,
        tenant="acme",
        client=client,
        endpoint_url=fault_proxy.endpoint,
        objects_per_task=1,
    )
    assert report.complete
    assert report.changed == len(SIZES)
    assert report.failed == 0
    total = sum(len(t) for t in tokens.values())
    first_parts = sum(min(len(t), PART_SIZE) for t in tokens.values())
    # Measured at the proxy: what really crossed the network, both ways.
    assert fault_proxy.bytes_up <= first_parts + 64 * 1024
    assert fault_proxy.bytes_down <= first_parts + 64 * 1024
    tails = sum(len(t) - PART_SIZE for t in tokens.values() if len(t) > PART_SIZE)
    assert report.bytes_copied == tails  # the 9m and 64m tails, copied server-side
    # e.g. 77.7 MB of tokens: ~17.9 MB up, ~17.9 MB down (first parts only), 59.8 MB copied.
    assert fault_proxy.bytes_up + tails <= total + 64 * 1024
    for name, size in SIZES.items():
        new = s3.get_object(Bucket="scans", Key=f"t/{name}")["Body"].read()
        assert len(new) == len(tokens[name])
        assert keys.env.inspect(new).key_versions == (("customer", 2),)
        info = keys.env.inspect(new)
        assert new[info.header_length :] == tokens[name][info.header_length :]
        assert _decrypts(keys, new, size)
    again = rewrap_objects(
        "s3://scans/t/",
        spec=keys.spec,
        tenant="acme",
        client=client,
        endpoint_url=fault_proxy.endpoint,
    )
    assert again.changed == 0
    assert again.current == len(SIZES)


def test_local_directory_rewrap_and_reencrypt(tmp_path: Path, keys: Any, client: Any) -> None:
    """A directory of token files: rewrap rewrites headers; reencrypt gives fresh payloads."""
    d = tmp_path / "objs"
    d.mkdir()
    sizes = {"a": 10, "b": 100_000, "c": 2_000_000}
    for name, size in sizes.items():
        (d / name).write_bytes(_token(keys, size))
    (d / "bad").write_bytes(
        b"\x01\x02\x01\x01" + b"\x00" * 200
    )  # header that does not authenticate
    keys.store.rotate("acme")
    report = rewrap_objects(str(d), spec=keys.spec, tenant="acme", client=client)
    assert report.changed == 3
    assert [(Path(f.key).name, f.reason) for f in report.failures] == [("bad", "tamper")]
    before = {n: (d / n).read_bytes() for n in sizes}
    keys.store.rotate("acme")
    report = rewrap_objects(
        str(d), spec=keys.spec, tenant="acme", client=client, mode="reencrypt", context=CTX
    )
    assert report.changed == 3
    for name, size in sizes.items():
        new = (d / name).read_bytes()
        assert keys.env.inspect(new).key_versions == (("customer", 3),)
        assert _decrypts(keys, new, size)
        assert new[-64:] != before[name][-64:]  # a fresh data key: new payload bytes
    assert not [p for p in d.iterdir() if p.name.startswith(".styku-batch-")]

"""rewrap_dataframe on a Parquet dataset, computed on the LocalCluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
import pytest

from styku_crypto.batch import rewrap_dataframe
from tests.batch._tables import ctx, plaintext


@pytest.fixture(autouse=True)
def _binary_columns_stay_bytes() -> Any:
    """Binary tokens must not become strings (Dask converts object columns by default)."""
    with dask.config.set({"dataframe.convert-string": False}):
        yield


def test_parquet_rewrap_and_reencrypt_flags_failures(
    tmp_path: Path, keys: Any, client: Any
) -> None:
    """Parquet in, Parquet out: every token rotated, a tampered one flagged and left unchanged."""
    tokens = [keys.env.encrypt(plaintext(i, 40), tenant="acme", context=ctx(i)) for i in range(400)]
    bad = bytearray(tokens[7])
    bad[30] ^= 1
    tokens[7] = bytes(bad)
    pdf = pd.DataFrame({"id": range(400), "token": tokens})
    pdf.to_parquet(tmp_path / "in.parquet")
    keys.store.rotate("acme")
    src = dd.read_parquet(tmp_path / "in.parquet").repartition(npartitions=4)
    out = rewrap_dataframe(src, "token", spec=keys.spec, tenant="acme")
    schema = pa.schema([("id", pa.int64()), ("token", pa.binary()), ("token_failed", pa.bool_())])
    out.to_parquet(tmp_path / "out", schema=schema, write_index=False)
    got = dd.read_parquet(tmp_path / "out").compute().sort_values("id")
    assert list(got[got["token_failed"]]["id"]) == [7]
    assert bytes(got[got["id"] == 7]["token"].iloc[0]) == tokens[7]
    for i, tok in zip(got["id"], got["token"], strict=True):
        if i == 7:
            continue
        assert keys.env.inspect(bytes(tok)).key_versions == (("customer", 2),)
        assert keys.env.decrypt(bytes(tok), tenant="acme", context=ctx(int(i))) == plaintext(i, 40)
    keys.store.rotate("acme")
    again = rewrap_dataframe(
        dd.read_parquet(tmp_path / "out").drop(columns=["token_failed"]),
        "token",
        spec=keys.spec,
        tenant="acme",
        mode="reencrypt",
        context_columns=["id"],
    ).compute()
    assert int(again["token_failed"].sum()) == 1

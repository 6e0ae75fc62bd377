"""``rewrap_dataframe``: rotate a token column of a Dask dataframe (Parquet and others).

The result is a new lazy dataframe with the column replaced; nothing is written
until the caller writes it (``to_parquet`` into a new location, then swap), so
an interrupted job leaves the old files intact. A token that fails is left
unchanged, and its row is flagged in the boolean column ``<column>_failed``:
nothing is dropped silently.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from styku_crypto._extras import require
from styku_crypto.batch._work import TokenError, check_mode, open_for_run, process_token
from styku_crypto.envelope._spec import EnvelopeSpec
from styku_crypto.exceptions import InvalidInputError

__all__ = ["rewrap_dataframe"]


def _partition(
    pdf: Any,
    column: str,
    spec: EnvelopeSpec,
    tenant: str | None,
    tenant_column: str | None,
    pairs: tuple[tuple[str, str], ...],
    mode: str,
    run: str,
) -> Any:
    env = open_for_run(spec, run)
    out, failed = [], []
    tenants = pdf[tenant_column] if tenant_column else None
    for i, token in enumerate(pdf[column]):
        row_tenant = str(tenants.iloc[i]) if tenants is not None else tenant
        assert row_tenant is not None
        ctx = {name: str(pdf[col].iloc[i]) for name, col in pairs}
        try:
            new = process_token(env, token, tenant=row_tenant, context=ctx, mode=mode)
        except TokenError:
            out.append(token)
            failed.append(True)
            continue
        out.append(token if new is None else new)
        failed.append(False)
    pdf = pdf.copy()
    pdf[column] = out
    pdf[f"{column}_failed"] = failed
    return pdf


def rewrap_dataframe(
    ddf: Any,
    column: str,
    *,
    spec: EnvelopeSpec,
    tenant: str | None = None,
    tenant_column: str | None = None,
    context_columns: Sequence[str] | Mapping[str, str] = (),
    mode: str = "rewrap",
) -> Any:
    """A lazy dataframe with *column* re-wrapped (or re-encrypted) and ``<column>_failed``.

    Raises:
        InvalidInputError: both or neither of *tenant* / *tenant_column*, a bad mode.
        MissingExtraError: ``dask[dataframe]`` is missing (extra ``batch``).
    """
    require("dask.dataframe", extra="batch")
    check_mode(mode)
    if (tenant is None) == (tenant_column is None):
        raise InvalidInputError("pass exactly one of tenant= and tenant_column=")
    if isinstance(context_columns, Mapping):
        pairs = tuple((str(a), str(b)) for a, b in context_columns.items())
    else:
        pairs = tuple((str(c), str(c)) for c in context_columns)
    pandas = require("pandas", extra="batch")
    meta = ddf._meta.assign(**{f"{column}_failed": pandas.Series([], dtype=bool)})
    return ddf.map_partitions(
        _partition, column, spec, tenant, tenant_column, pairs, mode, uuid.uuid4().hex, meta=meta
    )

"""Fleet-scale key rotation on Dask: re-wrap or re-encrypt tables, objects and dataframes."""

from styku_crypto.batch._dataframe import rewrap_dataframe
from styku_crypto.batch._objects import rewrap_objects
from styku_crypto.batch._report import REPORT_SCHEMA, BatchFailure, BatchReport, PartitionResult
from styku_crypto.batch._table import rewrap_table
from styku_crypto.envelope._spec import EnvelopeSpec

__all__ = [
    "REPORT_SCHEMA",
    "BatchFailure",
    "BatchReport",
    "EnvelopeSpec",
    "PartitionResult",
    "rewrap_dataframe",
    "rewrap_objects",
    "rewrap_table",
]

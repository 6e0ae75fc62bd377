"""Field-level encryption: encrypted record fields, blind indexes, deterministic encryption.

ORM column types live in :mod:`styku_crypto.fields.sqlalchemy` (``sqlalchemy`` extra).
"""

from styku_crypto.fields._blind_index import (
    BlindIndexer,
    IndexTag,
    casefold_email,
    digits_only,
    normalize_text,
)
from styku_crypto.fields._deterministic import DeterministicEncryptor
from styku_crypto.fields._record import RecordEncryptor

__all__ = [
    "BlindIndexer",
    "DeterministicEncryptor",
    "IndexTag",
    "RecordEncryptor",
    "casefold_email",
    "digits_only",
    "normalize_text",
]

"""Layered envelope encryption of records for tenants (token format v1)."""

from styku_crypto.envelope._cache import DataKeyCache
from styku_crypto.envelope._envelope import Envelope, RewrapProgress
from styku_crypto.envelope._format import TEXT_PREFIX, DataClass
from styku_crypto.envelope._info import TokenInfo
from styku_crypto.envelope._spec import EnvelopeSpec

__all__ = [
    "DataClass",
    "DataKeyCache",
    "Envelope",
    "EnvelopeSpec",
    "RewrapProgress",
    "TEXT_PREFIX",
    "TokenInfo",
]

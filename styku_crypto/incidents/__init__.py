"""Tamper-evident security incident records (see ``docs/incidents.md``)."""

from styku_crypto.incidents._chain import FORMAT_VERSION, HeadStore, MacKey
from styku_crypto.incidents._export import EXPORT_FORMATS, EXPORT_SCHEMA, incident_to_dict
from styku_crypto.incidents._keys import INCIDENT_TENANT, KeyStoreMacKey
from styku_crypto.incidents._log import IncidentLog
from styku_crypto.incidents._model import Incident, IncidentAction, Severity, VerificationReport

__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_SCHEMA",
    "FORMAT_VERSION",
    "INCIDENT_TENANT",
    "HeadStore",
    "Incident",
    "IncidentAction",
    "IncidentLog",
    "KeyStoreMacKey",
    "MacKey",
    "Severity",
    "VerificationReport",
    "incident_to_dict",
]

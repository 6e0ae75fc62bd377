"""Structured security events, redaction, ECS JSON, anomaly alerts (see ``docs/events.md``)."""

from styku_crypto.events._detectors import DEFAULT_RULES, Alert, AnomalyDetector, DetectorRule
from styku_crypto.events._ecs import ECS_VERSION, EcsFormatter
from styku_crypto.events._emit import (
    EVENT_ATTRIBUTE,
    FieldValue,
    emit,
    undeclared_fields_seen,
    unknown_events_seen,
)
from styku_crypto.events._otel import OtelEventHandler
from styku_crypto.events._redact import (
    DEFAULT_TOKEN_PREFIXES,
    REDACTED,
    REDACTED_ATTRIBUTE,
    RedactionFilter,
    Redactor,
)
from styku_crypto.events._vocabulary import (
    CAPABILITIES,
    FIELDS,
    VOCABULARY,
    EventSpec,
    FieldSpec,
    fields_markdown,
    is_known_event,
    lookup_event,
    lookup_field,
    vocabulary_markdown,
)

__all__ = [
    "CAPABILITIES",
    "DEFAULT_RULES",
    "DEFAULT_TOKEN_PREFIXES",
    "ECS_VERSION",
    "EVENT_ATTRIBUTE",
    "FIELDS",
    "REDACTED",
    "REDACTED_ATTRIBUTE",
    "VOCABULARY",
    "Alert",
    "AnomalyDetector",
    "DetectorRule",
    "EcsFormatter",
    "EventSpec",
    "FieldSpec",
    "FieldValue",
    "OtelEventHandler",
    "RedactionFilter",
    "Redactor",
    "emit",
    "fields_markdown",
    "is_known_event",
    "lookup_event",
    "lookup_field",
    "undeclared_fields_seen",
    "unknown_events_seen",
    "vocabulary_markdown",
]

"""Live TLS audit: enumerate what servers offer and judge it against a policy."""

from styku_crypto.tls.audit._api import audit, audit_async, parse_target, resolve_policy
from styku_crypto.tls.audit._model import AuditFinding, AuditReport, Facts, Target, TargetReport
from styku_crypto.tls.audit._report import JSON_SCHEMA, to_json, to_sarif, to_text

__all__ = [
    "JSON_SCHEMA",
    "AuditFinding",
    "AuditReport",
    "Facts",
    "Target",
    "TargetReport",
    "audit",
    "audit_async",
    "parse_target",
    "resolve_policy",
    "to_json",
    "to_sarif",
    "to_text",
]

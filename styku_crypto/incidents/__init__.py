"""Tamper-evident security incident records (see ``docs/incidents.md``)."""

from styku_crypto.incidents._actions import ActionContext, ActionResult
from styku_crypto.incidents._bridge import DEFAULT_BRIDGE_RULES, IncidentBridge
from styku_crypto.incidents._chain import FORMAT_VERSION, HeadStore, MacKey
from styku_crypto.incidents._export import EXPORT_FORMATS, EXPORT_SCHEMA, incident_to_dict
from styku_crypto.incidents._keys import INCIDENT_TENANT, KeyStoreMacKey
from styku_crypto.incidents._log import IncidentLog
from styku_crypto.incidents._model import (
    TRANSITIONS,
    ActionRun,
    Incident,
    IncidentAction,
    Severity,
    Status,
    StatusChange,
    Step,
    TenantNotice,
    TimelineItem,
    VerificationReport,
)
from styku_crypto.incidents._playbooks import (
    ACTION_NAMES,
    BUILTIN_PLAYBOOKS,
    Playbook,
    PlaybookStep,
    load_playbooks,
)
from styku_crypto.incidents._policy import DEFAULT_NOTIFICATION_HOURS, NotificationPolicy
from styku_crypto.incidents._rules import CHANNELS, CLOCK_SKEW

__all__ = [
    "ACTION_NAMES",
    "BUILTIN_PLAYBOOKS",
    "CHANNELS",
    "CLOCK_SKEW",
    "DEFAULT_BRIDGE_RULES",
    "DEFAULT_NOTIFICATION_HOURS",
    "EXPORT_FORMATS",
    "EXPORT_SCHEMA",
    "FORMAT_VERSION",
    "INCIDENT_TENANT",
    "TRANSITIONS",
    "ActionContext",
    "ActionResult",
    "ActionRun",
    "HeadStore",
    "Incident",
    "IncidentAction",
    "IncidentBridge",
    "IncidentLog",
    "KeyStoreMacKey",
    "MacKey",
    "NotificationPolicy",
    "Playbook",
    "PlaybookStep",
    "Severity",
    "Status",
    "StatusChange",
    "Step",
    "TenantNotice",
    "TimelineItem",
    "VerificationReport",
    "incident_to_dict",
    "load_playbooks",
]

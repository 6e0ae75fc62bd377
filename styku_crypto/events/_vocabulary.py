"""The stable security-event vocabulary, as data.

This table is the single source of truth for event names: :func:`emit` checks
names against it, the ECS formatter takes ``event.category``/``event.type``
from it, and the table in ``docs/events.md`` is generated from it (a test keeps
the two identical). Names are stable: a name is never reused for a different
meaning; new events are added, old ones deprecated, never silently renamed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CAPABILITIES",
    "FIELDS",
    "VOCABULARY",
    "EventSpec",
    "FieldSpec",
    "Sensitivity",
    "is_known_event",
    "lookup_event",
    "fields_markdown",
    "lookup_field",
    "vocabulary_markdown",
]

#: Every capability (logger suffix under ``styku_crypto.``) that emits events.
CAPABILITIES = ("envelope", "keys", "passwords", "tls", "web", "incidents", "alerts")

_LEVEL_NAMES = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One entry of the vocabulary.

    Attributes:
        name: the event name, e.g. ``"envelope.decrypt.failed"``; also the log
            message and the ECS ``event.action``.
        capability: the logger suffix (``styku_crypto.<capability>``).
        level: the logging level the event is emitted at.
        outcome: the usual outcome (``success``, ``failure`` or ``unknown``).
        fields: the context fields the event carries when known.
        description: one sentence for the docs table.
        category: ECS ``event.category`` values.
        types: ECS ``event.type`` values.
    """

    name: str
    capability: str
    level: int
    outcome: str
    fields: tuple[str, ...]
    description: str
    category: tuple[str, ...]
    types: tuple[str, ...]

    @property
    def level_name(self) -> str:
        """The level as text, e.g. ``"WARNING"``."""
        return _LEVEL_NAMES.get(self.level, str(self.level))


_D, _I, _W, _E = logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR
_KEY = ("tenant", "key_id", "key_version")


def _e(
    name: str,
    level: int,
    outcome: str,
    fields: tuple[str, ...],
    category: tuple[str, ...],
    types: tuple[str, ...],
    description: str,
) -> EventSpec:
    return EventSpec(
        name=name,
        capability=_CAPABILITY_OF_PREFIX[name.split(".", 1)[0]],
        level=level,
        outcome=outcome,
        fields=fields,
        description=description,
        category=category,
        types=types,
    )


_CAPABILITY_OF_PREFIX = {
    "envelope": "envelope",
    "key": "keys",
    "password": "passwords",
    "tls": "tls",
    "web": "web",
    "incident": "incidents",
    "alert": "alerts",
}

_CFG = ("configuration",)
_AUTH = ("authentication",)
_NET = ("network",)
_WEB = ("web",)
_IDS = ("intrusion_detection",)
_LIB = ("library",)

# fmt: off
#: The vocabulary, in documentation order.
VOCABULARY: tuple[EventSpec, ...] = (
    # envelope
    _e("envelope.encrypt", _D, "success", (*_KEY, "actor"), _LIB, ("access",),
       "A record was encrypted (DEBUG: high volume)."),
    _e("envelope.decrypt.failed", _W, "failure", (*_KEY, "actor", "source", "reason"), _LIB,
       ("access", "denied"),
       "A token was refused; reason is tamper, unknown_key, key_destroyed or "
       "unsupported_format. Tamper covers wrong key, wrong context and truncation alike."),
    _e("envelope.rewrap", _I, "success", (*_KEY, "actor"), _LIB, ("change",),
       "A token's data key was re-wrapped under the current tenant key."),
    _e("envelope.batch.partition", _I, "success", ("reason",), _LIB, ("change",),
       "A batch rewrap partition committed (WARNING when tokens in it failed or it stopped); "
       "attributes batch_job, batch_partition, seen, changed, conflicts, failures, seconds."),
    _e("envelope.batch.finished", _I, "success", ("reason",), _LIB, ("change",),
       "A batch rewrap job ended; reason names why it stopped early, if it did; "
       "attributes batch_job, batch_mode, seen, changed, conflicts, failures, seconds."),
    # keys
    _e("key.created", _I, "success", (*_KEY, "actor"), _CFG, ("creation",),
       "A tenant and its first key versions were created."),
    _e("key.rotated", _I, "success", (*_KEY, "actor"), _CFG, ("change",),
       "A new tenant key version became primary."),
    _e("key.rewrapped", _I, "success", (*_KEY, "actor"), _CFG, ("change",),
       "Tenant keys were re-wrapped at the root (new or additional root provider)."),
    _e("key.shredded", _W, "success", ("tenant", "actor"), _CFG, ("deletion",),
       "Every key of a tenant was destroyed (crypto-shredding)."),
    _e("key.backup", _I, "success", ("actor", "reason"), _CFG, ("info",),
       "An encrypted key-store backup was written."),
    _e("key.restored", _W, "success", ("actor", "reason"), _CFG, ("change",),
       "A key store was restored from a backup."),
    _e("key.drill", _I, "success", ("actor", "reason"), _CFG, ("info",),
       "A disaster-recovery drill ran (outcome says whether it passed)."),
    _e("key.root_failover", _W, "failure", ("reason",), _CFG, ("error",),
       "A root-key provider was unavailable; the next provider was used."),
    _e("key.shredded_access", _W, "failure", ("tenant", "key_version", "actor", "source"), _CFG,
       ("access", "denied"),
       "Someone tried to decrypt data of a shredded tenant."),
    _e("key.metadata_tampered", _E, "failure", ("tenant", "reason"), _CFG, ("error",),
       "The key store's authenticated metadata does not match its rows (a database write "
       "without the root key); the key was refused. `keys check` lists what changed."),
    _e("key.shred_incomplete", _E, "failure", ("tenant", "actor", "reason"), _CFG,
       ("deletion", "error"),
       "A shred deleted the keys but copies remain in store files (reason names what and "
       "why); finish it with `keys shred --finish`."),
    _e("key.tenant_root_destroyed", _W, "success", ("tenant", "actor"), _CFG, ("deletion",),
       "A shredded tenant's own root object was destroyed (PKCS#11 C_DestroyObject, or a KMS "
       "key scheduled for deletion; detail says when it is gone for good)."),
    # passwords
    _e("password.verified", _I, "success", ("actor", "source"), _AUTH, ("info",),
       "A password matched its stored hash."),
    _e("password.failed", _W, "failure", ("actor", "source", "reason"), _AUTH, ("info",),
       "A password did not match its stored hash."),
    _e("password.rehashed", _I, "success", ("actor", "reason"), _AUTH, ("change",),
       "A hash was upgraded to the current profile after a successful verify."),
    _e("password.upgraded_legacy", _I, "success", ("actor", "reason"), _AUTH, ("change",),
       "A legacy (bcrypt, PBKDF2, ...) hash was replaced by Argon2id."),
    _e("password.hash_refused", _W, "failure", ("actor", "source", "reason"), _AUTH,
       ("denied",),
       "A stored hash exceeded the parameter limits and was refused unverified."),
    _e("password.policy_rejected", _I, "failure", ("actor", "reason"), _AUTH, ("denied",),
       "A new password was rejected by the password policy."),
    # tls
    _e("tls.context_created", _I, "success", ("reason",), _NET, ("protocol",),
       "An SSL context was built from a policy."),
    _e("tls.policy_violation", _W, "failure", ("source", "reason"), _NET, ("protocol", "denied"),
       "A TLS connection or configuration broke the policy."),
    _e("tls.certificate_violation", _W, "failure", ("source", "reason"), _NET,
       ("protocol", "denied"),
       "A certificate failed the certificate policy."),
    _e("tls.audit", _I, "unknown", ("source", "reason"), ("network", "vulnerability"), ("info",),
       "A TLS endpoint was audited (outcome says pass or fail)."),
    # web
    _e("web.https_redirect", _I, "success", ("source", "reason"), _WEB, ("access",),
       "A plain-HTTP request was redirected to HTTPS."),
    _e("web.https_reject", _W, "failure", ("source", "reason"), _WEB, ("access", "denied"),
       "A plain-HTTP request was refused."),
    _e("web.client_cert_rejected", _W, "failure", ("source", "reason"), _WEB,
       ("access", "denied"),
       "A client certificate failed the client-certificate policy."),
    _e("web.login_throttled", _W, "failure", ("actor", "source"), ("web", "authentication"),
       ("denied",),
       "A login attempt was throttled."),
    # incidents
    _e("incident.opened", _W, "success", ("tenant", "actor"), _IDS, ("start",),
       "An incident record was opened."),
    _e("incident.updated", _I, "success", ("tenant", "actor"), _IDS, ("change",),
       "An incident record was updated (action, severity, tenants)."),
    _e("incident.closed", _I, "success", ("tenant", "actor"), _IDS, ("end",),
       "An incident record was closed with a disposition."),
    _e("incident.step_done", _I, "success", ("tenant", "actor"), _IDS, ("change",),
       "A playbook step of an incident was ticked as done (step names it)."),
    _e("incident.action_run", _W, "success", ("tenant", "actor", "reason"), _IDS, ("change",),
       "A playbook step ran its library action (reason names it; outcome); the result is in "
       "the log."),
    _e("incident.notified", _I, "success", ("tenant", "actor"), _IDS, ("info",),
       "A customer notification was recorded for an incident (tenant, channel)."),
    _e("incident.verify_failed", _E, "failure", ("reason",), _IDS, ("error",),
       "The incident log failed verification; reason is a fixed code (malformed, sequence_gap, "
       "chain_broken, unknown_key, mac_mismatch, truncated, head_mismatch, head_missing) and "
       "entry the first bad entry's number when known."),
    # alerts
    _e("alert.raised", _W, "unknown", ("tenant", "source", "reason"), _IDS, ("indicator",),
       "An anomaly detector saw a burst (reason names the rule)."),
)
# fmt: on

#: How a field's value is treated: ``public`` values are logged as they are
#: (after the value-shape scan), ``identifier`` values too (they name a tenant,
#: user, host or key but are not secret), ``secret`` values are never logged:
#: whatever is passed, ``[REDACTED]`` is written.
Sensitivity = Literal["public", "identifier", "secret"]

#: The value types a field may declare: ``text`` (``str``), ``int`` (not
#: ``bool``), ``number`` (``int`` or ``float``), ``bool``, ``scalar`` (any of these).
FieldType = Literal["text", "int", "number", "bool", "scalar"]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One declared event field.

    Attributes:
        name: the field name, as passed to :func:`emit` (keyword or ``attributes``).
        type: the accepted value type (``text``, ``int``, ``number``, ``bool``,
            ``scalar``); a value of another type is replaced by ``[REDACTED]``.
        sensitivity: ``public``, ``identifier`` or ``secret``.
        description: one phrase for the docs table.
    """

    name: str
    type: FieldType
    sensitivity: Sensitivity
    description: str


def _f(name: str, type_: FieldType, sensitivity: Sensitivity, description: str) -> FieldSpec:
    return FieldSpec(name=name, type=type_, sensitivity=sensitivity, description=description)


_P: Sensitivity = "public"
_ID: Sensitivity = "identifier"

# fmt: off
#: Every field :func:`emit` accepts, keyword context and ``attributes`` alike.
#: To add a field: append one ``_f(name, type, sensitivity, description)`` line
#: (a test keeps docs/events.md in step and fails on any undeclared field the
#: library emits). Names are ASCII identifiers of at most 64 characters.
FIELDS: tuple[FieldSpec, ...] = (
    # set by emit itself
    _f("event", "text", _P, "the event name"),
    _f("outcome", "text", _P, "success, failure or unknown"),
    _f("timestamp", "text", _P, "UTC ISO 8601 time of the event"),
    _f("redacted", "int", _P, "number of values emit replaced"),
    _f("vocabulary", "text", _P, "unknown when the event name is not in the vocabulary"),
    # context keywords
    _f("tenant", "text", _ID, "the tenant"),
    _f("key_id", "text", _ID, "a key identifier (never key material)"),
    _f("key_version", "int", _P, "a key version number"),
    _f("actor", "text", _ID, "who acted (user, service)"),
    _f("source", "text", _ID, "where from (client address, file, endpoint)"),
    _f("reason", "text", _P, "a failure class, rule or policy name"),
    # envelope
    _f("data_class", "text", _P, "the data class of a record"),
    _f("suite", "int", _P, "the envelope suite number"),
    _f("purpose", "text", _P, "a key purpose"),
    _f("batch_job", "text", _ID, "batch: the job (checkpoint) name"),
    _f("batch_partition", "text", _P, "batch: a partition (key range or object batch)"),
    _f("batch_mode", "text", _P, "batch: rewrap or reencrypt"),
    _f("seen", "int", _P, "batch: rows or objects read"),
    _f("changed", "int", _P, "batch: rows or objects written on the new keys"),
    _f("conflicts", "int", _P, "batch: rows changed by someone else meanwhile (left as written)"),
    _f("failures", "int", _P, "batch: tokens that failed (reported with their keys)"),
    # keys
    _f("backup_id", "text", _ID, "a backup identifier"),
    _f("provider", "text", _ID, "a root-key provider id"),
    _f("providers", "text", _ID, "root-key provider ids, comma-separated"),
    _f("versions", "int", _P, "number of key versions"),
    _f("key_versions", "int", _P, "number of key versions"),
    _f("tenants", "int", _P, "number of tenants"),
    _f("tenants_passed", "int", _P, "drill: tenants that passed"),
    _f("tenants_failed", "int", _P, "drill: tenants that failed"),
    _f("roots_failed", "text", _ID, "drill: comma-separated root providers that did not pass"),
    _f("detail", "text", _P, "a readable explanation (names files or sessions, no secrets)"),
    _f("tenants_shredded", "int", _P, "drill: shredded tenants"),
    _f("destinations_ok", "int", _P, "backup destinations written"),
    _f("destinations_failed", "int", _P, "backup destinations that failed"),
    _f("kept_shredded", "int", _P, "shredded tenants kept shredded by a restore"),
    _f("seconds", "number", _P, "a duration in seconds"),
    # passwords
    _f("scheme", "text", _P, "a password-hash scheme or URL scheme"),
    _f("profile", "text", _P, "a hashing profile name"),
    _f("needs_update", "bool", _P, "whether the hash needs an upgrade"),
    # tls
    _f("api", "text", _P, "the TLS API (ssl, pyopenssl)"),
    _f("side", "text", _P, "client or server"),
    _f("policy", "text", _P, "a TLS policy name"),
    _f("groups", "text", _P, "key-exchange groups, colon-separated"),
    _f("groups_unavailable", "text", _P, "groups the OpenSSL build lacks"),
    _f("groups_method", "text", _P, "how groups were set"),
    _f("mutual_tls", "bool", _P, "whether client certificates are required"),
    _f("rule", "text", _P, "a rule id"),
    _f("rules", "text", _P, "rule ids, comma-separated"),
    _f("severity", "text", _P, "a severity"),
    _f("target", "text", _ID, "an audited endpoint or certificate subject"),
    _f("kind", "text", _P, "what was checked"),
    _f("errors", "int", _P, "number of error findings"),
    _f("warnings", "int", _P, "number of warning findings"),
    _f("findings", "int", _P, "number of findings"),
    _f("compliant", "bool", _P, "whether the target met the policy"),
    _f("complete", "bool", _P, "whether every probe ran"),
    _f("grade", "text", _P, "the audit grade"),
    # web
    _f("host", "text", _ID, "a validated, allowed host name"),
    _f("status", "int", _P, "an HTTP status code"),
    _f("max_pending", "int", _P, "the login guard's bound"),
    # incidents
    _f("incident", "text", _ID, "an incident id (INC-nnnnnn)"),
    _f("entry", "int", _P, "an incident-log entry number"),
    # alerts
    _f("dimension", "text", _P, "tenant, source or actor"),
    _f("count", "int", _P, "number of events seen"),
    _f("window_seconds", "number", _P, "a detector window"),
)
# fmt: on

_FIELDS_BY_NAME = {spec.name: spec for spec in FIELDS}


def lookup_field(name: str) -> FieldSpec | None:
    """Return the :class:`FieldSpec` declared for *name*, or ``None``."""
    return _FIELDS_BY_NAME.get(name)


_BY_NAME = {spec.name: spec for spec in VOCABULARY}


def is_known_event(name: str) -> bool:
    """Return whether *name* is in the vocabulary."""
    return name in _BY_NAME


def lookup_event(name: str) -> EventSpec | None:
    """Return the :class:`EventSpec` for *name*, or ``None`` for an unknown name."""
    return _BY_NAME.get(name)


def vocabulary_markdown() -> str:
    """Render the vocabulary as the Markdown table used in ``docs/events.md``."""
    lines = [
        "| Event | Logger | Level | Outcome | Fields | ECS category / type | Meaning |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec in VOCABULARY:
        fields = ", ".join(f"`{f}`" for f in spec.fields) or "-"
        ecs = f"{', '.join(spec.category)} / {', '.join(spec.types)}"
        lines.append(
            f"| `{spec.name}` | `styku_crypto.{spec.capability}` | {spec.level_name} "
            f"| {spec.outcome} | {fields} | {ecs} | {spec.description} |"
        )
    return "\n".join(lines) + "\n"


def fields_markdown() -> str:
    """Render the declared fields as the Markdown table used in ``docs/events.md``."""
    lines = ["| Field | Type | Sensitivity | Meaning |", "|---|---|---|---|"]
    lines.extend(f"| `{f.name}` | {f.type} | {f.sensitivity} | {f.description} |" for f in FIELDS)
    return "\n".join(lines) + "\n"

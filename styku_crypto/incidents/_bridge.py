"""Alerts to incidents: :class:`IncidentBridge` turns detector alerts into suspected incidents.

Opt-in. Attach it to an :class:`~styku_crypto.events.AnomalyDetector` as its
``on_alert`` callback, or attach :meth:`IncidentBridge.handler` to the
``styku_crypto.alerts`` logger to consume ``alert.raised`` events from
anywhere in the process. Each alert whose rule maps to an incident type
opens a ``suspected`` incident of that type (its playbook's checklist
included); an alert for the same tenant, source and type within the window
becomes an update of that incident instead. The open-or-update decision is
taken under the log's write lock, so concurrent alerts (threads or processes
sharing the log) open one incident.

The bridge never raises into the code that emitted the event: a failure to
record (tampered log, storage error) is logged on ``styku_crypto.alerts`` at
ERROR, naming only the error type.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from styku_crypto.events import EVENT_ATTRIBUTE, Alert
from styku_crypto.exceptions import InvalidInputError, StykuCryptoError
from styku_crypto.incidents._log import IncidentLog
from styku_crypto.incidents._model import Incident
from styku_crypto.incidents._playbooks import Playbook, load_playbooks

__all__ = ["DEFAULT_BRIDGE_RULES", "IncidentBridge"]

#: Detector rule name -> incident type, used when no rules are given.
DEFAULT_BRIDGE_RULES: Mapping[str, str] = {
    "decrypt_failures": "data-exposure",
    "password_failures": "credential-stuffing",
    "shredded_access": "key-compromise",
}

_log = logging.getLogger("styku_crypto.alerts")


class IncidentBridge:
    """Turns ``alert.raised`` into ``suspected`` incidents, deduplicated per tenant/source/type.

    Args:
        log: the incident log to record in.
        rules: detector rule name -> incident type (a playbook name); alerts
            of other rules are ignored. Default :data:`DEFAULT_BRIDGE_RULES`.
        window: an alert for the same tenant, source and type within this
            long of the incident's last entry updates it instead of opening
            another (default one hour).
        playbooks: where the types are looked up (default: the built-ins).
        actor: recorded as the actor of the entries (default ``incident-bridge``).

    Raises:
        InvalidInputError: a rule maps to an unknown type, or the window is not positive.
    """

    def __init__(
        self,
        log: IncidentLog,
        rules: Mapping[str, str] | None = None,
        *,
        window: timedelta = timedelta(hours=1),
        playbooks: Mapping[str, Playbook] | None = None,
        actor: str = "incident-bridge",
    ) -> None:
        self._log = log
        self._rules = dict(DEFAULT_BRIDGE_RULES if rules is None else rules)
        self._books = load_playbooks() if playbooks is None else dict(playbooks)
        unknown = sorted({t for t in self._rules.values() if t not in self._books})
        if unknown:
            raise InvalidInputError(
                f"bridge rules name unknown incident types {unknown}; "
                f"valid: {', '.join(sorted(self._books))}"
            )
        if window <= timedelta(0):
            raise InvalidInputError("the bridge window must be positive")
        self._window = window
        self._actor = actor

    def __call__(self, alert: Alert) -> None:
        """Record *alert* (use the bridge as a detector's ``on_alert``); never raises."""
        self.record(
            rule=alert.rule,
            tenant=alert.value if alert.dimension == "tenant" else None,
            source=alert.value if alert.dimension == "source" else None,
            actor=alert.value if alert.dimension == "actor" else None,
            count=alert.count,
            window=alert.window,
        )

    def handler(self, level: int = logging.WARNING) -> logging.Handler:
        """A :class:`logging.Handler` recording every ``alert.raised`` event it sees.

        Attach it to the ``styku_crypto.alerts`` logger::

            logging.getLogger("styku_crypto.alerts").addHandler(bridge.handler())
        """
        return _BridgeHandler(self, level)

    def record(
        self,
        *,
        rule: str,
        tenant: str | None = None,
        source: str | None = None,
        actor: str | None = None,
        count: int = 1,
        window: float = 0.0,
    ) -> Incident | None:
        """Record one alert: open or update the matching incident; never raises.

        Returns:
            The incident opened or updated, or ``None`` when the rule maps to
            no type or recording failed (logged at ERROR).
        """
        kind = self._rules.get(rule)
        if kind is None:
            return None
        book = self._books[kind]
        key = f"type={kind};tenant={tenant or '-'};source={source or '-'}"
        who = " ".join(
            f"{name} {value!r}"
            for name, value in (("tenant", tenant), ("source", source), ("actor", actor))
            if value
        )
        what = f"{count} events of rule {rule} within {window:.0f} s from {who or 'unknown'}"
        origin = {"key": key, "rule": rule, "tenant": tenant or "", "source": source or ""}
        open_data: dict[str, Any] = {
            "title": f"{book.title} suspected: {rule}"[:200],
            "severity": book.severity.value,
            "description": f"Opened automatically from a detector alert: {what}.",
            "tenants": [tenant] if tenant else [],
            "status": "suspected",
            "type": book.name,
            "owner": book.owner,
            "steps": book.entry_data(),
            "origin": origin,
        }
        try:
            incident, _ = self._log._open_deduplicated(
                key=key,
                window=self._window,
                open_data=open_data,
                again=f"alert again: {what}",
                actor=self._actor,
            )
        except StykuCryptoError as exc:
            _log.error("incident bridge could not record an alert: %s", _public_name(exc))
            return None
        return incident


class _BridgeHandler(logging.Handler):
    def __init__(self, bridge: IncidentBridge, level: int) -> None:
        super().__init__(level)
        self._bridge = bridge

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, EVENT_ATTRIBUTE, None)
        if not isinstance(event, dict) or event.get("event") != "alert.raised":
            return
        attributes = event.get("attributes")
        attrs = attributes if isinstance(attributes, dict) else {}
        count = attrs.get("count", event.get("count", 1))
        window = attrs.get("window_seconds", event.get("window_seconds", 0.0))
        self._bridge.record(
            rule=str(event.get("reason") or ""),
            tenant=_text(event.get("tenant")),
            source=_text(event.get("source")),
            actor=_text(event.get("actor")),
            count=count if isinstance(count, int) else 1,
            window=float(window) if isinstance(window, int | float) else 0.0,
        )


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def _public_name(exc: BaseException) -> str:
    """The name of the nearest public exception class (never a private subclass)."""
    for cls in type(exc).__mro__:
        if cls.__module__ == "styku_crypto.exceptions":
            return cls.__name__
    return type(exc).__name__

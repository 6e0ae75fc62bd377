"""Sliding-window anomaly detectors over security events.

An :class:`AnomalyDetector` watches events (fed directly with
:meth:`AnomalyDetector.observe`, or through the :class:`logging.Handler` from
:meth:`AnomalyDetector.handler`) and raises an :class:`Alert` when one tenant,
source or actor produces *threshold* matching events within *window* seconds.
Alerts go to a callback and/or are logged as ``alert.raised`` on
``styku_crypto.alerts``.

Memory is bounded: each tracked key keeps at most *threshold* timestamps;
keys idle for longer than their window are evicted, and at most
``max_keys`` keys are tracked per rule (least recently seen evicted first).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

from styku_crypto.events._emit import EVENT_ATTRIBUTE, emit
from styku_crypto.events._vocabulary import is_known_event
from styku_crypto.exceptions import InvalidInputError

__all__ = ["DEFAULT_RULES", "Alert", "AnomalyDetector", "DetectorRule"]

_DIMENSIONS = ("tenant", "source", "actor")
_log = logging.getLogger("styku_crypto.alerts")


@dataclass(frozen=True, slots=True)
class DetectorRule:
    """One burst rule: *threshold* matching events within *window* seconds per key.

    Attributes:
        name: the rule name, reported as the alert's ``reason``.
        events: the event names that count.
        threshold: how many events within the window raise an alert (>= 1).
        window: the window length in seconds (> 0).
        per: the dimensions counted separately, from ``tenant``, ``source``,
            ``actor``. Events lacking a dimension are not counted for it.
        cooldown: seconds after an alert before the same key can alert again
            (defaults to *window*).
    """

    name: str
    events: tuple[str, ...]
    threshold: int
    window: float
    per: tuple[str, ...] = ("tenant", "source")
    cooldown: float | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidInputError("a detector rule needs a name")
        if not self.events:
            raise InvalidInputError(f"detector rule {self.name!r}: no events")
        unknown = [e for e in self.events if not is_known_event(e)]
        if unknown:
            raise InvalidInputError(f"detector rule {self.name!r}: unknown events {unknown}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int):
            raise InvalidInputError(f"detector rule {self.name!r}: threshold must be an integer")
        if self.threshold < 1:
            raise InvalidInputError(f"detector rule {self.name!r}: threshold must be >= 1")
        if not self.window > 0:
            raise InvalidInputError(f"detector rule {self.name!r}: window must be > 0 seconds")
        if not self.per or any(d not in _DIMENSIONS for d in self.per):
            raise InvalidInputError(
                f"detector rule {self.name!r}: per must be a non-empty subset of {_DIMENSIONS}"
            )
        if self.cooldown is not None and self.cooldown < 0:
            raise InvalidInputError(f"detector rule {self.name!r}: cooldown must be >= 0")

    @property
    def effective_cooldown(self) -> float:
        """The cooldown in seconds (the window when not set)."""
        return self.window if self.cooldown is None else self.cooldown


#: The rules used when no configuration is given.
DEFAULT_RULES: tuple[DetectorRule, ...] = (
    DetectorRule("decrypt_failures", ("envelope.decrypt.failed",), threshold=20, window=60.0),
    DetectorRule(
        "password_failures", ("password.failed",), threshold=10, window=60.0, per=_DIMENSIONS
    ),
    DetectorRule("shredded_access", ("key.shredded_access",), threshold=3, window=300.0),
)


@dataclass(frozen=True, slots=True)
class Alert:
    """A burst seen by a detector.

    Attributes:
        rule: the rule name.
        dimension: ``tenant``, ``source`` or ``actor``.
        value: the tenant, source or actor that burst.
        count: events counted within the window (at least the threshold).
        window: the rule's window in seconds.
        first_seen: clock time of the oldest counted event.
        last_seen: clock time of the event that raised the alert.
    """

    rule: str
    dimension: str
    value: str
    count: int
    window: float
    first_seen: float
    last_seen: float


@dataclass(slots=True)
class _Window:
    times: deque[float]
    last_seen: float
    last_alert: float | None = None


@dataclass(slots=True)
class _RuleState:
    rule: DetectorRule
    keys: OrderedDict[tuple[str, str], _Window] = field(default_factory=OrderedDict)


class AnomalyDetector:
    """Per-tenant / per-source / per-actor burst detection over security events.

    Args:
        rules: the rules (default :data:`DEFAULT_RULES`).
        on_alert: called with each :class:`Alert` (outside the detector's lock).
            An exception from the callback is logged on ``styku_crypto.alerts``
            and does not stop detection.
        clock: monotonic seconds; inject a fake clock in tests.
        alert_level: the logging level of the ``alert.raised`` event, or
            ``None`` to only call *on_alert*.
        max_keys: at most this many keys tracked per rule.

    Thread-safe.
    """

    def __init__(
        self,
        rules: Iterable[DetectorRule] = DEFAULT_RULES,
        *,
        on_alert: Callable[[Alert], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        alert_level: int | None = logging.WARNING,
        max_keys: int = 10_000,
    ) -> None:
        if max_keys < 1:
            raise InvalidInputError("max_keys must be >= 1")
        self._states = [_RuleState(rule) for rule in rules]
        names = [s.rule.name for s in self._states]
        if len(set(names)) != len(names):
            raise InvalidInputError("detector rule names must be unique")
        self._on_alert = on_alert
        self._clock = clock
        self._alert_level = alert_level
        self._max_keys = max_keys
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **kwargs: Any) -> AnomalyDetector:
        """Build a detector from a configuration mapping.

        The mapping holds one table per rule, optionally under a ``detectors``
        key::

            {"detectors": {"decrypt_failures": {
                "events": ["envelope.decrypt.failed"], "threshold": 20,
                "window_seconds": 60, "per": ["tenant", "source"],
                "cooldown_seconds": 60, "enabled": true}}}

        Args:
            config: the mapping (e.g. parsed TOML).
            **kwargs: passed to the constructor (``on_alert``, ``clock``, ...).

        Raises:
            InvalidInputError: unknown keys, unknown events or bad values.
        """
        tables = config.get("detectors", config)
        if not isinstance(tables, Mapping):
            raise InvalidInputError("detector configuration must be a table of rules")
        return cls([_rule_from_table(name, table) for name, table in tables.items()
                    if not (isinstance(table, Mapping) and table.get("enabled") is False)],
                   **kwargs)  # fmt: skip

    @classmethod
    def from_toml(cls, path: str | PathLike[str], **kwargs: Any) -> AnomalyDetector:
        """Build a detector from a TOML file (see :meth:`from_config` for the layout).

        Raises:
            InvalidInputError: the file is not valid TOML or the rules are invalid.
        """
        import tomllib

        try:
            with open(path, "rb") as fh:
                config = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInputError(f"detector configuration is not valid TOML: {exc}") from exc
        return cls.from_config(config, **kwargs)

    @property
    def rules(self) -> tuple[DetectorRule, ...]:
        """The configured rules."""
        return tuple(s.rule for s in self._states)

    def tracked_keys(self) -> int:
        """How many (rule, dimension, value) windows are held in memory."""
        with self._lock:
            return sum(len(s.keys) for s in self._states)

    def observe(self, event: Mapping[str, Any]) -> list[Alert]:
        """Count one event (a ``styku_event`` dict) and return any alerts it raised.

        Events that match no rule are ignored cheaply. Alerts are also
        delivered to the callback and the ``styku_crypto.alerts`` logger.
        """
        name = event.get("event")
        now = self._clock()
        alerts: list[Alert] = []
        with self._lock:
            for state in self._states:
                rule = state.rule
                self._evict(state, now)
                if name not in rule.events:
                    continue
                for dimension in rule.per:
                    value = event.get(dimension)
                    if value is None or value == "":
                        continue
                    alert = self._count(state, dimension, str(value), now)
                    if alert is not None:
                        alerts.append(alert)
        for alert in alerts:
            self._deliver(alert)
        return alerts

    def handler(self, level: int = logging.DEBUG) -> logging.Handler:
        """A :class:`logging.Handler` that feeds every event record to this detector.

        Attach it to the ``styku_crypto`` logger::

            logging.getLogger("styku_crypto").addHandler(detector.handler())
        """
        return _DetectorHandler(self, level)

    def _count(self, state: _RuleState, dimension: str, value: str, now: float) -> Alert | None:
        rule = state.rule
        key = (dimension, value)
        window = state.keys.get(key)
        if window is None:
            window = _Window(times=deque(maxlen=rule.threshold), last_seen=now)
            state.keys[key] = window
            while len(state.keys) > self._max_keys:
                state.keys.popitem(last=False)
        else:
            state.keys.move_to_end(key)
        window.last_seen = now
        window.times.append(now)
        if len(window.times) < rule.threshold or now - window.times[0] > rule.window:
            return None
        if window.last_alert is not None and now - window.last_alert < rule.effective_cooldown:
            return None
        window.last_alert = now
        return Alert(
            rule=rule.name,
            dimension=dimension,
            value=value,
            count=len(window.times),
            window=rule.window,
            first_seen=window.times[0],
            last_seen=now,
        )

    @staticmethod
    def _evict(state: _RuleState, now: float) -> None:
        horizon = max(state.rule.window, state.rule.effective_cooldown)
        keys = state.keys
        while keys:
            oldest = next(iter(keys.values()))
            if now - oldest.last_seen <= horizon:
                break
            keys.popitem(last=False)

    def _deliver(self, alert: Alert) -> None:
        if self._alert_level is not None:
            emit(
                "alert.raised",
                capability="alerts",
                outcome="unknown",
                level=self._alert_level,
                tenant=alert.value if alert.dimension == "tenant" else None,
                source=alert.value if alert.dimension == "source" else None,
                actor=alert.value if alert.dimension == "actor" else None,
                reason=alert.rule,
                attributes={
                    "dimension": alert.dimension,
                    "count": alert.count,
                    "window_seconds": alert.window,
                },
            )
        if self._on_alert is not None:
            try:
                self._on_alert(alert)
            except Exception as exc:
                _log.error("alert callback failed: %s", type(exc).__name__)


class _DetectorHandler(logging.Handler):
    def __init__(self, detector: AnomalyDetector, level: int) -> None:
        super().__init__(level)
        self._detector = detector

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, EVENT_ATTRIBUTE, None)
        if isinstance(event, dict):
            self._detector.observe(event)


_RULE_KEYS = frozenset(
    {"events", "threshold", "window_seconds", "per", "cooldown_seconds", "enabled"}
)


def _rule_from_table(name: str, table: object) -> DetectorRule:
    if not isinstance(table, Mapping):
        raise InvalidInputError(f"detector rule {name!r} must be a table")
    unknown = set(table) - _RULE_KEYS
    if unknown:
        raise InvalidInputError(f"detector rule {name!r}: unknown keys {sorted(unknown)}")
    for required in ("events", "threshold", "window_seconds"):
        if required not in table:
            raise InvalidInputError(f"detector rule {name!r}: missing {required!r}")
    events = table["events"]
    if isinstance(events, str) or not isinstance(events, list | tuple):
        raise InvalidInputError(f"detector rule {name!r}: events must be a list")
    per = table.get("per", ["tenant", "source"])
    if isinstance(per, str) or not isinstance(per, list | tuple):
        raise InvalidInputError(f"detector rule {name!r}: per must be a list")
    window = table["window_seconds"]
    cooldown = table.get("cooldown_seconds")
    if isinstance(window, bool) or not isinstance(window, int | float):
        raise InvalidInputError(f"detector rule {name!r}: window_seconds must be a number")
    if cooldown is not None and (
        isinstance(cooldown, bool) or not isinstance(cooldown, int | float)
    ):
        raise InvalidInputError(f"detector rule {name!r}: cooldown_seconds must be a number")
    return DetectorRule(
        name=name,
        events=tuple(str(e) for e in events),
        threshold=table["threshold"],
        window=float(window),
        per=tuple(str(p) for p in per),
        cooldown=None if cooldown is None else float(cooldown),
    )

"""Customer notification policy: how long after confirmation each tenant must be told.

The default models the usual Agreement term, notice within 72 hours of
confirming an incident; each tenant's own Agreement can set another window.
The window in force when an incident is confirmed (or when a tenant is added
to a confirmed incident) is written into that log entry with the resulting
deadline, so a later change of configuration never moves a recorded deadline.

Configuration (a mapping, e.g. parsed TOML)::

    [notification]
    default_hours = 72

    [notification.tenants]
    acme = 24          # acme's Agreement: 24 hours
    globex = 48
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from types import MappingProxyType
from typing import Any

from styku_crypto.exceptions import InvalidInputError

__all__ = ["DEFAULT_NOTIFICATION_HOURS", "NotificationPolicy"]

#: Hours from confirmation to customer notice when nothing else is configured.
DEFAULT_NOTIFICATION_HOURS = 72
_MAX_HOURS = 24 * 366
_KEYS = frozenset({"default_hours", "tenants"})


def _hours(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_HOURS:
        raise InvalidInputError(f"{what} must be a whole number of hours from 1 to {_MAX_HOURS}")
    return value


@dataclass(frozen=True, slots=True)
class NotificationPolicy:
    """Per-tenant customer notification windows, in hours from confirmation.

    Args:
        default_hours: the window for tenants not listed (default 72).
        tenants: per-tenant windows.

    Raises:
        InvalidInputError: a window that is not a whole number of hours in 1..8784.
    """

    default_hours: int = DEFAULT_NOTIFICATION_HOURS
    tenants: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _hours(self.default_hours, "notification default_hours")
        checked = {
            str(t): _hours(h, f"notification hours for tenant {t!r}")
            for t, h in self.tenants.items()
        }
        object.__setattr__(self, "tenants", MappingProxyType(checked))

    def hours_for(self, tenant: str) -> int:
        """The notification window for *tenant*, in hours."""
        return self.tenants.get(tenant, self.default_hours)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> NotificationPolicy:
        """Build a policy from a mapping with an optional ``notification`` table.

        Raises:
            InvalidInputError: unknown keys or bad values.
        """
        table = config.get("notification", {})
        if not isinstance(table, Mapping):
            raise InvalidInputError("[notification] must be a table")
        unknown = sorted(set(table) - _KEYS)
        if unknown:
            raise InvalidInputError(
                f"[notification]: unknown keys {unknown}; valid: default_hours, tenants"
            )
        tenants = table.get("tenants", {})
        if not isinstance(tenants, Mapping):
            raise InvalidInputError("[notification.tenants] must be a table of tenant = hours")
        return cls(
            default_hours=table.get("default_hours", DEFAULT_NOTIFICATION_HOURS),
            tenants=dict(tenants),
        )

    @classmethod
    def from_toml(cls, path: str | PathLike[str]) -> NotificationPolicy:
        """Build a policy from a TOML file (see :meth:`from_config`).

        Raises:
            InvalidInputError: the file cannot be read, is not valid TOML, or
                holds bad values.
        """
        try:
            with open(path, "rb") as fh:
                config = tomllib.load(fh)
        except OSError as exc:
            raise InvalidInputError(
                f"incident configuration {path}: cannot be read ({exc.strerror})"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInputError(
                f"incident configuration {path}: not valid TOML ({exc})"
            ) from None
        return cls.from_config(config)

"""Structured security events (see ``docs/events.md``)."""

from styku_crypto.events._emit import EVENT_ATTRIBUTE, FieldValue, emit

__all__ = ["EVENT_ATTRIBUTE", "FieldValue", "emit"]

"""Typed usage files checked by ``mypy --strict`` (one per capability)."""

"""Package metadata (kept apart so that build tools can read the version cheaply)."""

__version__ = "0.1.0.dev0"

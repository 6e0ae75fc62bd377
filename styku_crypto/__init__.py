"""styku_crypto: layered envelope encryption, password hashing and TLS policy.

Recipes live in the subpackages (``envelope``, ``keys``, ``fields``, ``passwords``,
``tls``, ``web``, ``events``, ``incidents``); sharp tools live in ``hazmat``.
Importing this package imports only :mod:`logging` (to attach a ``NullHandler``),
so ``import styku_crypto.envelope`` stays cheap.
"""

import logging as _logging

from styku_crypto.__about__ import __version__

# A library never configures logging for its application, and without a handler
# Python's last-resort handler would print WARNING events on stderr. Applications
# attach their own handlers (see docs/events.md) to the "styku_crypto" logger.
_logging.getLogger("styku_crypto").addHandler(_logging.NullHandler())

__all__ = ["__version__"]

"""styku_crypto: layered envelope encryption, password hashing and TLS policy.

Recipes live in the subpackages (``envelope``, ``keys``, ``fields``, ``passwords``,
``tls``, ``web``, ``events``, ``incidents``); sharp tools live in ``hazmat``.
Importing this package imports nothing else, so ``import styku_crypto.envelope``
stays cheap.
"""

from styku_crypto.__about__ import __version__

__all__ = ["__version__"]

"""Low-level primitives: anything that takes a nonce, a raw key, a salt or an algorithm.

.. danger::
    This is a "Hazardous Materials" module. You should ONLY use it if you are
    absolutely sure that you know what you are doing: these tools let you pick
    keys, nonces and algorithms yourself, and a wrong choice (a reused nonce, a
    key shared between purposes, deterministic encryption of low-entropy values)
    silently destroys security. Prefer the recipes in ``styku_crypto.envelope``,
    ``styku_crypto.fields``, ``styku_crypto.passwords`` and ``styku_crypto.tls``.
"""

from styku_crypto.hazmat._siv import AesSiv

__all__ = [
    "AesSiv",
]

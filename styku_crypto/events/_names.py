"""Field-name rules: which names announce a secret, and which names are valid.

A value's *name* is the most reliable hint that it is a secret: whatever a
password looks like, it sits under ``password``, ``db_password``,
``POSTGRES_PASSWORD``, ``X-Api-Key`` or ``sessionid``. :func:`is_secret_name`
decides from the name alone, for caller-supplied event fields, for keys of
dict arguments and for ``label=value`` / ``label: value`` text. It errs on the
side of redaction: a harmless value under a secret-looking name is hidden.

Names are split into lower-case words at separators (``_ - . space``) and at
camel-case boundaries, then judged:

* a word that is, or a compacted name that contains, one of the strong secret
  words (``password``, ``passwd``, ``passphrase``, ``secret``, ``token``,
  ``credential``, ``apikey``, ``pepper``, ``cookie``, ``authorization``,
  ``session``, ``privatekey``) is secret;
* a word that is exactly one of the short secret words (``pass``, ``pwd``,
  ``dek``, ``kek``, ``sid``, ``auth``, ``private``, ``pin``, ``otp``) is secret;
* the word ``key`` (or ``keys``) is secret unless a word after it says the value
  describes the key rather than being it (``key_id``, ``key_version``,
  ``key_size``, ``keyType`` ...).
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["is_secret_name", "name_words", "valid_field_name"]

_STRONG = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "apikey",
    "pepper",
    "cookie",
    "authorization",
    "session",
    "privatekey",
)
_SHORT = frozenset({"pass", "pwd", "dek", "kek", "sid", "auth", "private", "pin", "otp"})
_KEY_WORDS = frozenset({"key", "keys"})
# Words after "key" that make the name describe a key instead of holding one.
_KEY_DESCRIPTORS = frozenset(
    {
        "id",
        "ids",
        "version",
        "versions",
        "size",
        "bits",
        "length",
        "len",
        "type",
        "types",
        "name",
        "names",
        "count",
        "algorithm",
        "alg",
        "fingerprint",
        "fp",
        "usage",
        "provider",
        "source",
        "file",
        "path",
        "ref",
        "label",
        "state",
        "status",
        "purpose",
        "format",
    }
)

_CAMEL = re.compile(r"([a-z0-9])([A-Z])|([A-Z]+)([A-Z][a-z])")
_WORD = re.compile(r"[a-z]+|[0-9]+")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def name_words(name: str) -> list[str]:
    """Split *name* into lower-case words (separators and camel case)."""
    spaced = _CAMEL.sub(lambda m: f"{m[1] or m[3]} {m[2] or m[4]}", name)
    return _WORD.findall(spaced.lower())


@lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Return whether a value under *name* must be treated as a secret.

    Case, separators and prefixes do not matter: ``password``, ``PASSWORD``,
    ``db_password``, ``POSTGRES_PASSWORD``, ``X-Api-Key``, ``set-cookie`` and
    ``sessionId`` are all secret names. Never raises for a ``str``.
    """
    words = name_words(name)
    compact = "".join(words)
    if any(strong in compact for strong in _STRONG):
        return True
    for index, word in enumerate(words):
        if word in _SHORT:
            return True
        if word in _KEY_WORDS or (word.endswith("key") and len(word) <= 8):
            rest = words[index + 1 :]
            if not rest or not any(w in _KEY_DESCRIPTORS for w in rest):
                return True
    return False


def valid_field_name(name: object) -> bool:
    """Return whether *name* is an acceptable event field name (an ASCII identifier, <= 64)."""
    return isinstance(name, str) and _FIELD_NAME.fullmatch(name) is not None

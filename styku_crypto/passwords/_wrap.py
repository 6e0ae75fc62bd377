"""Pepper-wrapping stored hashes offline (onion style), so a pepper can be required at once.

Security property: a wrapped hash cannot be checked without the pepper. The
inner hash keeps its parameters (salt, cost) but its tag is replaced by zeros,
and ``HMAC-SHA256(pepper, WRAP_LABEL || inner-with-zeroed-tag || 0 || tag)``
is stored beside it. Verifying recomputes the inner tag from the password with
the inner format's own verifier, then the MAC, and compares in constant time.
A stolen table of wrapped hashes is therefore as useless offline as a table of
peppered Argon2 hashes, and a database can switch to ``require_pepper=True``
without waiting for every user to log in. Binding the inner parameters into
the MAC means nobody without the pepper can lower a wrapped hash's cost.

Wire format::

    $styku-wrap$v=1,pepper=<ID>$<MAC, 43 chars of unpadded base64>$<inner hash, tag zeroed>
"""

from __future__ import annotations

import base64

from styku_crypto.passwords._formats import Argon2Hash, LegacyHash, wrap_mac_input
from styku_crypto.passwords._pepper import Pepper

__all__ = ["wrap"]


def wrap(inner: Argon2Hash | LegacyHash, pepper: Pepper) -> str:
    """The wrapped form of *inner* (an unpeppered Argon2 or a legacy hash) under *pepper*."""
    zeroed = inner.zeroed()
    mac = pepper.mac(wrap_mac_input(zeroed, inner.tag))
    mac_text = base64.b64encode(mac).decode("ascii").rstrip("=")
    return f"$styku-wrap$v=1,pepper={pepper.id}${mac_text}${zeroed}"

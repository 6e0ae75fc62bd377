"""Frozen TLS policy profiles built from Mozilla's Server Side TLS guidelines.

The data ships inside the package (``_data/mozilla_profiles.json``, generated
from Mozilla's machine-readable guideline files); every profile records its
guideline version in :attr:`~styku_crypto.tls.Policy.guideline_version`.

* :data:`MOZILLA_INTERMEDIATE` (guideline 6.0) is the default everywhere: TLS 1.2
  and 1.3, ECDHE + AEAD suites only, for general-purpose servers.
* :data:`MOZILLA_MODERN` (6.0): TLS 1.3 only, ECDSA certificates, 90-day lifetime.
* The 5.8 and 5.7 profiles, including ``OLD``, exist for comparison and for
  auditing against what other scanners check. Never build a server on ``OLD``.

Defaults may tighten between releases (a new guideline version becomes the
default); pin a versioned constant (``MOZILLA_6_0_INTERMEDIATE``) to opt out.
"""

from __future__ import annotations

import functools
import json
import os

from styku_crypto.exceptions import InvalidPolicyError
from styku_crypto.tls._policy import Policy

__all__ = [
    "ALL",
    "DEFAULT",
    "MOZILLA_5_7_INTERMEDIATE",
    "MOZILLA_5_7_MODERN",
    "MOZILLA_5_7_OLD",
    "MOZILLA_5_8_INTERMEDIATE",
    "MOZILLA_5_8_MODERN",
    "MOZILLA_5_8_OLD",
    "MOZILLA_6_0_INTERMEDIATE",
    "MOZILLA_6_0_MODERN",
    "MOZILLA_INTERMEDIATE",
    "MOZILLA_MODERN",
    "by_name",
    "is_profile_name",
    "names",
]


def _load() -> dict[str, Policy]:
    # The package loader reads the file (plain directory or zip import alike) without
    # importing importlib.resources, which costs more than the rest of this module.
    from styku_crypto.tls import _data

    spec = _data.__spec__
    if spec is None or spec.loader is None or _data.__file__ is None:  # pragma: no cover
        raise InvalidPolicyError("shipped TLS profile data is missing")
    path = os.path.join(os.path.dirname(_data.__file__), "mozilla_profiles.json")
    data = json.loads(spec.loader.get_data(path).decode("utf-8"))  # type: ignore[attr-defined]
    if data.get("format") != "styku-tls-profiles/1":
        raise InvalidPolicyError("shipped TLS profile data has an unknown format")
    return {p["name"]: Policy.from_dict(p) for p in data["profiles"]}


_PROFILES = _load()

MOZILLA_6_0_MODERN: Policy = _PROFILES["mozilla-6.0-modern"]
MOZILLA_6_0_INTERMEDIATE: Policy = _PROFILES["mozilla-6.0-intermediate"]
MOZILLA_5_8_MODERN: Policy = _PROFILES["mozilla-5.8-modern"]
MOZILLA_5_8_INTERMEDIATE: Policy = _PROFILES["mozilla-5.8-intermediate"]
MOZILLA_5_8_OLD: Policy = _PROFILES["mozilla-5.8-old"]
MOZILLA_5_7_MODERN: Policy = _PROFILES["mozilla-5.7-modern"]
MOZILLA_5_7_INTERMEDIATE: Policy = _PROFILES["mozilla-5.7-intermediate"]
MOZILLA_5_7_OLD: Policy = _PROFILES["mozilla-5.7-old"]

#: The current Mozilla "modern" profile (guideline 6.0).
MOZILLA_MODERN: Policy = MOZILLA_6_0_MODERN
#: The current Mozilla "intermediate" profile (guideline 6.0): the library default.
MOZILLA_INTERMEDIATE: Policy = MOZILLA_6_0_INTERMEDIATE
#: The default policy of every function taking ``policy=``.
DEFAULT: Policy = MOZILLA_INTERMEDIATE

#: Every shipped profile, newest guideline first.
ALL: tuple[Policy, ...] = tuple(_PROFILES.values())

_SHORT = {"modern": MOZILLA_MODERN, "intermediate": MOZILLA_INTERMEDIATE}


def names() -> tuple[str, ...]:
    """Every accepted profile name (short names first)."""
    return (*_SHORT, *_PROFILES)


@functools.cache
def _aliases() -> dict[str, Policy]:
    table: dict[str, Policy] = dict(_SHORT)
    for name, policy in _PROFILES.items():
        version, profile = policy.guideline_version, policy.profile
        for alias in (
            name,
            f"{version}-{profile}",
            f"{version}/{profile}",
            f"mozilla-{version}/{profile}",
        ):
            table[alias] = policy
    return table


def is_profile_name(name: str) -> bool:
    """Whether *name* names a shipped profile."""
    return name.strip().lower() in _aliases()


def by_name(name: str) -> Policy:
    """Return a shipped profile by name.

    Accepts ``"modern"``, ``"intermediate"`` (guideline 6.0), and versioned names
    such as ``"mozilla-5.7-old"``, ``"5.7-old"`` or ``"5.8/intermediate"``.

    Raises:
        InvalidPolicyError: no such profile.
    """
    try:
        return _aliases()[name.strip().lower()]
    except KeyError:
        raise InvalidPolicyError(
            f"unknown TLS profile {name!r} (known: {', '.join(names())})"
        ) from None

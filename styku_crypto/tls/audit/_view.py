"""The scanner's view of a TLS :class:`~styku_crypto.tls.Policy`.

The audit reads a handful of policy clauses. :func:`view_of` extracts them
once, normalising suite names to IANA spellings and group names to IANA names,
so the verdict code compares like with like.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from styku_crypto.exceptions import InvalidPolicyError
from styku_crypto.tls import _registry

__all__ = ["PolicyView", "view_of"]


@dataclass(frozen=True)
class PolicyView:
    """The clauses the scanner checks.

    Attributes:
        name: display name, e.g. ``mozilla-intermediate-6.0``.
        protocols: allowed versions (``TLSv1.2``, ``TLSv1.3``).
        tls12_ciphers: allowed TLS 1.2-and-older suites, IANA names.
        tls13_suites: allowed TLS 1.3 suites, IANA names.
        groups: allowed groups, IANA names.
        dh_min_bits: minimum finite-field DH prime size, ``None`` if DHE is not allowed.
        ecdh_min_bits: minimum EC group size.
        hsts_min_age: minimum HSTS max-age in seconds, ``None`` for no requirement.
        ocsp_staple: stapling expected.
        server_preferred_order: the server should impose its order (``None``: no opinion).
        policy: the original policy object (for certificate checks, waivers, severities).
        trust: a PEM bundle path of trust anchors, ``None`` for the default (certifi).
    """

    name: str
    protocols: frozenset[str]
    tls12_ciphers: frozenset[str]
    tls13_suites: frozenset[str]
    groups: frozenset[str]
    dh_min_bits: int | None = None
    ecdh_min_bits: int | None = None
    hsts_min_age: int | None = None
    ocsp_staple: bool = False
    server_preferred_order: bool | None = None
    policy: Any = field(default=None, compare=False, repr=False)
    trust: Any = field(default=None, compare=False, repr=False)


def _names(values: Iterable[Any]) -> list[str]:
    out = []
    for v in values:
        out.append(v if isinstance(v, str) else str(getattr(v, "iana", getattr(v, "name", v))))
    return out


def _suite_names(values: Iterable[Any]) -> frozenset[str]:
    out = set()
    for name in _names(values):
        try:
            out.add(_registry.cipher_by_name(name).iana)
        except ValueError as exc:
            raise InvalidPolicyError(f"policy names an unknown cipher suite {name!r}") from exc
    return frozenset(out)


def _group_names(values: Iterable[Any]) -> frozenset[str]:
    out = set()
    for name in _names(values):
        try:
            out.add(_registry.group_by_name(name).name)
        except ValueError as exc:
            raise InvalidPolicyError(f"policy names an unknown group {name!r}") from exc
    return frozenset(out)


def _protocol(value: Any) -> str:
    text = value if isinstance(value, str) else str(getattr(value, "name", value))
    text = text.replace("_", ".").replace("TLSVersion.", "")
    mapping = {
        "TLSv1": "TLSv1.0",
        "TLSv1.0": "TLSv1.0",
        "TLSv1.1": "TLSv1.1",
        "TLSv1.2": "TLSv1.2",
        "TLSv1.3": "TLSv1.3",
        "SSLv3": "SSLv3",
        "SSLv2": "SSLv2",
    }
    if text not in mapping:
        raise InvalidPolicyError(f"policy names an unknown protocol version {value!r}")
    return mapping[text]


def _first(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    return default


def view_of(policy: Any) -> PolicyView:
    """Extract the scanner's clauses from a TLS policy object.

    Raises:
        InvalidPolicyError: the policy lacks a clause or names something unknown.
    """
    if isinstance(policy, PolicyView):
        return policy
    protocols = _first(policy, "protocols", "tls_versions")
    if protocols is None:
        raise InvalidPolicyError("policy has no protocol versions")
    label = str(_first(policy, "name", default="custom"))
    ecdh = _first(policy, "ecdh_param_size", "ecdh_min_bits", default=None)
    return PolicyView(
        name=label,
        protocols=frozenset(_protocol(p) for p in protocols),
        tls12_ciphers=_suite_names(_first(policy, "tls12_ciphers", "ciphers", default=())),
        tls13_suites=_suite_names(_first(policy, "tls13_suites", "ciphersuites", default=())),
        groups=_group_names(_first(policy, "groups", "tls_curves", default=())),
        dh_min_bits=_first(policy, "dh_param_size", "dh_min_bits", default=None),
        ecdh_min_bits=int(ecdh) if ecdh else None,
        hsts_min_age=_first(policy, "hsts_min_age", default=None),
        ocsp_staple=bool(_first(policy, "ocsp_staple", default=False)),
        server_preferred_order=_first(policy, "server_preferred_order", default=None),
        policy=policy,
    )

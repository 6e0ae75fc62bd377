"""What one verify will do, decided and bounded before any work.

Security property: :func:`plan` parses a stored hash, resolves its pepper,
applies the ``require_pepper`` policy and the cost ceiling, all from the
string alone; :func:`candidates` picks the password forms to try (one per
hash wherever the maker is known). Nothing here allocates Argon2 memory or
runs a verifier; refusals raise :class:`RefusedHashError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from styku_crypto.passwords._cost import Ceiling, work_of
from styku_crypto.passwords._formats import (
    Argon2Hash,
    LegacyHash,
    RefusedHashError,
    WrappedHash,
    parse,
)
from styku_crypto.passwords._limits import HashLimits
from styku_crypto.passwords._pepper import Pepper, PepperSet

__all__ = ["Plan", "attempts_for", "candidates", "plan"]


@dataclass(frozen=True, slots=True)
class Plan:
    """A stored hash that may be verified, and the pepper it needs."""

    parsed: Argon2Hash | LegacyHash | WrappedHash
    inner: Argon2Hash | LegacyHash
    pepper: Pepper | None  # peppered Argon2's pepper, or the wrapping pepper


def plan(
    stored: str,
    *,
    limits: HashLimits,
    peppers: PepperSet | None,
    require_pepper: bool,
    ceiling: Ceiling,
    max_bytes: int,
) -> Plan:
    """Parse *stored* and decide what verifying it costs; refuse before any work.

    Checks, in order: the allowlist parse and structural limits, the pepper
    (a known id; present when *require_pepper*), and the cost ceiling.
    Argon2 paths count two attempts (both Unicode forms, or one plus the
    padding that keeps failures as costly as ``dummy_verify``), legacy paths
    one; SHA-512-crypt is costed at *max_bytes*, so whether a hash is accepted
    never depends on the password typed.

    Raises:
        RefusedHashError: reason ``malformed``, ``unknown_scheme``,
            ``over_limit``, ``unknown_pepper`` or ``unpeppered``.
    """
    parsed = parse(stored, limits)
    inner = parsed.inner if isinstance(parsed, WrappedHash) else parsed
    pepper_id = parsed.pepper_id if isinstance(parsed, WrappedHash | Argon2Hash) else None
    pepper: Pepper | None = None
    if pepper_id is not None:
        pepper = peppers.get(pepper_id) if peppers is not None else None
        if pepper is None:
            raise RefusedHashError(
                "unknown_pepper", parsed.scheme, f"pepper id {pepper_id!r} is not configured"
            )
    elif require_pepper:
        raise RefusedHashError(
            "unpeppered",
            parsed.scheme,
            "a pepper is required and this hash has none (pepper-wrap it, or reset)",
        )
    attempts = 2 if isinstance(inner, Argon2Hash) else 1
    detail = ceiling.refusal(work_of(inner, password_len=max_bytes), attempts=attempts)
    if detail is not None:
        raise RefusedHashError("over_limit", parsed.scheme, detail)
    return Plan(parsed=parsed, inner=inner, pepper=pepper)


def candidates(plan: Plan, raw: bytes, nraw: bytes) -> list[bytes]:
    """The password forms to try, in order: one per hash where the maker is known.

    Peppered Argon2 (ours): the NFKC form's pepper MAC. Unpeppered or wrapped
    Argon2 (ours or argon2-cffi's): NFKC, then the typed form if it differs.
    Legacy formats: the typed form only, which is what those libraries hashed.
    """
    if isinstance(plan.parsed, Argon2Hash) and plan.pepper is not None:
        return [plan.pepper.mac(nraw)]
    if isinstance(plan.inner, Argon2Hash):
        return [nraw] if raw == nraw else [nraw, raw]
    return [raw]


def attempts_for(raw: bytes, nraw: bytes) -> int:
    """Argon2 runs of the costliest failed verify: two when NFKC changes the password."""
    return 1 if raw == nraw else 2

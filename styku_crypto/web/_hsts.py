"""The ``Strict-Transport-Security`` header, from the TLS policy.

Preload is opt-in. When asked for, the configuration is validated against the
requirements of the HSTS preload list (hstspreload.org): ``max-age`` of at
least one year, ``includeSubDomains``, the ``preload`` token, and an
HTTP-to-HTTPS redirect on the same host (checked by :class:`HTTPSEnforcer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from styku_crypto.exceptions import InvalidPolicyError

__all__ = [
    "DEFAULT_MAX_AGE",
    "HSTS",
    "PRELOAD_MIN_MAX_AGE",
    "HSTSMinimum",
]

#: Two years, Mozilla's recommendation and the default here.
DEFAULT_MAX_AGE = 63072000
#: hstspreload.org refuses anything shorter than one year.
PRELOAD_MIN_MAX_AGE = 31536000


class HSTSMinimum(Protocol):
    """Anything carrying an HSTS minimum max-age, such as a TLS ``Policy``."""

    @property
    def hsts_min_age(self) -> int: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class HSTS:
    """One HSTS setting.

    Args:
        max_age: seconds browsers remember to use HTTPS only (default two years).
        include_subdomains: extend the rule to every subdomain (default on).
        preload: add the ``preload`` token. Validated: needs ``max_age`` of at
            least one year and ``include_subdomains``.

    .. warning::
        Preloading is hard to undo: removal from browsers' lists takes months,
        and every subdomain must serve HTTPS. Ask for it only deliberately.

    Raises:
        InvalidPolicyError: ``max_age`` is negative, or preload is asked for
            without meeting the preload list's requirements.
    """

    max_age: int = DEFAULT_MAX_AGE
    include_subdomains: bool = True
    preload: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.max_age, bool) or not isinstance(self.max_age, int):
            raise InvalidPolicyError("HSTS max_age must be an integer number of seconds")
        if self.max_age < 0:
            raise InvalidPolicyError("HSTS max_age must not be negative")
        if self.preload:
            problems = self.preload_problems()
            if problems:
                raise InvalidPolicyError("HSTS preload refused: " + "; ".join(problems))

    def preload_problems(self) -> list[str]:
        """What keeps this header from the preload list (empty when eligible)."""
        problems = []
        if self.max_age < PRELOAD_MIN_MAX_AGE:
            problems.append(f"max-age must be at least {PRELOAD_MIN_MAX_AGE}")
        if not self.include_subdomains:
            problems.append("includeSubDomains is required")
        return problems

    def header_value(self) -> str:
        """The header value, e.g. ``"max-age=63072000; includeSubDomains"``."""
        value = f"max-age={self.max_age}"
        if self.include_subdomains:
            value += "; includeSubDomains"
        if self.preload:
            value += "; preload"
        return value

    def check_minimum(self, minimum: int) -> None:
        """Raise unless ``max_age`` reaches the policy's *minimum*.

        Raises:
            InvalidPolicyError: ``max_age`` is below *minimum*.
        """
        if self.max_age < minimum:
            raise InvalidPolicyError(
                f"HSTS max-age {self.max_age} is below the policy minimum {minimum}"
            )

    @classmethod
    def from_policy(cls, policy: HSTSMinimum, *, preload: bool = False) -> HSTS:
        """The default header for *policy*: its minimum, at least two years."""
        return cls(
            max_age=max(DEFAULT_MAX_AGE, int(policy.hsts_min_age)),
            include_subdomains=True,
            preload=preload,
        )

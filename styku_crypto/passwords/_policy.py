"""Input policy for new passwords, per NIST SP 800-63B.

Applied by :meth:`PasswordHasher.hash` to passwords being *set*; never to
passwords being *verified* (an existing password that predates a stricter
policy must still log in, and ``verify`` must not reveal policy details).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from styku_crypto.exceptions import InvalidPolicyError, PasswordPolicyError
from styku_crypto.passwords._blocklist import Blocklist

__all__ = ["HARD_MAX_BYTES", "PasswordPolicy", "normalize"]

#: Absolute ceiling on a password's UTF-8 size, for hashing and verifying alike.
HARD_MAX_BYTES = 4096


def normalize(password: str) -> str:
    """Return the NFKC form of *password* (what is hashed).

    Raises:
        TypeError: *password* is not a str.
    """
    if not isinstance(password, str):
        raise TypeError("password must be a str")
    return unicodedata.normalize("NFKC", password)


@dataclass(frozen=True, slots=True, kw_only=True)
class PasswordPolicy:
    """What a new password must satisfy (NIST SP 800-63B section 3.1.1.2).

    Lengths count Unicode code points of the NFKC-normalised password. There
    are no composition rules (no "one digit, one symbol"): NIST advises
    against them.

    Attributes:
        min_length: at least this many characters. NIST's rev. 4 asks for 15
            when the password is the only factor (the default) and allows 8 when
            it is used with another factor; below 8 is refused.
        max_length: at most this many characters; at least 64 (NIST).
        max_bytes: hard cap on the UTF-8 size, bounding hashing work; at most
            :data:`HARD_MAX_BYTES`.
        blocklist: an optional :class:`Blocklist` of breached passwords.

    Raises:
        InvalidPolicyError: a bound outside the ranges above.
    """

    min_length: int = 15
    max_length: int = 128
    max_bytes: int = 1024
    blocklist: Blocklist | None = None

    def __post_init__(self) -> None:
        if self.min_length < 8:
            raise InvalidPolicyError("min_length: NIST SP 800-63B requires at least 8")
        if self.max_length < 64:
            raise InvalidPolicyError("max_length: NIST SP 800-63B requires at least 64")
        if self.max_length < self.min_length:
            raise InvalidPolicyError("max_length: must not be below min_length")
        if not self.max_length <= self.max_bytes <= HARD_MAX_BYTES:
            raise InvalidPolicyError(f"max_bytes: must be between max_length and {HARD_MAX_BYTES}")

    def check(self, password: str) -> str:
        """Return the normalised password, or raise naming the rule it breaks.

        Raises:
            PasswordPolicyError: with ``rule`` set to ``too_short``, ``too_long``,
                ``not_text`` or ``blocklisted``; the message never contains the
                password.
            TypeError: *password* is not a str.
        """
        normalised = normalize(password)
        try:
            size = len(normalised.encode("utf-8"))
        except UnicodeEncodeError:
            raise _policy_error("not_text", "password is not valid Unicode text") from None
        if len(normalised) < self.min_length:
            raise _policy_error(
                "too_short", f"password must have at least {self.min_length} characters"
            )
        if len(normalised) > self.max_length or size > self.max_bytes:
            raise _policy_error(
                "too_long", f"password must have at most {self.max_length} characters"
            )
        if self.blocklist is not None and (
            normalised in self.blocklist or password in self.blocklist
        ):
            raise _policy_error("blocklisted", "password appears in a list of breached passwords")
        return normalised


def _policy_error(rule: str, message: str) -> PasswordPolicyError:
    error = PasswordPolicyError(message)
    error.rule = rule  # type: ignore[attr-defined]
    return error

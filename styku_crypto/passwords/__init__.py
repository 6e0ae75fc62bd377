"""Password hashing: Argon2id with profiles, peppers, limits and legacy upgrade.

See ``docs/passwords.md``.
"""

from styku_crypto.passwords import profiles
from styku_crypto.passwords._blocklist import Blocklist
from styku_crypto.passwords._hasher import PasswordHasher
from styku_crypto.passwords._limits import HashLimits
from styku_crypto.passwords._pepper import Pepper, PepperSet
from styku_crypto.passwords._policy import PasswordPolicy
from styku_crypto.passwords.profiles import (
    CHEAPEST,
    OWASP_M7168_T5,
    OWASP_M9216_T4,
    OWASP_M12288_T3,
    OWASP_M19456_T2,
    OWASP_M47104_T1,
    RFC_9106_HIGH_MEMORY,
    RFC_9106_LOW_MEMORY,
    Argon2Profile,
)

__all__ = [
    "CHEAPEST",
    "OWASP_M7168_T5",
    "OWASP_M9216_T4",
    "OWASP_M12288_T3",
    "OWASP_M19456_T2",
    "OWASP_M47104_T1",
    "RFC_9106_HIGH_MEMORY",
    "RFC_9106_LOW_MEMORY",
    "Argon2Profile",
    "Blocklist",
    "HashLimits",
    "PasswordHasher",
    "PasswordPolicy",
    "Pepper",
    "PepperSet",
    "profiles",
]

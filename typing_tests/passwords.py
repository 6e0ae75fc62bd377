"""Typed usage of :mod:`styku_crypto.passwords`, checked by ``mypy --strict``."""

from __future__ import annotations

import asyncio
from typing import Literal

from styku_crypto.exceptions import InvalidHashError, PasswordMismatchError
from styku_crypto.passwords import (
    Argon2Profile,
    Blocklist,
    HashLimits,
    PasswordHasher,
    PasswordPolicy,
    Pepper,
    PepperSet,
    profiles,
)


def login(hasher: PasswordHasher, stored: str | None, password: str) -> str | None:
    """Verify a login; return a replacement hash to store, if any."""
    if stored is None:
        hasher.dummy_verify(password)  # NoReturn: raises PasswordMismatchError
    try:
        return hasher.verify_and_update(stored, password, source="203.0.113.9")
    except (PasswordMismatchError, InvalidHashError):
        raise


def build(blocklist_path: str) -> PasswordHasher:
    """Construct a hasher with every option spelled out."""
    old = Pepper("2024", b"o" * 32)
    current = Pepper.generate("2025")
    profile: Argon2Profile = profiles.OWASP_M19456_T2
    return PasswordHasher(
        profile=profile,
        pepper=PepperSet(current, old=[old]),
        max_concurrency=2,
        policy=PasswordPolicy(min_length=8, blocklist=Blocklist(blocklist_path)),
        limits=HashLimits(argon2_max_memory_kib=131072),
    )


async def alogin(hasher: PasswordHasher, stored: str, password: str) -> bool:
    """The async twins have the same types."""
    ok: Literal[True] = await hasher.averify(stored, password)
    new: str | None = await hasher.averify_and_update(stored, password)
    fresh: str = await hasher.ahash(password)
    return ok and (new is None or bool(fresh))


def rehash_needed(hasher: PasswordHasher, stored: str) -> bool:
    """needs_rehash returns a plain bool."""
    return hasher.needs_rehash(stored)


def run(hasher: PasswordHasher) -> None:
    """Drive the async example."""
    asyncio.run(alogin(hasher, "$argon2id$...", "password"))

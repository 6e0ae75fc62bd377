"""Fixtures for the password tests: cheap hashers, registered secrets, event capture."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterator

import pytest

from styku_crypto.passwords import CHEAPEST, PasswordHasher, Pepper, PepperSet
from tests._support import leaks


def new_password(prefix: str = "pw") -> str:
    """A fresh random password (registered as a secret) long enough for the policy."""
    value = f"{prefix}-{secrets.token_urlsafe(18)}"
    leaks.register_secret(value)
    return value


def new_pepper(pepper_id: str) -> Pepper:
    """A fresh pepper whose key is registered as a secret."""
    key = os.urandom(32)
    leaks.register_secret(key)
    return Pepper(pepper_id, key)


@pytest.fixture
def password() -> str:
    """A fresh random password."""
    return new_password()


@pytest.fixture
def hasher() -> Iterator[PasswordHasher]:
    """A CHEAPEST-profile hasher without pepper."""
    with PasswordHasher(profile=CHEAPEST, insecure_test_only=True, max_concurrency=2) as h:
        yield h


@pytest.fixture
def peppered() -> Iterator[PasswordHasher]:
    """A CHEAPEST-profile hasher with a single pepper ``p1``."""
    with PasswordHasher(
        profile=CHEAPEST, insecure_test_only=True, pepper=PepperSet(new_pepper("p1"))
    ) as h:
        yield h


class EventLog(logging.Handler):
    """Collects ``styku_crypto.passwords`` event dicts."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.events: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "styku_event", None)
        if isinstance(event, dict):
            self.events.append(event)

    def names(self) -> list[str]:
        """Event names in order."""
        return [str(e["event"]) for e in self.events]

    def last(self, name: str) -> dict[str, object]:
        """The last event called *name*."""
        matching = [e for e in self.events if e["event"] == name]
        assert matching, f"no {name} event in {self.names()}"
        return matching[-1]


@pytest.fixture
def events() -> Iterator[EventLog]:
    """Capture password events emitted during the test."""
    handler = EventLog()
    logger = logging.getLogger("styku_crypto.passwords")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


PasswordFactory = Callable[[str], str]


@pytest.fixture(scope="module")
def shared_hasher() -> Iterator[PasswordHasher]:
    """A module-wide CHEAPEST hasher for hypothesis tests (stateless between examples)."""
    with PasswordHasher(profile=CHEAPEST, insecure_test_only=True, max_concurrency=2) as h:
        yield h

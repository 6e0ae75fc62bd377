"""Session-wide test configuration: hypothesis profiles and the secret-leak guard."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests._support import leaks

# Profiles: "ci" keeps the whole suite well under ten minutes on two cores;
# "dev" is the default locally; "thorough" is for nightly or manual runs.
settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    print_blob=True,
)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session", autouse=True)
def _leak_guard() -> Iterator[None]:
    """Capture every ``styku_crypto`` log record; fail the session on any leaked secret."""
    handler = leaks.CapturingHandler(level=logging.DEBUG)
    logger = logging.getLogger("styku_crypto")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    problems = leaks.final_scan()
    if problems:
        pytest.fail("secrets leaked: " + "; ".join(problems[:20]), pytrace=False)
    # Every event any capability emitted during the whole run is in the vocabulary.
    from styku_crypto.events import unknown_events_seen

    unknown = sorted(unknown_events_seen())
    if unknown:
        pytest.fail(f"events outside the vocabulary were emitted: {unknown}", pytrace=False)


@pytest.fixture
def register_secret() -> object:
    """The leak registry's ``register_secret`` as a fixture."""
    return leaks.register_secret

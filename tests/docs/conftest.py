"""The suite's real servers, for documentation examples that need one."""

from __future__ import annotations

from tests._support.moto_server import moto_server  # noqa: F401 - fixture
from tests._support.postgres import postgres_server, postgres_url  # noqa: F401 - fixtures
from tests._support.softhsm import softhsm_token  # noqa: F401 - fixture

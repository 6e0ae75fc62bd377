"""Store and root-provider factories for the real servers: PostgreSQL, SoftHSM2, moto KMS.

``tests/keys/conftest.py`` adds these to its ``BACKEND_FACTORIES`` /
``PROVIDER_FACTORIES`` so the behavioural key-store suite runs against every
backend and provider. Factories follow the conftest convention
``(request, tmp_path, name) -> object``: within one test the same *name*
reopens the same store or root key; a new name gives a new one.
"""

from __future__ import annotations

import contextlib
import secrets
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from styku_crypto.keys import KeyStoreBackend, RootKeyProvider
from tests._support.moto_server import AWS_ENV, MotoServer, kms_client
from tests._support.postgres import PostgresServer
from tests._support.softhsm import SoftHSMToken

__all__ = [
    "EXTRA_BACKEND_FACTORIES",
    "EXTRA_PROVIDER_FACTORIES",
    "kms_provider",
    "pkcs11_provider",
    "postgres_backend",
]

_STASH_DBS = pytest.StashKey[dict[str, str]]()
_STASH_KEYS = pytest.StashKey[dict[str, str]]()


def _per_test(request: pytest.FixtureRequest, key: Any) -> dict[str, str]:
    node = request.node
    if key not in node.stash:
        node.stash[key] = {}
    stash: dict[str, str] = node.stash[key]
    return stash


_SCHEMA_DB: dict[str, str] = {}


def postgres_backend(request: pytest.FixtureRequest, tmp_path: Path, name: str) -> KeyStoreBackend:
    """A PostgresBackend in a per-(test, name) schema of one database on the real server.

    A fresh schema (``search_path`` set through the URL's ``options``) is much
    cheaper than a fresh database and isolates stores just as well.
    """
    import psycopg

    from styku_crypto.keys._postgres import PostgresBackend

    server: PostgresServer = request.getfixturevalue("postgres_server")
    if _SCHEMA_DB.get("server") != server.url():
        _SCHEMA_DB["server"] = server.url()
        _SCHEMA_DB["db"] = server.create_database()
    db_url = _SCHEMA_DB["db"]
    urls = _per_test(request, _STASH_DBS)
    if name not in urls:
        schema = f"s_{secrets.token_hex(8)}"
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        urls[name] = db_url + "?options=" + urllib.parse.quote(f"-c search_path={schema}")

        def drop(schema: str = schema) -> None:
            with contextlib.suppress(Exception), psycopg.connect(db_url, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")

        request.addfinalizer(drop)
    return PostgresBackend(urls[name])


def pkcs11_provider(request: pytest.FixtureRequest, tmp_path: Path, name: str) -> RootKeyProvider:
    """A Pkcs11RootKey on the session's SoftHSM2 token, one AES key per (test, name)."""
    from styku_crypto.keys._pkcs11 import Pkcs11RootKey

    token: SoftHSMToken = request.getfixturevalue("softhsm_token")
    labels = _per_test(request, _STASH_KEYS)
    if name not in labels:
        label = f"root-{secrets.token_hex(6)}"
        Pkcs11RootKey.create_key(
            module=token.module, token_label=token.label, pin=token.pin, key_label=label
        )
        labels[name] = label
    return Pkcs11RootKey(
        module=token.module, token_label=token.label, pin=token.pin, key_label=labels[name]
    )


def kms_provider(request: pytest.FixtureRequest, tmp_path: Path, name: str) -> RootKeyProvider:
    """An AwsKmsRootKey talking HTTP to the session's moto server, one KMS key per (test, name)."""
    from styku_crypto.keys._kms import AwsKmsRootKey

    server: MotoServer = request.getfixturevalue("moto_server")
    keys = _per_test(request, _STASH_KEYS)
    if ("kms:" + name) not in keys:
        keys["kms:" + name] = kms_client(server.endpoint).create_key()["KeyMetadata"]["Arn"]
    return AwsKmsRootKey(
        key_id=keys["kms:" + name], endpoint_url=server.endpoint, client_kwargs=dict(AWS_ENV)
    )


EXTRA_BACKEND_FACTORIES = {"postgres": postgres_backend}
EXTRA_PROVIDER_FACTORIES = {"softhsm": pkcs11_provider, "kms": kms_provider}

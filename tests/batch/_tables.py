"""Fill and read token tables for the batch tests (PostgreSQL and SQLite)."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg

from styku_crypto.envelope import Envelope

TENANTS = ("acme", "globex")


def ctx(i: int) -> dict[str, str]:
    """The encryption context of row *i* (column ``id``)."""
    return {"id": str(i)}


def plaintext(i: int, size: int) -> bytes:
    return (f"scan-{i:08d}-".encode() * (size // 14 + 1))[:size]


def fill_pg(url: str, env: Envelope, n: int, *, size: int = 64, text: bool = False) -> None:
    """Table ``scans(id, tenant, token)`` with *n* rows, tenants alternating."""
    kind = "text" if text else "bytea"
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE scans (id bigint PRIMARY KEY, tenant text, token {kind})")
        with cur.copy("COPY scans (id, tenant, token) FROM STDIN") as copy:
            for i in range(n):
                t = TENANTS[i % 2]
                data = plaintext(i, size)
                tok: Any = (
                    env.encrypt_text(data.decode(), tenant=t, context=ctx(i))
                    if text
                    else env.encrypt(data, tenant=t, context=ctx(i))
                )
                copy.write_row((i, t, tok))


def read_pg(url: str) -> list[tuple[int, str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, tenant, token FROM scans ORDER BY id")
        return [
            (int(a), str(b), bytes(c) if isinstance(c, bytes | memoryview) else c)
            for a, b, c in cur
        ]


def fill_sqlite(path: str, env: Envelope, n: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE scans (id INTEGER PRIMARY KEY, tenant TEXT, token BLOB)")
    conn.executemany(
        "INSERT INTO scans VALUES (?, ?, ?)",
        [
            (
                i,
                TENANTS[i % 2],
                env.encrypt(plaintext(i, 64), tenant=TENANTS[i % 2], context=ctx(i)),
            )
            for i in range(n)
        ],
    )
    conn.commit()
    conn.close()

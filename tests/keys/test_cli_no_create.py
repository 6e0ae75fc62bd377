"""Nothing is created by accident on a server store either (issue 14).

A PostgreSQL URL naming a database without a key store gets no schema from any
command but ``keys init`` / ``keys restore --store``; SQLite files that are not
key stores are refused the same way.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from styku_crypto._cli import main
from styku_crypto.exceptions import KeyStoreError
from styku_crypto.keys import KeyStore, LocalRootKey


def _tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'styku_%'"
        ).fetchall()
    return sorted(r[0] for r in rows)


def test_read_commands_give_an_empty_database_no_schema(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """keys list/check/create on an empty database exit 1 with one line and create no table."""
    root = tmp_path / "root.key"
    LocalRootKey(root)
    for argv in (["keys", "list"], ["keys", "check"], ["keys", "create", "acme"]):
        capsys.readouterr()
        code = main([*argv, "--store", postgres_url, "--root", f"local:{root}"])
        err = capsys.readouterr().err
        assert code == 1, argv
        assert err.count("\n") == 1
        assert "not an initialised key store" in err
    assert _tables(postgres_url) == []
    assert main(["keys", "init", "--store", postgres_url, "--root", f"local:{root}"]) == 0
    assert "styku_tenants" in _tables(postgres_url)
    assert main(["keys", "create", "acme", "--store", postgres_url, "--root", f"local:{root}"]) == 0


def test_library_create_false_on_an_empty_database(postgres_url: str, tmp_path: Path) -> None:
    """``KeyStore.open(url, create=False)`` raises KeyStoreError and leaves the database empty."""
    with pytest.raises(KeyStoreError, match="not an initialised key store"):
        KeyStore.open(postgres_url, root=LocalRootKey(tmp_path / "r.key"), create=False)
    assert _tables(postgres_url) == []


def test_an_empty_or_foreign_sqlite_file_is_not_made_a_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing file that is not a key store is refused and left byte-for-byte unchanged."""
    LocalRootKey(tmp_path / "r.key")
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    text = tmp_path / "notes.txt"
    text.write_bytes(b"not a database\n" * 100)
    for path in (empty, text):
        before = path.read_bytes()
        code = main(["keys", "list", "--store", str(path), "--root", f"local:{tmp_path / 'r.key'}"])
        assert code == 1
        assert capsys.readouterr().err.count("\n") == 1
        assert path.read_bytes() == before
        assert not Path(f"{path}-wal").exists()

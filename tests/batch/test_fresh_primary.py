"""A worker that cached keys in an earlier job still rewraps onto the newest primary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from styku_crypto.batch import BatchReport, rewrap_objects, rewrap_table
from tests.batch._tables import TENANTS, ctx, fill_pg, plaintext, read_pg


def test_second_rotation_between_jobs_is_not_hidden_by_worker_caches(
    postgres_url: str, keys: Any, client: Any
) -> None:
    """rotate -> job -> rotate again -> job: every row ends on the third version.

    Workers keep their envelope (and its key cache, 300 s by default) between
    jobs. Without a refresh per run, the second job's workers still believed
    version 2 was primary, found every row "current" and changed nothing,
    leaving the tokens on the key the operator had just rotated away from.
    """

    def job() -> BatchReport:
        return rewrap_table(
            postgres_url,
            "scans",
            "token",
            spec=keys.spec,
            tenant_column="tenant",
            chunk_rows=100,
            client=client,
        )

    fill_pg(postgres_url, keys.env, 400, size=32)
    for t in TENANTS:
        keys.store.rotate(t)
    first = job()
    assert first.changed == 400
    for t in TENANTS:
        keys.store.rotate(t)  # e.g. version 2 turned out to be compromised too
    second = job()
    assert second.changed == 400
    rows = read_pg(postgres_url)
    assert {keys.env.inspect(tok).key_versions for _, _, tok in rows} == {(("customer", 3),)}
    for i, t, tok in rows:
        assert keys.env.decrypt(tok, tenant=t, context=ctx(i)) == plaintext(i, 32)


def test_objects_second_rotation_between_jobs(tmp_path: Path, keys: Any, client: Any) -> None:
    """The same for token files: the second job moves every object to version 3."""
    folder = tmp_path / "objects"
    folder.mkdir()
    for i in range(12):
        (folder / f"{i}.tok").write_bytes(
            keys.env.encrypt(plaintext(i, 100), tenant="acme", context=ctx(i))
        )
    keys.store.rotate("acme")
    assert (
        rewrap_objects(
            str(folder), spec=keys.spec, tenant="acme", client=client, objects_per_task=1
        ).changed
        == 12
    )
    keys.store.rotate("acme")
    assert (
        rewrap_objects(
            str(folder), spec=keys.spec, tenant="acme", client=client, objects_per_task=1
        ).changed
        == 12
    )
    for i in range(12):
        tok = (folder / f"{i}.tok").read_bytes()
        assert keys.env.inspect(tok).key_versions == (("customer", 3),)
        assert keys.env.decrypt(tok, tenant="acme", context=ctx(i)) == plaintext(i, 100)

"""AV-REPLICA against a real PostgreSQL streaming replica."""

from __future__ import annotations

from pathlib import Path

from styku_crypto.report import Status, load_config, run_report
from tests._support.postgres import PostgresServer, free_port
from tests.report.conftest import Env


def _replica(env: Env, tmp_path: Path, url: str):  # type: ignore[no-untyped-def]
    text = env.config(f'[replica]\nurl = "{url}"\n')
    report = run_report(load_config(env.write(tmp_path, text)), timeout=30)
    return next(c for c in report.controls if c.id == "AV-REPLICA")


def test_streaming_replica_answers(
    env: Env, tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """A hot standby of the session's server passes AV-REPLICA and is shown in recovery."""
    replica = postgres_server.replica()
    try:
        c = _replica(env, tmp_path, replica.url())
    finally:
        replica.destroy()
    assert c.status is Status.PASS
    ev = {e.label: e.value for e in c.evidence}
    assert ev["answered"] is True
    assert ev["in recovery (streaming replica)"] is True


def test_silent_replica_fails(env: Env, tmp_path: Path) -> None:
    """A secondary that does not answer fails AV-REPLICA with the reason (no password in it)."""
    url = f"postgresql://app:s3cret-report-pw@127.0.0.1:{free_port()}/keys"
    c = _replica(env, tmp_path, url)
    assert c.status is Status.FAIL
    assert "does not answer" in c.problems[0].message
    assert "s3cret-report-pw" not in repr(c)

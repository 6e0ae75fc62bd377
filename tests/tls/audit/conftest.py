"""Session fixtures: the audit test bed, started once and scanned once, concurrently."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from styku_crypto.tls.audit import AuditReport, TargetReport, audit
from tests._support import leaks
from tests.tls.audit import _bed

#: Per-connection timeout of the bed scan: the hostile servers cost at most this.
BED_TIMEOUT = 3.0


@dataclass
class Bed:
    """The running test bed and the report of one concurrent scan of all of it."""

    certs: _bed.Certs
    servers: dict[str, _bed.Server]
    report: AuditReport
    hold: threading.Event

    def result(self, name: str) -> TargetReport:
        """The report for server *name*."""
        label = self.servers[name].target
        for target in self.report.targets:
            if target.target.label == label:
                return target
        raise KeyError(name)


@pytest.fixture(scope="session")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    """Start every bed server, scan them all in one concurrent audit, stop them at the end."""
    directory: Path = tmp_path_factory.mktemp("audit-bed")
    certs = _bed.make_certs(directory)
    for _cert, key in (certs.good, certs.weak, certs.badname):
        leaks.register_secret(key.read_bytes())
    hold = threading.Event()
    servers = _bed.start_bed(certs, hold)
    refused = _bed.free_port()
    try:
        targets = [s.target for s in servers] + [f"127.0.0.1:{refused}"]
        report = audit(
            targets,
            policy="intermediate",
            timeout=BED_TIMEOUT,
            concurrency=64,
            per_host=64,
            ca_file=certs.ca,
        )
        yield Bed(
            certs=certs,
            servers={s.name: s for s in servers}
            | {"refused": _bed.Server("refused", refused, lambda: None)},
            report=report,
            hold=hold,
        )
    finally:
        hold.set()
        for server in servers:
            server.stop()

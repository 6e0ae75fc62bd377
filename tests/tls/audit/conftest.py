"""Session fixtures: the audit test bed, started once and scanned once, concurrently."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from styku_crypto.tls.audit import AuditReport, TargetReport, audit
from tests._support import leaks
from tests.tls.audit import _bed

#: Per-connection timeout of the bed scan: the hostile servers cost at most this.
BED_TIMEOUT = 1.5


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


def _start(certs: _bed.Certs, hold: threading.Event) -> list[_bed.Server]:
    v = ssl.TLSVersion
    servers = [
        _bed.https_server(
            "tls13",
            _bed.server_context(certs.good, minimum=v.TLSv1_3, maximum=v.TLSv1_3),
            _bed.LONG_HSTS,
        ),
        _bed.https_server(
            "intermediate",
            _bed.server_context(
                certs.good,
                minimum=v.TLSv1_2,
                maximum=v.TLSv1_3,
                ciphers=_bed.MOZILLA_INTERMEDIATE_OPENSSL,
                curve="prime256v1",
                server_preference=False,
                alpn=["h2", "http/1.1"],
            ),
            _bed.LONG_HSTS,
        ),
        _bed.https_server(
            "weak",
            _bed.server_context(
                certs.weak,
                minimum=v.TLSv1,
                maximum=v.TLSv1_2,
                ciphers="ALL:eNULL:aNULL:@SECLEVEL=0",
                dh=certs.dh1024,
                extra_options=_bed.OP_NO_EXTENDED_MASTER_SECRET
                | _bed.OP_ALLOW_CLIENT_RENEGOTIATION,
            ),
            None,
        ),
        _bed.https_server(
            "badname",
            _bed.server_context(certs.badname, minimum=v.TLSv1_2, maximum=v.TLSv1_3),
            _bed.SHORT_HSTS,
        ),
        _bed.s_server(
            "stapled",
            [
                "-cert",
                str(certs.good[0]),
                "-key",
                str(certs.good[1]),
                "-status_file",
                str(certs.ocsp_response),
                "-cipher",
                _bed.MOZILLA_INTERMEDIATE_OPENSSL,
                "-ciphersuites",
                "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
                "-groups",
                "X25519:P-256",
                "-no_tls1",
                "-no_tls1_1",
                "-serverpref",
                "-www",
            ],
            certs.directory,
        ),
    ]
    for behaviour in ("garbage", "truncated", "silent", "reset", "absurd", "drip"):
        servers.append(_bed.hostile_server(behaviour, behaviour, hold))
    return servers


@pytest.fixture(scope="session")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    """Start every bed server, scan them all in one concurrent audit, stop them at the end."""
    directory: Path = tmp_path_factory.mktemp("audit-bed")
    certs = _bed.make_certs(directory)
    for _cert, key in (certs.good, certs.weak, certs.badname):
        leaks.register_secret(key.read_bytes())
    hold = threading.Event()
    servers = _start(certs, hold)
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

"""Fleet behaviour: connection limits, progress, target parsing and input validation."""

from __future__ import annotations

import asyncio
import io
import ssl

import pytest

from styku_crypto.exceptions import InvalidInputError
from styku_crypto.tls.audit import Target, audit, parse_target
from styku_crypto.tls.audit._fleet import Limits, ProgressBar
from tests.tls.audit import _bed
from tests.tls.audit.conftest import Bed


def test_limits_hold_globally_and_per_host() -> None:
    """Never more than `concurrency` gates open in total nor `per_host` for one host."""

    async def run() -> tuple[int, dict[str, int]]:
        limits = Limits(concurrency=3, per_host=2)
        current = {"a": 0, "b": 0, "c": 0}
        peak = {"a": 0, "b": 0, "c": 0}
        total_peak = 0

        async def worker(host: str) -> None:
            nonlocal total_peak
            async with limits.gate_for(host)():
                current[host] += 1
                peak[host] = max(peak[host], current[host])
                total_peak = max(total_peak, sum(current.values()))
                await asyncio.sleep(0.005)
                current[host] -= 1

        await asyncio.gather(*(worker(h) for h in sorted("abc" * 10)))
        return total_peak, peak

    total_peak, peak = asyncio.run(run())
    assert total_peak == 3
    assert max(peak.values()) == 2


def test_one_connection_per_host_gives_the_same_facts(bed: Bed) -> None:
    """A maximally gentle scan (one connection at a time) finds exactly what the bed scan found."""
    server = _bed.https_server(
        "gentle",
        _bed.server_context(
            bed.certs.good,
            minimum=ssl.TLSVersion.TLSv1_2,
            maximum=ssl.TLSVersion.TLSv1_3,
            curve="prime256v1",
        ),
        _bed.LONG_HSTS,
    )
    try:
        report = audit([server.target], per_host=1, concurrency=1, timeout=3, ca_file=bed.certs.ca)
    finally:
        server.stop()
    facts = report.targets[0].facts
    assert {p for p, ok in facts.protocols.items() if ok} == {"TLSv1.2", "TLSv1.3"}
    assert set(facts.groups) == {"secp256r1"}
    assert report.targets[0].complete


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal() -> None:
    """The bar draws on a TTY and stays silent when output is piped."""
    tty, pipe = _Tty(), io.StringIO()
    for stream in (tty, pipe):
        bar = ProgressBar(stream)
        for done in range(4):
            bar(done, 3)
    assert "3/3 targets" in tty.getvalue()
    assert pipe.getvalue() == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.test", Target("example.test", 443)),
        ("example.test:8443", Target("example.test", 8443)),
        ("https://example.test:9443/login", Target("example.test", 9443)),
        ("[::1]:8443", Target("::1", 8443)),
        ("::1", Target("::1", 443)),
        ("10.0.0.1", Target("10.0.0.1", 443)),
    ],
)
def test_parse_target(text: str, expected: Target) -> None:
    """host, host:port, URLs and IPv6 forms parse; port 443 by default."""
    assert parse_target(text) == expected


@pytest.mark.parametrize("text", ["", "a b", "host:0", "host:x", "[::1", "http://a", "1:2:3:zz"])
def test_parse_target_rejects(text: str) -> None:
    """Malformed targets are InvalidInputError."""
    with pytest.raises(InvalidInputError):
        parse_target(text)


def test_audit_rejects_bad_arguments() -> None:
    """No targets, bad limits and a missing CA file fail before any connection."""
    with pytest.raises(InvalidInputError):
        audit([])
    with pytest.raises(InvalidInputError):
        audit(["127.0.0.1:1"], concurrency=0)
    with pytest.raises(InvalidInputError):
        audit(["127.0.0.1:1"], timeout=0)
    with pytest.raises(InvalidInputError):
        audit(["127.0.0.1:1"], ca_file="/nonexistent.pem")


def test_target_label_and_sni() -> None:
    """Labels bracket IPv6; SNI overrides the name checked."""
    t = Target("::1", 8443, sni="svc.test")
    assert t.label == "[::1]:8443"
    assert t.server_name == "svc.test"


def test_host_names_are_resolved_once_and_sent_as_sni(bed: Bed) -> None:
    """'localhost:port' connects to the resolved address, sends SNI and checks that name."""
    port = bed.servers["intermediate"].port
    report = audit([f"localhost:{port}"], ca_file=bed.certs.ca, timeout=3)
    result = report.targets[0]
    assert result.target.host == "localhost"
    assert result.complete
    assert result.compliant, [f.rule for f in result.findings]
    assert "CERT-HOST-001" not in {f.rule for f in result.findings}


def test_unresolvable_name_is_unreachable() -> None:
    """A name that does not resolve is an incomplete target (exit 3), not an exception."""
    report = audit(["no-such-host.invalid:443"], timeout=2)
    assert report.exit_code == 3
    assert "cannot resolve" in (report.targets[0].error or "")

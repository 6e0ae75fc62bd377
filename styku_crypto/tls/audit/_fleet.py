"""Scanning many targets at once: global and per-host connection limits, deadlines.

Every connection passes a :class:`Gate` holding a global semaphore and one per
host, so a fleet scan never opens more than ``concurrency`` connections in
total nor more than ``per_host`` to one host. Each connection has its own
timeout and each target an overall deadline, so one slow or hostile target
only ever costs its own deadline; the others finish meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, TextIO

from styku_crypto.tls.audit import _handshake
from styku_crypto.tls.audit._enumerate import Prober, UnreachableError
from styku_crypto.tls.audit._model import AuditReport, Facts, Target, TargetReport
from styku_crypto.tls.audit._starttls import preamble_of
from styku_crypto.tls.audit._verdict import grade, judge, preamble_finding
from styku_crypto.tls.audit._view import PolicyView
from styku_crypto.tls.audit._wire import ProbeError, preamble_only

__all__ = ["Limits", "ProgressBar", "run_audit"]

Progress = Callable[[int, int], None]


class Limits:
    """Global and per-host connection limits, shared by every probe of a run."""

    def __init__(self, *, concurrency: int, per_host: int) -> None:
        self._global = asyncio.Semaphore(concurrency)
        self._per_host_limit = per_host
        self._hosts: dict[str, asyncio.Semaphore] = {}

    def gate_for(self, host: str) -> Callable[[], AbstractAsyncContextManager[None]]:
        """A gate factory for connections to *host*."""
        host_sem = self._hosts.setdefault(host.lower(), asyncio.Semaphore(self._per_host_limit))

        @contextlib.asynccontextmanager
        async def gate() -> AsyncIterator[None]:
            async with host_sem, self._global:
                yield

        return gate


class ProgressBar:
    """A one-line progress bar on a terminal (nothing when not a TTY)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int) -> None:
        """Redraw the bar for *done* of *total* targets."""
        if not self.enabled or total <= 0:
            return
        width = 30
        filled = width * done // total
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} targets")
        if done == total:
            self.stream.write("\n")
        self.stream.flush()


async def _scan_one(
    target: Target,
    view: PolicyView,
    *,
    limits: Limits,
    timeout: float,
    executor: ThreadPoolExecutor,
    now: datetime | None,
) -> TargetReport:
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    facts = Facts()
    report = TargetReport(target=target, facts=facts, started=started)
    gate = limits.gate_for(target.host)
    budget = max(20.0, timeout * 12)
    loop = asyncio.get_running_loop()

    async def in_thread(fn: Callable[[Target, float, Facts], None]) -> None:
        async with gate():
            await loop.run_in_executor(executor, fn, endpoint, timeout, facts)

    endpoint = target
    try:
        async with asyncio.timeout(budget):
            endpoint = await _resolve(target, timeout)
            protocol = preamble_of(target.protocol, target.port)
            if protocol is not None:
                # One conversation first: a refusal or a foreign server is
                # reported once, clearly, instead of through every probe.
                await preamble_only(
                    endpoint.host,
                    endpoint.port,
                    protocol,
                    endpoint.server_name,
                    timeout=timeout,
                    gate=gate,
                )
            # Full handshakes need nothing from the prober: run them alongside.
            results = await asyncio.gather(
                Prober(endpoint, timeout=timeout, gate=gate).run(facts),
                in_thread(_handshake.peer_facts),
                in_thread(_handshake.fetch_hsts_and_resumption),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            # Last: a refused renegotiation can stall a single-threaded server.
            if any(facts.protocols.get(p) for p in ("TLSv1.0", "TLSv1.1", "TLSv1.2")):
                await in_thread(_handshake.client_renegotiation)
            else:
                facts.skip("client_renegotiation", "no protocol below TLS 1.3 (which has none)")
    except _ResolveError as exc:
        report.error = f"unreachable: {exc}"
    except ProbeError as exc:
        if exc.kind == "unreachable":
            report.error = f"unreachable: {exc}"
        else:
            report.error = f"TLS could not be started: {exc}"
            report.findings = [preamble_finding(str(exc), view)]
    except UnreachableError as exc:
        report.error = f"no TLS answer: {exc}"
        if preamble_of(target.protocol, target.port) is not None:
            # The preamble went through, then the server did not speak TLS.
            report.findings = [preamble_finding(f"no TLS after the preamble: {exc}", view)]
    except TimeoutError:
        report.error = f"incomplete: the scan did not finish within {budget:g} s"
    except Exception as exc:  # one target's failure must not end the run
        report.error = f"incomplete: the scan failed ({type(exc).__name__}: {exc})"
    if report.error is None:
        missing = [p for p, ok in facts.protocols.items() if ok is None]
        if missing:
            report.error = f"incomplete: could not test {', '.join(missing)}"
        elif not any(facts.protocols.values()):
            report.error = "no protocol version accepted: every hello was refused"
    if report.error is None or any(facts.protocols.values()):
        report.findings = judge(facts, view, target=target, now=now)
    if report.error is None:
        report.grade, report.grade_caps = grade(facts, report.findings)
    report.duration = time.perf_counter() - t0
    _emit(report)
    return report


class _ResolveError(Exception):
    pass


async def _resolve(target: Target, timeout: float) -> Target:
    """Resolve the host once; every probe then connects to that address (SNI keeps the name)."""
    try:
        ipaddress.ip_address(target.host)
    except ValueError:
        pass
    else:
        return target
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise _ResolveError(f"cannot resolve {target.host}: {exc}") from None
    if not infos:
        raise _ResolveError(f"cannot resolve {target.host}")
    address = str(infos[0][4][0])
    return dataclasses.replace(target, host=address, sni=target.server_name)


def _emit(report: TargetReport) -> None:
    if not logging.getLogger("styku_crypto.tls").isEnabledFor(logging.INFO):
        return  # nobody listens: skip even importing the event machinery
    from styku_crypto.events._emit import emit

    attributes: dict[str, Any] = {
        "target": report.target.label,
        "compliant": report.compliant,
        "complete": report.complete,
        "grade": report.grade,
        "findings": sum(1 for f in report.findings if f.severity == "error" and not f.waived),
    }
    with contextlib.suppress(Exception):
        emit(
            "tls.audit",
            capability="tls",
            outcome="success" if report.compliant else "failure",
            level=logging.INFO,
            reason=None if report.complete else "incomplete",
            attributes=attributes,
        )


async def run_audit(
    targets: Sequence[Target],
    view: PolicyView,
    *,
    concurrency: int,
    per_host: int,
    timeout: float,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> AuditReport:
    """Scan every target concurrently and return the report (targets in input order)."""
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    limits = Limits(concurrency=concurrency, per_host=per_host)
    done = 0
    if progress:
        progress(0, len(targets))
    with ThreadPoolExecutor(max_workers=max(2, min(concurrency, 32))) as executor:

        async def one(target: Target) -> TargetReport:
            nonlocal done
            result = await _scan_one(
                target, view, limits=limits, timeout=timeout, executor=executor, now=now
            )
            done += 1
            if progress:
                progress(done, len(targets))
            return result

        reports = await asyncio.gather(*(one(t) for t in targets))
    return AuditReport(
        policy=view.name, targets=list(reports), started=started, duration=time.perf_counter() - t0
    )

"""Typed usage of styku_crypto.tls.audit (``mypy --strict``)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from styku_crypto.tls import profiles
from styku_crypto.tls.audit import (
    JSON_SCHEMA,
    AuditFinding,
    AuditReport,
    Facts,
    Target,
    TargetReport,
    audit,
    audit_async,
    parse_target,
    to_json,
    to_sarif,
    to_text,
)


def ci_gate(hosts: list[str]) -> int:
    """Audit against Mozilla intermediate and return the CLI's exit code."""
    report: AuditReport = audit(hosts, policy=profiles.MOZILLA_INTERMEDIATE, timeout=3.0)
    for result in report.targets:
        target: Target = result.target
        facts: Facts = result.facts
        offered: list[str] = [p for p, ok in facts.protocols.items() if ok]
        grade: str | None = result.grade
        errors: list[AuditFinding] = [f for f in result.findings if f.severity == "error"]
        print(target.label, offered, grade, [f.rule for f in errors], facts.not_tested)
    text: str = to_text(report)
    document: str = to_json(report)
    sarif: str = to_sarif(report)
    assert JSON_SCHEMA in document
    del text, sarif
    return report.exit_code


async def nightly(targets: list[Target], started: datetime) -> list[TargetReport]:
    """The coroutine form, with a policy file and a progress callback."""

    def progress(done: int, total: int) -> None:
        print(f"{done}/{total}")

    report = await audit_async(
        targets,
        policy="policies/acme.toml",
        concurrency=32,
        per_host=2,
        progress=progress,
        now=started,
    )
    return [t for t in report.targets if not t.compliant]


def parsed() -> list[TargetReport]:
    """Targets parsed explicitly, with SNI."""
    target = parse_target("10.0.0.7:8443", sni="login.example.com")
    return asyncio.run(nightly([target], datetime.now().astimezone()))

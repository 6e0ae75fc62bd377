"""``styku-crypto web check URL``: redirect, HSTS and cookie findings for a site.

Exit codes: 0 no error-severity finding, 1 error findings, 2 usage error,
3 the HTTPS endpoint could not be reached (connection or TLS failure).
JSON output follows the versioned schema ``styku-web-check/1``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``web`` command group."""
    web = subparsers.add_parser("web", help="HTTPS enforcement checks for web services")
    sub = web.add_subparsers(dest="web_command", metavar="SUBCOMMAND")
    check = sub.add_parser(
        "check",
        help="fetch a URL over HTTP and HTTPS; report redirect, HSTS and cookie findings",
        description=(
            "Fetch URL over plain HTTP and over HTTPS (with the policy's client context) and "
            "report redirect, HSTS and cookie findings. Exit 0 compliant, 1 findings, "
            "2 usage error, 3 HTTPS unreachable."
        ),
    )
    check.add_argument("url", metavar="URL", help="https://host[:port]/path, http://... or host")
    check.add_argument(
        "--policy",
        default="intermediate",
        help="TLS policy: a profile name (default: intermediate) or a policy file",
    )
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.add_argument("--ca-file", metavar="PEM", help="trust these CAs instead of certifi's")
    check.add_argument("--http-port", type=int, metavar="N", help="plain-HTTP port (default 80)")
    check.add_argument("--https-port", type=int, metavar="N", help="HTTPS port (default 443)")
    check.add_argument("--timeout", type=float, default=10.0, help="seconds per connection")
    check.set_defaults(handler=_check)
    web.set_defaults(handler=_no_subcommand)


def _no_subcommand(args: argparse.Namespace) -> int:
    from styku_crypto._cli import usage_error

    raise usage_error("web: choose a subcommand (check)")


def _load_policy(spec: str) -> Any:
    from pathlib import Path

    from styku_crypto.exceptions import InvalidInputError
    from styku_crypto.tls import load_policy, profiles

    if profiles.is_profile_name(spec):
        return profiles.by_name(spec)
    path = Path(spec)
    if path.is_file():
        return load_policy(path)
    raise InvalidInputError(f"unknown policy {spec!r}: not a profile name or a file")


def _check(args: argparse.Namespace) -> int:
    from styku_crypto._cli import usage_error
    from styku_crypto.web._check import check_url

    for name in ("http_port", "https_port"):
        port = getattr(args, name)
        if port is not None and not 0 < port < 65536:
            raise usage_error(f"--{name.replace('_', '-')} must be between 1 and 65535")
    if args.timeout <= 0:
        raise usage_error("--timeout must be positive")
    policy = _load_policy(args.policy)
    report = check_url(
        args.url,
        policy=policy,
        cafile=args.ca_file,
        http_port=args.http_port,
        https_port=args.https_port,
        timeout=args.timeout,
    )
    if args.format == "json":
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_text(report)
    return report.exit_code


def _print_text(report: Any) -> None:
    out = sys.stdout
    out.write(f"web check {report.target}  (policy {report.policy})\n")
    for label, facts in (("HTTP ", report.http), ("HTTPS", report.https)):
        if facts.status is None:
            out.write(f"  {label} {facts.url}: unreachable ({facts.error})\n")
            continue
        line = f"  {label} {facts.url}: {facts.status}"
        if facts.location:
            line += f" -> {facts.location}"
        if facts.tls_version:
            line += f"  [{facts.tls_version} {facts.cipher}]"
        out.write(line + "\n")
        if facts.hsts:
            out.write(f"        Strict-Transport-Security: {facts.hsts[0]}\n")
    if not report.findings:
        out.write("  no findings\n")
    for f in report.findings:
        out.write(f"  {f.severity.upper():7} {f.rule:15} {f.message}\n")
        out.write(f"          fix: {f.remediation}\n")
    verdict = "OK" if report.ok else ("UNREACHABLE" if not report.reachable else "FAIL")
    out.write(f"result: {verdict}\n")

"""``styku-crypto tls audit``: scan TLS endpoints and judge them against a policy.

Exit codes: 0 every target compliant, 1 a target non-compliant, 2 usage error
or invalid policy, 3 a target unreachable or its scan incomplete (3 wins over 1).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["EXIT_INCOMPLETE", "register"]

EXIT_INCOMPLETE = 3
#: The protocol names of ``tls.audit._starttls.PROTOCOLS`` (kept here so that building
#: the parser imports nothing; a test checks the two agree).
STARTTLS_HELP = (
    "postgres, mysql, smtp, imap, pop3, ldap, ftp, xmpp (a preamble before TLS); "
    "https, tls, smtps, imaps, pop3s, ldaps, ftps (TLS at once)"
)
_MAX_TARGETS_FILE = 4 * 1024 * 1024


def register(tls_sub: Any) -> None:
    """Add the ``audit`` command to the ``tls`` command group's subparsers."""
    parser = tls_sub.add_parser(
        "audit",
        help="scan TLS endpoints and check them against a policy",
        description=(
            "Enumerate protocols, cipher suites, groups and handshake features of each "
            "TARGET (host[:port], port 443 by default, or a URL such as postgres://db:5432 "
            "or smtp://mx:587 that picks the protocol) and judge them against a policy. "
            "Exit 0 compliant, 1 non-compliant, 2 usage/invalid policy, 3 unreachable "
            "or incomplete."
        ),
    )
    parser.add_argument(
        "targets", nargs="*", metavar="TARGET", help="host[:port] or PROTO://host[:port] to audit"
    )
    parser.add_argument(
        "--starttls",
        metavar="PROTO",
        help="enter TLS as PROTO does for targets without a URL scheme: " + STARTTLS_HELP,
    )
    parser.add_argument(
        "--targets-file", metavar="F", help="file with one target per line (# comments)"
    )
    parser.add_argument(
        "--policy",
        default="intermediate",
        help="intermediate (default), modern, another profile name, or a policy FILE",
    )
    parser.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    parser.add_argument(
        "--concurrency", type=int, default=16, metavar="N", help="connections at once (16)"
    )
    parser.add_argument(
        "--per-host", type=int, default=4, metavar="N", help="connections at once per host (4)"
    )
    parser.add_argument(
        "--timeout", type=float, default=5.0, metavar="S", help="seconds per connection (5)"
    )
    parser.add_argument("--sni", metavar="NAME", help="server name to send and check")
    parser.add_argument("--ca-file", metavar="PEM", help="trust anchors for chain validation")
    parser.set_defaults(handler=_handle)


def _read_targets_file(path: str) -> list[str]:
    from styku_crypto._cli import usage_error

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(_MAX_TARGETS_FILE + 1)
    except OSError as exc:
        raise usage_error(f"cannot read targets file {path!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise usage_error(f"targets file {path!r} is not UTF-8 text") from None
    if len(text) > _MAX_TARGETS_FILE:
        raise usage_error(f"targets file {path!r} is larger than 4 MiB")
    out = []
    for line in text.splitlines():
        item = line.split("#", 1)[0].strip()
        if item:
            out.append(item)
    return out


def _quiet_unconfigured_logging() -> None:
    """Keep event records off stderr when no logging is configured.

    Without any handler, :mod:`logging` prints WARNING records' bare messages
    (``tls.certificate_violation``) to stderr, which would garble the report;
    the findings already carry the same information.
    """
    import logging

    if not logging.getLogger().handlers and not logging.getLogger("styku_crypto").handlers:
        logging.getLogger("styku_crypto").addHandler(logging.NullHandler())


def _handle(args: argparse.Namespace) -> int:
    from styku_crypto._cli import usage_error
    from styku_crypto.tls.audit import (
        audit,
        parse_target,
        resolve_policy,
        to_json,
        to_sarif,
        to_text,
    )
    from styku_crypto.tls.audit._fleet import ProgressBar

    items = list(args.targets)
    if args.targets_file:
        items.extend(_read_targets_file(args.targets_file))
    if not items:
        raise usage_error("tls audit: give at least one TARGET or --targets-file")
    if args.concurrency < 1 or args.per_host < 1:
        raise usage_error("tls audit: --concurrency and --per-host must be at least 1")
    if not 0 < args.timeout <= 300:
        raise usage_error("tls audit: --timeout must be in (0, 300]")
    # InvalidInputError (malformed target, unknown scheme, scheme vs --starttls) -> 2
    targets = [parse_target(item, sni=args.sni, starttls=args.starttls) for item in items]
    resolve_policy(args.policy)  # InvalidPolicyError -> exit 2, before any connection
    _quiet_unconfigured_logging()
    progress = ProgressBar(sys.stderr) if args.format == "text" else None
    report = audit(
        targets,
        policy=args.policy,
        concurrency=args.concurrency,
        per_host=args.per_host,
        timeout=args.timeout,
        ca_file=args.ca_file,
        progress=progress,
    )
    if args.format == "json":
        sys.stdout.write(to_json(report) + "\n")
    elif args.format == "sarif":
        sys.stdout.write(to_sarif(report) + "\n")
    else:
        sys.stdout.write(to_text(report))
    return report.exit_code

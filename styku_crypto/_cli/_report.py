"""``styku-crypto report``: the control-by-control DPA Annex 2 evidence report.

Exit codes: 0 every control passes (or is waived / not applicable), 1 a control
fails, 2 usage or configuration error (the message names file, line and key),
3 some evidence could not be gathered (3 wins over 1). The report is written in
every case but 2, atomically: a reader never sees a half-written file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from styku_crypto._fs import atomic_write

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``report`` command."""
    p = sub.add_parser(
        "report",
        help="control-by-control DPA Annex 2 evidence report (HTML, JSON, Markdown)",
        description=(
            "Gather evidence for every DPA Annex 2 control (TLS endpoints, key store, backups, "
            "drills, passwords, incidents, replica) concurrently and write a report. "
            "Exit 0 all pass, 1 a control fails, 2 usage or configuration error, "
            "3 evidence not gathered (the report is still written)."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", metavar="FILE", help="report.toml (see docs/report.md)")
    src.add_argument(
        "--demo",
        action="store_true",
        help="build a throw-away environment (store, backups, drill, incidents, two TLS servers) "
        "and report on it",
    )
    p.add_argument("--format", choices=("html", "json", "markdown"), default="html")
    p.add_argument(
        "--output",
        metavar="FILE",
        help="where to write the report ('-' for standard output); default report.html for "
        "html, standard output for json and markdown",
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="bound on the whole gathering (default: the config's report.timeout, 60)",
    )
    p.set_defaults(handler=_report)


def _write_atomic(path: Path, text: str) -> None:
    """Write *text* to *path* atomically and durably (no half-written report)."""
    atomic_write(path, text.encode("utf-8"), mode=0o644)


def _progress(done: list[str], wanted: list[str]) -> None:
    left = [n for n in wanted if n not in done]
    tail = f" (waiting for {', '.join(left)})" if left else ""
    sys.stderr.write(f"\r\x1b[Kgathering evidence: {len(done)}/{len(wanted)}{tail}")
    if not left:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _report(args: argparse.Namespace) -> int:
    from styku_crypto._cli import usage_error
    from styku_crypto.report import load_config, run_report, to_html, to_json, to_markdown
    from styku_crypto.report._demo import demo

    if args.timeout is not None and not 0 < args.timeout <= 3600:
        raise usage_error("--timeout must be in (0, 3600] seconds")
    output = args.output or ("report.html" if args.format == "html" else "-")
    if output != "-":
        parent = Path(output).parent
        if not parent.is_dir():
            raise usage_error(f"--output: no such directory: {parent}")
    progress = _progress if sys.stderr.isatty() else None
    if args.demo:
        print(
            "building the demo environment"
            " (key store, backups, drill, incidents, 2 TLS servers)...",
            file=sys.stderr,
        )
        with demo() as config_path:
            config = load_config(config_path)
            report = run_report(config, timeout=args.timeout, progress=progress, demo=True)
    else:
        config = load_config(args.config)
        report = run_report(config, timeout=args.timeout, progress=progress)
    render = {"html": to_html, "json": to_json, "markdown": to_markdown}[args.format]
    text = render(report)
    summary_to = sys.stderr if output == "-" else sys.stdout
    for c in report.controls:
        print(f"{c.id:<18} {c.status.value:<14} {c.summary}", file=summary_to)
    if output == "-":
        sys.stdout.write(text)
    else:
        _write_atomic(Path(output), text)
        meaning = {0: "every control passes", 1: "a control fails", 3: "evidence not gathered"}
        print(
            f"wrote {output} (exit {report.exit_code}: {meaning[report.exit_code]})",
            file=summary_to,
        )
    return report.exit_code

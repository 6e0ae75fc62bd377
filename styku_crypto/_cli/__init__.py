"""The ``styku-crypto`` command line.

Each command group lives in its own module that exposes
``register(subparsers) -> None``; every registered parser sets a ``handler``
default, a callable taking the parsed namespace and returning an exit code.

Exit codes (documented in ``docs/cli.md``): 0 success, 1 refused (bad token,
wrong key or context, policy violation, verification failure), 2 usage error.
Command groups may document further codes (``tls audit`` uses 3 for an
unreachable target). When the reader of standard output goes away
(``styku-crypto keys list --format json | head -1``) the command stops quietly
with 141 (128 + SIGPIPE), as Unix tools do.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import select
import sys
from collections.abc import Callable, Sequence

from styku_crypto.__about__ import __version__
from styku_crypto.exceptions import InvalidInputError, MissingExtraError, StykuCryptoError

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "main", "run"]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
#: The reader of standard output went away: the status a shell shows for SIGPIPE.
EXIT_BROKEN_PIPE = 128 + 13

# Command-group modules, in help order. Each must import cheaply: heavy imports
# go inside the handlers.
_COMMAND_MODULES = (
    "styku_crypto._cli._keys",
    "styku_crypto._cli._envelope",
    "styku_crypto._cli._passwords",
    "styku_crypto._cli._tls",
    "styku_crypto._cli._web",
    "styku_crypto._cli._incidents",
    "styku_crypto._cli._batch",
    "styku_crypto._cli._report",
)

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting, so ``main`` returns codes."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    """Build the full argument parser with every command group registered."""
    parser = _Parser(prog="styku-crypto", description="Styku's data-protection toolkit.")
    parser.add_argument("--version", action="version", version=f"styku-crypto {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _COMMAND_MODULES:
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (never calls ``sys.exit``)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except _UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code = handler(args)
        # Flush here, so a closed pipe is handled below and not at interpreter exit.
        flush = getattr(sys.stdout, "flush", None)
        if flush is not None:
            flush()
        return code
    except BrokenPipeError as exc:
        if _stdout_broken():
            return EXIT_BROKEN_PIPE  # stop quietly, like a Unix tool killed by SIGPIPE
        print(f"styku-crypto: {type(exc).__name__}: {exc.strerror or 'I/O error'}", file=sys.stderr)
        return EXIT_USAGE
    except _UsageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except MissingExtraError as exc:
        print(f"styku-crypto: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InvalidInputError as exc:
        print(f"styku-crypto: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StykuCryptoError as exc:
        print(f"styku-crypto: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except OSError as exc:
        # A path the user named cannot be read or written: one line, not a traceback.
        # Only errno text and the file name are shown (never the data being handled).
        where = f": {exc.filename}" if exc.filename is not None else ""
        print(
            f"styku-crypto: {type(exc).__name__}: {exc.strerror or 'I/O error'}{where}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("styku-crypto: interrupted", file=sys.stderr)
        return 130


def usage_error(message: str) -> _UsageError:
    """Return an exception a handler can raise to exit with code 2 and *message*."""
    return _UsageError(f"styku-crypto: {message}")


def _stdout_broken() -> bool:
    """True when standard output is a pipe whose reader has gone (or cannot be written)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        # Not a real file (tests capture it): a BrokenPipeError can only have come from it.
        return True
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def run() -> None:
    """Console-script entry point."""
    code = main()
    if code == EXIT_BROKEN_PIPE:
        # Python flushes stdout again at exit; point it at /dev/null so that flush
        # cannot print "Exception ignored ... BrokenPipeError".
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
    sys.exit(code)

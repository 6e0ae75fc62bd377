"""``styku-crypto passwords``: calibrate, hash, verify and list profiles.

* ``passwords calibrate --target-ms 250 [--max-memory 256MiB] [--parallelism 1]``
  measures Argon2id on this host and prints the strongest profile within the
  target (never below OWASP's floor). JSON output follows the versioned schema
  ``styku-passwords-calibrate/1``.
* ``passwords hash [--profile NAME]`` reads one password from the terminal
  (no echo; asked twice and compared) or from standard input and prints its
  hash.
* ``passwords verify HASH`` reads one password the same way. Exit 0 when it
  matches (prints whether the hash should be upgraded), 1 when it does not
  or when the hash is refused (malformed, unknown, over a limit: a bad
  token, as docs/cli.md's exit codes say), 2 for a usage or policy error.
* ``passwords wrap [--store ...] [--root ...]`` reads stored hashes, one per
  line, from standard input and prints each pepper-wrapped under the key
  store's current pepper (already peppered ones unchanged), in order. All or
  nothing: a refused line (named by number, never by content) prints nothing
  and exits 1. It never creates a store or a pepper (exit 2 instead).
* ``passwords profiles`` lists the built-in profiles.

Passwords are never echoed, printed or logged.
"""

from __future__ import annotations

import argparse
import hmac
import json
import re
import sys
from typing import Any

from styku_crypto._cli._store import add_store_options, open_store

__all__ = ["register"]

_SIZE = re.compile(r"\s*([0-9]+)\s*(KiB|MiB|GiB|K|M|G)\s*\Z", re.IGNORECASE)
_UNITS = {"k": 1, "kib": 1, "m": 1024, "mib": 1024, "g": 1024**2, "gib": 1024**2}
_SCHEMA = "styku-passwords-calibrate/1"


def register(subparsers: Any) -> None:
    """Add the ``passwords`` command group."""
    group = subparsers.add_parser("passwords", help="password hashing: calibrate, hash, verify")
    sub = group.add_subparsers(dest="passwords_command", metavar="SUBCOMMAND")

    cal = sub.add_parser(
        "calibrate",
        help="find Argon2id parameters for this host",
        description=(
            "Measure Argon2id here and print the strongest profile (most memory, then most "
            "passes) whose hash time stays within --target-ms, never below OWASP's floor."
        ),
    )
    cal.add_argument("--target-ms", type=float, default=250.0, help="time budget per hash")
    cal.add_argument(
        "--max-memory", default="256MiB", help="largest memory per hash, e.g. 64MiB, 1GiB"
    )
    cal.add_argument("--parallelism", type=int, default=1, help="lanes/threads (default 1)")
    cal.add_argument("--format", choices=("text", "json"), default="text")
    cal.set_defaults(handler=_calibrate)

    hash_cmd = sub.add_parser(
        "hash", help="hash a password read from the terminal or stdin (no echo)"
    )
    hash_cmd.add_argument("--profile", default="RFC_9106_LOW_MEMORY", help="built-in profile")
    hash_cmd.set_defaults(handler=_hash)

    verify = sub.add_parser("verify", help="verify a password (read without echo) against HASH")
    verify.add_argument("stored", metavar="HASH", help="the stored hash")
    verify.set_defaults(handler=_verify)

    wrap = sub.add_parser(
        "wrap",
        help="pepper-wrap stored hashes (stdin, one per line) under the key store's pepper",
        description=(
            "Read stored password hashes, one per line, from standard input and print each "
            "wrapped under the key store's current pepper (HMAC onion), in the same order, so "
            "a hasher can run with require_pepper=True at once. Already peppered or wrapped "
            "hashes are printed unchanged. Nothing is printed unless every line is accepted."
        ),
    )
    add_store_options(wrap)
    wrap.set_defaults(handler=_wrap)

    profiles = sub.add_parser("profiles", help="list the built-in profiles")
    profiles.add_argument("--format", choices=("text", "json"), default="text")
    profiles.set_defaults(handler=_profiles)
    group.set_defaults(handler=_no_subcommand)


def _no_subcommand(args: argparse.Namespace) -> int:
    from styku_crypto._cli import usage_error

    raise usage_error("passwords: choose a subcommand (calibrate, hash, verify, profiles)")


def parse_memory(text: str) -> int:
    """Parse ``256MiB``/``64M``/``1GiB``/``65536KiB`` into KiB.

    Raises:
        InvalidInputError: no unit, or an unknown one.
    """
    from styku_crypto.exceptions import InvalidInputError

    match = _SIZE.match(text)
    if match is None:
        raise InvalidInputError(f"--max-memory {text!r}: use a number with KiB, MiB or GiB")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def _read_password(prompt: str) -> str:
    import getpass

    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(prompt)
    line = sys.stdin.readline() if sys.stdin is not None else ""
    return line.removesuffix("\n").removesuffix("\r")


def _read_new_password() -> str:
    """A new password: on a terminal, asked twice and compared (a typo is never hashed)."""
    import getpass

    from styku_crypto._cli import usage_error

    if sys.stdin is None or not sys.stdin.isatty():
        return _read_password("New password: ")
    first = getpass.getpass("New password: ")
    second = getpass.getpass("Repeat the password: ")
    if not hmac.compare_digest(
        first.encode("utf-8", "surrogatepass"), second.encode("utf-8", "surrogatepass")
    ):
        raise usage_error("the two passwords differ; nothing was hashed")
    return first


def _hash(args: argparse.Namespace) -> int:
    from styku_crypto.passwords import PasswordHasher, profiles

    profile = profiles.by_name(args.profile)
    password = _read_new_password()
    with PasswordHasher(profile=profile, max_concurrency=1) as hasher:
        print(hasher.hash(password))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from styku_crypto.passwords import PasswordHasher

    password = _read_password("Password: ")
    with PasswordHasher(max_concurrency=1) as hasher:
        hasher.verify(args.stored, password)
        upgrade = hasher.needs_rehash(args.stored)
    print("ok: password matches" + ("; hash should be upgraded" if upgrade else ""))
    return 0


def _wrap(args: argparse.Namespace) -> int:
    from styku_crypto._cli import usage_error
    from styku_crypto.exceptions import InvalidHashError, KeyNotFoundError
    from styku_crypto.passwords import PasswordHasher, PepperSet
    from styku_crypto.passwords._pepper import PEPPER_TENANT

    # Never create a store (and a fresh pepper nobody else has) by a typo: hashes
    # wrapped under it would never verify anywhere. open_store refuses a missing
    # store with the usual one-line "no key store at PATH" (exit 2).
    store = open_store(args)
    try:
        try:
            store.describe(PEPPER_TENANT)
        except KeyNotFoundError:
            raise usage_error(
                "the key store has no password pepper yet (a service creates it with "
                "PepperSet.from_key_store); nothing was wrapped"
            ) from None
        peppers = PepperSet.from_key_store(store)
    finally:
        store.close()
    lines = sys.stdin.read().splitlines() if sys.stdin is not None else []
    out: list[str] = []
    with PasswordHasher(pepper=peppers, max_concurrency=1) as hasher:
        for number, line in enumerate(lines, start=1):
            try:
                out.append(hasher.pepper_wrap(line))
            except InvalidHashError as exc:
                # Name the line, never its content (a hash is sensitive).
                raise InvalidHashError(f"line {number}: {exc}") from None
    if out:
        print("\n".join(out))
    return 0


def _profiles(args: argparse.Namespace) -> int:
    from styku_crypto.passwords import profiles

    rows = [
        {
            "name": p.name,
            "memory_cost": p.memory_cost,
            "time_cost": p.time_cost,
            "parallelism": p.parallelism,
            "meets_owasp_floor": profiles.meets_owasp_floor(p),
        }
        for p in (getattr(profiles, n) for n in profiles.__all__ if n.isupper())
    ]
    if args.format == "json":
        print(json.dumps({"schema": "styku-passwords-profiles/1", "profiles": rows}, indent=2))
        return 0
    print(f"{'profile':<22} {'memory':>10} {'t':>3} {'p':>3}  floor")
    for row in rows:
        print(
            f"{row['name']:<22} {row['memory_cost'] / 1024:>6g} MiB {row['time_cost']:>3} "
            f"{row['parallelism']:>3}  {'yes' if row['meets_owasp_floor'] else 'NO (tests only)'}"
        )
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from styku_crypto._cli import usage_error
    from styku_crypto.passwords._calibrate import calibrate

    if args.target_ms <= 0:
        raise usage_error("--target-ms must be positive")
    if not 1 <= args.parallelism <= 64:
        raise usage_error("--parallelism must be between 1 and 64")
    result = calibrate(
        target_seconds=args.target_ms / 1000,
        max_memory_kib=parse_memory(args.max_memory),
        parallelism=args.parallelism,
    )
    p = result.profile
    if args.format == "json":
        doc = {
            "schema": _SCHEMA,
            "memory_cost": p.memory_cost,
            "time_cost": p.time_cost,
            "parallelism": p.parallelism,
            "measured_ms": round(result.seconds * 1000, 2),
            "target_ms": args.target_ms,
            "meets_target": result.meets_target,
        }
        print(json.dumps(doc, indent=2))
    else:
        print(f"Argon2id profile for this host (target {args.target_ms:g} ms):")
        print(f"  memory_cost = {p.memory_cost} KiB ({p.memory_cost / 1024:g} MiB)")
        print(f"  time_cost   = {p.time_cost}")
        print(f"  parallelism = {p.parallelism}")
        print(f"  measured    = {result.seconds * 1000:.1f} ms per hash")
        print()
        print("from styku_crypto.passwords import Argon2Profile")
        print(
            f'PROFILE = Argon2Profile("CALIBRATED", memory_cost={p.memory_cost}, '
            f"time_cost={p.time_cost}, parallelism={p.parallelism})"
        )
    if not result.meets_target:
        print(
            "styku-crypto: warning: the target cannot be met without going below OWASP's "
            "floor; the profile above is the floor itself",
            file=sys.stderr,
        )
    return 0

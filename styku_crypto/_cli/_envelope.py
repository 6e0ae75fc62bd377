"""``styku-crypto encrypt | decrypt | rewrap | demo``.

``encrypt --tenant T [--sensitive] [--context k=v ...] [--text] IN OUT`` writes a
binary token (or with ``--text`` the ``stk1.`` text form); ``decrypt`` reads
either form. ``IN``/``OUT`` may be ``-`` for stdin/stdout. Output files are
written to an unnamed file, fsynced and linked into place, so a failed, interrupted
or killed command never leaves partial output (a failed decrypt writes nothing).

Exit codes: 0 success, 1 refused (bad token, wrong tenant/context/data class,
unknown or shredded key), 2 usage (bad options, unreadable input).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from styku_crypto._cli._store import add_store_options, open_store

if TYPE_CHECKING:
    from styku_crypto.envelope import Envelope

__all__ = ["parse_context", "read_input", "register", "write_output"]


def register(subparsers: Any) -> None:
    """Register ``encrypt``, ``decrypt``, ``rewrap`` and ``demo``."""
    p = subparsers.add_parser("encrypt", help="encrypt a file for a tenant")
    _io_options(p)
    p.add_argument("--text", action="store_true", help="write the stk1. text form")
    p.set_defaults(handler=_encrypt)

    p = subparsers.add_parser("decrypt", help="decrypt a token file (binary or text form)")
    _io_options(p)
    p.set_defaults(handler=_decrypt)

    p = subparsers.add_parser("rewrap", help="re-wrap a token under the current key versions")
    add_store_options(p)
    p.add_argument("--tenant", required=True)
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    p.set_defaults(handler=_rewrap)

    p = subparsers.add_parser("demo", help="run the whole lifecycle on a throwaway store")
    p.add_argument("--records", type=int, default=2000, help="records per timing (default 2000)")
    p.set_defaults(handler=_demo)


def _io_options(p: argparse.ArgumentParser) -> None:
    add_store_options(p)
    p.add_argument("--tenant", required=True)
    p.add_argument(
        "--sensitive", action="store_true", help="Permitted Sensitive Data (two key layers)"
    )
    p.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="encryption context entry (repeatable; decrypt needs the same entries)",
    )
    p.add_argument("input", metavar="IN", help="input file, or - for stdin")
    p.add_argument("output", metavar="OUT", help="output file, or - for stdout")


def parse_context(items: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` to a mapping; a missing ``=`` or a repeated key is a usage error."""
    from styku_crypto._cli import usage_error

    context: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise usage_error(f"--context needs KEY=VALUE, got {item[:40]!r}")
        if key in context:
            raise usage_error(f"--context key {key[:40]!r} given twice")
        context[key] = value
    return context


def read_input(path: str) -> bytes:
    """Read all of *path* (``-`` = stdin); an unreadable file is a usage error."""
    from styku_crypto._cli import usage_error

    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise usage_error(f"cannot read {path}: {exc.strerror}") from None


def write_output(path: str, data: bytes) -> None:
    """Write *data* (``-`` = stdout) so that it appears complete and fsynced, or not at all.

    Errors name *path*, never the hidden temporary file.
    """
    from styku_crypto._cli._stream_io import publish_output

    def produce(fh: BinaryIO) -> None:
        fh.write(data)

    publish_output(path, produce)


def _data_class(args: argparse.Namespace) -> Any:
    from styku_crypto.envelope import DataClass

    return DataClass.SENSITIVE if args.sensitive else DataClass.CUSTOMER


def _encrypt(args: argparse.Namespace) -> int:
    from styku_crypto.envelope import Envelope

    context = parse_context(args.context)
    if not args.text:  # binary: a streamed token, any size, constant memory
        from styku_crypto._cli._stream_io import encrypt_streamed

        with open_store(args) as store:
            encrypt_streamed(
                Envelope(store),
                args.input,
                args.output,
                tenant=args.tenant,
                context=context,
                data_class=_data_class(args),
            )
        return 0
    data = read_input(args.input)
    with open_store(args) as store:
        env = Envelope(store)
        kwargs = {"tenant": args.tenant, "context": context, "data_class": _data_class(args)}
        if args.text:
            out = (env.encrypt_text(data, **kwargs) + "\n").encode("ascii")
        else:
            out = env.encrypt(data, **kwargs)
    write_output(args.output, out)
    return 0


def _token_of(raw: bytes) -> tuple[bytes, bool]:
    """The binary token in *raw* (binary, or text form with optional whitespace)."""
    from styku_crypto.envelope._format import TEXT_PREFIX, from_text

    stripped = raw.strip()
    if stripped.startswith(TEXT_PREFIX.encode("ascii")):
        return from_text(stripped.decode("ascii", "replace")), True
    return raw, False


def _decrypt(args: argparse.Namespace) -> int:
    from styku_crypto._cli._stream_io import decrypt_streamed, input_with_head, is_streamed
    from styku_crypto.envelope import Envelope
    from styku_crypto.envelope._format import parse_header
    from styku_crypto.exceptions import DecryptionError

    context = parse_context(args.context)
    with input_with_head(args.input) as (src, head, size):
        if is_streamed(head):  # any size, constant memory; no output file on failure
            with open_store(args) as store:
                decrypt_streamed(
                    Envelope(store),
                    src,
                    head,
                    size,
                    args.output,
                    tenant=args.tenant,
                    context=context,
                    data_class=_data_class(args),
                )
            return 0
        raw = head + src.read()
    token, _ = _token_of(raw)
    with open_store(args) as store:
        env = Envelope(store)
        if parse_header(token).data_class != _data_class(args):
            raise DecryptionError("the token's data class differs from --sensitive")
        plaintext = env.decrypt(token, tenant=args.tenant, context=context)
    write_output(args.output, plaintext)
    return 0


def _rewrap(args: argparse.Namespace) -> int:
    from styku_crypto.envelope import Envelope
    from styku_crypto.envelope._format import to_text

    token, was_text = _token_of(read_input(args.input))
    with open_store(args) as store:
        env = Envelope(store)
        changed = env.needs_rewrap(token, tenant=args.tenant)
        new = env.rewrap(bytearray(token), tenant=args.tenant)
    write_output(args.output, (to_text(new) + "\n").encode("ascii") if was_text else bytes(new))
    print(
        "re-wrapped under the current key versions" if changed else "already current",
        file=sys.stderr,
    )
    return 0


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s" if seconds > 0 else "n/a"


def _demo(args: argparse.Namespace) -> int:
    from styku_crypto._cli import usage_error
    from styku_crypto.envelope import Envelope
    from styku_crypto.exceptions import DecryptionError, KeyDestroyedError
    from styku_crypto.keys import KeyStore

    n = args.records
    if not 1 <= n <= 1_000_000:
        raise usage_error("--records must be between 1 and 1000000")
    with tempfile.TemporaryDirectory(prefix="styku-demo-") as tmp:
        t0 = time.perf_counter()
        store = KeyStore.open(Path(tmp) / "demo-keys.db")
        with store:
            store.create_tenant("acme")
            store.create_tenant("globex")
            print(f"1. throwaway key store in {tmp} (SQLite + local root key, development only)")
            print("   tenants acme and globex, each with customer and sensitive key hierarchies")
            env = Envelope(store)
            record = os.urandom(1024)
            ctx = {"table": "scans", "id": "42"}
            tokens = _demo_timing(env, record, ctx, n)
            c_token, s_token = tokens
            print(
                f"4. wrong tenant or context is refused: "
                f"{_refused(lambda: env.decrypt(c_token, tenant='globex', context=ctx))}, "
                f"{_refused(lambda: env.decrypt(c_token, tenant='acme', context={'id': '43'}))}"
            )
            store.rotate("acme")
            print(
                f"5. rotated acme to v2; old token needs_rewrap="
                f"{env.needs_rewrap(c_token, tenant='acme')}"
            )
            old = [env.encrypt(record, tenant="globex", context=ctx) for _ in range(min(n, 2000))]
            store.rotate("globex")
            t = time.perf_counter()
            new = list(env.rewrap_many(old, tenant="globex"))
            dt = time.perf_counter() - t
            assert env.decrypt(new[0], tenant="globex", context=ctx) == record
            print(
                f"   rewrapped {len(new)} globex tokens (payload untouched): {_rate(len(new), dt)}"
            )
            big = bytearray(env.encrypt(os.urandom(16 << 20), tenant="acme", context=ctx))
            store.rotate("acme", purpose="customer")
            env.needs_rewrap(big, tenant="acme")  # loads the new primary key
            t = time.perf_counter()
            env.rewrap(big, tenant="acme")
            us = (time.perf_counter() - t) * 1e6
            print(f"   rotated again; rewrap of a 16 MiB token in place: {us:.0f} us")
            store.shred("acme")
            try:
                env.decrypt(s_token, tenant="acme", context=ctx)
                outcome = "decrypted (unexpected!)"
            except KeyDestroyedError:
                outcome = "KeyDestroyedError"
            except DecryptionError:
                outcome = "DecryptionError (unexpected!)"
            print(f"6. shredded acme: its tokens now raise {outcome}; globex unaffected:", end=" ")
            print("ok" if env.decrypt(new[0], tenant="globex", context=ctx) == record else "FAIL")
        print(f"done in {time.perf_counter() - t0:.2f}s; the throwaway store is deleted")
    return 0


def _demo_timing(env: Envelope, record: bytes, ctx: dict[str, str], n: int) -> tuple[bytes, bytes]:
    from styku_crypto.envelope import DataClass

    results = []
    for step, dc in ((2, DataClass.CUSTOMER), (3, DataClass.SENSITIVE)):
        t = time.perf_counter()
        for _ in range(n):
            token = env.encrypt(record, tenant="acme", context=ctx, data_class=dc)
        enc = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(n):
            plain = env.decrypt(token, tenant="acme", context=ctx)
        dec = time.perf_counter() - t
        if plain != record:
            raise RuntimeError("demo round trip failed")
        label = "customer record " if dc is DataClass.CUSTOMER else "sensitive record"
        print(
            f"{step}. {label} (1 KiB, {len(token) - len(record)} bytes overhead):"
            f" encrypt {_rate(n, enc)}, decrypt {_rate(n, dec)}"
        )
        results.append(token)
    return results[0], results[1]


def _refused(call: Any) -> str:
    from styku_crypto.exceptions import StykuCryptoError

    try:
        call()
    except StykuCryptoError as exc:
        return type(exc).__name__
    return "ACCEPTED (unexpected!)"

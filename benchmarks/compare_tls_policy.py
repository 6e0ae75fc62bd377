"""TLS policy costs against the raw stdlib, in one run (prints ratios).

1. Context creation: ``server_context`` / ``client_context`` against a bare
   ``ssl.SSLContext`` loading the same files (the extra cost is the policy,
   the groups/TLS 1.3 calls and the bookkeeping).
2. In-memory handshake (memory BIOs, no sockets): our server + client contexts
   against ``ssl.create_default_context`` pairs with the same certificate, so
   the ratio shows what the handshake-time certificate check costs.
3. ``check_context`` on a server and a client context, ``check_cipher_string``
   and ``check_certificate`` (chain of 2, path validation included).

Issue 4 sets no speed target; these numbers document the overhead.

Run: python benchmarks/compare_tls_policy.py [--rounds N]
"""

from __future__ import annotations

import argparse
import logging
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from styku_crypto import tls  # noqa: E402
from styku_crypto.testing import CertificateFactory  # noqa: E402

logging.getLogger("styku_crypto").setLevel(logging.ERROR)


def _median_us(func: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def _pair_us(
    ours: Callable[[], object], raw: Callable[[], object], rounds: int
) -> tuple[float, float]:
    """Interleave the two so frequency scaling and caches treat them alike."""
    a, b = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        ours()
        a.append(time.perf_counter() - start)
        start = time.perf_counter()
        raw()
        b.append(time.perf_counter() - start)
    return statistics.median(a) * 1e6, statistics.median(b) * 1e6


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done_c = done_s = False
    for _ in range(20):
        if not done_c:
            try:
                client.do_handshake()
                done_c = True
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        if not done_s:
            try:
                server.do_handshake()
                done_s = True
            except ssl.SSLWantReadError:
                pass
        c_in.write(s_out.read())
        if done_c and done_s:
            return
    raise RuntimeError("handshake did not complete")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    rounds = parser.parse_args().rounds

    factory = CertificateFactory()
    issued = factory.good("localhost")
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = issued.write(tmp)
        ca = factory.write_ca(tmp)

        def raw_server() -> ssl.SSLContext:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            return ctx

        def raw_client() -> ssl.SSLContext:
            return ssl.create_default_context(cafile=str(ca))

        rows: list[tuple[str, float, float]] = []
        rows.append(
            (
                "server context creation",
                *_pair_us(
                    lambda: tls.server_context(certfile=cert, keyfile=key), raw_server, rounds
                ),
            )
        )
        rows.append(
            (
                "client context creation",
                *_pair_us(lambda: tls.client_context(cafile=ca), raw_client, rounds),
            )
        )
        ours_s, ours_c = (
            tls.server_context(certfile=cert, keyfile=key),
            tls.client_context(cafile=ca),
        )
        raw_s, raw_c = raw_server(), raw_client()
        rows.append(
            (
                "in-memory handshake",
                *_pair_us(
                    lambda: _handshake(ours_s, ours_c), lambda: _handshake(raw_s, raw_c), rounds
                ),
            )
        )
        print(f"{'operation':32} {'ours (us)':>12} {'raw (us)':>12} {'ratio':>7}")
        for name, ours, raw in rows:
            print(f"{name:32} {ours:12.1f} {raw:12.1f} {ours / raw:7.2f}")

        print()
        print(f"{'check (no baseline)':32} {'median (us)':>12}")
        checks = {
            "check_context (server)": lambda: tls.check_context(ours_s),
            "check_context (client)": lambda: tls.check_context(ours_c),
            "check_cipher_string": lambda: tls.check_cipher_string("HIGH:!aNULL"),
            "check_certificate": lambda: tls.check_certificate(
                issued.chain, hostname="localhost", trust=[factory.root]
            ),
        }
        for name, func in checks.items():
            print(f"{name:32} {_median_us(func, max(rounds // 4, 10)):12.1f}")


if __name__ == "__main__":
    main()

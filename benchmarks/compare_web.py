"""HTTPS middleware overhead and login-burst memory, in one run (prints ratios).

Part 1 - requests/s through ``ASGIMiddleware`` against the same Starlette app
without it, on the same uvicorn server process in the same run, plain HTTP
(behind a trusted TLS-terminating proxy: ``X-Forwarded-Proto: https``, the
usual deployment) and direct TLS (our ``server_context``/``client_context``).
The server runs in its own process; the load generator is a small asyncio
HTTP/1.1 keep-alive client (cheaper than httpx, so the server is the
bottleneck), a bounded number of requests, variants interleaved round by
round. Besides requests/s, the server process's CPU time per request is read
from /proc: it is the steadier measure of the middleware's cost.

Each round runs the three variants back to back in a rotating order; besides
median and best-of-rounds, the table gives the median of the per-round
ratios (mw against bare in the same round), which cancels most of the slow
drift of a shared machine.

Part 1b - in process, no server: the same apps called directly with a fake
scope (ASGI) or environ (WSGI), middleware against bare app, many
interleaved repeats, best of each: the middleware's own cost per request in
nanoseconds, and its share of a real Starlette handler's in-process time.

Part 2 - login burst: 32 concurrent async logins at RFC 9106 low-memory
(m=64 MiB) through ``LoginGuard`` + ``PasswordHasher(max_concurrency=2)``,
against 32 unbounded raw argon2-cffi verifies on threads; peak RSS growth of a
fresh process each.

Target (issue 8): middleware overhead <= 5% of requests/s.

Run: python benchmarks/compare_web.py [--requests N] [--rounds R] [--skip-burst]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONCURRENCY = 16
VARIANTS = ("bare", "hsts", "mw")


# --------------------------------------------------------------------------- server side


def serve(port_file: str, certfile: str | None, keyfile: str | None) -> None:
    """Run one uvicorn server hosting the variants: /bare/*, /hsts/* and /mw/*.

    ``hsts`` is the bare app setting the same Strict-Transport-Security header
    itself: it separates the cost of sending one more header (which any HSTS
    solution pays) from the middleware's own work.
    """
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from styku_crypto.tls import profiles, server_context
    from styku_crypto.web import ASGIMiddleware, HTTPSEnforcer

    async def hello(request: Request) -> Response:
        return PlainTextResponse("hello, world")

    sts = {"strict-transport-security": "max-age=63072000; includeSubDomains"}

    async def hello_hsts(request: Request) -> Response:
        return PlainTextResponse("hello, world", headers=sts)

    bare = Starlette(routes=[Route("/{rest:path}", hello)])
    with_hsts = Starlette(routes=[Route("/{rest:path}", hello_hsts)])
    enforcer = HTTPSEnforcer(
        allowed_hosts=["localhost", "127.0.0.1"], trusted_proxies=["127.0.0.1"]
    )
    wrapped = ASGIMiddleware(Starlette(routes=[Route("/{rest:path}", hello)]), enforcer=enforcer)

    async def dispatch(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http" and scope["path"].startswith("/mw"):
            await wrapped(scope, receive, send)
        elif scope["type"] == "http" and scope["path"].startswith("/hsts"):
            await with_hsts(scope, receive, send)
        else:
            await bare(scope, receive, send)

    kwargs = {}
    if certfile:
        ctx = server_context(
            policy=profiles.MOZILLA_INTERMEDIATE, certfile=certfile, keyfile=keyfile
        )
        kwargs["ssl_context_factory"] = lambda _c, _d: ctx
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        dispatch,
        lifespan="off",
        log_level="error",
        access_log=False,
        proxy_headers=False,
        http="h11",
        **kwargs,
    )
    server = uvicorn.Server(config)
    Path(port_file).write_text(str(sock.getsockname()[1]))
    server.run(sockets=[sock])


def _cpu_seconds(pid: int) -> float:
    """CPU time of process *pid*: nanosecond schedstat of all its threads, else ticks."""
    try:
        total = 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks


# --------------------------------------------------------------------------- load generator


async def _worker(
    port: int, path: str, count: int, tls: ssl.SSLContext | None, extra: bytes
) -> None:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=tls, server_hostname="localhost" if tls else None
    )
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\n".encode() + extra + b"\r\n"
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            if status != 200:
                raise RuntimeError(f"unexpected status {status} for {path}")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
    finally:
        writer.close()


async def _load(
    port: int, path: str, total: int, tls: ssl.SSLContext | None, extra: bytes
) -> float:
    per = total // CONCURRENCY
    start = time.perf_counter()
    await asyncio.gather(*(_worker(port, path, per, tls, extra) for _ in range(CONCURRENCY)))
    return per * CONCURRENCY / (time.perf_counter() - start)


def measure(mode: str, requests: int, rounds: int, material: dict[str, str]) -> dict[str, float]:
    """Interleave bare and middleware rounds on one server; return medians."""
    from styku_crypto.tls import client_context, profiles

    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        args = [sys.executable, __file__, "--serve", str(port_file)]
        if mode == "tls":
            args += ["--cert", material["cert"], "--key", material["key"]]
        proc = subprocess.Popen(args, cwd=ROOT)
        try:
            deadline = time.monotonic() + 20
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start")
                time.sleep(0.05)
            time.sleep(0.3)
            port = int(port_file.read_text())
            tls = (
                client_context(policy=profiles.MOZILLA_INTERMEDIATE, cafile=material["ca"])
                if mode == "tls"
                else None
            )
            extra = (
                b""
                if mode == "tls"
                else b"X-Forwarded-Proto: https\r\nX-Forwarded-For: 198.51.100.1\r\n"
            )
            results: dict[str, list[float]] = {}
            for variant in VARIANTS:
                results[variant] = []
                results[variant + "_cpu"] = []
                asyncio.run(_load(port, f"/{variant}/", 800, tls, extra))  # warm-up
            for r in range(rounds):
                order = VARIANTS[r % 3 :] + VARIANTS[: r % 3]  # rotate the order each round
                for variant in order:
                    cpu0 = _cpu_seconds(proc.pid)
                    rps = asyncio.run(_load(port, f"/{variant}/", requests, tls, extra))
                    cpu = _cpu_seconds(proc.pid) - cpu0
                    results[variant].append(rps)
                    results[f"{variant}_cpu"].append(cpu / requests * 1e6)
        finally:
            proc.terminate()
            proc.wait(10)
    out = {k: statistics.median(v) for k, v in results.items()}
    # Paired: the ratio within each round, then the median over rounds.
    for ref in ("bare", "hsts"):
        out[f"rps_pair_{ref}"] = statistics.median(
            w / b for w, b in zip(results["mw"], results[ref], strict=True)
        )
        out[f"cpu_pair_{ref}"] = statistics.median(
            w / b for w, b in zip(results["mw_cpu"], results[f"{ref}_cpu"], strict=True)
        )
    # Best of rounds: noise from other processes only ever slows a round down.
    for variant in VARIANTS:
        out[variant + "_best"] = max(results[variant])
        out[variant + "_cpu_best"] = min(results[variant + "_cpu"])
    return out


# --------------------------------------------------------------------------- in process

_RESPONSE = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"12")]


async def _tiny_asgi(scope, receive, send):  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 200, "headers": _RESPONSE})
    await send({"type": "http.response.body", "body": b"hello, world"})


def _tiny_wsgi(environ, start_response):  # type: ignore[no-untyped-def]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "12")])
    return [b"hello, world"]


def in_process(number: int, repeats: int) -> list[tuple[str, float, float]]:
    """(case, bare ns/request, middleware ns/request), best of *repeats* interleaved."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from styku_crypto.web import ASGIMiddleware, HTTPSEnforcer, WSGIMiddleware

    enforcer = HTTPSEnforcer(allowed_hosts=["localhost"], trusted_proxies=["127.0.0.1"])

    async def hello(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("hello, world")

    starlette = Starlette(routes=[Route("/{rest:path}", hello)])
    base = [(b"host", b"localhost"), (b"user-agent", b"bench"), (b"accept", b"*/*")]
    xf = [(b"x-forwarded-proto", b"https"), (b"x-forwarded-for", b"198.51.100.1")]

    def scope(scheme: str, peer: str, extra: list[tuple[bytes, bytes]]) -> dict:  # type: ignore[type-arg]
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": scheme,
            "path": "/x",
            "raw_path": b"/x",
            "root_path": "",
            "query_string": b"",
            "headers": base + extra,
            "client": (peer, 50000),
            "server": ("127.0.0.1", 443),
        }

    async def receive():  # type: ignore[no-untyped-def]
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):  # type: ignore[no-untyped-def]
        return None

    def asgi_timer(app, sc):  # type: ignore[no-untyped-def]
        async def run() -> float:
            start = time.perf_counter_ns()
            for _ in range(number):
                await app(dict(sc), receive, send)
            return (time.perf_counter_ns() - start) / number

        return lambda: asyncio.run(run())

    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/x",
        "QUERY_STRING": "",
        "HTTP_HOST": "localhost",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "443",
        "wsgi.url_scheme": "https",
        "REMOTE_ADDR": "192.0.2.10",
    }
    proxied = dict(
        environ,
        **{
            "wsgi.url_scheme": "http",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_X_FORWARDED_PROTO": "https",
            "HTTP_X_FORWARDED_FOR": "198.51.100.1",
        },
    )

    def start_response(status, headers, exc_info=None):  # type: ignore[no-untyped-def]
        return None

    def wsgi_timer(app, env):  # type: ignore[no-untyped-def]
        def run() -> float:
            start = time.perf_counter_ns()
            for _ in range(number):
                app(dict(env), start_response)
            return (time.perf_counter_ns() - start) / number

        return run

    direct, proxy = scope("https", "192.0.2.10", []), scope("http", "127.0.0.1", xf)
    cases = [
        ("ASGI tiny app, HTTPS direct", _tiny_asgi, ASGIMiddleware, direct, asgi_timer),
        ("ASGI tiny app, trusted proxy", _tiny_asgi, ASGIMiddleware, proxy, asgi_timer),
        ("ASGI Starlette, HTTPS direct", starlette, ASGIMiddleware, direct, asgi_timer),
        ("ASGI Starlette, trusted proxy", starlette, ASGIMiddleware, proxy, asgi_timer),
        ("WSGI tiny app, HTTPS direct", _tiny_wsgi, WSGIMiddleware, environ, wsgi_timer),
        ("WSGI tiny app, trusted proxy", _tiny_wsgi, WSGIMiddleware, proxied, wsgi_timer),
    ]
    out = []
    for name, app, shape, request, timer in cases:
        bare = timer(app, request)
        wrapped = timer(shape(app, enforcer=enforcer), request)
        bare_ns, wrapped_ns = [], []
        for _ in range(repeats):
            bare_ns.append(bare())
            wrapped_ns.append(wrapped())
        out.append((name, min(bare_ns), min(wrapped_ns)))
    return out


def print_in_process(number: int, repeats: int) -> None:
    print(f"# in process, no server: {number} calls x {repeats} interleaved repeats, best of each;")
    print("# fake scope/environ, the app called directly (its own cost only, no I/O)")
    print(f"{'case':31} {'bare ns':>8} {'mw ns':>8} {'+ns/req':>8} {'mw/bare':>8}")
    for name, bare, wrapped in in_process(number, repeats):
        print(f"{name:31} {bare:8.0f} {wrapped:8.0f} {wrapped - bare:8.0f} {wrapped / bare:8.3f}")


# --------------------------------------------------------------------------- login burst


def burst(kind: str) -> None:
    """Run in a fresh process: 32 concurrent verifies; print peak RSS growth in MiB."""
    import argon2

    from styku_crypto.passwords import RFC_9106_LOW_MEMORY, PasswordHasher
    from styku_crypto.web import LoginGuard

    password = "correct horse battery staple " + os.urandom(4).hex()
    stored = argon2.PasswordHasher().hash(password)  # RFC 9106 low memory, m=64 MiB

    def hwm() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
        return 0

    def rss() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
        return 0

    base = rss()
    start = time.perf_counter()
    if kind == "guard":
        hasher = PasswordHasher(profile=RFC_9106_LOW_MEMORY, max_concurrency=2)
        guard = LoginGuard(hasher, max_pending=64)

        async def run() -> None:
            await asyncio.gather(*(guard.alogin(stored, password) for _ in range(32)))

        asyncio.run(run())
    else:
        raw = argon2.PasswordHasher()

        async def run() -> None:
            await asyncio.gather(
                *(asyncio.to_thread(raw.verify, stored, password) for _ in range(32))
            )

        asyncio.run(run())
    elapsed = time.perf_counter() - start
    print(json.dumps({"peak_growth_mib": hwm() - base, "seconds": round(elapsed, 2)}))


def run_burst(kind: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--burst", kind],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--burst")
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--skip-burst", action="store_true", help="only the overhead part")
    parser.add_argument("--in-process", type=int, default=20000, help="calls per repeat")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.cert, args.key)
        return
    if args.burst:
        burst(args.burst)
        return

    import trustme

    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        leaf = ca.issue_cert("localhost", "127.0.0.1")
        material = {"ca": f"{tmp}/ca.pem", "cert": f"{tmp}/cert.pem", "key": f"{tmp}/key.pem"}
        ca.cert_pem.write_to_path(material["ca"])
        leaf.private_key_pem.write_to_path(material["key"])
        leaf.cert_chain_pems[0].write_to_path(material["cert"])
        for blob in leaf.cert_chain_pems[1:]:
            blob.write_to_path(material["cert"], append=True)

        print_in_process(args.in_process, 9)
        print()
        load = os.getloadavg()
        print(f"# machine: {os.cpu_count()} CPUs, load average at start {load[0]:.2f}")
        print(f"# web middleware overhead: {args.requests} requests x {args.rounds} rounds")
        print(f"# per variant, {CONCURRENCY} keep-alive connections, uvicorn(h11)+Starlette,")
        print("# server in its own process; us/req = server CPU time per request")
        print("# (from /proc/<pid>/task/*/schedstat, nanosecond resolution)")
        print(
            f"{'mode':6} {'stat':7} {'bare':>7} {'hsts':>7} {'mw':>7} {'mw/bare':>8} "
            f"{'mw/hsts':>8} | {'bare':>6} {'hsts':>6} {'mw':>6} {'mw/bare':>8} {'mw/hsts':>8}"
        )
        print(f"{'':15}{'requests/s':^41}| {'server CPU us/request':^38}")
        for mode in ("plain", "tls"):
            m = measure(mode, args.requests, args.rounds, material)
            for stat, sfx, csfx in (("median", "", "_cpu"), ("best", "_best", "_cpu_best")):
                b, h, w = m["bare" + sfx], m["hsts" + sfx], m["mw" + sfx]
                bc, hc, wc = m["bare" + csfx], m["hsts" + csfx], m["mw" + csfx]
                print(
                    f"{mode:6} {stat:7} {b:7.0f} {h:7.0f} {w:7.0f} {w / b:8.3f} {w / h:8.3f} | "
                    f"{bc:6.1f} {hc:6.1f} {wc:6.1f} {wc / bc:8.3f} {wc / hc:8.3f}"
                )
            print(
                f"{mode:6} {'paired':7} {'':7} {'':7} {'':7} {m['rps_pair_bare']:8.3f} "
                f"{m['rps_pair_hsts']:8.3f} | {'':6} {'':6} {'':6} {m['cpu_pair_bare']:8.3f} "
                f"{m['cpu_pair_hsts']:8.3f}"
            )
        print("# paired = median over rounds of the ratio within the round")
        print("# target: mw rps >= 0.95 x bare rps (overhead <= 5%)")
        print(f"# load average after the overhead runs: {os.getloadavg()[0]:.2f}")
        if args.skip_burst:
            return
        print()
        print("# login burst: 32 concurrent verifies at m=64 MiB (RFC 9106 low memory),")
        print("# fresh process each; peak RSS growth over the process baseline")
        guard = run_burst("guard")
        raw = run_burst("raw")
        ratio = guard["peak_growth_mib"] / max(raw["peak_growth_mib"], 1)
        print(
            f"LoginGuard + PasswordHasher(max_concurrency=2): "
            f"+{guard['peak_growth_mib']} MiB, {guard['seconds']} s"
        )
        print(
            f"raw argon2-cffi on 32 threads (unbounded):      "
            f"+{raw['peak_growth_mib']} MiB, {raw['seconds']} s"
        )
        print(f"memory ratio bounded/unbounded: {ratio:.3f}")


if __name__ == "__main__":
    main()

"""HTTPS middleware overhead and login-burst memory, in one run (prints ratios).

Part 1 - end to end (issue 22's method). Four uvicorn (h11) + Starlette
servers, each in its own process, serve the same response - a small body and
one ``Set-Cookie`` - over direct TLS (our ``server_context``):

* ``bare_a`` and ``bare_b``: the app alone, twice: the **control pair**. Two
  identical servers measured in the same run show the noise band of the
  machine; a difference between the middleware and the bare app inside that
  band is not a difference.
* ``mw``: the same app behind ``ASGIMiddleware`` (HTTPS pass-through: the
  response gains HSTS and the cookie gains ``Secure; HttpOnly; SameSite=Lax``).
* ``self``: the app setting those same headers itself (same response bytes as
  ``mw``): separates the cost of sending more header bytes, which any HSTS
  solution pays, from the middleware's own work.

The client is ``wrk`` (C, epoll; Debian package, installed by
``scripts/system-deps.sh``) in its own process, 1 thread and 16 keep-alive
connections, a fixed duration per measurement: it costs a few microseconds
per request against the server's ~100, so the server is the bottleneck.
Each round starts four fresh server processes (so no process's lifelong
bias is taken for the middleware's cost) and measures them in a rotating
order; each measurement gives requests/s (from wrk) and the server process's
CPU time per request (from ``/proc/<pid>/task/*/schedstat``). Ratios are taken within each round
(pairs measured seconds apart) and the median over rounds is reported with
the control pair's band (min..max of ``bare_b/bare_a`` over rounds).

Targets (issue 22): ``mw`` >= 0.95x requests/s and <= +5 % server CPU per
request against the bare app.

Part 1b - in process, no server: the same apps called directly with a fake
scope (ASGI) or environ (WSGI), middleware against bare app, many
interleaved repeats, best of each: the middleware's own cost per request in
nanoseconds.

Part 2 - login burst: 32 concurrent async logins at RFC 9106 low-memory
(m=64 MiB) through ``LoginGuard`` + ``PasswordHasher(max_concurrency=2)``,
against 32 unbounded raw argon2-cffi verifies on threads; peak RSS growth of a
fresh process each.

Run: python benchmarks/compare_web.py [--seconds S] [--rounds R] [--skip-burst]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A server for the "before" variant imports styku_crypto from an extracted tree.
sys.path.insert(0, os.environ.get("STYKU_BENCH_TREE", str(ROOT)))

CONNECTIONS = 16
SERVERS = ("bare_a", "bare_b", "mw", "self")
COOKIE = "sid=3f1c0a9d7e6b5a48; Path=/"
HARDENED = COOKIE + "; Secure; HttpOnly; SameSite=Lax"
HSTS_VALUE = "max-age=63072000; includeSubDomains"


# --------------------------------------------------------------------------- server side


def serve(port_file: str, variant: str, certfile: str, keyfile: str) -> None:
    """Run one uvicorn server over TLS for *variant* (bare_a, bare_b, mw, self)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from styku_crypto.tls import profiles, server_context
    from styku_crypto.web import ASGIMiddleware, HTTPSEnforcer

    headers = {"set-cookie": COOKIE}
    if variant == "self":
        headers = {"set-cookie": HARDENED, "strict-transport-security": HSTS_VALUE}

    async def hello(request: Request) -> Response:
        return PlainTextResponse("hello, world", headers=headers)

    app: object = Starlette(routes=[Route("/{rest:path}", hello)])
    if variant in ("mw", "mw_before"):
        enforcer = HTTPSEnforcer(allowed_hosts=["localhost", "127.0.0.1"])
        app = ASGIMiddleware(app, enforcer=enforcer)  # type: ignore[arg-type]
    ctx = server_context(policy=profiles.MOZILLA_INTERMEDIATE, certfile=certfile, keyfile=keyfile)
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        lifespan="off",
        log_level="error",
        access_log=False,
        proxy_headers=False,
        http="h11",
        ssl_context_factory=lambda _c, _d: ctx,
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

_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")
_COUNT = re.compile(r"([0-9]+) requests in")
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+([0-9]+)")


def _wrk(port: int, seconds: float) -> tuple[float, int]:
    """Run wrk against the server for *seconds*; return (requests/s, requests)."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{max(1, round(seconds))}s",
            "-H",
            "Host: localhost",
            f"https://127.0.0.1:{port}/x",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    bad = _NON2XX.search(out)
    if bad or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rps, count = _RPS.search(out), _COUNT.search(out)
    if rps is None or count is None:
        raise RuntimeError(f"cannot read wrk output:\n{out}")
    return float(rps.group(1)), int(count.group(1))


def _start(
    variant: str, tmp: str, material: dict[str, str], before: str | None
) -> tuple[subprocess.Popen[bytes], int]:
    port_file = Path(f"{tmp}port-{variant}")
    env = dict(os.environ)
    if variant == "mw_before" and before is not None:
        env["STYKU_BENCH_TREE"] = before
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            str(port_file),
            "--variant",
            variant,
            "--cert",
            material["cert"],
            "--key",
            material["key"],
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline:
            proc.terminate()
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    time.sleep(0.3)
    return proc, int(port_file.read_text())


def _check_responses(port: int) -> dict[str, list[str]]:
    """One request with the stdlib client: the headers each variant really sends."""
    import http.client
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # loopback bench server with a throwaway certificate
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    conn.request("GET", "/x", headers={"Host": "localhost"})
    response = conn.getresponse()
    response.read()
    conn.close()
    return {
        "set-cookie": response.headers.get_all("set-cookie") or [],
        "hsts": response.headers.get_all("strict-transport-security") or [],
    }


def measure(
    seconds: float,
    rounds: int,
    material: dict[str, str],
    servers: tuple[str, ...],
    before: str | None,
) -> dict[str, object]:
    """Run the rounds; each round starts four fresh server processes.

    Fresh processes per round: one process can be a few per cent faster or
    slower than an identical one for its whole life (memory layout, which core
    it lands on); over fresh pairs that bias averages out instead of being
    reported as the middleware's cost.
    """
    rps: dict[str, list[float]] = {v: [] for v in servers}
    cpu: dict[str, list[float]] = {v: [] for v in servers}
    headers: dict[str, dict[str, list[str]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
            try:
                for variant in servers:
                    procs[variant] = _start(variant, f"{tmp}/r{r}-", material, before)
                if not headers:
                    headers = {v: _check_responses(port) for v, (_, port) in procs.items()}
                    assert headers["mw"] == headers["self"], headers  # same bytes on the wire
                for _, port in procs.values():
                    _wrk(port, 1)  # warm-up
                shift = r % len(servers)
                order = servers[shift:] + servers[:shift]
                for variant in order:
                    proc, port = procs[variant]
                    cpu0 = _cpu_seconds(proc.pid)
                    value, count = _wrk(port, seconds)
                    cpu[variant].append((_cpu_seconds(proc.pid) - cpu0) / count * 1e6)
                    rps[variant].append(value)
            finally:
                for proc, _ in procs.values():
                    proc.terminate()
                    proc.wait(10)
    return {"rps": rps, "cpu": cpu, "headers": headers}


def _pairs(a: list[float], b: list[float]) -> list[float]:
    return [x / y for x, y in zip(a, b, strict=True)]


def print_end_to_end(
    seconds: float, rounds: int, material: dict[str, str], against: str | None
) -> None:
    load = os.getloadavg()
    print(f"# machine: {os.cpu_count()} CPUs, load average at start {load[0]:.2f}")
    print("# end to end: uvicorn(h11)+Starlette over TLS, one server process per variant,")
    print(f"# wrk -t1 -c{CONNECTIONS} in its own process, {seconds:g} s per measurement,")
    print(f"# {rounds} rounds, variants in rotating order; response: 12-byte body + one Set-Cookie")
    servers = SERVERS
    with tempfile.TemporaryDirectory() as before:
        if against:
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", against, "styku_crypto"],
                capture_output=True,
                check=True,
            )
            subprocess.run(["tar", "-x", "-C", before], input=archive.stdout, check=True)
            servers = (*SERVERS, "mw_before")
            print(f"# mw_before: the middleware as in git {against}, same app and server")
        m = measure(seconds, rounds, material, servers, before if against else None)
    rps, cpu = m["rps"], m["cpu"]
    assert isinstance(rps, dict)
    assert isinstance(cpu, dict)
    print(f"# mw sends: {m['headers']['mw']}")  # type: ignore[index]
    print(f"{'server':8} {'req/s median':>13} {'req/s best':>11} {'CPU us/req median':>18}")
    for v in servers:
        print(
            f"{v:8} {statistics.median(rps[v]):13.0f} {max(rps[v]):11.0f} "
            f"{statistics.median(cpu[v]):18.1f}"
        )
    print()
    print(
        f"{'per-round ratio':26} {'req/s median':>13} {'(min..max)':>15} "
        f"{'CPU/req median':>15} {'(min..max)':>15}"
    )
    rows = [
        ("control bare_b/bare_a", "bare_b", "bare_a"),
        ("mw/bare_a", "mw", "bare_a"),
        ("mw/bare_b", "mw", "bare_b"),
        ("self/bare_a", "self", "bare_a"),
        ("mw/self", "mw", "self"),
    ]
    if "mw_before" in servers:
        rows += [("mw_before/bare_a", "mw_before", "bare_a"), ("mw/mw_before", "mw", "mw_before")]
    for label, top, bottom in rows:
        r, c = _pairs(rps[top], rps[bottom]), _pairs(cpu[top], cpu[bottom])
        print(
            f"{label:26} {statistics.median(r):13.3f} {min(r):7.3f}..{max(r):.3f} "
            f"{statistics.median(c):15.3f} {min(c):7.3f}..{max(c):.3f}"
        )
    mean_bare_rps = [(a + b) / 2 for a, b in zip(rps["bare_a"], rps["bare_b"], strict=True)]
    mean_bare_cpu = [(a + b) / 2 for a, b in zip(cpu["bare_a"], cpu["bare_b"], strict=True)]
    r = statistics.median(_pairs(rps["mw"], mean_bare_rps))
    c = statistics.median(_pairs(cpu["mw"], mean_bare_cpu))
    print(f"{'mw/mean(bare_a,bare_b)':26} {r:13.3f} {'':15} {c:15.3f}")
    print("# targets: mw req/s >= 0.95 x bare, mw CPU/request <= 1.05 x bare")
    print(f"# load average after the end-to-end runs: {os.getloadavg()[0]:.2f}")


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
    parser.add_argument("--variant")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--burst")
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--skip-burst", action="store_true", help="only the overhead parts")
    parser.add_argument("--against", help="also serve the middleware of this git ref")
    parser.add_argument("--in-process", type=int, default=20000, help="calls per repeat")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.variant, args.cert, args.key)
        return
    if args.burst:
        burst(args.burst)
        return
    if shutil.which("wrk") is None:
        sys.exit("compare_web.py needs wrk (scripts/system-deps.sh installs it)")

    import trustme

    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        leaf = ca.issue_cert("localhost", "127.0.0.1")
        material = {"cert": f"{tmp}/cert.pem", "key": f"{tmp}/key.pem"}
        leaf.private_key_pem.write_to_path(material["key"])
        leaf.cert_chain_pems[0].write_to_path(material["cert"])
        for blob in leaf.cert_chain_pems[1:]:
            blob.write_to_path(material["cert"], append=True)

        print_in_process(args.in_process, 9)
        print()
        print_end_to_end(args.seconds, args.rounds, material, args.against)
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

"""Password hashing against raw argon2-cffi, in one run (prints ratios).

1. Latency per profile: ``PasswordHasher.hash``/``verify`` against
   ``argon2.PasswordHasher`` with the same parameters, rounds interleaved,
   medians compared.
2. ``dummy_verify`` against a failed real verify (user-enumeration parity).
3. Throughput of concurrent logins at 1, 2 and 4 threads.
4. Largest event-loop stall while 8 async verifies run, against calling
   argon2-cffi inside the coroutine.
5. Refusal time of planted hashes; blocklist lookups on 1,000,000 entries.
6. Worst-case verify per stored format at the default ceilings (each format's
   hash at the most work its ceiling admits, failed with the costliest
   password), against the profile's own verify (issue 13).
7. Unknown user vs known user vs a user whose hash predates the pepper, with a
   pepper configured: median and p99 of a failed login (issue 13).
8. The Argon2 call through argon2-cffi's public ``argon2.low_level.core``
   against the bindings' ``lib.argon2_ctx`` it wraps (issue 20).

Targets (issue 3): verify at OWASP m=19 MiB within 3% of raw; hash and verify
at m >= 46 MiB at most 0.85x raw; dummy within 10% of real; stall < 25 ms.
Targets (issue 13): every format's worst case <= 4x the profile's verify;
the three login medians within 5% of each other.

Run: python benchmarks/compare_passwords.py [--rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import argon2  # noqa: E402

from styku_crypto.exceptions import InvalidHashError, PasswordMismatchError  # noqa: E402
from styku_crypto.passwords import (  # noqa: E402
    OWASP_M7168_T5,
    OWASP_M19456_T2,
    OWASP_M47104_T1,
    RFC_9106_LOW_MEMORY,
    Argon2Profile,
    Blocklist,
    HashLimits,
    PasswordHasher,
    Pepper,
    PepperSet,
)
from styku_crypto.web import LoginGuard  # noqa: E402

PASSWORD = "benchmark-password-0123456789"
# Events go nowhere here (the refusal loop would otherwise print 200 warnings).
logging.getLogger("styku_crypto").addHandler(logging.NullHandler())


def _raw(profile: Argon2Profile) -> argon2.PasswordHasher:
    return argon2.PasswordHasher(
        time_cost=profile.time_cost,
        memory_cost=profile.memory_cost,
        parallelism=profile.parallelism,
        hash_len=profile.hash_len,
        salt_len=profile.salt_len,
    )


def _interleaved(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median and best seconds per call for each function, measured round-robin.

    Keys are the function names (median) and ``<name>:min`` (best round): on a
    loaded host the best round is the steadier estimate of intrinsic cost.
    """
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():  # warm-up (maps pooled buffers, fills caches)
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    result = {k: statistics.median(v) for k, v in samples.items()}
    result.update({f"{k}:min": min(v) for k, v in samples.items()})
    return result


def _fail(fn: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        with contextlib.suppress(PasswordMismatchError, argon2.exceptions.VerifyMismatchError):
            fn()

    return run


def latency(rounds: int, out: list[str]) -> None:
    out.append(
        "## 1. Latency per profile (median ms; ratio = ours / raw argon2-cffi on medians, "
        "best = on best rounds; targets judged on medians)"
    )
    out.append(
        f"{'profile':<22} {'op':<8} {'raw ms':>8} {'ours ms':>8} {'ratio':>7} {'best':>7}  target"
    )
    for profile in (OWASP_M7168_T5, OWASP_M19456_T2, OWASP_M47104_T1, RFC_9106_LOW_MEMORY):
        raw = _raw(profile)
        ours = PasswordHasher(profile=profile, max_concurrency=1)
        stored = raw.hash(PASSWORD)
        res = _interleaved(
            {
                "raw_hash": lambda raw=raw: raw.hash(PASSWORD),
                "ours_hash": lambda ours=ours: ours.hash(PASSWORD),
                "raw_verify": lambda raw=raw, s=stored: raw.verify(s, PASSWORD),
                "ours_verify": lambda ours=ours, s=stored: ours.verify(s, PASSWORD),
            },
            rounds,
        )
        big = profile.memory_cost >= 46 * 1024
        for op in ("hash", "verify"):
            ratio = res[f"ours_{op}"] / res[f"raw_{op}"]
            target = ""
            if big:
                target = f"<= 0.85 {'PASS' if ratio <= 0.85 else 'MISS'}"
            elif profile is OWASP_M19456_T2 and op == "verify":
                target = f"<= 1.03 {'PASS' if ratio <= 1.03 else 'MISS'}"
            best = res[f"ours_{op}:min"] / res[f"raw_{op}:min"]
            out.append(
                f"{profile.name:<22} {op:<8} {res[f'raw_{op}'] * 1000:>8.2f} "
                f"{res[f'ours_{op}'] * 1000:>8.2f} {ratio:>7.3f} {best:>7.3f}  {target}"
            )
        ours.close()


def dummy(rounds: int, out: list[str]) -> None:
    out.append("")
    out.append("## 2. dummy_verify vs a failed real verify (same hasher, default profile)")
    for profile in (RFC_9106_LOW_MEMORY, OWASP_M19456_T2):
        h = PasswordHasher(profile=profile, max_concurrency=1)
        stored = h.hash(PASSWORD)
        res = _interleaved(
            {
                "real": _fail(lambda h=h, s=stored: h.verify(s, PASSWORD + "x")),
                "dummy": _fail(lambda h=h: h.dummy_verify(PASSWORD + "x")),
            },
            rounds,
        )
        ratio = res["dummy"] / res["real"]
        best = res["dummy:min"] / res["real:min"]
        verdict = "PASS" if abs(ratio - 1) <= 0.10 else "MISS"
        out.append(
            f"{profile.name:<22} real {res['real'] * 1000:7.2f} ms  "
            f"dummy {res['dummy'] * 1000:7.2f} ms  ratio {ratio:.3f} (best {best:.3f})  "
            f"(target within 10%: {verdict})"
        )
        h.close()


def concurrency(per_thread: int, out: list[str]) -> None:
    out.append("")
    out.append(f"## 3. Concurrent logins at OWASP m=19 MiB ({per_thread} verifies per thread)")
    out.append(f"{'threads':>7} {'raw /s':>9} {'ours /s':>9} {'ratio':>7}")
    profile = OWASP_M19456_T2
    raw = _raw(profile)
    stored = raw.hash(PASSWORD)
    for n in (1, 2, 4):
        ours = PasswordHasher(profile=profile, max_concurrency=n)
        rates = {"raw": 0.0, "ours": 0.0}
        variants: tuple[tuple[str, Callable[[], object]], ...] = (
            ("raw", lambda: raw.verify(stored, PASSWORD)),
            ("ours", lambda ours=ours: ours.verify(stored, PASSWORD)),
        )
        for _trial in range(3):  # alternate, keep the best of three (load noise)
            for name, fn in variants:
                fn()

                def worker(fn: Callable[[], object] = fn) -> None:
                    for _ in range(per_thread):
                        fn()

                threads = [threading.Thread(target=worker) for _ in range(n)]
                start = time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                rate = n * per_thread / (time.perf_counter() - start)
                rates[name] = max(rates[name], rate)
        out.append(
            f"{n:>7} {rates['raw']:>9.1f} {rates['ours']:>9.1f} "
            f"{rates['ours'] / rates['raw']:>7.3f}"
        )
        ours.close()


async def _stall(coro_factory: Callable[[], object], n: int) -> tuple[float, float]:
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    start = time.perf_counter()
    await asyncio.gather(*(coro_factory() for _ in range(n)))  # type: ignore[misc]
    total = time.perf_counter() - start
    done.set()
    await tick
    return max(gaps), total


def stall(out: list[str]) -> None:
    out.append("")
    out.append("## 4. Event-loop stall with 8 concurrent async verifies (largest gap, 1 ms ticker)")

    async def idle() -> None:
        await asyncio.sleep(0.3)

    worst_idle, _ = asyncio.run(_stall(idle, 1))
    out.append(
        f"{'(idle loop, no hashing)':<22} {worst_idle * 1000:6.2f} ms: this host's noise floor"
    )
    for profile in (OWASP_M19456_T2, RFC_9106_LOW_MEMORY):
        raw = _raw(profile)
        stored = raw.hash(PASSWORD)
        h = PasswordHasher(profile=profile, max_concurrency=2)

        async def ours(h: PasswordHasher = h, stored: str = stored) -> None:
            await h.averify(stored, PASSWORD)

        async def blocking(raw: argon2.PasswordHasher = raw, stored: str = stored) -> None:
            raw.verify(stored, PASSWORD)

        asyncio.run(_stall(ours, 2))  # warm the pool
        worst_ours, t_ours = asyncio.run(_stall(ours, 8))
        worst_raw, t_raw = asyncio.run(_stall(blocking, 8))
        verdict = "PASS" if worst_ours < 0.025 else "MISS"
        out.append(
            f"{profile.name:<22} ours {worst_ours * 1000:6.2f} ms (total {t_ours:.2f} s)   "
            f"raw-in-coroutine {worst_raw * 1000:7.2f} ms (total {t_raw:.2f} s)  "
            f"target < 25 ms: {verdict}"
        )
        h.close()


def refusal_and_blocklist(out: list[str]) -> None:
    out.append("")
    out.append("## 5. Planted-hash refusal and blocklist lookups")
    h = PasswordHasher(max_concurrency=1)
    planted = "$argon2id$v=19$m=4194304,t=1000,p=255$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43
    times = []
    for _ in range(200):
        start = time.perf_counter()
        with contextlib.suppress(InvalidHashError):
            h.verify(planted, PASSWORD)
        times.append(time.perf_counter() - start)
    out.append(
        f"planted m=4 GiB,t=1000,p=255 refused in median {statistics.median(times) * 1e6:.1f} us "
        "(argon2-cffi would try to allocate 4 GiB)"
    )
    n = 1_000_000
    step = (1 << 160) // n
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "list.txt"
        with path.open("w") as fh:
            for base in range(0, n, 100_000):
                fh.write("".join(f"{i * step:040X}:1\n" for i in range(base, base + 100_000)))
        start = time.perf_counter()
        bl = Blocklist(path)
        opened = time.perf_counter() - start
        probes = [f"{i * step + (i & 1):040X}" for i in range(0, n, 97)]
        start = time.perf_counter()
        for p in probes:
            bl.contains_digest(p)
        per = (time.perf_counter() - start) / len(probes)
        bl.close()
    out.append(
        f"blocklist of {n:,} entries ({path.name}): open {opened * 1000:.2f} ms, "
        f"lookup {per * 1e6:.1f} us each (binary search over mmap)"
    )
    h.close()


def _worst_cases(profile: Argon2Profile) -> dict[str, tuple[str, str]]:
    """Per format, a hash at the most work the default ceilings admit, and the costliest
    password for it (1024 bytes for SHA-512-crypt; NFKC-changing for unpeppered Argon2).

    Every verify fails (the tags are dummies), which costs the full work.
    """
    from styku_crypto.passwords._argon2 import threads_for
    from styku_crypto.passwords._cost import Ceiling, sha512_crypt_units_per_round

    ceiling = Ceiling(profile, HashLimits().work_budget)
    b64 = lambda n, pad=False: (  # noqa: E731
        base64.b64encode(b"\x07" * n).decode()
        if pad
        else base64.b64encode(b"\x07" * n).decode().rstrip("=")
    )
    out: dict[str, tuple[str, str]] = {}
    threads = threads_for(profile.parallelism)
    m = profile.memory_cost
    t = (ceiling.max_units("argon2", threads=1, attempts=2) // m + 1) // 4
    out["argon2id p=1 (2 forms)"] = (
        f"$argon2id$v=19$m={m},t={t},p=1${b64(16)}${b64(32)}",
        "ﬁ" + PASSWORD,
    )
    t = (ceiling.max_units("argon2", threads=threads, attempts=2) // m + 1) // 4
    out[f"argon2id p={profile.parallelism} (2 forms)"] = (
        f"$argon2id$v=19$m={m},t={t},p={profile.parallelism}${b64(16)}${b64(32)}",
        "ﬁ" + PASSWORD,
    )
    best = (0, 0, 0)
    limit = ceiling.max_units("scrypt")
    for log_n in range(10, 21):
        for r in (8,):
            p = min(16, limit // (2**log_n * r))
            if p >= 1 and 2**log_n * r * p > best[0] * best[1] * best[2]:
                best = (2**log_n, r, p)
    n, r, p = best
    out[f"scrypt N={n},r={r},p={p}"] = (f"scrypt${n}$salt${r}${p}${b64(64, True)}", PASSWORD)
    for digest, size, prefix in (
        ("sha256", 32, "pbkdf2_sha256"),
        ("sha1", 20, "pbkdf2_sha1"),
    ):
        blocks = -(-128 // size)
        iterations = min(2_000_000, ceiling.max_units(f"pbkdf2_{digest}") // blocks)
        out[f"django {prefix} dklen=128, {iterations} it"] = (
            f"{prefix}${iterations}$salt${b64(128, True)}",
            PASSWORD,
        )
    iterations = min(2_000_000, ceiling.max_units("pbkdf2_sha512") // 2)
    out[f"passlib pbkdf2-sha512 dklen=128, {iterations} it"] = (
        f"$pbkdf2-sha512${iterations}${b64(8)}${b64(128)}",
        PASSWORD,
    )
    cost = max(c for c in range(4, 15) if 2**c <= ceiling.max_units("bcrypt"))
    import bcrypt

    out[f"bcrypt cost {cost}"] = (bcrypt.gensalt(cost).decode() + "." * 31, PASSWORD)
    rounds = ceiling.max_units("sha512_crypt") // sha512_crypt_units_per_round(1024)
    out[f"sha512_crypt {rounds} rounds, 1024-byte pw"] = (
        f"$6$rounds={rounds}$saltsalt$" + "a" * 86,
        "x" * 1024,
    )
    return out


def worst_case(rounds: int, out: list[str]) -> None:
    out.append("")
    out.append(
        "## 6. Worst-case failed verify per format at the default ceilings (budget 4x), "
        "vs the profile's own failed verify (median ms, interleaved)"
    )
    for profile in (RFC_9106_LOW_MEMORY, OWASP_M19456_T2):
        h = PasswordHasher(profile=profile, max_concurrency=1)
        own = h.hash(PASSWORD)
        cases = _worst_cases(profile)
        fns: dict[str, Callable[[], object]] = {
            "profile": _fail(lambda h=h, s=own: h.verify(s, PASSWORD + "x"))
        }
        for name, (stored, pw) in cases.items():
            h.needs_rehash(stored)  # accepted, not refused
            fns[name] = _fail(lambda h=h, s=stored, pw=pw: h.verify(s, pw[:-1] + "!"))
        res = _interleaved(fns, max(3, rounds // 3))
        base = res["profile"]
        out.append(f"{profile.name}: own verify {base * 1000:.2f} ms")
        for name in cases:
            ratio = res[name] / base
            verdict = "PASS" if ratio <= 4.0 else "MISS"
            out.append(
                f"  {name:<44} {res[name] * 1000:8.2f} ms  {ratio:5.2f}x "
                f"(best {res[name + ':min'] / res['profile:min']:5.2f}x)  <= 4x {verdict}"
            )
        h.close()


def login_parity(rounds: int, out: list[str]) -> None:
    out.append("")
    out.append(
        "## 7. Failed login: unknown vs known vs pre-pepper user, pepper configured "
        "(default profile; ms)"
    )
    pepper = PepperSet(Pepper("bench", os.urandom(32)))
    before = PasswordHasher(max_concurrency=1)
    h = PasswordHasher(pepper=pepper, max_concurrency=1)
    guard = LoginGuard(h, max_pending=4)
    known = h.hash(PASSWORD)
    legacy = before.hash(PASSWORD)
    for label, wrong in (("ascii password", PASSWORD + "x"), ("NFKC-changing", "ﬁ" + PASSWORD)):
        samples: dict[str, list[float]] = {"unknown": [], "known": [], "pre-pepper": []}
        paths = {
            "unknown": _fail(lambda w=wrong: guard.login(None, w)),
            "known": _fail(lambda w=wrong: guard.login(known, w)),
            "pre-pepper": _fail(lambda w=wrong: guard.login(legacy, w)),
        }
        for fn in paths.values():
            fn()
        order = list(paths)
        for _ in range(rounds * 4):  # enough samples for a p99
            random.shuffle(order)  # no path always runs first (or right after another)
            for name in order:
                fn = paths[name]
                start = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - start)
        med = {k: statistics.median(v) for k, v in samples.items()}
        p99 = {k: statistics.quantiles(v, n=100)[98] for k, v in samples.items()}
        spread = max(med.values()) / min(med.values()) - 1
        verdict = "PASS" if spread <= 0.05 else "MISS"
        out.append(
            f"{label:<15} "
            + "  ".join(f"{k} {med[k] * 1000:7.2f} (p99 {p99[k] * 1000:7.2f})" for k in samples)
            + f"  medians spread {spread * 100:4.1f}% (target <= 5%: {verdict})"
        )
    h.close()
    before.close()


def public_api(out: list[str]) -> None:
    out.append("")
    out.append(
        "## 8. Argon2 entry point: argon2.low_level.core (public) vs the bindings' "
        "lib.argon2_ctx it wraps (NULL context: the call returns at once, so this is pure "
        "call overhead)"
    )
    import timeit

    from _argon2_cffi_bindings import lib  # benchmark only: the library never imports it
    from argon2.low_level import core, ffi

    def public() -> int:
        return int(core(ffi.NULL, 2))

    def direct() -> int:
        return int(lib.argon2_ctx(ffi.NULL, 2))

    best = {"public": float("inf"), "bindings": float("inf")}
    for _ in range(5):  # interleaved, best of five
        for name, fn in (("public", public), ("bindings", direct)):
            best[name] = min(best[name], timeit.timeit(fn, number=100_000) / 100_000)
    extra = best["public"] - best["bindings"]
    out.append(
        f"public {best['public'] * 1e9:.0f} ns, bindings {best['bindings'] * 1e9:.0f} ns per "
        f"call: {extra * 1e9:+.0f} ns, i.e. {extra / 0.017 * 100:+.5f}% of a 17 ms verify "
        "(OWASP m=19 MiB)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="few rounds, for a smoke run")
    parser.add_argument(
        "--only", default="", help="comma-separated section numbers to run (default: all)"
    )
    args = parser.parse_args(argv)
    only = {int(x) for x in args.only.split(",") if x}
    rounds = 3 if args.quick else args.rounds
    out: list[str] = [
        f"# compare_passwords on {os.cpu_count()} CPUs, argon2-cffi {version('argon2-cffi')}, "
        f"{rounds} interleaved rounds, load average at start {os.getloadavg()[0]:.2f}",
        "",
    ]
    sections: list[tuple[int, Callable[[], None]]] = [
        (1, lambda: latency(rounds, out)),
        (2, lambda: dummy(rounds, out)),
        (3, lambda: concurrency(2 if args.quick else 8, out)),
        (4, lambda: stall(out)),
        (5, lambda: refusal_and_blocklist(out)),
        (6, lambda: worst_case(rounds, out)),
        (7, lambda: login_parity(rounds, out)),
        (8, lambda: public_api(out)),
    ]
    for number, run in sections:
        if not only or number in only:
            run()
    out.append(f"# load average at end {os.getloadavg()[0]:.2f}")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Root-of-trust speed goals, measured in one run (issue 6).

1. KMS calls per 10k decrypts of one tenant under a KMS root with the tenant-key
   cache (target: at most one Decrypt per cache TTL). KMS is moto's server over
   real HTTP; calls are counted by a forwarding proxy.
2. 1 KiB encrypt/decrypt rates with the PostgreSQL store and with SoftHSM2 (and
   KMS) roots, as ratios of the SQLite + local-root rates, once keys are cached
   (target: each within 10%, i.e. ratio >= 0.90).

Needs the system packages (``scripts/system-deps.sh``) and the ``postgres``,
``pkcs11`` and ``aws`` extras. Prints a table and writes
``benchmarks/results/keys.txt``.

Run: ``python benchmarks/compare_keys.py``
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from styku_crypto.envelope import Envelope  # noqa: E402
from styku_crypto.keys import (  # noqa: E402
    AwsKmsRootKey,
    KeyStore,
    LocalRootKey,
    Pkcs11RootKey,
    PostgresBackend,
    RootKeyProvider,
    SQLiteBackend,
)
from tests._support.moto_server import AWS_ENV, FaultProxy, MotoServer, kms_client  # noqa: E402
from tests._support.postgres import PostgresServer  # noqa: E402
from tests._support.softhsm import init_token  # noqa: E402

CTX = {"table": "scans", "id": "42"}
PAYLOAD = os.urandom(1024)
OPS = 2_000
REPEATS = 5
ROUNDS = 40


def rate(fn: Callable[[], object], ops: int = OPS, repeats: int = REPEATS) -> float:
    """Best-of-*repeats* operations per CPU second of *fn* (this thread's CPU time).

    CPU time rather than wall time: the CI machine is shared, and other
    processes' load would otherwise dominate the ratios.
    """
    best = float("inf")
    for _ in range(repeats):
        start = time.thread_time()
        for _ in range(ops):
            fn()
        best = min(best, time.thread_time() - start)
    return ops / max(best, 1e-9)


def measure(store: KeyStore) -> tuple[float, float]:
    """(encrypt ops/s, decrypt ops/s) at 1 KiB for one tenant, keys cached."""
    env = Envelope(store)
    token = env.encrypt(PAYLOAD, tenant="acme", context=CTX)
    env.decrypt(token, tenant="acme", context=CTX)  # warm the caches
    enc = rate(lambda: env.encrypt(PAYLOAD, tenant="acme", context=CTX))
    dec = rate(lambda: env.decrypt(token, tenant="acme", context=CTX))
    return enc, dec


def main() -> int:
    lines: list[str] = []

    def out(text: str = "") -> None:
        print(text)
        lines.append(text)

    tmp = Path(tempfile.mkdtemp(prefix="styku-bench-keys-"))
    pg = PostgresServer.create()
    moto = MotoServer()
    proxy = FaultProxy(moto.host, moto.port)
    token = init_token()
    Pkcs11RootKey.create_key(module=token.module, token_label=token.label, pin=token.pin)
    arn = kms_client(moto.endpoint).create_key()["KeyMetadata"]["Arn"]

    def kms() -> AwsKmsRootKey:
        return AwsKmsRootKey(key_id=arn, endpoint_url=proxy.endpoint, client_kwargs=dict(AWS_ENV))

    def hsm() -> Pkcs11RootKey:
        return Pkcs11RootKey(module=token.module, token_label=token.label, pin=token.pin)

    def sqlite(name: str) -> SQLiteBackend:
        backend = SQLiteBackend(tmp / f"{name}.db")
        backend.initialize()
        return backend

    def postgres() -> PostgresBackend:
        backend = PostgresBackend(pg.create_database())
        backend.initialize()
        return backend

    try:
        out("styku_crypto root of trust: speed goals (issue 6)")
        out(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), 1 KiB payloads")
        out()

        # 1. KMS calls per 10k decrypts with the cache.
        ttl = 300.0
        with KeyStore(sqlite("kms-calls"), root=kms(), cache_ttl=ttl) as ks:
            ks.create_tenant("acme")
            env = Envelope(ks)
            tokens = [env.encrypt(PAYLOAD, tenant="acme", context=CTX) for _ in range(100)]
        with KeyStore(sqlite("kms-calls"), root=kms(), cache_ttl=ttl) as ks:
            env = Envelope(ks)
            proxy.reset_counts()
            start = time.perf_counter()
            for i in range(10_000):
                env.decrypt(tokens[i % 100], tenant="acme", context=CTX)
            elapsed = time.perf_counter() - start
            calls = proxy.calls["Decrypt"]
        short = 0.05
        with KeyStore(sqlite("kms-calls"), root=kms(), cache_ttl=short) as ks:
            env = Envelope(ks)
            proxy.reset_counts()
            start = time.perf_counter()
            for i in range(10_000):
                env.decrypt(tokens[i % 100], tenant="acme", context=CTX)
            short_elapsed = time.perf_counter() - start
            short_calls = proxy.calls["Decrypt"]
        bound = int(short_elapsed / short) + 1
        out("1. KMS Decrypt calls for 10,000 decrypts of one tenant")
        out(f"   TTL 300 s : calls = {calls:5d}  (bound 1)      10k decrypts in {elapsed:.3f} s")
        out(
            f"   TTL 0.05 s: calls = {short_calls:5d}  (bound {bound:4d})   10k decrypts in"
            f" {short_elapsed:.3f} s (each call costs a KMS round trip)"
        )
        ok = calls <= 1 and short_calls <= bound
        out(f"   target: at most one call per TTL -> {'PASS' if ok else 'MISS'}")
        out()

        # 2. Rates vs SQLite + local root.
        combos: list[tuple[str, Callable[[], KeyStore]]] = []

        def make(backend_fn: Callable[[], object], root_fn: Callable[[], RootKeyProvider]):
            def build() -> KeyStore:
                ks = KeyStore(backend_fn(), root=root_fn())  # type: ignore[arg-type]
                ks.create_tenant("acme")
                return ks

            return build

        combos.append(
            ("sqlite + local", make(lambda: sqlite("a"), lambda: LocalRootKey(tmp / "r")))
        )
        combos.append(("postgres + local", make(postgres, lambda: LocalRootKey(tmp / "r"))))
        combos.append(("sqlite + softhsm2", make(lambda: sqlite("b"), hsm)))
        combos.append(("postgres + softhsm2", make(postgres, hsm)))
        combos.append(("sqlite + kms (moto)", make(lambda: sqlite("c"), kms)))
        # Interleave the combinations round by round and keep each one's best
        # round: the machine is shared, so load swings hit every combination alike.
        stores = [(name, build()) for name, build in combos]
        envs = []
        for name, ks in stores:
            env = Envelope(ks)
            tok = env.encrypt(PAYLOAD, tenant="acme", context=CTX)
            env.decrypt(tok, tenant="acme", context=CTX)
            envs.append((name, env, tok))
        best: dict[str, list[float]] = {name: [0.0, 0.0] for name, _ in combos}
        # Count every backend read and root unwrap during the measured rounds:
        # once keys are cached the hot path must touch neither.
        touched: dict[str, int] = {name: 0 for name, _ in combos}
        for name, ks in stores:
            for obj, method in (
                (ks.backend, "get_key"),
                (ks.backend, "get_primary"),
                (ks.providers[0], "unwrap"),
            ):
                original = getattr(obj, method)

                def counting(*a: object, _o=original, _n=name, **k: object) -> object:
                    touched[_n] += 1
                    return _o(*a, **k)

                setattr(obj, method, counting)
        for _ in range(ROUNDS):
            for name, env, tok in envs:
                enc = rate(
                    lambda env=env: env.encrypt(PAYLOAD, tenant="acme", context=CTX),
                    ops=OPS,
                    repeats=1,
                )
                dec = rate(
                    lambda env=env, tok=tok: env.decrypt(tok, tenant="acme", context=CTX),
                    ops=OPS,
                    repeats=1,
                )
                best[name][0] = max(best[name][0], enc)
                best[name][1] = max(best[name][1], dec)
        for _, ks in stores:
            ks.close()
        results = {name: (v[0], v[1]) for name, v in best.items()}
        base_enc, base_dec = results["sqlite + local"]
        out("2. 1 KiB customer-data rates once keys are cached (ops per CPU second)")
        out(f"   (best of {ROUNDS} interleaved rounds x {OPS:,} ops per combination)")
        out(
            f"   {'store + root':22} {'encrypt/s':>11} {'ratio':>6} {'decrypt/s':>11}"
            f" {'ratio':>6} {'store/root calls':>17}"
        )
        misses = 0
        for name, (enc, dec) in results.items():
            re_, rd = enc / base_enc, dec / base_dec
            flag = "" if min(re_, rd) >= 0.90 or name == "sqlite + local" else "  MISS"
            misses += bool(flag)
            out(
                f"   {name:22} {enc:11,.0f} {re_:6.2f} {dec:11,.0f} {rd:6.2f}"
                f" {touched[name]:17d}{flag}"
            )
        out(f"   target: ratio >= 0.90 -> {'PASS' if not misses else f'{misses} MISS'}")
        out(f"   (median ratio {statistics.median(r[0] / base_enc for r in results.values()):.2f})")
    finally:
        proxy.close()
        moto.stop()
        pg.destroy()
    results_dir = ROOT / "benchmarks" / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / "keys.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

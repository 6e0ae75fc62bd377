"""Rows per second of ``styku_crypto.batch.rewrap_table`` against a plain loop, in one run.

On this machine, with PostgreSQL started here (``tests/_support/postgres.py``):

* the primitive: ``Envelope.rewrap_many`` in memory, no database (the ceiling);
* the database alone: the tuned loop below writing every token back unchanged
  (no cryptography), the floor any rewrap on this server sits on;
* a plain single-process loop: read a chunk, ``rewrap_many``, ``COPY`` into a temp
  table, one ``UPDATE ... FROM`` with compare-and-set, commit; once with the text
  protocol and server defaults, once with ``rewrap_table``'s write path (no Dask,
  no checkpoint);
* ``rewrap_table`` on a ``LocalCluster`` of 1 worker process, then of N.

Each run follows a fresh ``rotate`` of the tenant, so every row needs work.
Goals (issue 18): >= 20k rows/s per worker end to end for 1 KiB tokens;
scaling efficiency (N-worker rate / (N x 1-worker rate)) >= 0.8 from 1 to 2.
PostgreSQL shares the same cores: its CPU share is printed per run (from
``pg_stat_activity``-independent ``/proc`` accounting of the server's processes).

Re-encrypt mode (``mode="reencrypt"``: decrypt and encrypt every row under fresh
data keys, the job after a compromise) is timed on the same clusters for sizing.

Usage: ``python benchmarks/compare_batch.py [--rows 200000] [--size 1024] [--workers 2]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from styku_crypto.batch import rewrap_table
from styku_crypto.envelope import Envelope, EnvelopeSpec
from styku_crypto.keys import KeyStore, LocalRootKey
from tests._support.postgres import PostgresServer

#: A production-like server, not the test suite's throwaway one: durable commits,
#: buffers that hold the table (the suite runs with fsync off and 16 MB).
PG_SETTINGS = {
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "shared_buffers": "1GB",
    "max_wal_size": "4GB",
}


def _cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds of *pids* and their reaped children so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / tick
    return total


def _busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores, from ``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _pg_pids(server: PostgresServer) -> list[int]:
    """The postmaster of *server* and its backends (children), nobody else's."""
    master = int((server.datadir / "postmaster.pid").read_text().split()[0])
    pids = [master]
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == master:
                pids.append(int(d.name))
    return pids


def fill(url: str, env: Envelope, rows: int, size: int) -> None:
    data = os.urandom(size)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE scans (id bigint PRIMARY KEY, token bytea)")
        with cur.copy("COPY scans (id, token) FROM STDIN") as copy:
            for i in range(rows):
                copy.write_row((i, env.encrypt(data, tenant="acme", context={"id": str(i)})))


def plain_loop(url: str, env: Envelope | None, chunk: int, *, tuned: bool) -> int:
    """Rewrap every row in one process: read a chunk, ``rewrap_many``, write back, commit.

    ``tuned=False`` is what one writes first (text protocol, text ``COPY``, the
    server's defaults); ``tuned=True`` is ``rewrap_table``'s write path (binary
    read and ``COPY``, an uncompressed temporary table, ``work_mem`` for the
    join, the join bounded by the key range). ``env=None`` writes each token
    back unchanged: the database's share alone, with no cryptography.
    """
    done = last = 0
    with psycopg.connect(url) as conn:
        while True:
            cur = conn.cursor(binary=tuned)
            rows = cur.execute(
                "SELECT id, token FROM scans WHERE id >= %s ORDER BY id LIMIT %s", (last, chunk)
            ).fetchall()
            conn.commit()
            if not rows:
                return done
            olds = [bytes(t) for _, t in rows]
            new = olds if env is None else list(env.rewrap_many(olds, tenant="acme"))
            with conn.cursor() as cur:
                if tuned:
                    cur.execute("SET LOCAL work_mem = '256MB'")
                cur.execute(
                    "CREATE TEMP TABLE n ON COMMIT DROP AS"
                    " SELECT id AS k, token AS old, token AS new FROM scans WITH NO DATA"
                )
                if tuned:
                    cur.execute(
                        "ALTER TABLE n ALTER old SET STORAGE PLAIN, ALTER new SET STORAGE PLAIN"
                    )
                fmt = " (FORMAT BINARY)" if tuned else ""
                with cur.copy(f"COPY n (k, old, new) FROM STDIN{fmt}") as copy:
                    if tuned:
                        copy.set_types(["int8", "bytea", "bytea"])
                    for (i, _), old, tok in zip(rows, olds, new, strict=True):
                        copy.write_row((i, old, tok))
                bound = " AND t.id >= %s AND t.id <= %s" if tuned else ""
                cur.execute(
                    "UPDATE scans AS t SET token = n.new FROM n"
                    " WHERE t.id = n.k AND t.token = n.old" + bound,
                    (rows[0][0], rows[-1][0]) if tuned else None,
                )
                done += cur.rowcount
            conn.commit()
            last = rows[-1][0] + 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=10_000)
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    tmp = Path(tempfile.mkdtemp(prefix="styku-bench-batch-"))
    LocalRootKey(tmp / "root.key", create=True).close()
    server = PostgresServer.create(settings=PG_SETTINGS)
    try:
        url = server.create_database()
        load = os.getloadavg()
        print(f"# {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"# {args.rows} rows, {args.size}-byte plaintexts, chunk {args.chunk}")
        results: dict[str, float] = {}
        shares: dict[str, tuple[float, float]] = {}
        store_n = 0

        def fresh_spec() -> tuple[EnvelopeSpec, Envelope]:
            # Each run its own spec: worker caches never hold an older primary.
            nonlocal store_n
            store_n += 1
            return EnvelopeSpec(
                f"sqlite:///{tmp}/keys.db",
                roots=(f"local:{tmp}/root.key",),
                cache_size=4096 + store_n,
            ), env

        store = KeyStore.open(f"sqlite:///{tmp}/keys.db", roots=[f"local:{tmp}/root.key"])
        store.create_tenant("acme")
        env = Envelope(store)
        fill(url, env, args.rows, args.size)
        with psycopg.connect(url) as conn:
            sample = [bytes(r[0]) for r in conn.execute("SELECT token FROM scans LIMIT 50000")]

        def run(name: str, fn: object) -> None:
            # Every run starts from the same table: vacuumed, with no dead rows from the last.
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE scans")
            store.rotate("acme")
            cpu0, busy0, t0 = _cpu_of(_pg_pids(server)), _busy(), time.perf_counter()
            n = fn()  # type: ignore[operator]
            dt = time.perf_counter() - t0
            pg_cpu = _cpu_of(_pg_pids(server)) - cpu0
            busy = _busy() - busy0
            ncpu = os.cpu_count() or 1
            results[name] = n / dt
            shares[name] = (pg_cpu / n, busy / n)
            print(
                f"{name:<42} {n:>7} rows {dt:6.2f} s {n / dt:>8.0f} rows/s"
                f"   PostgreSQL {pg_cpu * 1e6 / n:5.1f} us/row,"
                f" machine {busy * 1e6 / n:5.1f} us/row ({busy / dt / ncpu:4.0%} busy)"
            )

        store.rotate("acme")
        t0 = time.perf_counter()
        out = list(env.rewrap_many(sample, tenant="acme"))
        dt = time.perf_counter() - t0
        print(
            f"{'primitive rewrap_many (no DB)':<34} {len(out):>9} rows {dt:8.2f} s "
            f"{len(out) / dt:>10.0f} rows/s"
        )
        # Warm-up, not printed: the first pass over a freshly loaded table also sets
        # every row's hint bits and fills the buffers, which no later run pays.
        plain_loop(url, None, args.chunk, tuned=True)
        run(
            "database only (tokens written back as is)",
            lambda: plain_loop(url, None, args.chunk, tuned=True),
        )
        run("plain loop, text protocol", lambda: plain_loop(url, env, args.chunk, tuned=False))
        run("plain loop, binary (same SQL)", lambda: plain_loop(url, env, args.chunk, tuned=True))
        for n in (1, args.workers):
            with (
                LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0"
                ) as cluster,
                Client(cluster) as client,
            ):
                client.wait_for_workers(n)
                spec, _ = fresh_spec()

                for mode in ("rewrap", "reencrypt"):

                    def job(
                        spec: EnvelopeSpec = spec, client: Client = client, mode: str = mode
                    ) -> int:
                        r = rewrap_table(
                            url,
                            "scans",
                            "token",
                            spec=spec,
                            tenant="acme",
                            chunk_rows=args.chunk,
                            client=client,
                            job=f"bench{client.id}{mode}",
                            mode=mode,
                            context_columns=["id"] if mode == "reencrypt" else (),
                        )
                        assert r.complete, r
                        assert r.failed == 0, r
                        return r.changed

                    label = "rewrap_table" if mode == "rewrap" else "reencrypt (after a compromise)"
                    run(f"{label}, {n} worker(s)", job)
        one, many = (
            results["rewrap_table, 1 worker(s)"],
            results[f"rewrap_table, {args.workers} worker(s)"],
        )
        print(f"per-worker rate, 1 worker: {one:.0f} rows/s (goal >= 20000)")
        print(
            f"scaling efficiency 1 -> {args.workers}: "
            f"{many / (args.workers * one):.2f} (goal >= 0.8)"
        )
        print(
            "rewrap_table 1 worker / plain loop on the same SQL: "
            f"{one / results['plain loop, binary (same SQL)']:.2f}"
        )
        name = f"rewrap_table, {args.workers} worker(s)"
        pg_row, machine_row = shares[name]
        cores = os.cpu_count() or 1
        print(
            f"where PostgreSQL becomes the limit: it spends {pg_row * 1e6:.1f} us of CPU per row"
            f" (one core: {1 / pg_row:.0f} rows/s), the whole job {machine_row * 1e6:.1f} us;"
            f" {cores} cores saturate at {cores / machine_row:.0f} rows/s,"
            f" {pg_row / machine_row:.0%} of it PostgreSQL's"
        )
        store.close()
    finally:
        server.destroy()


if __name__ == "__main__":
    main()

"""The per-job cost of a worker and its store, in process: N tiny csv-to-parquet jobs (20 rows, as
``bench/server_bench.py`` submits) each created in the store and then run by one :class:`Worker` on
this thread (``Worker.step`` until the job is done, as a local pool worker does), on PostgreSQL
(a fresh schema, dropped afterwards) or SQLite.

Prints, a job: the worker's statements (every ``execute`` of the store's cursors, by the first word),
transactions (``Store.tx``/``batch``) and this process's CPU (the store calls, the runner and psycopg;
the submit's own insert is excluded), plus PostgreSQL's CPU (its backends, psutil) over the same run.

    python bench/worker_job_cost.py [--jobs 300] [--database-url postgresql://...|sqlite:///path] 2>/dev/null

(stderr: the worker's JSON log lines, written as a pool worker writes them; ``--profile FILE``: cProfile of
this thread's CPU over the measured jobs.) Compare versions by putting another checkout's ``jobserver/``
first on ``PYTHONPATH``; for ``bench/server_bench.py`` run from outside the checkout too, or the server's and
workers' ``python -m`` put the current folder's ``jobserver/`` first.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any


def _pg_cpu(url: str) -> float:
    """user + system CPU seconds of the PostgreSQL server on ``url``'s port (postmaster + backends)."""
    import psutil

    port = str(__import__("urllib.parse").parse.urlsplit(url).port or 5432)
    total = 0.0
    for p in psutil.process_iter(["name", "cmdline"]):
        cmd = p.info["cmdline"] or []
        if p.info["name"] == "postgres" and "-p" in cmd and cmd[cmd.index("-p") + 1 :][:1] == [port]:
            for q in [p, *p.children()]:
                try:
                    t = q.cpu_times()
                    total += t.user + t.system
                except psutil.Error:
                    pass
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="worker_job_cost")
    ap.add_argument("--jobs", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--database-url", default=os.environ.get("AEROFS_TEST_DATABASE_URL"))
    ap.add_argument("--profile", help="cProfile the measured jobs into this file")
    args = ap.parse_args(argv)
    from jobserver.store import open_store
    from jobserver.worker import Worker

    work = Path(tempfile.mkdtemp(prefix="aerofs-worker-cost-"))
    src = work / "in.csv"
    src.write_text("a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(20)))
    url = args.database_url or f"sqlite:///{work / 'jobs.db'}"
    schema = None
    if url.startswith("postgres"):
        import psycopg

        schema = f"cost_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    store = open_store(url)
    store.migrate()
    counts: collections.Counter[str] = collections.Counter()
    txs = [0]
    counting = [False]

    # Count every statement the store's cursors execute (both back ends wrap theirs in a _Cursor).
    mod = sys.modules[type(store).__module__]
    orig_execute = mod._Cursor.execute  # type: ignore[attr-defined]

    def execute(self: Any, sql: str, a: tuple = ()) -> None:
        if counting[0]:
            counts[sql.split(None, 1)[0].upper()] += 1
        orig_execute(self, sql, a)

    mod._Cursor.execute = execute  # type: ignore[attr-defined]
    orig_tx, orig_batch = type(store).tx, type(store).batch

    def wrap(fn: Any) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def inner(self: Any) -> Any:
            if counting[0]:
                txs[0] += 1
            with fn(self) as c:
                yield c

        return inner

    type(store).tx = wrap(orig_tx)  # type: ignore[method-assign]
    type(store).batch = wrap(orig_batch)  # type: ignore[method-assign]
    w = Worker(store, str(work / "work"), name="cost-worker")
    # The runner's own CPU (plan, task, merge: the pipeline code and the engine), each call timed on
    # the thread it runs on, to tell it from the worker's and the store's share.
    runner_cpu = [0.0]

    def timed(fn: Any) -> Any:
        def inner(*a: Any, **k: Any) -> Any:
            t0 = time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                if counting[0]:
                    runner_cpu[0] += time.thread_time() - t0

        return inner

    class _Runner:
        plan_job = staticmethod(timed(w.runner.plan_job))
        run_task = staticmethod(timed(w.runner.run_task))
        merge_job = staticmethod(timed(w.runner.merge_job))

    w.runner = _Runner

    def one(i: int) -> None:
        job, _ = store.create_job(
            "csv-to-parquet", {"src": str(src), "dst": str(work / "out" / str(i))}, "bench"
        )
        counting[0] = True
        while w.step():
            pass
        counting[0] = False
        done = store.get_job(job["id"])
        assert done and done["state"] == "SUCCEEDED", done

    try:
        for i in range(args.warmup):
            one(i)
        counts.clear()
        txs[0] = 0
        runner_cpu[0] = 0.0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        pg0 = _pg_cpu(url) if schema else 0.0
        prof = None
        if args.profile:
            import cProfile

            prof = cProfile.Profile(time.thread_time)  # CPU, not wall (this thread only)
            prof.enable()
        for i in range(args.jobs):
            one(args.warmup + i)
        if prof is not None:
            prof.disable()
            prof.dump_stats(args.profile)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        pg = _pg_cpu(url) - pg0 if schema else 0.0
        n = args.jobs
        print(
            f"store: {type(store).__name__}, {n} jobs (after {args.warmup} to warm), load {os.getloadavg()[0]:.2f}"
        )
        print(f"statements a job: {sum(counts.values()) / n:.2f}  transactions a job: {txs[0] / n:.2f}")
        print("  by first word: " + ", ".join(f"{k} {v / n:.2f}" for k, v in counts.most_common()))
        print(
            f"worker process CPU a job: {cpu / n * 1000:.2f} ms (wall {wall / n * 1000:.2f} ms), of which the "
            f"runner's (plan, task, merge) {runner_cpu[0] / n * 1000:.2f} ms"
        )
        if schema:
            print(f"PostgreSQL CPU a job: {pg / n * 1000:.2f} ms")
    finally:
        store.close()
        if schema:
            import psycopg

            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

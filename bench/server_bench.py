"""`just bench server`: the job server under load on loopback.

PostgreSQL (AEROFS_TEST_DATABASE_URL, a fresh schema dropped afterwards) + the server's pool of 2
worker processes; N concurrent clients (default 100) for S seconds (default 30) each submit a tiny
csv-to-parquet job, then poll its status until it finishes (bounded loops). Prints submit and status
latency p50/p95/p99 and end-to-end jobs/s. Targets: submit p99 < 20 ms, status p99 < 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] * 1000


async def _client(
    base: str, token: str, src: str, dst: str, until: float, sub: list, st: list, done: list
) -> None:
    import httpx

    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as c:
        while time.monotonic() < until:
            t0 = time.perf_counter()
            r = await c.post(
                "aerofs/api/jobs",
                json={
                    "pipeline": "csv-to-parquet",
                    "params": {"src": src, "dst": f"{dst}/{uuid.uuid4().hex}"},
                },
            )
            sub.append(time.perf_counter() - t0)
            if r.status_code != 202:
                raise SystemExit(f"submit failed: {r.status_code} {r.text[:300]}")
            jid = r.json()["id"]
            for _ in range(600):  # bounded: at most 600 polls of 0.1 s per job
                t0 = time.perf_counter()
                r = await c.get(f"aerofs/api/jobs/{jid}")
                st.append(time.perf_counter() - t0)
                state = r.json()["state"]
                if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
                    done.append(state)
                    break
                if time.monotonic() > until + 30:
                    break
                await asyncio.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench server")
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--database-url", default=os.environ.get("AEROFS_TEST_DATABASE_URL"))
    ap.add_argument("--profile", help="run the server under cProfile and write its stats to this file")
    args = ap.parse_args(argv or [])
    if not args.database_url:
        print(
            'bench server: set AEROFS_TEST_DATABASE_URL (eval "$(scripts/services.sh env)")', file=sys.stderr
        )
        return 2
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in args.database_url else "?"
    db = f"{args.database_url}{sep}options=-csearch_path%3D{schema}"
    work = Path(tempfile.mkdtemp(prefix="aerofs-server-bench-"))
    src = work / "in.csv"
    src.write_text("a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(20)))
    port, token = _port(), uuid.uuid4().hex
    env = {
        **os.environ,
        "AEROFS_DATA_DIR": str(work / "data"),
        "AEROFS_DATABASE_URL": db,
        "AEROFS_WORKERS": str(args.workers),
    }
    prof = ["-m", "cProfile", "-o", os.path.abspath(args.profile)] if args.profile else []
    cmd = [
        sys.executable,
        *prof,
        "-m",
        "jupyter_server",
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={work}",
        "--ServerApp.port_retries=0",
        "--ServerApp.jpserver_extensions={'jobserver': True}",
        "--ServerApp.log_level=WARN",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(work / "server.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}/"
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if (
                    httpx.get(
                        base + "aerofs/api/pipelines", headers={"Authorization": f"token {token}"}, timeout=2
                    ).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                print((work / "server.log").read_text()[-2000:], file=sys.stderr)
                return 1
            time.sleep(0.3)
        sub: list[float] = []
        st: list[float] = []
        done: list[str] = []
        t0 = time.monotonic()
        until = t0 + args.seconds

        async def run() -> None:
            await asyncio.gather(
                *[
                    _client(base, token, str(src), str(work / "out"), until, sub, st, done)
                    for _ in range(args.clients)
                ]
            )

        asyncio.run(run())
        elapsed = time.monotonic() - t0
        ok = done.count("SUCCEEDED")
        print(
            f"server bench: {args.clients} clients, {args.seconds:g} s, {args.workers} workers, PostgreSQL + local pool"
        )
        print(
            f"  submit  n={len(sub):6d}  p50 {_pct(sub, 50):7.2f} ms  p95 {_pct(sub, 95):7.2f} ms  p99 {_pct(sub, 99):7.2f} ms  (target p99 < 20 ms)"
        )
        print(
            f"  status  n={len(st):6d}  p50 {_pct(st, 50):7.2f} ms  p95 {_pct(st, 95):7.2f} ms  p99 {_pct(st, 99):7.2f} ms  (target p99 < 10 ms)"
        )
        print(
            f"  jobs finished {len(done)} (succeeded {ok}) in {elapsed:.1f} s: {len(done) / elapsed:.1f} jobs/s end to end"
            f"; mean submit {statistics.mean(sub) * 1000 if sub else 0:.2f} ms"
        )
        return 0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

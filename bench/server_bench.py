"""`just bench server`: the job server under load on loopback.

PostgreSQL (AEROFS_TEST_DATABASE_URL, a fresh schema dropped afterwards) + Redis
(AEROFS_TEST_REDIS_URL: the server enqueues each job on RQ) + the server's pool of 2 worker processes,
which are RQ workers (``--queue local``: no Redis, the workers poll PostgreSQL, the embedded default);
N concurrent clients (default 100) for S seconds (default 30) each submit a tiny csv-to-parquet job,
then poll its status until it finishes (bounded loops). Prints submit and status
latency p50/p95/p99 (all requests, the clients' simultaneous first submits, and those started after the
simultaneous start), requests/s served and end-to-end jobs/s. Targets: submit p99 < 20 ms, status p99 < 10 ms.

The clients (``--clients-impl``): ``rust`` (the default) is bench/loadgen, built here on first use
(cargo, release, into bench/.cache/loadgen): the same workload as ``_client()`` below on one thread, at
a small fraction of the CPU, since the clients share the machine's cores with the server they measure and
real clients (browsers, kernels) do not. It writes each request's start and latency to a file this reads,
so every report below is the same code for both. ``python`` is the aiohttp client below, kept to compare
(with httpx's AsyncClient the client side itself added seconds to the submit tail at 100 clients, so it
measured the client). The first line of each report names the clients that ran.
``--profile FILE`` runs the server under cProfile; ``--py-spy FILE`` samples it with py-spy (the threads
holding the GIL, collapsed stacks) from the end of the warm-up to the end of the run, which is how the
cost per request was broken down in docs/operations.md; ``--poll`` changes the polling interval.
``--no-fast-reads`` starts the server without the status poll's fast path (to compare on the same code);
``--floor`` runs the same clients against a bare tornado app instead (this machine's floor for that load);
``--own-core`` gives the server one CPU to itself and runs everything else on the other (not the issue's
set-up, where all of it shares both cores: the set-up of a deployment whose job server has its own pod).

Each wait between a client's polls is drawn from 0.5-1.5 times ``--poll``, as AeroFS's own clients wait
(``aerofs_kernel.client.poll_pause``): pollers of one server at one fixed period fall into step, and then
every period the server gets every poll at once (a bare tornado app's p99 under 100 clients: 16 ms in
step, 2 ms with the draws). ``--lockstep`` makes every wait ``--poll`` exactly (the clients start together,
so they poll in step), the workload of this bench before 2026-11-30.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """user + system CPU seconds of each live process in ``pids`` (psutil)."""
    import psutil

    out = {}
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system
        except psutil.Error:
            pass
    return out


def _processes(server_pid: int, pg_port: int | None, redis_port: int | None = None) -> dict[str, list[int]]:
    """The processes whose CPU the bench reports: the Jupyter server, its worker children, the
    PostgreSQL server (postmaster on ``pg_port`` and its backends) and, with RQ, redis-server on
    ``redis_port``."""
    import psutil

    out: dict[str, list[int]] = {"server": [server_pid], "workers": [], "postgres": []}
    if redis_port:
        out["redis"] = []
    with contextlib.suppress(psutil.Error):
        out["workers"] = [c.pid for c in psutil.Process(server_pid).children(recursive=True)]
    for p in psutil.process_iter(["name", "cmdline"]):
        cmd = p.info["cmdline"] or []
        if (
            pg_port
            and p.info["name"] == "postgres"
            and "-p" in cmd
            and cmd[cmd.index("-p") + 1 :][:1] == [str(pg_port)]
        ):
            out["postgres"] = [p.pid] + [c.pid for c in p.children()]
        elif redis_port and p.info["name"] == "redis-server" and any(f":{redis_port}" in c for c in cmd):
            out["redis"] = [p.pid]
    return out


class _CoreSplit:
    """``--own-core``: the server alone on one CPU (the last this process may use), and everything else of
    the run on the others: the server's workers, PostgreSQL (its postmaster, so the backends it forks
    later too), Redis, the clients and this process. A team deployment's job server runs in a pod of its
    own, with its workers, PostgreSQL and Redis elsewhere; on one machine the default run has them all
    share both cores at equal priority but the workers' (nice 10), and the server's loop waits for a core
    ~30% of the time it runs (docs/operations.md, "The status tail is CPU sharing"). PostgreSQL's and
    Redis's affinity is put back when the run ends (backends forked during the run keep the other CPUs
    until they close: the run's own connections, which close with its server)."""

    def __init__(self) -> None:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise SystemExit(f"bench server --own-core: needs 2 CPUs or more, this process may use {cpus}")
        self.server, self.rest = {cpus[-1]}, set(cpus[:-1])
        self._before: dict[int, set[int]] = {}  # thread id -> its affinity before the run

    def describe(self) -> str:
        return (
            f" (--own-core: the server alone on CPU {min(self.server)}; its workers, PostgreSQL, Redis and the"
            f" clients on CPU {','.join(map(str, sorted(self.rest)))})"
        )

    def move(self, pid: int, *, restore: bool = False) -> None:
        """Every thread of ``pid`` onto the other CPUs (``restore``: put back by :meth:`undo`)."""
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except FileNotFoundError:
            return
        for tid in tids:
            try:
                if restore:
                    self._before.setdefault(tid, os.sched_getaffinity(tid))
                os.sched_setaffinity(tid, self.rest)
            except ProcessLookupError:
                pass
            except PermissionError:
                raise SystemExit(
                    f"bench server --own-core: not allowed to set the CPU affinity of pid {pid}"
                    " (run the bench as its owner or root)"
                ) from None

    def undo(self) -> None:
        for tid, cpus in self._before.items():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.sched_setaffinity(tid, cpus)


def _schedstat(tid: int) -> tuple[float, float]:
    """Seconds a thread has run and has waited runnable for a CPU (/proc/<tid>/schedstat; 0, 0 where the
    kernel does not keep it)."""
    try:
        with open(f"/proc/{tid}/schedstat") as f:
            ran, waited, _ = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return 0.0, 0.0
    return ran / 1e9, waited / 1e9


def _every(args: argparse.Namespace) -> str:
    """The clients' polling period as the reports' first lines give it."""
    return f"{args.poll:g} s" + (
        ", in lockstep" if args.lockstep else " on average, each wait 0.5-1.5 times it"
    )


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] * 1000


class _Burst:
    """The clients' first submits, all sent at once: their latencies, and the CPU the server and the
    bench's own clients had used by the time the last one was answered (how much of the burst is the
    server's work, how much the client process's: it builds 100 sessions and requests on one core)."""

    def __init__(self, n: int, server_pid: int) -> None:
        import psutil

        self.n = n
        self.lat: list[float] = []
        self.server = psutil.Process(server_pid)
        t = self.server.cpu_times()
        self.cpu0 = (t.user + t.system, time.process_time())
        self.cpu = (0.0, 0.0)

    def answered(self, seconds: float) -> None:
        """A first submit answered, to the Python clients (in this process)."""
        self.lat.append(seconds)
        if len(self.lat) == self.n:
            self.complete(time.process_time() - self.cpu0[1])

    def complete(self, clients_cpu: float) -> None:
        """The last first submit answered: the clients had used ``clients_cpu`` seconds since they started."""
        t = self.server.cpu_times()
        self.cpu = (t.user + t.system - self.cpu0[0], clients_cpu)

    def report(self) -> str:
        return (
            f"  first submits ({len(self.lat)} at once): p50 {_pct(self.lat, 50):7.2f} ms  p99"
            f" {_pct(self.lat, 99):7.2f} ms; CPU until the last answer: server {self.cpu[0] * 1000:.0f} ms"
            f" ({self.cpu[0] / max(1, self.n) * 1000:.2f} ms a submit), clients {self.cpu[1] * 1000:.0f} ms"
        )


async def _client(
    base: str,
    token: str,
    src: str,
    dst: str,
    until: float,
    sub: list,
    st: list,
    done: list,
    poll: float,
    status_only: bool = False,
    burst: _Burst | None = None,
    jitter: bool = True,
) -> None:
    import aiohttp

    headers = {"Authorization": f"token {token}"}
    # One session per client, as a browser or a kernel has; it keeps the server's login cookie.
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base_url=base, headers=headers, cookie_jar=jar) as c:
        while time.monotonic() < until:
            at, t0 = time.monotonic(), time.perf_counter()
            async with c.post(
                "aerofs/api/jobs",
                json={
                    "pipeline": "csv-to-parquet",
                    "params": {"src": src, "dst": f"{dst}/{uuid.uuid4().hex}"},
                },
            ) as r:
                body = await r.json()
            sub.append((at, time.perf_counter() - t0))
            if burst is not None:
                burst.answered(sub[-1][1])
                burst = None
            if r.status != 202:
                raise SystemExit(f"submit failed: {r.status} {body}")
            jid = body["id"]
            for _ in range(600):  # bounded: at most 600 polls per job
                at, t0 = time.monotonic(), time.perf_counter()
                async with c.get(f"aerofs/api/jobs/{jid}") as r:
                    if r.status != 200:
                        raise SystemExit(f"status failed: {r.status} {await r.text()}")
                    state = (await r.json())["state"]
                st.append((at, time.perf_counter() - t0))
                if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
                    done.append(state)
                    break
                if time.monotonic() > until + 30:
                    break
                await asyncio.sleep(_pause(poll, jitter))
            while status_only and time.monotonic() < until:  # the same job's status, over and over
                await asyncio.sleep(_pause(poll, jitter))
                at, t0 = time.monotonic(), time.perf_counter()
                async with c.get(f"aerofs/api/jobs/{jid}") as r:
                    if r.status != 200:
                        raise SystemExit(f"status failed: {r.status} {await r.text()}")
                    await r.json()
                st.append((at, time.perf_counter() - t0))


def _pause(poll: float, jitter: bool) -> float:
    """The wait before a client's next poll: as AeroFS's clients wait, or ``poll`` exactly (``--lockstep``)."""
    from aerofs_kernel.client import poll_pause

    return poll_pause(poll) if jitter else poll


async def _floor_client(base: str, path: str, until: float, lat: list, poll: float, jitter: bool) -> None:
    """The ``--floor`` client: a GET of one path every ``poll`` s, no auth, nothing else."""
    import aiohttp

    async with aiohttp.ClientSession(base_url=base) as c:
        while time.monotonic() < until:
            at, t = time.monotonic(), time.perf_counter()
            async with c.get(path) as r:
                await r.json()
            lat.append((at, time.perf_counter() - t))
            await asyncio.sleep(_pause(poll, jitter))


@dataclasses.dataclass
class _Run:
    """What the clients did, whichever ran them: when they started (``time.monotonic()``), how long they
    ran, each submit's and status poll's (start on that clock, latency in s), the finished jobs' states,
    and the clients' CPU seconds (user + system)."""

    t0: float
    elapsed: float
    sub: list[tuple[float, float]]
    st: list[tuple[float, float]]
    done: list[str]
    cpu: float


@dataclasses.dataclass
class _Load:
    """The workload, for either implementation: ``floor`` (a path) for the --floor clients, else the job
    clients with ``token``, ``src`` and ``dst``; ``on_start(t0)`` is called as the clients start."""

    base: str
    clients: int
    seconds: float
    poll: float
    token: str = ""
    src: str = ""
    dst: str = ""
    status_only: bool = False
    jitter: bool = True
    floor: str = ""
    burst: _Burst | None = None
    on_start: Callable[[float], None] = lambda t0: None


def _python_clients(load: _Load) -> _Run:
    """The aiohttp clients, in this process (--clients-impl python)."""
    sub: list[tuple[float, float]] = []
    st: list[tuple[float, float]] = []
    done: list[str] = []
    self0, t0 = time.process_time(), time.monotonic()
    until = t0 + load.seconds
    load.on_start(t0)

    async def run() -> None:
        if load.floor:
            clients = [
                _floor_client(load.base, load.floor, until, st, load.poll, load.jitter)
                for _ in range(load.clients)
            ]
        else:
            clients = [
                _client(
                    load.base,
                    load.token,
                    load.src,
                    load.dst,
                    until,
                    sub,
                    st,
                    done,
                    load.poll,
                    load.status_only,
                    load.burst,
                    load.jitter,
                )
                for _ in range(load.clients)
            ]
        await asyncio.gather(*clients)

    asyncio.run(run())
    return _Run(t0, time.monotonic() - t0, sub, st, done, time.process_time() - self0)


_LOADGEN = Path(__file__).resolve().parent / "loadgen"


def _build_loadgen() -> str:
    """Builds bench/loadgen (cargo, release, its own target dir; a no-op when up to date) and returns the
    executable. Called before the server starts, so a build never overlaps a measurement."""
    import shutil

    if shutil.which("cargo") is None:
        raise SystemExit(
            "bench server: the Rust clients (bench/loadgen) need cargo on PATH; or --clients-impl python"
        )
    target = _LOADGEN.parent / ".cache" / "loadgen"
    cmd = ["cargo", "build", "--release", "-q", "--manifest-path", str(_LOADGEN / "Cargo.toml")]
    r = subprocess.run(
        cmd, env={**os.environ, "CARGO_TARGET_DIR": str(target)}, capture_output=True, text=True
    )
    if r.returncode != 0:
        raise SystemExit(f"bench server: building bench/loadgen failed ({' '.join(cmd)}):\n{r.stderr}")
    return str(target / "release" / "aerofs-loadgen")


def _rust_clients(load: _Load, exe: str) -> _Run:
    """bench/loadgen (--clients-impl rust): its stdout says when it started, when the first submits were
    all answered and when it ended (with its CPU); its records file holds every request (see its main.rs)."""
    with tempfile.TemporaryDirectory(prefix="aerofs-loadgen-") as tmp:
        out = Path(tmp) / "records"
        cmd = [exe, "--base", load.base, "--out", str(out), "--clients", str(load.clients)]
        cmd += ["--seconds", str(load.seconds), "--poll", str(load.poll)]
        cmd += ["--jitter"] if load.jitter else []
        if load.floor:
            cmd += ["--floor", load.floor]
        else:
            cmd += ["--token", load.token, "--src", load.src, "--dst", load.dst]
            cmd += ["--status-only"] if load.status_only else []
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        t0 = end = cpu = None
        for ln in proc.stdout:
            kind, *vals = ln.split()
            if kind == "start":
                t0 = float(vals[0])
                load.on_start(t0)
            elif kind == "burst" and load.burst is not None:
                load.burst.complete(float(vals[0]))
            elif kind == "end":
                end, cpu = float(vals[0]), float(vals[1])
        if proc.wait() != 0 or t0 is None or end is None or cpu is None:
            raise SystemExit(
                f"bench server: the load generator failed (exit {proc.returncode}; its error above)"
            )
        sub: list[tuple[float, float]] = []
        st: list[tuple[float, float]] = []
        done: list[str] = []
        for ln in out.read_text().splitlines():
            kind, *vals = ln.split()
            if kind == "submit":
                sub.append((float(vals[0]), float(vals[1])))
                if vals[2] == "1" and load.burst is not None:
                    load.burst.lat.append(float(vals[1]))
            elif kind == "status":
                st.append((float(vals[0]), float(vals[1])))
            elif kind == "done":
                done.append(vals[0])
    return _Run(t0, end - t0, sub, st, done, cpu)


def _clients(impl: str) -> Callable[[_Load], _Run]:
    """The client implementation asked for, ready to run (the Rust one built first)."""
    if impl == "python":
        return _python_clients
    exe = _build_loadgen()
    return lambda load: _rust_clients(load, exe)


_CLIENTS_LABEL = {"rust": "rust clients: bench/loadgen, one thread", "python": "python clients: aiohttp"}


def _tail_report(reqs: list[tuple[float, float]], cut: float, stall_log: Path, slow_ms: float = 50) -> None:
    """Whether the slow requests (after the warm-up) are stalls or queueing: how many were in flight
    during a server GC pause or event-loop lag of 10 ms or more (the server's ``jobserver.stalls`` log,
    same monotonic clock), and how the pauses add up by GC generation."""
    stalls: list[tuple[float, str, str, float]] = []
    with contextlib.suppress(OSError):
        for ln in stall_log.read_text().splitlines():
            at, kind, gen, ms = ln.split()
            stalls.append((float(at), kind, gen, float(ms)))
    reqs = [(t, x) for t, x in reqs if t >= cut]
    slow = [(t, x) for t, x in reqs if x * 1000 > slow_ms]
    big = [(a, a + ms / 1000) for a, _, _, ms in stalls if ms >= 10 and a >= cut]
    hit = sum(1 for t, x in slow if any(a < t + x and t < b for a, b in big))
    print(
        f"  tail: {len(slow)} of {len(reqs)} requests after the warm-up took > {slow_ms:g} ms;"
        f" {hit} of them were in flight during one of the server's {len(big)} pauses >= 10 ms"
    )
    gens: dict[str, list[float]] = {}
    for a, kind, gen, ms in stalls:
        if a >= cut:
            gens.setdefault(f"gc gen {gen}" if kind == "gc" else "loop lag", []).append(ms)
    for k, v in sorted(gens.items()):
        print(f"    {k}: {len(v)} over the threshold, {sum(v):.0f} ms in all, max {max(v):.1f} ms")


# The floor (--floor): a bare tornado app with one RequestHandler answering a fixed JSON body the size of a
# job's status, no database, no jupyter_server: what 100 polling clients cost on this machine by themselves.
_FLOOR_SERVER = r"""
import asyncio, json, sys
import tornado.web
BODY = json.dumps({"id": "0" * 32, "state": "RUNNING", "params": {"src": "/tmp/in.csv", "dst": "/tmp/o/" + "1" * 32},
                   "pad": "x" * 250})
class Job(tornado.web.RequestHandler):
    def get(self, job_id):
        self.set_header("Content-Type", "application/json")
        self.finish(BODY)
async def main():
    tornado.web.Application([(r"/aerofs/api/jobs/([0-9a-f]{32})", Job)]).listen(int(sys.argv[1]), "127.0.0.1")
    await asyncio.Event().wait()
asyncio.run(main())
"""


def _floor(args: argparse.Namespace) -> int:
    import psutil

    run_clients = _clients(args.clients_impl)
    port = _port()
    proc = subprocess.Popen([sys.executable, "-c", _FLOOR_SERVER, str(port)], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                return 1
            time.sleep(0.1)
        server = psutil.Process(proc.pid)
        c0 = server.cpu_times()
        load = _Load(
            f"http://127.0.0.1:{port}/",
            args.clients,
            args.seconds,
            args.poll,
            jitter=not args.lockstep,
            floor="aerofs/api/jobs/" + "0" * 32,
        )
        run = run_clients(load)
        c1, lat = server.cpu_times(), run.st
        cpu = c1.user + c1.system - c0.user - c0.system
        xs = [x for at, x in lat if at >= run.t0 + args.warmup]
        n = max(1, len(lat))
        print(
            f"floor (bare tornado, no database), {_CLIENTS_LABEL[args.clients_impl]}; {args.clients} clients (a GET"
            f" every {_every(args)}), {args.seconds:g} s; after the first {args.warmup:g} s: p50 {_pct(xs, 50):.2f} ms"
            f"  p95 {_pct(xs, 95):.2f} ms  p99 {_pct(xs, 99):.2f} ms; {len(lat) / run.elapsed:.0f} requests/s; server"
            f" {cpu:.1f} s CPU ({cpu / n * 1000:.3f} ms a request), clients {run.cpu:.1f} s"
            f" ({run.cpu / n * 1000:.3f} ms a request); load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        return 0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def _server_side(base: str, token: str) -> None:
    """The status polls' latency as the server measured it (jupyter_server's request histogram, from
    the request's headers parsed to its answer written; the whole run): what share of the tail the
    server's own, against the clients' latency above (which adds the sockets and the client process)."""
    import httpx

    try:
        text = httpx.get(base + "metrics", headers={"Authorization": f"token {token}"}, timeout=10).text
    except httpx.HTTPError:
        return
    buckets: dict[float, float] = {}
    for ln in text.splitlines():
        if (
            ln.startswith("http_request_duration_seconds_bucket{")
            and 'handler="jobserver.handlers.api.JobHandler"' in ln
            and 'method="GET"' in ln
            and 'status_code="200"' in ln
        ):
            le = ln.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets[bound] = buckets.get(bound, 0.0) + float(ln.rsplit(" ", 1)[1])
    total = buckets.get(float("inf"), 0.0)
    if total:
        shares = ", ".join(
            f"> {b * 1000:g} ms {100 * (total - n) / total:.2f}%"
            for b, n in sorted(buckets.items())
            if b in (0.005, 0.01, 0.025, 0.05)
        )
        print(f"  status polls as the server timed them (whole run, {total:.0f}): {shares}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench server")
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--poll", type=float, default=0.1, help="seconds between a client's status polls")
    ap.add_argument(
        "--lockstep",
        action="store_true",
        help="every wait between polls exactly --poll (the clients start together: they poll in step); by "
        "default each wait is drawn from 0.5-1.5 times it, as AeroFS's own clients wait",
    )
    ap.add_argument(
        "--status-only",
        action="store_true",
        help="not the benchmark's workload: each client submits one job and then polls its status until the "
        "end, to compare the status path's cost (server CPU per request) between versions",
    )
    ap.add_argument(
        "--floor",
        action="store_true",
        help="not the job server: a bare tornado app answering a fixed status-sized JSON body under the same "
        "clients (--clients, --poll, --seconds), the latency and CPU floor of this machine for that load",
    )
    ap.add_argument(
        "--no-fast-reads",
        dest="fast_reads",
        action="store_false",
        help="the server without the status poll's fast path (AEROFS_FAST_READS=0: every poll through "
        "JobHandler), to compare the two on the same code",
    )
    ap.add_argument(
        "--clients-impl",
        choices=("rust", "python"),
        default="rust",
        help="the clients: bench/loadgen (Rust, one thread, built on first use) or the aiohttp clients in "
        "this process (the workload is the same; they differ in how much of the machine they take)",
    )
    ap.add_argument("--database-url", default=os.environ.get("AEROFS_TEST_DATABASE_URL"))
    ap.add_argument(
        "--queue",
        choices=("rq", "local"),
        default="rq",
        help="how jobs reach the workers: rq (the issue's set-up: the server enqueues on RQ in Redis, "
        "--redis-url, and its pool of workers are RQ workers) or local (no Redis: the pool's workers poll "
        "PostgreSQL, woken through a pipe by the server, the embedded default with PostgreSQL)",
    )
    ap.add_argument("--redis-url", default=os.environ.get("AEROFS_TEST_REDIS_URL"))
    ap.add_argument(
        "--own-core",
        action="store_true",
        help="the server alone on one CPU, its workers, PostgreSQL, Redis and the clients on the others (a "
        "deployment where the job server has a core of its own); not the default set-up, where all share",
    )
    ap.add_argument("--profile", help="run the server under cProfile and write its stats to this file")
    ap.add_argument(
        "--py-spy",
        dest="py_spy",
        help="sample the server with py-spy after the warm-up (GIL holders, collapsed stacks) into this file",
    )
    ap.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="seconds at the start (all clients submitting at once, the pool filling) also reported apart",
    )
    args = ap.parse_args(argv or [])
    if args.floor:
        return _floor(args)
    if not args.database_url:
        print(
            'bench server: set AEROFS_TEST_DATABASE_URL (eval "$(scripts/services.sh env)")', file=sys.stderr
        )
        return 2
    if args.queue == "rq" and not args.redis_url:
        print(
            'bench server: set AEROFS_TEST_REDIS_URL (eval "$(scripts/services.sh env)"), or --queue local',
            file=sys.stderr,
        )
        return 2
    import psycopg

    run_clients = _clients(args.clients_impl)  # built before the server starts: no build during a run
    split = _CoreSplit() if args.own_core else None
    if split is not None:  # this process and the clients it starts: off the server's CPU (put back after,
        split.move(os.getpid(), restore=True)  # for bench/run.py's next benchmark in this process)
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
        # The server logs its GC pauses and event-loop lag here (jobserver.stalls): see _tail_report.
        "AEROFS_STALL_LOG": str(work / "stalls.log"),
        "AEROFS_FAST_READS": "1" if args.fast_reads else "0",
    }
    env.pop("AEROFS_REDIS_URL", None)
    if args.queue == "rq":
        # Team mode on one machine: the server enqueues on RQ and its pool's workers are RQ workers
        # (`aerofs worker` with the Redis URL), niced as the pool's are (jobserver.priority).
        env["AEROFS_REDIS_URL"] = args.redis_url
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
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, split.server)) if split is not None else None,
    )
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
        from urllib.parse import urlparse

        import psutil

        redis_port = urlparse(args.redis_url).port if args.queue == "rq" else None
        procs = _processes(proc.pid, urlparse(args.database_url).port, redis_port)
        if split is not None:  # the workers were started on the server's CPU: moved off it, and the services
            for pid in procs["workers"]:
                split.move(pid)
            for pid in procs["postgres"] + procs.get("redis", []):
                split.move(pid, restore=True)
        cpu0 = {k: _cpu_seconds(v) for k, v in procs.items()}
        # The server's user and system time apart: system time is the kernel's share of a request
        # (socket reads and writes, epoll, waking the store threads), which no Python change touches.
        srv0 = psutil.Process(proc.pid).cpu_times()
        # The loop's thread (the server's main thread): how long it ran, and how long it was ready to run
        # but waited for a CPU (docs/operations.md, "The status tail is CPU sharing").
        loop0 = _schedstat(proc.pid)
        sys0 = psutil.cpu_times()
        burst = _Burst(args.clients, proc.pid)
        spies: list[subprocess.Popen[bytes]] = []
        timers: list[threading.Timer] = []

        def spy(until: float) -> None:
            import shutil

            exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            cmd = [exe, "record", "--pid", str(proc.pid), "--gil", "--nonblocking", "--rate", "200"]
            cmd += ["--format", "raw", "-o", os.path.abspath(args.py_spy)]
            cmd += ["--duration", str(max(1, int(until - time.monotonic())))]
            spies.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL))

        def on_start(t0: float) -> None:
            if args.py_spy:  # py-spy from the end of the warm-up to the end of the run
                timers.append(threading.Timer(t0 + args.warmup - time.monotonic(), spy, (t0 + args.seconds,)))
                timers[-1].start()

        load = _Load(
            base,
            args.clients,
            args.seconds,
            args.poll,
            token=token,
            src=str(src),
            dst=str(work / "out"),
            status_only=args.status_only,
            jitter=not args.lockstep,
            burst=burst,
            on_start=on_start,
        )
        run = run_clients(load)
        t0, elapsed, sub, st, done = run.t0, run.elapsed, run.sub, run.st, run.done
        for timer in timers:
            timer.cancel()
            timer.join()
        for p in spies:
            p.wait(60)
        # CPU spent while the clients ran (backends that closed in between are not counted).
        procs = _processes(proc.pid, urlparse(args.database_url).port, redis_port)
        cpu1 = {k: _cpu_seconds(v) for k, v in procs.items()}
        srv1 = psutil.Process(proc.pid).cpu_times()
        loop1 = _schedstat(proc.pid)
        cpu = {k: sum(t - cpu0[k].get(pid, 0.0) for pid, t in cpu1[k].items()) for k in cpu1}
        cpu["clients (bench)"] = run.cpu
        sys1 = psutil.cpu_times()
        busy = sum(getattr(sys1, f) - getattr(sys0, f) for f in ("user", "system", "nice", "irq", "softirq"))
        ok = done.count("SUCCEEDED")
        print(
            f"server bench, {_CLIENTS_LABEL[args.clients_impl]}; {args.clients} clients (status every"
            f" {_every(args)}), {args.seconds:g} s, {args.workers} workers, PostgreSQL + "
            + ("Redis (RQ)" if args.queue == "rq" else "local pool (no Redis)")
            + (" (--status-only: one job per client, then status polls)" if args.status_only else "")
            + ("" if args.fast_reads else " (--no-fast-reads)")
            + (split.describe() if split is not None else "")
        )

        def line(name: str, xs: list[float], target: str) -> str:
            return (
                f"  {name:<7} n={len(xs):6d}  p50 {_pct(xs, 50):7.2f} ms  p95 {_pct(xs, 95):7.2f} ms"
                f"  p99 {_pct(xs, 99):7.2f} ms  (target p99 < {target})"
            )

        cut = t0 + args.warmup
        sub_all, st_all = [x for _, x in sub], [x for _, x in st]
        print(line("submit", sub_all, "20 ms"))
        print(line("status", st_all, "10 ms"))
        print(burst.report())
        print(f"  requests started after the first {args.warmup:g} s (the simultaneous start excluded):")
        print(line("submit", [x for t, x in sub if t >= cut], "20 ms"))
        print(line("status", [x for t, x in st if t >= cut], "10 ms"))
        print(
            f"  jobs finished {len(done)} (succeeded {ok}) in {elapsed:.1f} s: {len(done) / elapsed:.1f} jobs/s end to end"
            f"; {(len(sub) + len(st)) / elapsed:.0f} requests/s served"
            f"; mean submit {statistics.mean(sub_all) * 1000 if sub else 0:.2f} ms"
        )
        n = max(1, len(sub) + len(st))
        print(
            f"  CPU while the clients ran ({psutil.cpu_count()} cores, {busy:.1f} core-s busy of"
            f" {elapsed * (psutil.cpu_count() or 1):.1f}): "
            + ", ".join(f"{k} {v:.1f} s" for k, v in cpu.items())
            # What else ran on the machine meanwhile (other people's work on a shared box).
            + f", everything else {max(0.0, busy - sum(cpu.values())):.1f} s"
            + f"; server {cpu['server'] / n * 1000:.2f} ms, postgres {cpu['postgres'] / n * 1000:.2f} ms"
            f" and clients {cpu['clients (bench)'] / n * 1000:.2f} ms per request"
        )
        print(
            f"  server: user {srv1.user - srv0.user:.1f} s, system {srv1.system - srv0.system:.1f} s"
            f" ({(srv1.user - srv0.user) / n * 1000:.2f} + {(srv1.system - srv0.system) / n * 1000:.2f} ms"
            " a request)"
        )
        ran, waited = loop1[0] - loop0[0], loop1[1] - loop0[1]
        print(
            f"  server's loop thread: ran {ran:.1f} s, waited {waited:.1f} s ready to run for a CPU"
            f" ({100 * waited / ran if ran else 0:.0f}% of its run time)"
        )
        print(f"  load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        _tail_report(sub + st, cut, work / "stalls.log")
        _server_side(base, token)
        return 0
    finally:
        if split is not None:
            split.undo()
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

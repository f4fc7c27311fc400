"""The server bench's two client implementations (bench/server_bench.py ``--clients-impl rust|python``) run
the same workload: against a stand-in for the job API, each client submits jobs with a new dst each, sends
the token and the cookie the server set back, polls each job until it is terminal, and the records that
every report is computed from come out alike. A failed request stops the run with the server's answer.
And ``--own-core``'s CPU split: the server keeps one CPU to itself, the other processes of the run are moved
off it thread by thread, and PostgreSQL's and Redis's affinity is put back afterwards."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.web

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "t0ken"
POLLS_TO_FINISH = 3  # a job reads RUNNING twice, then SUCCEEDED


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("server_bench", ROOT / "bench" / "server_bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bench = _bench()


class _Api:
    """What the stand-in server saw."""

    def __init__(self, fail_submit: bool = False, token: bool = True) -> None:
        self.fail_submit, self.token = fail_submit, token
        self.jobs: dict[str, dict[str, Any]] = {}  # id -> {"params", "polls"}
        self.cookies: list[str | None] = []  # the login cookie each request came with
        self.logins = 0
        self.lock = threading.Lock()


def _app(api: _Api) -> tornado.web.Application:
    class Base(tornado.web.RequestHandler):
        token_required = api.token

        def prepare(self) -> None:
            if self.token_required and self.request.headers.get("Authorization") != f"token {TOKEN}":
                raise tornado.web.HTTPError(403)
            cookie = self.get_cookie("login")
            with api.lock:
                api.cookies.append(cookie)
                if cookie is None:  # as jupyter_server does for a token caller: a login cookie
                    api.logins += 1
                    self.set_cookie("login", f"user{api.logins}")

    class Jobs(Base):
        def post(self) -> None:
            if api.fail_submit:
                self.set_status(500)
                self.finish({"message": "boom"})
                return
            body = json.loads(self.request.body)
            assert self.request.headers["Content-Type"] == "application/json"
            jid = uuid.uuid4().hex
            with api.lock:
                api.jobs[jid] = {"body": body, "polls": 0}
            self.set_status(202)
            self.finish({"id": jid, "state": "PENDING"})

    class Job(Base):
        def get(self, jid: str) -> None:
            with api.lock:
                job = api.jobs[jid]
                job["polls"] += 1
                n = job["polls"]
            self.finish({"id": jid, "state": "SUCCEEDED" if n >= POLLS_TO_FINISH else "RUNNING"})

    return tornado.web.Application(
        [(r"/base/aerofs/api/jobs", Jobs), (r"/base/aerofs/api/jobs/([0-9a-f]{32})", Job)]
    )


@pytest.fixture
def serve() -> Iterator[Any]:
    """Starts the stand-in on a loop of its own thread (the clients run their own loop or process)."""
    started: list[tuple[asyncio.AbstractEventLoop, threading.Thread]] = []

    def start(api: _Api) -> str:
        port = bench._port()
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            _app(api).listen(port, "127.0.0.1")
            ready.set()
            loop.run_forever()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        ready.wait(10)
        started.append((loop, t))
        return f"http://127.0.0.1:{port}/base/"

    yield start
    for loop, t in started:
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)


def _run(impl: str, load: Any) -> Any:
    return bench._clients(impl)(load)


@pytest.mark.parametrize("impl", ["rust", "python"])
def test_same_workload(impl: str, serve: Any, tmp_path: Path) -> None:
    api = _Api()
    base = serve(api)
    clients = 4
    burst = bench._Burst(clients, os.getpid())
    starts: list[float] = []
    load = bench._Load(
        base,
        clients,
        1.0,
        0.02,
        token=TOKEN,
        src="/data/in.csv",
        dst=str(tmp_path / "out"),
        burst=burst,
        on_start=starts.append,
    )
    run = _run(impl, load)

    assert starts == [run.t0]
    # Every job submitted was polled until it finished, then the next one was submitted.
    assert len(run.sub) == len(api.jobs) == len(run.done) >= clients
    assert run.done == ["SUCCEEDED"] * len(run.done)
    assert len(run.st) == POLLS_TO_FINISH * len(run.sub)
    assert all(j["polls"] == POLLS_TO_FINISH for j in api.jobs.values())
    # The bench's JSON, a new dst per job under the given folder.
    bodies = [j["body"] for j in api.jobs.values()]
    assert {b["pipeline"] for b in bodies} == {"csv-to-parquet"}
    assert {b["params"]["src"] for b in bodies} == {"/data/in.csv"}
    dsts = [b["params"]["dst"] for b in bodies]
    assert len(set(dsts)) == len(dsts)
    assert all(d.startswith(str(tmp_path / "out") + "/") for d in dsts)
    # One login per client: each client's first request set the cookie, every later one sent it back.
    assert api.logins == clients
    assert api.cookies.count(None) == clients
    # Requests on the monotonic clock from the start; the first submits are the burst.
    assert all(run.t0 <= at <= run.t0 + run.elapsed and 0 < lat < run.elapsed for at, lat in run.sub + run.st)
    assert len(burst.lat) == clients and burst.cpu != (0.0, 0.0)
    assert 0 <= run.cpu < run.elapsed * 2


@pytest.mark.parametrize("impl", ["rust", "python"])
def test_floor_mode(impl: str, serve: Any) -> None:
    """--floor: no token, no submits, each client GETs the one path every poll until the end."""
    api = _Api(token=False)
    base = serve(api)
    with api.lock:
        api.jobs["0" * 32] = {"body": None, "polls": 0}
    run = _run(impl, bench._Load(base, 2, 0.5, 0.02, floor="aerofs/api/jobs/" + "0" * 32))
    assert run.sub == [] and run.done == []
    assert len(run.st) == api.jobs["0" * 32]["polls"] >= 2
    assert all(run.t0 <= at <= run.t0 + run.elapsed for at, _ in run.st)


def test_failed_submit_stops_the_run(serve: Any, capfd: pytest.CaptureFixture[str]) -> None:
    base = serve(_Api(fail_submit=True))
    load = bench._Load(base, 3, 5.0, 0.02, token=TOKEN, src="/in.csv", dst="/out")
    with pytest.raises(SystemExit, match="load generator failed"):
        _run("rust", load)
    assert 'submit failed: 500 {"message": "boom"}' in capfd.readouterr().err


@pytest.mark.parametrize("impl", ["rust", "python"])
@pytest.mark.parametrize("jitter", [True, False])
def test_poll_waits(impl: str, jitter: bool, serve: Any) -> None:
    """Each wait between polls is drawn from 0.5-1.5 times --poll (AeroFS's clients' waits), or with
    --lockstep is --poll exactly: the gaps between one client's polls (wait + answer) show which."""
    api = _Api(token=False)
    base = serve(api)
    with api.lock:
        api.jobs["0" * 32] = {"body": None, "polls": 0}
    poll = 0.1
    run = _run(impl, bench._Load(base, 1, 2.5, poll, jitter=jitter, floor="aerofs/api/jobs/" + "0" * 32))
    starts = sorted(at for at, _ in run.st)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) >= 10
    assert min(gaps) >= (0.5 if jitter else 1.0) * poll * 0.999  # a sleep is never shorter than asked
    # ~20 draws: that none is below 0.8 of the period has a chance of 0.7**20 (< 0.1%).
    assert any(g < 0.9 * poll for g in gaps) == jitter


# --own-core
_cores = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs or more"
)

# A process with a second thread, both alive until stdin closes.
_TWO_THREADS = (
    "import sys, threading\n"
    "threading.Thread(target=sys.stdin.read, daemon=True).start()\n"
    "print('ready', flush=True)\n"
    "sys.stdin.read()\n"
)


def _threads(pid: int) -> list[int]:
    return [int(t) for t in os.listdir(f"/proc/{pid}/task")]


def _two_threads() -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _TWO_THREADS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    # Thread.start() returns once the thread runs: both exist by the time "ready" is printed.
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    assert len(_threads(proc.pid)) == 2
    return proc


@_cores
def test_split_leaves_the_server_a_cpu_of_its_own() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    split = bench._CoreSplit()
    assert split.server == {cpus[-1]}
    assert split.rest == set(cpus[:-1])
    assert split.server.isdisjoint(split.rest)
    assert f"the server alone on CPU {cpus[-1]}" in split.describe()


@_cores
def test_move_covers_every_thread_and_undo_puts_back_what_was() -> None:
    split = bench._CoreSplit()
    service, worker = _two_threads(), _two_threads()
    try:
        before = {tid: os.sched_getaffinity(tid) for tid in _threads(service.pid)}
        split.move(service.pid, restore=True)  # as PostgreSQL and Redis
        split.move(worker.pid)  # as the server's workers: not put back
        for pid in (service.pid, worker.pid):
            assert {tid: os.sched_getaffinity(tid) for tid in _threads(pid)} == dict.fromkeys(
                _threads(pid), split.rest
            )
        split.undo()
        assert {tid: os.sched_getaffinity(tid) for tid in _threads(service.pid)} == before
        assert all(os.sched_getaffinity(tid) == split.rest for tid in _threads(worker.pid))
    finally:
        for p in (service, worker):
            p.communicate("")


@_cores
def test_move_of_a_process_gone_is_a_no_op() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    split = bench._CoreSplit()
    split.move(proc.pid, restore=True)
    split.undo()
    assert split._before == {}

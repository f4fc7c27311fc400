"""Restarts mid-run, with real processes: Redis (AOF on, killed and started again), PostgreSQL
(restarted under running tasks) and the job server itself. No job is lost, every job ends SUCCEEDED
with its outputs, and no task is left RUNNING."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import HERE, RedisServer, Workers, free_port, jp_sync, submit_job, user, wait_for

from jobserver.queue import open_queue
from jobserver.store import open_store

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def submit_all(store: Any, queue: Any, tmp_path: Path, n: int, seconds: float = 1.0) -> list[str]:
    """What ``POST jobs`` does: the job in the store, then its plan message (a failed send is left to
    the sweeper, as in the server)."""
    ids = []
    for i in range(n):
        job, _ = store.create_job(
            "sleepy", {"src": [f"a{i}", f"b{i}"], "dst": str(tmp_path / f"o{i}"), "seconds": seconds}, "alice"
        )
        ids.append(job["id"])
        with contextlib.suppress(Exception):
            queue.enqueue(store.next_work(job_id=job["id"]))
    return ids


def all_done(store: Any, ids: list[str]) -> list[str] | None:
    try:
        states = [store.get_job(i)["state"] for i in ids]
    except Exception:  # the database is restarting
        return None
    return states if all(s in ("SUCCEEDED", "FAILED", "CANCELLED") for s in states) else None


def check_outputs(store: Any, ids: list[str], tmp_path: Path) -> None:
    for i, jid in enumerate(ids):
        assert (tmp_path / f"o{i}" / "all.txt").read_text().count("\n") == 2
        assert {t["state"] for t in store.tasks(jid)} == {"SUCCEEDED"}
        states = [
            e["data"]["state"] for e in store.events_since(0) if e["job_id"] == jid and e["type"] == "state"
        ]
        assert states[0] == "PENDING" and states[-1] == "SUCCEEDED" and states.count("SUCCEEDED") == 1


def test_redis_restart_mid_run(pg_url: str, tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    store = open_store(pg_url)
    store.migrate()
    queue = open_queue(redis.url)
    workers = Workers(pg_url, redis.url, tmp_path / "w").start(2)
    try:
        ids = submit_all(store, queue, tmp_path, 4)
        wait_for(lambda: store.get_job(ids[0])["state"] == "RUNNING", 60, "a running job")
        redis.kill()  # a crash: AOF (everysec) keeps what was fsynced
        more = submit_all(store, queue, tmp_path / "down", 2)  # submitted while Redis is down
        time.sleep(1.0)
        redis.start()
        states = wait_for(lambda: all_done(store, ids + more), 120, "every job to finish")
        assert states == ["SUCCEEDED"] * 6, states
        check_outputs(store, ids, tmp_path)
        check_outputs(store, more, tmp_path / "down")
    finally:
        workers.stop()
        queue.close()
        store.close()
        redis.stop()


class PostgresServer:
    """A private PostgreSQL cluster on a free port (initdb runs as ``postgres`` when we are root)."""

    def __init__(self) -> None:
        bins = [os.environ.get("AEROFS_TEST_PG_BIN", ""), *sorted(glob.glob("/usr/lib/postgresql/*/bin"))]
        self.bin = next((b for b in reversed(bins) if b and os.path.exists(os.path.join(b, "initdb"))), "")
        if not self.bin:
            pytest.skip("PostgreSQL binaries not found")
        self.dir = tempfile.mkdtemp(prefix="aerofs-pg-")
        self.port = free_port()
        self.root = os.geteuid() == 0
        if self.root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", f"{self.dir}/data", "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        cmd = [os.path.join(self.bin, tool), *args]
        if self.root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/log", "-w", "-o", opts, "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", f"{self.dir}/data", "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def test_postgres_restart_mid_run(tmp_path: Path) -> None:
    if not os.environ.get("AEROFS_TEST_DATABASE_URL"):
        pytest.skip("integration services not configured")
    pg = PostgresServer()
    redis = RedisServer(tmp_path / "redis").start()
    try:
        pg.start()
        store = open_store(pg.url)
        store.migrate()
        queue = open_queue(redis.url)
        workers = Workers(pg.url, redis.url, tmp_path / "w").start(2)
        try:
            ids = submit_all(store, queue, tmp_path, 4, seconds=1.5)
            wait_for(lambda: store.get_job(ids[0])["state"] == "RUNNING", 60, "a running job")
            pg.stop()  # fast shutdown: every connection of the server and the workers is cut
            time.sleep(2.0)
            pg.start()
            states = wait_for(lambda: all_done(store, ids), 120, "every job to finish", every=0.3)
            assert states == ["SUCCEEDED"] * 4, states
            check_outputs(store, ids, tmp_path)
        finally:
            workers.stop()
            queue.close()
            store.close()
    finally:
        redis.stop()
        pg.destroy()


def start_jobserver(
    pg_url: str, redis_url: str, root: Path, port: int, token: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent.parent)]),
        "AEROFS_DATABASE_URL": pg_url,
        "AEROFS_REDIS_URL": redis_url,
    }
    cmd = [
        sys.executable, "-m", "jobserver", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
        "--AerofsApp.local_pool=False", "--AerofsApp.runner_module=fake_runner", "--AerofsApp.stale_after=1.5",
    ]  # fmt: skip
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(root / f"server-{port}.log", "ab")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_job_server_restart_mid_run(pg_url: str, redis_server: Any, tmp_path: Path) -> None:
    """The job does not depend on the server that took it: killed mid-run, the job still finishes on
    the workers, and the next server reads it back SUCCEEDED."""
    token = "t0ken-for-tests"
    headers = {"Authorization": f"token {token}"}
    workers = Workers(pg_url, redis_server.url, tmp_path / "w").start(1)
    store = open_store(pg_url)
    procs = []
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}/aerofs/api/"
        procs.append(start_jobserver(pg_url, redis_server.url, tmp_path, port, token))
        wait_for(lambda: _get(base + "pipelines", headers) == 200, 90, "the job server")
        body = {
            "pipeline": "sleepy",
            "params": {"src": ["s1", "s2"], "dst": str(tmp_path / "o"), "seconds": 2},
        }
        r = httpx.post(base + "jobs", json=body, headers=headers, timeout=30)
        assert r.status_code == 202, r.text
        jid = r.json()["id"]
        wait_for(lambda: store.get_job(jid)["state"] == "RUNNING", 60, "the job to run")
        os.killpg(procs[0].pid, 9)
        procs[0].wait(10)
        job = wait_for(
            lambda: (j := store.get_job(jid))["state"] in ("SUCCEEDED", "FAILED") and j, 60, "the job to end"
        )
        assert job["state"] == "SUCCEEDED" and job["attempts"] == 1, job
        port = free_port()
        base = f"http://127.0.0.1:{port}/aerofs/api/"
        procs.append(start_jobserver(pg_url, redis_server.url, tmp_path, port, token))
        wait_for(lambda: _get(base + "pipelines", headers) == 200, 90, "the job server again")
        again = httpx.get(base + f"jobs/{jid}", headers=headers, timeout=30).json()
        assert again["state"] == "SUCCEEDED" and again["summary"] == {"files": 2}
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, 9)
            p.wait(10)
        workers.stop()
        store.close()


def _get(url: str, headers: dict[str, str]) -> int:
    try:
        return httpx.get(url, headers=headers, timeout=5).status_code
    except httpx.HTTPError:
        return 0


@pytest.fixture
def private_pg() -> Any:
    if not os.environ.get("AEROFS_TEST_DATABASE_URL"):
        pytest.skip("integration services not configured")
    pg = PostgresServer()
    pg.start()
    yield pg
    pg.destroy()


@pytest.fixture
def aerofs_config(private_pg: PostgresServer) -> dict[str, Any]:
    return {"database_url": private_pg.url, "local_pool": False}


@jp_sync
async def test_status_reads_survive_a_postgres_restart(jp_serverapp, jp_fetch, private_pg, tmp_path):
    """The status read runs on the loop's own async pool (jobserver.store.pg_loop_reads): after a
    restart its broken connections are replaced, not handed out, and a poll sent while PostgreSQL is
    down waits for it rather than failing."""
    job_id = await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "out")})

    async def status() -> str:
        r = await jp_fetch("aerofs", "api", "jobs", job_id, headers=user("alice"))
        return str(json.loads(r.body)["state"])

    before = await status()
    private_pg.stop()  # fast shutdown: every connection of both pools is cut
    during = asyncio.ensure_future(status())  # sent while the database is down
    await asyncio.sleep(1.0)
    await asyncio.to_thread(private_pg.start)
    assert await asyncio.wait_for(during, 60) == before
    assert await status() == before  # and the next polls, on the new connections
    assert await status() == before

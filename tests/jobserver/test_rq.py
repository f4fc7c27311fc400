"""Team mode with real processes: the job server (PostgreSQL + Redis, no local pool) and
``python -m jobserver.worker`` RQ workers on a private redis-server.

A job goes through RQ (queue ``aerofs``, JSON messages); live progress reaches a WebSocket through
Redis pub/sub; a SIGKILLed worker's task finishes on another worker with the same output and the
attempts counted; attempts are bounded; a worker dying in the merge step no longer leaves the job
RUNNING; metrics and stats report RQ's queue length and busy/idle workers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from conftest import Workers, jp_sync, rq_horses_of, submit_job, user, wait_state

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


@pytest.fixture
def aerofs_config(pg_url: str, redis_server: Any) -> dict[str, Any]:
    return {"database_url": pg_url, "redis_url": redis_server.url, "local_pool": False, "stale_after": 1.5}


@pytest.fixture
def workers(pg_url: str, redis_server: Any, tmp_path: Path) -> Any:
    w = Workers(pg_url, redis_server.url, tmp_path / "workers")
    yield w
    w.stop()


def service(jp_serverapp: Any) -> Any:
    return jp_serverapp.web_app.settings["aerofs_jobserver"]


async def poll(cond: Any, timeout: float = 40, what: str = "condition") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = await asyncio.to_thread(cond)
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def busy_metrics(fetch: Any, timeout: float = 40) -> str:
    """The first ``/aerofs/metrics`` scrape that reports a busy worker."""
    deadline = asyncio.get_running_loop().time() + timeout
    text = ""
    while asyncio.get_running_loop().time() < deadline:
        text = (await fetch("aerofs", "metrics", headers=user("root"))).body.decode()
        busy = [ln for ln in text.splitlines() if ln.startswith("aerofs_workers_busy ")]
        if busy and float(busy[0].split()[1]) >= 1:
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"no scrape showed a busy worker; last one:\n{text}")


def digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest() + "\n"


@jp_sync
async def test_jobs_go_through_rq_with_live_updates_and_metrics(
    jp_fetch, jp_ws_fetch, jp_serverapp, workers, redis_server, tmp_path
):
    js = service(jp_serverapp)
    redis = js.queue.redis

    def listeners() -> int:
        return dict(redis.pubsub_numsub("aerofs:events")).get(b"aerofs:events", 0)

    # The server listens to the events channel only while a WebSocket is open.
    assert listeners() == 0
    ws = await jp_ws_fetch("aerofs", "api", "events", headers=user("alice"))
    assert json.loads(await ws.read_message())["type"] == "hello"
    await poll(lambda: listeners() == 1, what="the server to subscribe")

    # No worker yet: the plan message waits in rq:queue:aerofs, and stats/metrics say so.
    dst = tmp_path / "out"
    jid = await submit_job(jp_fetch, {"src": ["a", "b", "c", "d"], "dst": str(dst), "seconds": 1.2})
    await poll(lambda: redis.llen("rq:queue:aerofs") == 1, what="the plan message")
    [msg_id] = [m.decode() for m in redis.lrange("rq:queue:aerofs", 0, -1)]
    assert msg_id == f"aerofs-plan-{jid}-0-1"
    data = json.loads(zlib.decompress(redis.hget(f"rq:job:{msg_id}", "data")))  # JSON, not a pickle
    assert data[0] == "jobserver.worker.perform" and data[2] == ["plan", jid, 0, -1, 1]
    r = await jp_fetch("aerofs", "api", "stats", headers=user("root"))
    stats = json.loads(r.body)
    assert stats["queue_mode"] == "rq" and stats["queue_length"] == 1 and stats["workers_total"] == 0

    workers.start(2)
    # Busy workers while the four 1.2 s tasks run (metrics come from RQ's worker registry). A worker
    # is idle for a moment between tasks, so the scrape itself is polled until it shows one busy.
    text = await busy_metrics(jp_fetch)
    assert "aerofs_queue_length " in text and "aerofs_workers_idle " in text
    assert "aerofs_queue_scheduled " in text

    job = await wait_state(jp_fetch, jid, "alice", {"SUCCEEDED", "FAILED"}, timeout=60)
    assert job["state"] == "SUCCEEDED" and job["attempts"] == 1, job
    assert (dst / "all.txt").read_text() == "".join(f"{n}.txt {digest(n)}" for n in "abcd")
    # Each task ran in a worker's own process (no work horse forked; --fork is tested below).
    assert {p for i in range(4) for p in rq_horses_of(dst, i)} <= {p.pid for p in workers.procs}
    # The worker that planned ran task 0 in the plan's message; only the other three were sent.
    sent = [i for i in range(4) if redis.exists(f"rq:job:aerofs-task-{jid}-0-{i}-1")]
    assert sent == [1, 2, 3], sent

    # Live: the WebSocket got the worker's progress through Redis pub/sub, in event-id order.
    events: list[dict[str, Any]] = []
    while not any(e["type"] == "state" and e.get("state") == "SUCCEEDED" for e in events):
        events += json.loads(await asyncio.wait_for(ws.read_message(), 30))["events"]
    progress = [e for e in events if e["type"] == "progress" and e["job_id"] == jid]
    assert progress and progress[-1]["progress"]["fraction"] == 1.0
    assert js.bus.forwarded > 0
    ws.close()
    # A client reconnecting with its last event id catches up from the events table.
    since = progress[0]["event_id"]
    ws2 = await jp_ws_fetch("aerofs", "api", "events", params={"since": str(since)}, headers=user("alice"))
    replay = json.loads(await ws2.read_message())["events"]
    assert [e["event_id"] for e in replay] == [e["event_id"] for e in events if e["event_id"] > since]
    ws2.close()
    await poll(lambda: listeners() == 0, what="the server to unsubscribe")
    r = await jp_fetch("aerofs", "api", "stats", headers=user("root"))
    stats = json.loads(r.body)
    assert stats["workers_total"] == 2 and stats["queue_length"] == 0


@pytest.mark.parametrize("fork", [False, True], ids=["in-process", "fork"])
@jp_sync
async def test_sigkill_worker_mid_task_requeues_to_another_worker(jp_fetch, workers, tmp_path, fork):
    workers.start(2, *(["--fork"] if fork else []))
    dst = tmp_path / "out"
    jid = await submit_job(jp_fetch, {"src": ["only"], "dst": str(dst), "seconds": 3})
    [horse] = await poll(lambda: rq_horses_of(dst), what="the first attempt")
    # The task runs in a worker's own process, or with --fork in a work horse it forked.
    assert (horse in {p.pid for p in workers.procs}) != fork
    await asyncio.sleep(0.3)
    workers.kill_running(horse)
    job = await wait_state(jp_fetch, jid, "alice", {"SUCCEEDED", "FAILED"}, timeout=60)
    assert job["state"] == "SUCCEEDED" and job["attempts"] == 2, job
    first, second = rq_horses_of(dst)
    assert first == horse and second != horse
    assert (dst / "only.txt").read_text() == digest("only")
    assert (dst / "all.txt").read_text() == f"only.txt {digest('only')}"
    r = await jp_fetch("aerofs", "api", "jobs", jid, "logs", headers=user("alice"))
    text = json.dumps(json.loads(r.body))
    assert "stopped (no heartbeat" in text and "requeued" in text


@pytest.fixture
def two_attempts(aerofs_config: dict[str, Any], workers: Workers) -> Workers:
    aerofs_config["max_attempts"] = 2
    workers.env["AEROFS_MAX_ATTEMPTS"] = "2"
    return workers


@jp_sync
async def test_attempts_are_bounded(two_attempts, jp_fetch, tmp_path):
    workers = two_attempts.start(3)
    dst = tmp_path / "out"
    jid = await submit_job(jp_fetch, {"src": ["x"], "dst": str(dst), "seconds": 8})
    for n in (1, 2):
        horses = await poll(
            lambda n=n: len(rq_horses_of(dst)) >= n and rq_horses_of(dst), what=f"attempt {n}"
        )
        workers.kill_running(horses[-1])
    job = await wait_state(jp_fetch, jid, "alice", {"SUCCEEDED", "FAILED"}, timeout=60)
    assert job["state"] == "FAILED" and job["attempts"] == 2, job
    assert "after 2 attempts" in job["error"] and "no heartbeat" in job["error"]
    assert not (dst / "x.txt").exists()


@jp_sync
async def test_failing_task_retried_with_backoff_then_failed(jp_fetch, jp_serverapp, workers, tmp_path):
    workers.start(1)
    dst = tmp_path / "out"
    jid = await submit_job(jp_fetch, {"src": ["f"], "dst": str(dst), "fail": True})
    job = await wait_state(jp_fetch, jid, "alice", {"SUCCEEDED", "FAILED"}, timeout=60)
    assert job["state"] == "FAILED" and job["attempts"] == 3, job
    assert "failed on purpose" in job["error"]
    r = await jp_fetch("aerofs", "api", "jobs", jid, "logs", headers=user("alice"))
    assert json.dumps(json.loads(r.body)).count("requeued") == 2
    # A retried job is a new generation: its plan message is a new one, and it runs again.
    await jp_fetch("aerofs", "api", "jobs", jid, "retry", method="POST", body="", headers=user("alice"))
    again = await wait_state(jp_fetch, jid, "alice", {"SUCCEEDED", "FAILED"}, timeout=60)
    assert again["state"] == "FAILED" and "failed on purpose" in again["error"]
    assert service(jp_serverapp).queue.redis.exists(f"rq:job:aerofs-plan-{jid}-1-1")


@pytest.fixture
def slow_merge(workers: Workers, aerofs_config: dict[str, Any]) -> Workers:
    workers.env.update(TEST_RUNNER="slow_merge_runner", AEROFS_TEST_MERGE_SECONDS="4")
    return workers


@jp_sync
async def test_worker_dying_in_the_merge_step(slow_merge, jp_fetch, tmp_path):
    """It used to leave the job RUNNING forever; now the merge step is reaped and done elsewhere."""
    workers = slow_merge.start(2)
    dst = tmp_path / "out"
    jid = await submit_job(jp_fetch, {"src": ["m1", "m2"], "dst": str(dst), "seconds": 0.2})

    def mergers() -> list[int]:
        files = sorted(dst.glob("merge-*"), key=lambda f: f.stat().st_mtime) if dst.exists() else []
        return [int(f.name.split("-")[1]) for f in files]

    [pid] = await poll(mergers, what="the merge to start")
    workers.kill_running(pid)
    job = await wait_state(jp_fetch, jid, "alice", {"SUCCEEDED", "FAILED"}, timeout=60)
    assert job["state"] == "SUCCEEDED", job
    assert len(mergers()) == 2 and mergers()[1] != pid
    assert (dst / "all.txt").read_text() == f"m1.txt {digest('m1')}m2.txt {digest('m2')}"
    r = await jp_fetch("aerofs", "api", "jobs", jid, "logs", headers=user("alice"))
    assert "merge step: worker" in json.dumps(json.loads(r.body))


def _group(pgid: int) -> list[int]:
    """Live processes (zombies aside) of process group ``pgid``, from /proc."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(d.name))
    return out


@pytest.mark.parametrize("settle", [0.0, 3.0, "redis restart"])
def test_sigterm_of_an_idle_worker_leaves_no_process_behind(workers, redis_server, settle):
    """``aerofs worker`` forks RQ's scheduler; SIGTERM of the idle worker must end it too (nothing left
    running with parent 1), whether the signal comes as the scheduler starts, once it runs, or after
    a Redis restart made the worker start a new RQ worker (the first one's scheduler still runs)."""
    import signal
    import time

    proc = workers.start(1).procs[0]
    deadline = time.monotonic() + 60
    while len(_group(proc.pid)) < 2:  # the worker and its scheduler
        assert proc.poll() is None, workers.output()
        assert time.monotonic() < deadline, f"no scheduler forked: {workers.output()}"
        time.sleep(0.05)
    if settle == "redis restart":
        redis_server.kill()
        time.sleep(0.3)
        redis_server.start()
        deadline = time.monotonic() + 60
        while not any(m in workers.output() for m in ("worker.rq_error", "could not connect to Redis")):
            assert time.monotonic() < deadline, f"the worker did not notice: {workers.output()}"
            time.sleep(0.1)
        time.sleep(4.0)  # the worker back on Redis
    else:
        time.sleep(float(settle))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) is not None
    deadline = time.monotonic() + 30
    while _group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _group(proc.pid)
    assert not left, f"left running after SIGTERM: {left}\n{workers.output()}"

"""Real processes: a SIGKILLed worker's task is requeued and finishes on another worker with the same
output; attempts are bounded; the same on PostgreSQL. Workers run outside the server too
(``python -m jobserver.worker``, as ``aerofs worker`` does)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import HERE, jp_sync, submit_job, user, wait_state

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def aerofs_config(on_both_databases):
    return on_both_databases


async def _attempt_pids(dst: Path, n: int, timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(dst.glob("attempt-0-*")) if dst.exists() else []
        if len(files) >= n:
            return [int(f.name.rsplit("-", 1)[1]) for f in sorted(files, key=lambda f: f.stat().st_mtime)]
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(list(dst.glob('attempt-0-*')))} attempt(s) started")


@jp_sync
async def test_sigkill_worker_mid_task_requeues(jp_fetch, tmp_path):
    dst = tmp_path / "out"
    jid = await submit_job(jp_fetch, {"src": ["only"], "dst": str(dst), "seconds": 2.5})
    [pid] = await _attempt_pids(dst, 1)
    await asyncio.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    job = await wait_state(jp_fetch, jid, "alice", {"SUCCEEDED", "FAILED"}, timeout=40)
    assert job["state"] == "SUCCEEDED", job
    pids = await _attempt_pids(dst, 2)
    assert pids[0] == pid and pids[1] != pid
    assert job["attempts"] == 2
    assert (dst / "only.txt").read_text() == hashlib.sha256(b"only").hexdigest() + "\n"
    r = await jp_fetch("aerofs", "api", "jobs", jid, "logs", headers=user("alice"))
    text = json.dumps(json.loads(r.body))
    assert "stopped (no heartbeat" in text and "requeued" in text


@pytest.fixture
def two_attempts(aerofs_config):
    aerofs_config["max_attempts"] = 2
    return aerofs_config


@jp_sync
async def test_attempts_are_bounded(two_attempts, jp_fetch, tmp_path):
    dst = tmp_path / "out"
    jid = await submit_job(jp_fetch, {"src": ["x"], "dst": str(dst), "seconds": 8})
    for n in (1, 2):
        pids = await _attempt_pids(dst, n, timeout=30)
        os.kill(pids[-1], signal.SIGKILL)
    job = await wait_state(jp_fetch, jid, "alice", {"SUCCEEDED", "FAILED"}, timeout=40)
    assert job["state"] == "FAILED" and job["attempts"] == 2
    assert "after 2 attempts" in job["error"] and "no heartbeat" in job["error"]
    assert not (dst / "x.txt").exists()


def test_external_workers_share_the_queue(store_url, tmp_path):
    """Two ``python -m jobserver.worker`` processes drain 6 jobs; one is SIGKILLed midway; all succeed."""
    from jobserver.store import open_store

    store = open_store(store_url)
    store.migrate()
    ids = [
        store.create_job(
            "sleepy", {"src": [f"f{i}", f"g{i}"], "dst": str(tmp_path / f"o{i}"), "seconds": 0.3}, "alice"
        )[0]["id"]
        for i in range(6)
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent.parent)])}
    cmd = [
        sys.executable,
        "-m",
        "jobserver.worker",
        "--database-url",
        store_url,
        "--runner",
        "fake_runner",
        "--workdir",
        str(tmp_path / "work"),
        "--stale-after",
        "1.5",
        "--max-tasks",
        "2",
    ]
    procs = [
        subprocess.Popen([*cmd, "--name", f"ext-{i}"], env=env, stderr=subprocess.DEVNULL) for i in range(2)
    ]
    try:
        time.sleep(1.0)
        procs[0].send_signal(signal.SIGKILL)
        procs.append(subprocess.Popen([*cmd, "--name", "ext-2"], env=env, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [store.get_job(i)["state"] for i in ids]
            if all(s in ("SUCCEEDED", "FAILED") for s in states):
                break
            time.sleep(0.2)
        assert states == ["SUCCEEDED"] * 6, states
        for i in range(6):
            assert (tmp_path / f"o{i}" / "all.txt").read_text().count("\n") == 2
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait(10)
        store.close()

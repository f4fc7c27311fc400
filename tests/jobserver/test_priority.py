"""Workers run at a lower CPU priority than the server (jobserver.priority): the local pool's workers
by ``AerofsApp.worker_nice`` (default 10), ``aerofs worker`` by ``--nice``/``AEROFS_WORKER_NICE``
(default 0). Checked on every thread of the real processes while a task runs: on Linux niceness is
per thread, so a thread started before the worker lowered itself would escape it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Workers, jp_sync, rq_horses_of, submit_job, wait_for, wait_state

from jobserver import priority

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread niceness from /proc"),
]


def thread_nices(pid: int) -> dict[int, int]:
    """``{thread id: niceness}`` of every thread of ``pid`` (field 19 of /proc/<pid>/task/<tid>/stat)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        # After the command name (in parentheses, may hold spaces) come fields 3, 4, ...
        out[int(task.name)] = int(stat.rsplit(")", 1)[1].split()[16])
    return out


def expected(increment: int) -> int:
    return min(19, os.getpriority(os.PRIO_PROCESS, 0) + increment)


@pytest.fixture(autouse=True)
def _no_nice_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(priority.ENV, raising=False)


@pytest.mark.parametrize(
    "aerofs_config,increment", [({}, 10), ({"worker_nice": 3}, 3), ({"worker_nice": 0}, 0)]
)
@jp_sync
async def test_pool_workers_run_niced(jp_fetch, jp_serverapp, aerofs_config, increment, tmp_path):
    js = jp_serverapp.web_app.settings["aerofs_jobserver"]
    jid = await submit_job(jp_fetch, {"src": ["a", "b"], "dst": str(tmp_path / "o"), "seconds": 3})
    await wait_state(jp_fetch, jid, "alice", {"RUNNING"})  # task threads exist now

    # A worker lowers itself first thing in main(), after its imports: on a busy machine the other
    # worker can run the job before this one got that far. Wait for every worker to be past it (its
    # main thread niced, or whatever it started), then check all of their threads.
    def past_start(pid: int) -> bool:
        threads = thread_nices(pid)
        return len(threads) > 1 or set(threads.values()) != {expected(0)}

    if increment:
        wait_for(lambda: all(past_start(p.pid) for p in js.pool), what="every pool worker past its start")
    nices = {p.pid: thread_nices(p.pid) for p in js.pool}
    # Beside each main thread, the running task's threads (heartbeat, the task itself) are there too.
    assert sum(map(len, nices.values())) > len(js.pool), nices
    assert {n for threads in nices.values() for n in threads.values()} == {expected(increment)}, nices
    assert os.getpriority(os.PRIO_PROCESS, 0) == expected(0)  # the server itself is untouched


def test_bad_values_are_refused_with_their_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from traitlets import TraitError

    from jobserver.app import AerofsApp

    with pytest.raises(TraitError, match=r"worker_nice.*between 0 .* and 19, not -5"):
        AerofsApp(worker_nice=-5)
    monkeypatch.setenv(priority.ENV, "lots")
    with pytest.raises(ValueError, match="AEROFS_WORKER_NICE='lots': not an integer"):
        priority.from_env(10)
    monkeypatch.setenv(priority.ENV, "20")
    with pytest.raises(ValueError, match=r"AEROFS_WORKER_NICE='20': .* between 0"):
        priority.from_env(10)
    monkeypatch.setenv(priority.ENV, " 4 ")
    assert priority.from_env(10) == 4
    db = f"sqlite:///{tmp_path / 'jobs.db'}"
    for args, env, message in [
        (["--nice", "25"], {}, "between 0 (unchanged) and 19, not 25"),
        ([], {priority.ENV: "-1"}, "AEROFS_WORKER_NICE='-1'"),
    ]:
        r = subprocess.run(
            [sys.executable, "-m", "jobserver.worker", "--database-url", db, "--burst", *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 2 and message in r.stderr, (args, env, r.stderr)


@pytest.mark.integration
@pytest.mark.parametrize("args", [(), ("--fork",)], ids=["in-process", "fork"])
def test_rq_worker_and_its_work_horse_run_niced(
    pg_url: str, redis_server: Any, tmp_path: Path, args: tuple[str, ...]
) -> None:
    """``aerofs worker`` in team mode: the RQ worker, every thread of it while it runs a task (the
    task's own threads included), and with ``--fork`` the work horse it forks for the task."""
    from jobserver.queue import open_queue
    from jobserver.store import open_store

    store = open_store(pg_url)
    store.migrate()
    queue = open_queue(redis_server.url)
    workers = Workers(pg_url, redis_server.url, tmp_path / "w", **{priority.ENV: "7"}).start(1, *args)
    try:
        dst = tmp_path / "out"
        job, _ = store.create_job(
            "sleepy", {"src": ["a"], "dst": str(dst), "seconds": 3}, "alice", None, None
        )
        queue.enqueue(store.next_work(job_id=job["id"]))
        [horse] = wait_for(lambda: rq_horses_of(dst), 60, "the task's work horse")
        assert (horse == workers.procs[0].pid) == (not args)  # forked only with --fork
        for pid in (workers.procs[0].pid, horse):
            nices = thread_nices(pid)
            assert set(nices.values()) == {expected(7)}, (pid, nices, workers.output())
    finally:
        workers.stop()
        queue.close()
        store.close()

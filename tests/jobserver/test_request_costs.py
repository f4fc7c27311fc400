"""What the handlers do to spend less CPU per request, kept exact: store calls on the bounded store
threads (results, errors, the bound, a caller that went away), and the access log skipped only when
no handler would write the line (its request metric still recorded)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest
from conftest import jp_sync, user
from jupyter_server.prometheus.metrics import HTTP_REQUEST_DURATION_SECONDS
from tornado.httpclient import HTTPClientError

from jobserver.handlers.base import StoreThreads, _would_write, offload
from jobserver.handlers.job_reads import JobReads

pytestmark = pytest.mark.timeout(60)


async def _on(pool: StoreThreads, fn: Any, *args: Any) -> Any:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    pool.submit(loop, fut, lambda: fn(*args))
    return await fut


def test_results_and_errors_come_back_to_their_caller() -> None:
    async def main() -> None:
        pool = StoreThreads(3)
        got = await asyncio.gather(
            *[_on(pool, lambda i=i: (i, threading.current_thread().name)) for i in range(20)]
        )
        assert [i for i, _ in got] == list(range(20))
        assert all(name.startswith("aerofs-store-") for _, name in got)
        with pytest.raises(KeyError, match="missing"):
            await _on(pool, lambda: {}["missing"])
        assert await offload(sum, [1, 2, 3]) == 6  # the server's own pool

    asyncio.run(main())


def test_no_more_than_size_calls_at_once() -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    async def main() -> None:
        pool = StoreThreads(2)
        await asyncio.gather(*[_on(pool, call) for _ in range(10)])

    asyncio.run(main())
    assert most == 2


def test_a_caller_that_went_away_does_not_stop_the_threads() -> None:
    release = threading.Event()

    async def main() -> None:
        pool = StoreThreads(1)
        waiting = asyncio.ensure_future(_on(pool, release.wait))
        await asyncio.sleep(0.05)
        waiting.cancel()  # the request was dropped while its call ran
        release.set()
        assert await _on(pool, lambda: "next") == "next"

    asyncio.run(main())


def test_would_write_follows_levels_and_propagation() -> None:
    parent = logging.getLogger("aerofs-test-parent")
    child = logging.getLogger("aerofs-test-parent.child")
    loud, quiet = logging.StreamHandler(), logging.StreamHandler()
    loud.setLevel(logging.DEBUG)
    quiet.setLevel(logging.WARNING)
    try:
        parent.setLevel(logging.DEBUG)
        parent.propagate = False
        child.addHandler(quiet)
        assert not _would_write(child, logging.DEBUG)  # open logger, but its handler drops DEBUG
        assert _would_write(child, logging.WARNING)
        parent.addHandler(loud)
        assert _would_write(child, logging.DEBUG)  # a parent's handler writes it
        child.propagate = False
        assert not _would_write(child, logging.DEBUG)
        child.propagate = True
        parent.setLevel(logging.INFO)
        assert not _would_write(child, logging.DEBUG)  # the logger itself is closed to DEBUG
    finally:
        child.removeHandler(quiet)
        parent.removeHandler(loud)
        child.propagate = parent.propagate = True
        parent.setLevel(logging.NOTSET)


def _requests_seen(handler: str) -> float:
    for metric in HTTP_REQUEST_DURATION_SECONDS.collect():
        for s in metric.samples:
            if (
                s.name.endswith("_count")
                and s.labels["handler"] == handler
                and s.labels["status_code"] == "200"
            ):
                return s.value
    return 0.0


@jp_sync
async def test_access_log_written_when_someone_reads_it(jp_fetch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    await jp_fetch("aerofs", "api", "jobs", headers=user("alice"))
    assert any(r.levelno == logging.DEBUG and "200 GET" in r.getMessage() for r in caplog.records)


@jp_sync
async def test_access_log_skipped_when_dropped_metric_kept(jp_fetch, jp_serverapp, caplog) -> None:
    ext_log = jp_serverapp.web_app.settings["aerofs_jobserver"].app.log
    caplog.set_level(logging.INFO, logger=ext_log.name)
    before = _requests_seen("jobserver.handlers.api.JobsHandler")
    await jp_fetch("aerofs", "api", "jobs", headers=user("alice"))
    assert _requests_seen("jobserver.handlers.api.JobsHandler") == before + 1
    assert not any("200 GET" in r.getMessage() for r in caplog.records)
    # an error is still logged, at its own level
    with pytest.raises(HTTPClientError):
        await jp_fetch("aerofs", "api", "jobs", "0" * 32, headers=user("alice"))
    assert any(r.levelno == logging.WARNING and "404 GET" in r.getMessage() for r in caplog.records)


class _SlowStore:
    """get_jobs as a store has it, each statement held until ``release`` is set."""

    def __init__(self) -> None:
        self.jobs = {
            "a" * 32: {"id": "a" * 32, "state": "PENDING"},
            "b" * 32: {"id": "b" * 32, "state": "PENDING"},
        }
        self.release = threading.Event()
        self.started = threading.Event()
        self.statements: list[list[str]] = []
        self.fail = False

    def loop_reads(self, connections: int) -> None:
        return None  # the read goes through a store thread (get_jobs), as on SQLite

    def get_jobs(self, ids: list[str]) -> dict[str, Any]:
        self.statements.append(sorted(ids))
        snapshot = {i: dict(self.jobs[i]) for i in ids if i in self.jobs}  # as the statement began
        self.started.set()
        self.release.wait(10)
        if self.fail:
            raise RuntimeError("database gone")
        return snapshot


def test_job_reads_batch_what_arrives_during_a_statement() -> None:
    a, b, missing = "a" * 32, "b" * 32, "c" * 32

    async def main() -> None:
        store = _SlowStore()
        reads = JobReads(store, parallel=1)  # type: ignore[arg-type]
        first = asyncio.ensure_future(reads.get(a))
        await asyncio.get_running_loop().run_in_executor(None, store.started.wait, 10)
        # The job moves on while the first statement runs; reads arriving now must see the move.
        store.jobs[a] = {"id": a, "state": "RUNNING"}
        later = [asyncio.ensure_future(reads.get(x)) for x in (a, a, b, missing)]
        await asyncio.sleep(0.05)
        store.release.set()
        got = await asyncio.gather(first, *later)
        assert [j and j["state"] for j in got] == ["PENDING", "RUNNING", "RUNNING", "PENDING", None]
        assert store.statements == [[a], sorted([a, b, missing])]  # one statement for the four
        got[1]["tasks"] = []  # each request has its own dict
        assert "tasks" not in got[2]
        store.fail = True
        with pytest.raises(RuntimeError, match="database gone"):
            await reads.get(b)
        store.fail = False
        assert (await reads.get(b))["state"] == "PENDING"  # a failed statement does not stop reads
        assert reads.running == 0

    asyncio.run(main())

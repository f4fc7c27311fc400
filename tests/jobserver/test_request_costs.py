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

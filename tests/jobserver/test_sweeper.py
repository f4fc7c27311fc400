"""The team-mode sweeper against a real redis-server: ready work whose message Redis lost, or whose
message a worker took off the queue and never started (cut off from Redis mid-dequeue), gets a new
message; work whose message is waiting gets none."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from jobserver.queue import open_queue
from jobserver.store import open_store

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(redis_server: Any, tmp_path: Path) -> Any:
    store = open_store(f"sqlite:///{tmp_path}/jobs.db")
    store.migrate()
    queue = open_queue(redis_server.url)
    job, _ = store.create_job("sleepy", {"src": ["a"], "dst": str(tmp_path / "o"), "seconds": 1}, "alice")
    [work] = store.next_work(job_id=job["id"])
    queue.enqueue([work])
    yield store, queue, work
    queue.close()
    store.close()


def waiting(queue: Any) -> list[str]:
    return [k.decode() for k in queue.redis.lrange(queue.queue.key, 0, -1)]


def test_a_waiting_message_is_left_alone(setup: Any) -> None:
    store, queue, work = setup
    assert queue.sweep(store) == 0 and queue.sweep(store) == 0
    assert waiting(queue) == [work.key]


def test_a_lost_message_is_sent_again(setup: Any) -> None:
    store, queue, work = setup
    queue.redis.delete(queue.queue.key, f"rq:job:{work.key}")  # what a Redis without its AOF forgets
    assert queue.sweep(store) == 1
    assert waiting(queue) == [work.key]


@pytest.mark.parametrize("with_execution", [False, True])
def test_a_message_dropped_mid_dequeue_is_sent_again(setup: Any, with_execution: bool) -> None:
    store, queue, work = setup
    # RQ's dequeue moves the message to the intermediate list, adds an execution to the started
    # registry, then marks it started; a worker cut off before the last step leaves it "queued" on no
    # list a worker reads (and RQ's own cleanups skip it: they only fail messages marked started).
    inter, started = queue.queue.intermediate_queue, queue.queue.started_job_registry
    assert queue.redis.lmove(queue.queue.key, inter.key) == work.key.encode()
    if with_execution:
        queue.redis.zadd(started.key, {f"{work.key}:e1": time.time() + 65})
    assert queue.sweep(store) == 0  # the first sighting may be a dequeue in flight
    assert waiting(queue) == []
    assert queue.sweep(store) == 1
    assert waiting(queue) == [work.key]
    # What the dropped dequeue left is gone, or RQ's cleanups would fail the new message later.
    assert inter.get_job_ids() == [] and queue.redis.zcard(started.key) == 0
    assert queue.sweep(store) == 0 and queue.sweep(store) == 0  # once sent, it is waiting again


def test_a_started_message_is_left_alone(setup: Any) -> None:
    """A message marked started (its worker runs it) is not dropped, however often swept."""
    store, queue, work = setup
    inter, started = queue.queue.intermediate_queue, queue.queue.started_job_registry
    queue.redis.lmove(queue.queue.key, inter.key)
    queue.redis.zadd(started.key, {f"{work.key}:e1": time.time() + 65})
    queue.redis.hset(f"rq:job:{work.key}", "status", "started")
    assert [queue.sweep(store) for _ in range(3)] == [0, 0, 0]


@pytest.mark.parametrize("seconds_ago, resent", [(5, 0), (120, 1)])
def test_a_message_started_long_ago_on_unclaimed_work_is_sent_again(
    setup: Any, seconds_ago: float, resent: int
) -> None:
    """Started by RQ but its work still unclaimed in the store: a worker that died between the two.
    Left alone for STARTED_GRACE (60 s) after its start, then sent again."""
    from datetime import UTC, datetime, timedelta

    from rq.utils import utcformat

    store, queue, work = setup
    queue.redis.lmove(queue.queue.key, queue.queue.intermediate_queue.key)
    started_at = utcformat(datetime.now(UTC) - timedelta(seconds=seconds_ago))
    queue.redis.hset(f"rq:job:{work.key}", mapping={"status": "started", "started_at": started_at})
    assert queue.sweep(store) == resent
    assert waiting(queue) == ([work.key] if resent else [])

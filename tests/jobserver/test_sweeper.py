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
    assert queue.sweep(store) == 0  # the first sighting may be a message on its way
    assert queue.sweep(store) == 1
    assert waiting(queue) == [work.key]
    assert queue.sweep(store) == 0 and queue.sweep(store) == 0  # once sent, it is waiting again


def test_a_message_on_its_way_is_not_sent_twice(setup: Any) -> None:
    """Ready work whose message comes between two sweeps (the server's enqueue thread, a worker that
    planned the job and claims its first task itself) gets no second message."""
    store, queue, work = setup
    queue.redis.delete(queue.queue.key, f"rq:job:{work.key}")
    assert queue.sweep(store) == 0
    queue.enqueue([work])  # it arrives
    assert queue.sweep(store) == 0
    queue.redis.delete(queue.queue.key, f"rq:job:{work.key}")  # and is lost later: a new first sighting
    assert queue.sweep(store) == 0 and queue.sweep(store) == 1
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


def test_one_process_sweeps_at_a_time(setup: Any, redis_server: Any) -> None:
    """Every worker and the server run maintenance; the sweep's role stays with one of them while it
    renews it, and passes to another once it stops."""
    store, first, work = setup
    second = open_queue(redis_server.url)
    try:
        assert first.lead_sweep(0.5) and not second.lead_sweep(0.5)
        assert first.lead_sweep(0.5) and not second.lead_sweep(0.5)  # renewed
        time.sleep(0.6)  # the holder stopped renewing
        assert second.lead_sweep(0.5) and not first.lead_sweep(0.5)
        # Maintenance sweeps only while it holds the role: a lost message is sent again by the holder.
        from jobserver.queue import Maintenance

        first.redis.delete(first.queue.key, f"rq:job:{work.key}")  # the message is lost
        idle = Maintenance(store, first, stale_after=30, max_attempts=3, sweep_every=0.2)
        holder = Maintenance(store, second, stale_after=30, max_attempts=3, sweep_every=0.2)
        for _ in range(2):  # two sweeps in a row find it without a message
            idle.tick()
            holder.tick()
            time.sleep(0.25)
        assert waiting(first) == [work.key]  # one message: the idle process never swept
        assert first._unsent_last_sweep == set()
    finally:
        second.close()

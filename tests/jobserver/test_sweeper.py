"""The team-mode sweeper against a real redis-server: ready work whose message Redis lost, or whose
message a worker took off the queue and never started (cut off from Redis mid-dequeue), gets a new
message; work whose message is waiting gets none."""

from __future__ import annotations

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


def test_a_message_dropped_mid_dequeue_is_sent_again(setup: Any) -> None:
    store, queue, work = setup
    # RQ's dequeue moves the message to the intermediate list, then marks it started; a worker cut
    # off between the two leaves it there, still "queued", on no list a worker reads.
    inter = queue.queue.intermediate_queue
    assert queue.redis.lmove(queue.queue.key, inter.key) == work.key.encode()
    assert queue.sweep(store) == 0  # the first sighting may be a dequeue in flight
    assert waiting(queue) == []
    assert queue.sweep(store) == 1
    assert waiting(queue) == [work.key]
    assert inter.get_job_ids() == []  # so RQ's own cleanup does not fail the new message later
    assert queue.sweep(store) == 0  # and once sent, it is waiting again

"""How work reaches workers. The store is the source of truth for every job and task; the queue only
carries messages saying "this work is ready".

- Embedded default (:class:`LocalQueue`): no messages; the local pool finds work in the store.
- Team mode (:class:`RQQueue`, ``AEROFS_REDIS_URL`` set): RQ on Redis, queue ``aerofs`` (the Redis
  list ``rq:queue:aerofs`` that KEDA scales on), JSON serializer (a message is
  ``jobserver.worker.perform(kind, job_id, gen, idx, attempt)``, never a pickle), explicit timeouts,
  retries with backoff when a message fails for want of the database.

Whatever Redis loses (a restart without the last second of AOF, a failed enqueue) the
:class:`Maintenance` loop finds again: it requeues work whose worker stopped heartbeating (the
reaper) and, in team mode, re-sends a message for ready work that has none alive in Redis (the
sweeper). A claim in the store makes every duplicate message a no-op.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from jobserver.logging import log_event
from jobserver.redact import redact
from jobserver.store import Store
from jobserver.store.base import Work

QUEUE_NAME = "aerofs"
EVENTS_CHANNEL = "aerofs:events"
SWEEPER_KEY = "aerofs:sweeper"  # who sweeps (see RQQueue.lead_sweep)
PERFORM = "jobserver.worker.perform"
# Delays of RQ's own retries (a message that raised: database or Redis unreachable, not a task error).
RQ_RETRY_INTERVALS = [1, 2, 5, 10, 30, 60]
# A message seen "started" this long while its work is still unclaimed lost its worker.
STARTED_GRACE = 60.0


def task_backoff(attempt: int) -> float:
    """Seconds before a failed task's next attempt (1, 2, 4, ... capped at 60)."""
    return float(min(60, 2 ** max(0, attempt - 1)))


def redis_connection(url: str, ca_file: str | None = None, **kwargs: Any) -> Any:
    """A Redis client for ``url`` (``redis://`` or ``rediss://``); TLS verifies against ``ca_file``
    (or ``AEROFS_REDIS_CA_FILE``, or ``?ssl_ca_certs=`` in the URL)."""
    from redis import Redis

    ca = ca_file or os.environ.get("AEROFS_REDIS_CA_FILE")
    if ca and url.startswith("rediss://"):
        kwargs.setdefault("ssl_ca_certs", ca)
    kwargs.setdefault("socket_connect_timeout", 5)
    kwargs.setdefault("health_check_interval", 15)
    return Redis.from_url(url, **kwargs)


class LocalQueue:
    """The embedded default: workers poll the store, so there is nothing to send."""

    mode = "local"
    redis: Any = None

    def enqueue(self, items: list[Work], delay: float = 0.0) -> None:
        pass

    def lead_sweep(self, ttl: float) -> bool:
        return True

    def sweep(self, store: Store) -> int:
        return 0

    def publish(self, rows: list[dict[str, Any]]) -> None:
        pass

    def stats(self) -> dict[str, Any] | None:
        return None

    def close(self) -> None:
        pass


class RQQueue:
    mode = "rq"

    def __init__(self, url: str, ca_file: str | None = None, job_timeout: float = 3600.0) -> None:
        from rq import Queue
        from rq.serializers import JSONSerializer

        self.redis = redis_connection(url, ca_file, socket_timeout=30)
        self.serializer = JSONSerializer
        self.queue = Queue(QUEUE_NAME, connection=self.redis, serializer=JSONSerializer)
        # The worker stops a task itself at ``task_timeout``; RQ's timeout is the backstop. A plan
        # message also runs the job's first task (Worker.plan): room for the planning and the task.
        self.job_timeout = 2 * int(job_timeout) + 120
        self._stuck_last_sweep: set[str] = set()
        self._unsent_last_sweep: set[str] = set()
        self._token = f"{os.getpid()}:{os.urandom(8).hex()}"  # this process, as the sweeper's key holds it

    def enqueue(self, items: list[Work], delay: float = 0.0) -> None:
        from rq import Retry

        for w in items:
            kw: dict[str, Any] = {
                "job_id": w.key,
                "description": w.key,
                "job_timeout": self.job_timeout,
                "result_ttl": 600,
                "failure_ttl": 7 * 86400,
                "retry": Retry(max=len(RQ_RETRY_INTERVALS), interval=RQ_RETRY_INTERVALS),
            }
            args = (w.kind, w.job_id, w.gen, w.idx, w.attempt)
            if delay > 0:
                self.queue.enqueue_in(timedelta(seconds=delay), PERFORM, *args, **kw)
            else:
                self.queue.enqueue(PERFORM, *args, **kw)

    def lead_sweep(self, ttl: float) -> bool:
        """Whether this process is the one that sweeps (taking the role if no one holds it, keeping it
        ``ttl`` seconds longer if it does).

        Every worker and the server run maintenance; one sweep per round is enough, and each is a read of
        up to 500 rows of ready work and a Redis round trip over their messages, so with many workers
        most of them were repeats. The role stays with its holder while it lives (its
        ``_dropped_in_dequeue`` compares each sweep with its own previous one) and passes to another
        process ``ttl`` after the holder stops renewing it."""
        ms = max(1, int(ttl * 1000))
        if self.redis.set(SWEEPER_KEY, self._token, nx=True, px=ms):
            return True
        if self.redis.get(SWEEPER_KEY) == self._token.encode():
            return bool(self.redis.pexpire(SWEEPER_KEY, ms))  # 0: it expired just now; next round
        return False

    def sweep(self, store: Store) -> int:
        """Send a message for ready work that has none alive in Redis; how many were sent. Work without a
        message is sent again once two sweeps in a row (``sweep_every`` apart) found it so."""
        from rq.job import JobStatus

        items = store.next_work(limit=500)
        if not items:
            return 0
        states = self._states([w.key for w in items])
        alive = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED}
        dropped = self._dropped_in_dequeue()
        lost = []
        unsent: set[str] = set()
        now = datetime.now(UTC)
        for w, (status, started) in zip(items, states, strict=True):
            if status == JobStatus.STARTED and started is not None:
                if (now - started).total_seconds() > STARTED_GRACE:
                    lost.append(w)  # its worker died between taking the message and claiming the work
            elif status == JobStatus.QUEUED and w.key in dropped:
                lost.append(w)  # seen stuck mid-dequeue on two sweeps already
            elif status not in alive:
                # No message, on two sweeps in a row: one may be on its way (the server's enqueue
                # thread, a worker that planned the job and is about to claim its first task).
                unsent.add(w.key)
                if w.key in self._unsent_last_sweep:
                    lost.append(w)
        self._unsent_last_sweep = unsent
        if lost:
            log_event("queue.resend", count=len(lost), work=[w.key for w in lost[:10]])
            for w in lost:  # what a dropped dequeue left behind, or RQ's cleanup fails the new message
                self.queue.intermediate_queue.remove(w.key)
                if dropped.get(w.key):
                    self.redis.zrem(self.queue.started_job_registry.key, *dropped[w.key])
            self.enqueue(lost)
        return len(lost)

    def _dropped_in_dequeue(self) -> dict[str, list[str]]:
        """Messages a worker took off the queue and never started, with their started-registry entries.

        RQ's dequeue moves a message to the queue's intermediate list, adds an execution to the
        started registry, then marks the message started. A worker cut off from Redis in between (a
        Redis restart) leaves it there still "queued": no worker takes it, and RQ's own cleanups skip
        it (they only fail messages marked started), so it would wait forever. A normal dequeue passes
        that point within milliseconds: a message found there, not started, on two sweeps in a row
        (two seconds apart) is dropped."""
        from rq.job import JobStatus

        taken: dict[str, list[str]] = {k: [] for k in self.queue.intermediate_queue.get_job_ids()}
        for job_id, execution_id in self.queue.started_job_registry.get_job_and_execution_ids(cleanup=False):
            taken.setdefault(job_id, []).append(f"{job_id}:{execution_id}")
        ids = list(taken)
        queued = {
            k for k, (status, _) in zip(ids, self._states(ids), strict=True) if status == JobStatus.QUEUED
        }
        dropped = queued & self._stuck_last_sweep
        self._stuck_last_sweep = queued
        return {k: taken[k] for k in dropped}

    def _states(self, message_ids: list[str]) -> list[tuple[Any, datetime | None]]:
        """Each message's RQ status (a ``JobStatus``) and start time (UTC), ``(None, None)`` for one
        Redis no longer has: two fields of each message's hash in one round trip.

        Not ``Job.fetch_many``: it restores every message whole, ~0.1 ms of Python apiece, and the
        server sweeps on a thread that holds its GIL meanwhile. With ~100 messages waiting (the
        server bench) each sweep held the event loop back for 5-15 ms, the largest of its pauses
        (docs/operations.md, "The sweep's pause")."""
        from rq.job import Job, JobStatus
        from rq.utils import utcparse

        if not message_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for m in message_ids:
            pipe.hmget(Job.key_for(m), "status", "started_at")
        out: list[tuple[Any, datetime | None]] = []
        for status, started in pipe.execute():
            try:
                state = JobStatus(status.decode()) if status else None
            except ValueError:  # a status this RQ does not know: not one of the alive ones
                state = None
            at = utcparse(started.decode()) if started else None
            if at is not None and at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
            out.append((state, at))
        return out

    def publish(self, rows: list[dict[str, Any]]) -> None:
        try:
            self.redis.publish(EVENTS_CHANNEL, json.dumps(rows, default=str))
        except Exception as e:  # best effort: the events table has every row
            log_event("events.publish_failed", error=redact(f"{type(e).__name__}: {e}"))

    def stats(self) -> dict[str, Any]:
        from rq import Worker
        from rq.registry import ScheduledJobRegistry, StartedJobRegistry

        workers = Worker.all(queue=self.queue)
        busy = sum(1 for w in workers if w.get_state() == "busy")
        return {
            "queue_length": self.queue.count,
            "scheduled": ScheduledJobRegistry(queue=self.queue).count,
            "started": StartedJobRegistry(queue=self.queue).count,
            "workers_total": len(workers),
            "workers_busy": busy,
            "workers_idle": len(workers) - busy,
        }

    def close(self) -> None:
        self.redis.close()


def open_queue(redis_url: str | None, ca_file: str | None = None, job_timeout: float = 3600.0) -> Any:
    if redis_url:
        return RQQueue(redis_url, ca_file, job_timeout)
    return LocalQueue()


class Maintenance:
    """Reaper + sweeper, run every second by the server and by every ``aerofs worker`` (the sweep, every
    ``sweep_every`` seconds, by one of them at a time: :meth:`RQQueue.lead_sweep`).

    After this process could not reach the store for longer than ``stale_after`` (a database restart),
    it skips one round: workers cut off as long could not heartbeat either, and get a beat to do so
    before their work is taken from them."""

    def __init__(
        self, store: Store, queue: Any, stale_after: float, max_attempts: int, sweep_every: float = 2.0
    ) -> None:
        self.store = store
        self.queue = queue
        self.stale_after = stale_after
        self.max_attempts = max_attempts
        self.sweep_every = sweep_every
        self.last_ok = 0.0
        self.last_sweep = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> list[Work]:
        now = time.monotonic()
        try:
            if self.last_ok and now - self.last_ok > self.stale_after:
                self.store.last_event_id()  # reachable again? then reap next round
                self.last_ok = time.monotonic()
                return []
            items = self.store.reap(self.stale_after, self.max_attempts)
            self.last_ok = time.monotonic()
        except Exception as e:
            log_event("reaper.error", error=redact(f"{type(e).__name__}: {e}"))
            return []
        try:
            if items:
                log_event("reaper.requeued", work=[w.key for w in items])
                self.queue.enqueue(items)
            if now - self.last_sweep >= self.sweep_every:
                self.last_sweep = now
                if self.queue.lead_sweep(3 * self.sweep_every):
                    self.queue.sweep(self.store)
        except Exception as e:
            log_event("sweeper.error", error=redact(f"{type(e).__name__}: {e}"))
        return items

    def start(self, interval: float = 1.0) -> None:
        def run() -> None:
            while not self._stop.wait(interval):
                self.tick()

        self._thread = threading.Thread(target=run, name="aerofs-maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

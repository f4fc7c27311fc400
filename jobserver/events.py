"""Live job events for WebSocket subscribers (owners see their jobs, admins see all).

Every state change and progress checkpoint is a row of the store's append-only events table. A thread
(never the server's event loop) reads new rows and hands them to the loop, which sends them:

- team mode: workers publish each event row they write on the Redis channel ``aerofs:events``
  (progress at most once a second per task); a message makes the thread read the table at once and
  forward what is new, in event-id order (a pub/sub message can overtake a row committed just
  before it). The thread still polls every ``interval`` for rows nobody published (the server's
  own, or any that pub/sub lost while Redis restarted). It is subscribed to the channel only while
  a WebSocket is: otherwise every message would be received, parsed and dropped on the server's
  CPU, a few hundred a second under the server bench, and the table poll alone finds new rows;
- embedded default: the thread polls the table.

A reconnecting client passes ``since=<event id>`` and the WebSocket handler replays the table from
there (up to ``last``, what the bus already sent), so nothing is missed.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from tornado.ioloop import IOLoop

from jobserver.logging import log_event
from jobserver.queue import EVENTS_CHANNEL
from jobserver.redact import redact
from jobserver.store import Store


def message(ev: dict[str, Any], job: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {"event_id": ev["id"], "type": ev["type"], "job_id": ev["job_id"], "at": ev["at"], **ev["data"]}
    if job is not None:
        out["job"] = job
    return out


class EventBus:
    def __init__(self, store: Store, interval: float = 0.2, redis: Any = None) -> None:
        self.store = store
        self.interval = interval
        self.redis = redis
        self.last = store.last_event_id()  # the newest event id sent to subscribers (loop side)
        self.subscribers: set[Any] = set()
        self.forwarded = 0  # published events sent as soon as their pub/sub message came
        self._polled = self.last  # the newest id the thread read from the table
        self._loop: IOLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._loop = IOLoop.current()
        self._thread = threading.Thread(target=self._run, name="aerofs-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def subscribe(self, sub: Any) -> None:
        self.subscribers.add(sub)

    def unsubscribe(self, sub: Any) -> None:
        self.subscribers.discard(sub)

    # -- the thread --------------------------------------------------------------------------------
    def _run(self) -> None:
        pubsub = None
        last_poll = 0.0
        while not self._stop.is_set():
            try:
                listening = self.redis is not None and bool(self.subscribers)
                if listening and pubsub is None:
                    pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(EVENTS_CHANNEL)
                elif not listening and pubsub is not None:
                    pubsub.close()  # no one to send to: see the module's docstring
                    pubsub = None
                if pubsub is not None:
                    msg = pubsub.get_message(timeout=self.interval)
                    if msg and msg.get("type") == "message":
                        self.forwarded += self._wake(json.loads(msg["data"]))
                        continue
                else:
                    self._stop.wait(self.interval)
            except Exception as e:  # Redis restarting: poll the table, subscribe again later
                log_event("events.pubsub_error", error=redact(f"{type(e).__name__}: {e}"))
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()
                pubsub = None
                self._stop.wait(1.0)
            if time.monotonic() - last_poll >= self.interval:
                last_poll = time.monotonic()
                try:
                    self.poll()
                except Exception as e:
                    log_event("events.poll_error", error=redact(f"{type(e).__name__}: {e}"))
        if pubsub is not None:
            with contextlib.suppress(Exception):
                pubsub.close()

    def _wake(self, rows: list[dict[str, Any]]) -> int:
        """A worker published ``rows``: send everything new now; how many of them were sent."""
        before = self._polled
        self.poll()
        return sum(1 for r in rows if before < int(r["id"]) <= self._polled)

    def poll(self) -> None:
        """Read rows after the last one read; send those pub/sub did not already bring."""
        if not self.subscribers:
            self._polled = max(self._polled, self.store.last_event_id())
            self._call(self._advance, self._polled)
            return
        evs = self.store.events_since(self._polled)
        if not evs:
            return
        self._polled = evs[-1]["id"]
        self._hand_over(evs)

    def _hand_over(self, evs: list[dict[str, Any]]) -> None:
        # One statement for the batch's jobs (it was one a job: ~16 a poll with 80 jobs/s finishing).
        jobs = self.store.get_jobs(list({e["job_id"] for e in evs}))
        self._call(self._dispatch, evs, jobs)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        if self._loop is not None:
            self._loop.add_callback(fn, *args)
        else:
            fn(*args)

    # -- the loop ----------------------------------------------------------------------------------
    def _advance(self, last: int) -> None:
        self.last = max(self.last, last)

    def _dispatch(self, evs: list[dict[str, Any]], jobs: dict[str, Any]) -> None:
        self.last = max(self.last, max(e["id"] for e in evs))
        for sub in list(self.subscribers):
            batch = [message(ev, jobs.get(ev["job_id"])) for ev in evs if sub.may_see(ev)]
            if batch:
                sub.send(batch)


Send = Callable[[list[dict[str, Any]]], None]


def dumps(batch: list[dict[str, Any]]) -> str:
    return json.dumps({"events": batch}, default=str)

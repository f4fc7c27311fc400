"""Live job events: the server polls the store's append-only events table and fans new rows out to
WebSocket subscribers (owners see their jobs, admins see all). Reconnecting with ``since=<event id>``
replays what was missed from the table."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tornado.ioloop import PeriodicCallback

from jobserver.store import Store


def message(ev: dict[str, Any], job: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {"event_id": ev["id"], "type": ev["type"], "job_id": ev["job_id"], "at": ev["at"], **ev["data"]}
    if job is not None:
        out["job"] = job
    return out


class EventBus:
    def __init__(self, store: Store, interval: float = 0.2) -> None:
        self.store = store
        self.last = store.last_event_id()
        self.subscribers: set[Any] = set()
        self._pc = PeriodicCallback(self.poll, interval * 1000)

    def start(self) -> None:
        self._pc.start()

    def stop(self) -> None:
        self._pc.stop()

    def subscribe(self, sub: Any) -> None:
        self.subscribers.add(sub)

    def unsubscribe(self, sub: Any) -> None:
        self.subscribers.discard(sub)

    def poll(self) -> None:
        if not self.subscribers:
            self.last = max(self.last, self.store.last_event_id())
            return
        try:
            evs = self.store.events_since(self.last)
        except Exception:
            return
        if not evs:
            return
        self.last = evs[-1]["id"]
        jobs: dict[str, Any] = {}
        for ev in evs:
            if ev["job_id"] not in jobs:
                jobs[ev["job_id"]] = self.store.get_job(ev["job_id"])
        for sub in list(self.subscribers):
            batch = [message(ev, jobs.get(ev["job_id"])) for ev in evs if sub.may_see(ev)]
            if batch:
                sub.send(batch)


Send = Callable[[list[dict[str, Any]]], None]


def dumps(batch: list[dict[str, Any]]) -> str:
    return json.dumps({"events": batch}, default=str)

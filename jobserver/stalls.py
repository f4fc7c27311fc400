"""Where the server's latency tail comes from: garbage-collector pauses and event-loop lag, logged.

Off unless ``AEROFS_STALL_LOG=FILE`` is set (the server bench sets it). Then every collection longer than
1 ms and every time the loop ran a ``LAG_TICK`` timer more than 5 ms late are appended to FILE as
``monotonic_start kind generation_or_- milliseconds`` lines, so the bench can match slow requests to them
by time (docs/operations.md, "Where the status tail came from").
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from typing import Any, TextIO

LAG_TICK = 0.01  # seconds between loop-lag probes: 100 cheap timers a second


class StallLog:
    def __init__(self, path: str) -> None:
        self._out: TextIO = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the server
        self._gc_start = 0.0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.monotonic()
            return
        ms = (time.monotonic() - self._gc_start) * 1000
        if ms > 1:
            self._out.write(f"{self._gc_start:.4f} gc {info['generation']} {ms:.2f}\n")

    def _probe(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        now = time.monotonic()
        if now - due > 0.005:
            self._out.write(f"{due:.4f} lag - {(now - due) * 1000:.2f}\n")
        loop.call_at(now + LAG_TICK, self._probe, loop, now + LAG_TICK)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        gc.callbacks.append(self._on_gc)
        # loop.time() is time.monotonic() in asyncio's default and uvloop loops alike.
        due = loop.time() + LAG_TICK
        loop.call_at(due, self._probe, loop, due)


def start_from_env(loop: asyncio.AbstractEventLoop) -> None:
    path = os.environ.get("AEROFS_STALL_LOG")
    if path:
        StallLog(path).start(loop)

"""Polling the engine's progress counters for displays (widgets, rich bars, job-server reporters)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from aerofs_kernel import _engine

#: Most UI updates per second.
MAX_UPDATES_PER_SECOND = 10


class ProgressPoller(threading.Thread):
    """Polls ``snapshot()`` (a Progress, or any callable returning a snapshot dict) and hands ``on_update``
    a state dict with ``rate`` (bytes/s) and ``eta`` (s) added, at most ``max_rate`` times a second and
    only when something changed. ``stop()`` ends it after one last update."""

    def __init__(
        self,
        source: _engine.Progress | Callable[[], dict[str, Any]],
        on_update: Callable[[dict[str, Any]], None],
        max_rate: float = MAX_UPDATES_PER_SECOND,
    ) -> None:
        super().__init__(daemon=True, name="aerofs-progress")
        self._snap = source.snapshot if hasattr(source, "snapshot") else source
        self._on_update = on_update
        self.interval = 1.0 / max_rate
        self._stop_event = threading.Event()
        self._rate = RateEstimate()
        self._last: dict[str, Any] | None = None
        self.updates = 0

    def state(self) -> dict[str, Any]:
        return self._rate.add(dict(self._snap()))

    def _emit(self, force: bool = False) -> None:
        st = self.state()
        key = {k: v for k, v in st.items() if k not in ("rate", "eta", "elapsed")}
        if force or key != self._last:
            self._last = key
            self.updates += 1
            self._on_update(st)

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            with contextlib.suppress(Exception):  # a display problem never stops the run
                self._emit()

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=2)
        with contextlib.suppress(Exception):
            self._emit(force=True)


class RateEstimate:
    """Rate (bytes/s) and ETA (s) of a run from its successive snapshots (``bytes_done``,
    ``bytes_total``): the rate over the last ~3 seconds, so it follows a run that speeds up or slows
    down, or the average since the first snapshot when that window shows no progress. One estimate
    for an engine run polled here and a job polled over REST."""

    WINDOW_S = 3.0

    def __init__(self) -> None:
        self._t0 = time.monotonic()
        self._samples: list[tuple[float, int]] = []

    def add(self, snap: dict[str, Any]) -> dict[str, Any]:
        """``snap`` with ``rate``, ``eta`` (None when unknown) and ``elapsed`` added."""
        now = time.monotonic()
        done = int(snap.get("bytes_done", 0) or 0)
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.WINDOW_S:
            self._samples.pop(0)
        t_first, b_first = self._samples[0]
        rate = (done - b_first) / (now - t_first) if now - t_first > 0.05 else 0.0
        if rate <= 0 and now - self._t0 > 0:
            rate = done / (now - self._t0)
        total = int(snap.get("bytes_total", 0) or 0)
        snap["rate"] = float(rate)
        snap["eta"] = float((total - done) / rate) if rate > 0 and total >= done else None
        snap["elapsed"] = now - self._t0
        return snap

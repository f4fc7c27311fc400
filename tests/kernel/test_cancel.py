"""Cancel of a running conversion from another thread stops it within about a second, leaving nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import aerofs_kernel as aero
from aerofs_kernel.widgets import BackgroundRun


def test_cancel_from_another_thread_within_a_second(many_big: Path, tmp_path: Path) -> None:
    progress = aero.Progress()
    out = tmp_path / "out"
    cancelled_at: list[float] = []

    def cancel_later() -> None:
        # Wait until the engine has really started (bytes counted), then cancel.
        deadline = time.monotonic() + 30
        while progress.snapshot()["bytes_done"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        cancelled_at.append(time.monotonic())
        progress.cancel()

    threading.Thread(target=cancel_later, daemon=True).start()
    with pytest.raises(aero.Cancelled):
        aero.csv_to_parquet(
            str(many_big), str(out), threads=1, block_size=1 << 20, progress=progress, show_progress=False
        )
    stopped = time.monotonic() - cancelled_at[0]
    snap = progress.snapshot()
    assert snap["bytes_done"] < snap["bytes_total"], "the run finished before the cancel: input too small"
    assert stopped < 1.0, f"took {stopped:.2f} s to stop"
    # Nothing half-written: no Parquet file (or temporary) of an unfinished input.
    done = snap["inputs_done"]
    assert len(list(out.rglob("*.parquet"))) <= done
    assert not [p for p in out.rglob("*") if p.name.startswith(".")] if out.exists() else True


def test_background_run_cancel_button(many_big: Path, tmp_path: Path, frontend_msg: Any) -> None:
    run = BackgroundRun(
        "csv-to-parquet",
        {"src": str(many_big), "dst": str(tmp_path / "o"), "threads": 1, "block_size": 1 << 20},
    ).start()
    deadline = time.monotonic() + 30
    while run.progress.snapshot()["bytes_done"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not run.done.is_set()
    t0 = time.monotonic()
    frontend_msg(run.widget, {"type": "cancel"})  # what the button sends
    assert run.done.wait(5)
    assert time.monotonic() - t0 < 1.0
    assert run.widget.state == "cancelled"
    assert isinstance(run.error, aero.Cancelled)

"""The server's GC freeze after start-up and its stall log (jobserver.gcfreeze, jobserver.stalls), each in a
fresh interpreter: freezing this test process would keep the other tests' objects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FREEZE = """
import gc
from jobserver import gcfreeze
gcfreeze.freeze_after_startup()
n = gc.get_freeze_count()
gcfreeze.freeze_after_startup()  # once a process
print(n, gc.get_freeze_count())
"""


def _run(code: str, **env: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return out.stdout


def test_freeze_moves_startup_objects_to_the_permanent_generation_once() -> None:
    first, again = map(int, _run(FREEZE).split())
    assert first > 1000  # the interpreter's and jobserver's own objects
    assert again == first


def test_freeze_can_be_turned_off() -> None:
    assert _run(FREEZE, AEROFS_GC_FREEZE="0").split() == ["0", "0"]


STALLS = """
import asyncio, gc, time
from jobserver import stalls

async def main():
    stalls.start_from_env(asyncio.get_running_loop())
    await asyncio.sleep(0.05)
    time.sleep(0.1)  # the loop blocked: a lag of ~100 ms
    junk = [[i] for i in range(300_000)]
    for a in junk:
        a.append(a)  # cycles, so the collection has work
    del junk, a
    gc.collect()
    await asyncio.sleep(0.05)

asyncio.run(main())
"""


def test_stall_log_records_loop_lag_and_gc_pauses(tmp_path: Path) -> None:
    log = tmp_path / "stalls.log"
    _run(STALLS, AEROFS_STALL_LOG=str(log))
    rows = [ln.split() for ln in log.read_text().splitlines()]
    lags = [float(ms) for _, kind, _, ms in rows if kind == "lag"]
    gcs = [(gen, float(ms)) for _, kind, gen, ms in rows if kind == "gc"]
    assert any(ms >= 90 for ms in lags), rows
    assert ("2", max(ms for g, ms in gcs if g == "2")) in gcs, rows


def test_stall_log_is_off_by_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AEROFS_STALL_LOG"}
    out = subprocess.run([sys.executable, "-c", STALLS], env=env, cwd=tmp_path, check=True)
    assert out.returncode == 0 and not list(tmp_path.iterdir())

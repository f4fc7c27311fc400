"""A local-pool worker does not outlive the server that started it: when that process dies without
stopping its pool (SIGKILL, or a command such as ``jupyterlab.browser_check`` that exits without the
extension's shutdown), the worker notices it has a new parent and exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes (it is waiting for a reaper).
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def test_a_pool_worker_exits_when_its_server_is_killed(js_dir: Path) -> None:
    db = f"sqlite:///{js_dir / 'jobs.db'}"
    # The "server": starts one pool worker the way the extension does, prints its pid, then waits.
    server = textwrap.dedent(f"""
        import os, subprocess, sys, time
        w = subprocess.Popen([sys.executable, "-m", "jobserver.worker", "--database-url", {db!r},
                              "--workdir", {str(js_dir / "work")!r}, "--runner", "fake_runner",
                              "--parent-pid", str(os.getpid())], stdin=subprocess.DEVNULL)
        print(w.pid, flush=True)
        time.sleep(300)
    """)
    proc = subprocess.Popen([sys.executable, "-c", server], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    worker = int(proc.stdout.readline())
    try:
        time.sleep(1.5)
        assert _alive(worker), "the worker should run while its server does"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 30
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(worker), "the worker outlived its server"
    finally:
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)

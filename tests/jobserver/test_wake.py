"""The local pool's wake-up pipe (jobserver.wake): one token per ready unit of work, taken by one
waiting worker each; a full pipe drops tokens instead of blocking the server."""

from __future__ import annotations

import os
import subprocess
import sys

from jobserver.wake import WakePipe


def test_each_token_wakes_one_waiter_and_a_full_pipe_never_blocks():
    pipe = WakePipe.create()
    try:
        assert not pipe.wait(0)  # nothing yet
        pipe.wake(2)
        assert pipe.wait(0) and pipe.wait(0)
        assert not pipe.wait(0.01)
        for _ in range(70_000):  # more than a pipe holds: dropped, not blocked
            pipe.wake()
        assert pipe.wait(0)
    finally:
        pipe.close()


def test_a_child_process_gets_the_tokens_through_wake_fds():
    pipe = WakePipe.create()
    try:
        code = (
            "import sys; from jobserver.wake import WakePipe; "
            "p = WakePipe.parse(sys.argv[1]); sys.exit(0 if p.wait(30) else 1)"
        )
        child = subprocess.Popen(
            [sys.executable, "-c", code, pipe.spec],
            pass_fds=(pipe.read_fd, pipe.write_fd),
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        pipe.wake()
        assert child.wait(60) == 0
        assert not pipe.wait(0)  # the child took the one token
    finally:
        pipe.close()

"""Wake-ups for the local worker pool: one pipe shared by the server and its workers.

Each byte in the pipe is a token saying "a unit of work became ready": the server writes one per
submitted (or retried) job, a worker that planned a job into several tasks writes one per task it
does not run itself. An idle worker blocks in ``select`` on the read end and takes ONE token when
it wakes, so tokens spread over idle workers instead of one worker draining them all. Tokens written
while every worker is busy only cost a spurious look at the store later. Both ends are non-blocking:
a full pipe (64 KiB of tokens) drops the token, and the workers' one-second maintenance tick finds
whatever a lost token would have announced (as it finds work whose retry backoff ran out)."""

from __future__ import annotations

import contextlib
import os
import select


class WakePipe:
    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd

    @classmethod
    def create(cls) -> WakePipe:
        r, w = os.pipe()
        for fd in (r, w):
            os.set_blocking(fd, False)
            os.set_inheritable(fd, True)
        return cls(r, w)

    @classmethod
    def parse(cls, spec: str) -> WakePipe:
        """From ``"R,W"`` (the ``--wake-fds`` a worker is started with)."""
        r, w = (int(x) for x in spec.split(","))
        return cls(r, w)

    @property
    def spec(self) -> str:
        return f"{self.read_fd},{self.write_fd}"

    def wake(self, n: int = 1) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self.write_fd, b"\0" * max(0, n))

    def wait(self, timeout: float) -> bool:
        """Block until a token or ``timeout``; True when a token was taken."""
        readable, _, _ = select.select([self.read_fd], [], [], max(0.0, timeout))
        if not readable:
            return False
        try:
            return bool(os.read(self.read_fd, 1))
        except BlockingIOError:  # another worker took it
            return False

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

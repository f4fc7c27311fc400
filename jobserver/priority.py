"""Workers run at a lower CPU priority than the server that answers requests.

A worker's tasks are throughput work: a job taking a little longer goes unnoticed. The server's
requests are latency work: a status poll or a notebook's save waiting behind a CSV conversion is felt.
In the embedded default the local pool shares the machine (often two cores) with the user's Jupyter
server, so its workers are niced (``AerofsApp.worker_nice``, env ``AEROFS_WORKER_NICE``, default
:data:`POOL_DEFAULT`): the kernel's scheduler then hands the server the CPU first whenever both want
it, and the workers still get every cycle the server leaves idle.

``aerofs worker`` started on its own defaults to 0 (no change): in team mode it has its pod to itself,
where niceness ranks it against nothing (niceness orders threads within one CPU cgroup). Set
``AEROFS_WORKER_NICE`` or ``--nice`` where workers share a machine with something more urgent.

On Linux niceness belongs to each thread and a new thread inherits its creator's, so :func:`lower`
must run before the worker starts any thread (the store's pool, heartbeats, the engine's rayon
threads); a forked RQ work horse inherits it too.
"""

from __future__ import annotations

import os

POOL_DEFAULT = 10
ENV = "AEROFS_WORKER_NICE"


def check(nice: int) -> int:
    """``nice`` if it is a niceness increment a worker may take (0 to 19), else ValueError: raising a
    priority (a negative increment) needs privileges, and above 19 means nothing more."""
    if not 0 <= nice <= 19:
        raise ValueError(f"worker nice must be between 0 (unchanged) and 19, not {nice}")
    return nice


def from_env(default: int) -> int:
    """The increment in ``AEROFS_WORKER_NICE``, else ``default``; a clear error for a bad value."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return default
    try:
        nice = int(raw)
    except ValueError:
        raise ValueError(f"{ENV}={raw!r}: not an integer") from None
    try:
        return check(nice)
    except ValueError as e:
        raise ValueError(f"{ENV}={raw!r}: {e}") from None


def lower(nice: int) -> int:
    """Lower this process's (the calling thread's and every later thread's) CPU priority by ``nice``;
    the niceness now in force. A platform without ``os.nice`` (Windows) keeps its priority."""
    check(nice)
    if nice == 0 or not hasattr(os, "nice"):
        return os.nice(0) if hasattr(os, "nice") else 0
    return os.nice(nice)

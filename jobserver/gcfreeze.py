"""Keep the server's start-up objects out of the garbage collector's full collections.

A Jupyter server holds a few hundred thousand long-lived objects (modules, classes, traitlets, tornado's
and jupyter_server's tables) that are never garbage. Every full (generation 2) collection walked all of
them: under the server bench one took ~180 ms, in which the event loop answered nothing, and that single
pause was most of the status p99 (docs/operations.md, "Where the status tail came from"). Once the server
is up, ``gc.freeze()`` moves everything alive to the permanent generation, which collections skip; objects
made later are collected as before. A cycle among the frozen objects is never freed, which is why this
runs after start-up (after one collection), not before.

``AEROFS_GC_FREEZE=0`` leaves the collector as Python sets it (to measure the difference).
"""

from __future__ import annotations

import gc
import os

_done = False


def freeze_after_startup() -> None:
    """Once a process: a test session starts many servers in one process, and freezing again would keep
    each torn-down server's cycles forever."""
    global _done
    if _done or os.environ.get("AEROFS_GC_FREEZE", "1") == "0":
        return
    _done = True
    gc.collect()  # free start-up garbage first: what is frozen is never collected
    gc.freeze()

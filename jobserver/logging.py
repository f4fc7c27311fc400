"""Structured JSON logs (one object a line on stderr) carrying a correlation id from the request
through the queue to the worker and the engine."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from jobserver.redact import redact

logger = logging.getLogger("aerofs.jobserver")
if not logger.handlers:
    _h = logging.StreamHandler(sys.stderr)
    _h.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(_h)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    rec = {"ts": round(time.time(), 3), "event": event, **fields}
    logger.log(level, redact(json.dumps(rec, default=str)))

"""Tornado handlers of the REST API and the events WebSocket (routes in :func:`routes`)."""

from __future__ import annotations

from jobserver.handlers.api import (
    JobHandler,
    JobLogsHandler,
    JobOutputsHandler,
    JobRetryHandler,
    JobsHandler,
    MetricsHandler,
    NotFoundHandler,
    OpenAPIHandler,
    PipelinesHandler,
    StatsHandler,
)
from jobserver.handlers.ws import EventsHandler

_ID = r"(?P<job_id>[0-9a-fA-F]{32})"


def routes(prefix: str) -> list[tuple[str, type]]:
    """``prefix`` is e.g. ``/aerofs`` (the API lives under ``{prefix}/api/``)."""
    api = prefix.rstrip("/") + "/api"
    return [
        (f"{api}/pipelines", PipelinesHandler),
        (f"{api}/jobs", JobsHandler),
        (f"{api}/jobs/{_ID}", JobHandler),
        (f"{api}/jobs/{_ID}/retry", JobRetryHandler),
        (f"{api}/jobs/{_ID}/logs", JobLogsHandler),
        (f"{api}/jobs/{_ID}/outputs", JobOutputsHandler),
        (f"{api}/stats", StatsHandler),
        (f"{api}/events", EventsHandler),
        (f"{api}/openapi.json", OpenAPIHandler),
        (f"{api}/(.*)", NotFoundHandler),
        (f"{prefix.rstrip('/')}/metrics", MetricsHandler),
    ]

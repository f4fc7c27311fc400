"""Shared handler base: authentication, the job server's services, permission checks, and
:meth:`BaseHandler.call` — the one way a handler touches the store.

The store is synchronous (psycopg's pool, sqlite3). A query run on the Tornado event loop stalls every
other request for its round trips, and under load that is where the seconds of latency came from. So
every store call goes through :func:`offload`: a bounded thread pool, no larger than the PostgreSQL
connection pool, so a burst queues for a thread instead of opening connections or blocking the loop.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from jobserver import auth
from jobserver.redact import redact

T = TypeVar("T")

# The PostgreSQL store's pool holds at most 10 connections; stay under it so a thread never waits
# for a connection while holding its slot (env AEROFS_STORE_THREADS to tune).
STORE_THREADS = int(os.environ.get("AEROFS_STORE_THREADS", "8"))
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def store_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="aerofs-store")
    return _executor


async def offload(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking ``fn(*args, **kwargs)`` (a store call) on the bounded store thread pool."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(store_executor(), functools.partial(fn, *args, **kwargs))


def identity(handler: Any) -> tuple[str | None, bool]:
    """``(username, admin)`` of the request's user, memoised on the handler (see :func:`auth.caller`)."""
    cached = getattr(handler, "_aerofs_identity", None)
    if cached is None:
        js = handler.settings["aerofs_jobserver"]
        cached = handler._aerofs_identity = auth.caller(handler, js.admin_users, js.admin_group)
    return cached


class BaseHandler(ExtensionHandlerMixin, APIHandler):  # type: ignore[misc]
    @property
    def js(self) -> Any:
        """The :class:`jobserver.app.JobService` of this server."""
        return self.settings["aerofs_jobserver"]

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A blocking store call, off the event loop (see :func:`offload`)."""
        return await offload(fn, *args, **kwargs)

    @property
    def username(self) -> str:
        name = identity(self)[0]
        if not name:
            raise web.HTTPError(403)
        return name

    @property
    def admin(self) -> bool:
        return identity(self)[1]

    async def job_or_404(self, job_id: str) -> dict[str, Any]:
        job = await self.call(self.js.store.get_job, job_id)
        if job is None or (job["owner"] != self.username and not self.admin):
            # Another user's job is indistinguishable from a missing one.
            raise web.HTTPError(404, "no such job")
        return job

    def send_json(self, doc: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(doc, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            reason = exc.log_message % exc.args if exc.args else exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": redact(str(reason)), "reason": self._reason}))


def public_job(job: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in job.items() if k not in ("cancel_requested",)}
    return out

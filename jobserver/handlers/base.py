"""Shared handler base: authentication, the job server's services, permission checks, and
:meth:`BaseHandler.call` — the one way a handler touches the store.

The store is synchronous (psycopg's pool, sqlite3). A query run on the Tornado event loop stalls every
other request for its round trips, and under load that is where the seconds of latency came from. So
every store call goes through :func:`offload`: a bounded pool of threads (:class:`StoreThreads`), no
larger than the PostgreSQL connection pool, so a burst queues for a thread instead of opening
connections or blocking the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.log import log_request as jupyter_log_request
from jupyter_server.prometheus.log_functions import prometheus_log_method
from tornado import web

from jobserver import auth
from jobserver.identity_cache import CachingProvider
from jobserver.redact import redact

T = TypeVar("T")

# The PostgreSQL store's pool holds at most 10 connections; stay under it so a thread never waits
# for a connection while holding its slot (env AEROFS_STORE_THREADS to tune).
STORE_THREADS = int(os.environ.get("AEROFS_STORE_THREADS", "8"))


class StoreThreads:
    """The bounded pool of threads that run store calls for the event loop.

    Not ``loop.run_in_executor``: under the server bench its bookkeeping (a concurrent Future, a
    work item, the executor's semaphore, then an asyncio Future chained to the first with callbacks
    on both sides) was ~15% of the server's CPU, as much as the store call it carried. Here a call is
    one tuple on a C queue and one ``call_soon_threadsafe`` back. The ``size`` threads start with the
    server (or the first call); a call waits in the queue while all are busy.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._started = False
        self._lock = threading.Lock()

    def submit(
        self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any], fn: Callable[[], Any]
    ) -> None:
        if not self._started:
            self.start()
        self._queue.put((loop, fut, fn))

    def start(self) -> None:
        """Start the threads now (the job server does at start-up, see ``JobService.start``); idempotent."""
        with self._lock:
            if self._started:
                return
            for i in range(self.size):
                threading.Thread(target=self._work, name=f"aerofs-store-{i}", daemon=True).start()
            self._started = True

    def _work(self) -> None:
        get = self._queue.get
        while True:
            loop, fut, fn = get()
            try:
                result, error = fn(), None
            except BaseException as e:
                result, error = None, e
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(_settle, fut, result, error)
            del loop, fut, fn, result, error  # a finished call's objects do not outlive it here


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.cancelled():  # the awaiting request went away; the call itself did run
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


_threads = StoreThreads(STORE_THREADS)


def start_store_threads() -> int:
    """Start the store threads before the first request; how many there are (the store's connections
    should cover them)."""
    _threads.start()
    return _threads.size


async def offload(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking ``fn(*args, **kwargs)`` (a store call) on the bounded store threads."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()
    _threads.submit(loop, fut, functools.partial(fn, *args, **kwargs))
    return await fut


def identity(handler: Any) -> tuple[str | None, bool]:
    """``(username, admin)`` of the request's user, memoised on the handler (see :func:`auth.caller`)."""
    cached = getattr(handler, "_aerofs_identity", None)
    if cached is None:
        js = handler.settings["aerofs_jobserver"]
        cached = handler._aerofs_identity = auth.caller(handler, js.admin_users, js.admin_group)
    return cached


F = TypeVar("F", bound=Callable[..., Any])


def authenticated(method: F) -> F:
    """Like ``tornado.web.authenticated`` for an API: no user is a 401 whatever the method (tornado
    redirects a GET to a login page and answers 403 to the rest)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.current_user:
            raise web.HTTPError(401, "authentication required")
        return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _overrides(cls: type, name: str) -> bool:
    return getattr(cls, name, None) is not getattr(web.RequestHandler, name, None)


class AuthErrors:
    """No user is a 401 with ``WWW-Authenticate`` (jupyter_server's API handlers answer 403), and
    every error is a JSON ``{"message", "reason"}``."""

    def get_login_url(self: Any) -> str:
        # @web.authenticated calls this when there is no user; never redirect an API call to a login page.
        raise web.HTTPError(401, "authentication required")

    def check_xsrf_cookie(self: Any) -> None:
        # XSRF guards a cookie session; a request with no user at all is refused as a 401 anyway.
        if hasattr(self, "_jupyter_current_user") and not self._jupyter_current_user:
            return None
        return super().check_xsrf_cookie()  # type: ignore[misc]

    def write_error(self: Any, status_code: int, **kwargs: Any) -> None:
        reason = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            reason = exc.log_message % exc.args if exc.args else exc.log_message
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'token realm="aerofs"')
        if status_code == 405:  # RFC 9110: say which methods this resource has
            own = [m for m in self.SUPPORTED_METHODS if _overrides(type(self), m.lower())]
            self.set_header("Allow", ", ".join(own))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": redact(str(reason)), "reason": self._reason}))


class BaseHandler(AuthErrors, ExtensionHandlerMixin, APIHandler):  # type: ignore[misc]
    @property
    def js(self) -> Any:
        """The :class:`jobserver.app.JobService` of this server."""
        return self.settings["aerofs_jobserver"]

    @property
    def identity_provider(self) -> Any:
        """The server's identity provider behind the job server's identity cache (see
        :mod:`jobserver.identity_cache`); the provider itself when the cache is off."""
        proxy = self.__dict__.get("_aerofs_provider")
        if proxy is None:
            real = super().identity_provider
            cache = self.settings.get("aerofs_identity_cache")
            proxy = CachingProvider(real, cache) if cache is not None and cache.ttl > 0 else real
            self.__dict__["_aerofs_provider"] = proxy
        return proxy

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A blocking store call, off the event loop (see :func:`offload`)."""
        return await offload(fn, *args, **kwargs)

    @property
    def username(self) -> str:
        name = identity(self)[0]
        if not name:
            raise web.HTTPError(401, "authentication required")
        return name

    @property
    def admin(self) -> bool:
        return identity(self)[1]

    def check_query(self, *names: str) -> None:
        """400 for a query parameter this route does not take: a typo (``?stat=FAILED``) must not
        quietly answer as if it were not there. This server's own credentials are not the route's."""
        unknown = sorted(
            k
            for k in set(self.request.query_arguments) - {*names, "token", "_xsrf"}
            if not _is_cache_buster(k, self.request.query_arguments[k])
        )
        if unknown:
            raise web.HTTPError(400, "unknown query parameter(s): %s", ", ".join(unknown))

    async def job_or_404(self, job_id: str) -> dict[str, Any]:
        job = await self.js.job_reads.get(job_id)  # batched with other requests' (handlers.job_reads)
        if job is None or (job["owner"] != self.username and not self.admin):
            # Another user's job is indistinguishable from a missing one.
            raise web.HTTPError(404, "no such job")
        return job

    def _log(self) -> None:
        """The access log line and metric at the end of a request (tornado calls this).

        jupyter_server's log function writes a success at DEBUG level, but first builds it: the URI
        scrubbed of secrets, the user, a formatted message and a LogRecord, ~5% of the server's CPU
        under the bench, and the extension's logger is open to DEBUG even when every handler drops
        it. When no handler would write the line, only its request metric is recorded, as that
        function would; any other log function, level or status takes the usual path."""
        fn = self.settings.get("log_function")
        if (
            self.get_status() < 300
            and getattr(fn, "func", None) is jupyter_log_request
            and not _would_write(self.log, logging.DEBUG)
        ):
            if fn.keywords.get("record_prometheus_metrics", True):  # type: ignore[union-attr]
                prometheus_log_method(self)
            return
        super()._log()

    def send_json(self, doc: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(doc, default=str))


def _would_write(logger: logging.Logger, level: int) -> bool:
    """Whether a record of ``level`` on ``logger`` reaches a handler whose level lets it through (what
    ``Logger.callHandlers`` would find; filters can only drop records, so they change nothing here)."""
    if not logger.isEnabledFor(level):
        return False
    found = False
    c: logging.Logger | None = logger
    while c is not None:
        for h in c.handlers:
            found = True
            if level >= h.level:
                return True
        if not c.propagate:
            break
        c = c.parent
    return not found and level >= logging.lastResort.level if logging.lastResort else False


def _is_cache_buster(name: str, values: list[bytes]) -> bool:
    # JupyterLab's ServerConnection appends `?<milliseconds>` (a bare number, no value) to every GET
    # made with its default `cache: 'no-store'`; every JupyterLab client sends it.
    return name.isdigit() and all(v == b"" for v in values)


def public_job(job: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in job.items() if k not in ("cancel_requested",)}
    return out

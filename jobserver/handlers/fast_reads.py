"""The status poll (``GET aerofs/api/jobs/{id}``) without a ``RequestHandler``, when nothing about the
request needs one.

Nine requests in ten of a busy server are clients polling a job they own, with credentials the
identity cache has just seen. For those, building tornado's ``RequestHandler`` (its headers, ``clear``,
the UI module table), jupyter_server's ``prepare`` and ``finish`` and the routing through the ~100
rules of jupyter_server's own handlers cost about as much as the job read itself
(docs/operations.md, "The status poll without a RequestHandler"). :class:`FastJobReads` is a tornado
``Router`` put first in the application's rules: it answers such a poll itself, with the same
checks and the same answer, and returns ``None`` for anything else, which tornado then routes as
before (to :class:`jobserver.handlers.api.JobHandler`).

It answers only when every check jupyter_server makes comes out as a plain pass, decided from the
request's line and headers, which have all arrived when tornado routes the request:

- ``GET``, the exact route, no query but the token and JupyterLab's cache buster (``?tasks=1`` and
  typos go to the handler, which answers or refuses them);
- the server's Host check passes (jupyter_server's own ``check_host``, remembered per Host value);
- no ``Origin``/``Sec-Websocket-Origin`` (so the origin check passes and the CORS header is the
  token exception's or none) and no ``If-None-Match`` (no 304 to work out); and the server has no
  ``allow_origin``, ``allow_origin_pat`` nor ``allow_credentials`` configured, nor response transforms;
- the identity cache knows the caller (a user, remembered without side effects: see
  :mod:`jobserver.identity_cache`); a miss goes to the handler, which asks the provider and fills it;
- jupyter_server's access log would not write the line (the request metric is recorded here).

The job read is the batched one every handler uses (:class:`~jobserver.handlers.job_reads.JobReads`).
When the job is missing, not the caller's, or the read fails, the request is handed to the full
handler after all, which reads again and gives its usual answer (404, 500): those are rare, and one
code path for them is worth the second read. The answer itself is built as the handler builds it:
the handler's default headers (taken from a handler made once), ``Content-Type``, the ETag, the
token exception's ``Access-Control-Allow-Origin``; the server's activity is stamped and the request
metric recorded under ``JobHandler``'s name. ``tests/jobserver/test_request_path.py`` compares the
two paths' answers header by header and asserts every check on both.

``AerofsApp.fast_reads`` (env ``AEROFS_FAST_READS``, default on) turns it off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from typing import Any

from jupyter_server._tz import utcnow
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.log import log_request as jupyter_log_request
from jupyter_server.prometheus.metrics import HTTP_REQUEST_DURATION_SECONDS
from jupyter_server.utils import url_path_join
from tornado import httputil, iostream, routing, web
from tornado.http1connection import HTTP1Connection

from jobserver import auth
from jobserver.handlers.base import _is_cache_buster, _would_write, public_job

# Request headers that mean a check or an answer the fast path does not make: the handler decides.
_HANDLER_HEADERS = ("Origin", "Sec-Websocket-Origin", "If-None-Match")
_QUIET = logging.getLogger("jobserver.fast_reads.probe")  # the Host probe's warning: the handler logs it
_QUIET.disabled = True


class _Caller:
    """The part of a handler that the identity cache, jupyter_server's Host check, the identity
    provider's ``is_token_authenticated`` and :func:`jobserver.auth.caller` read: the request, the
    settings, the user and the attributes the provider set when it identified the caller."""

    log = _QUIET

    def __init__(self, request: httputil.HTTPServerRequest, settings: dict[str, Any]) -> None:
        self.request = request
        self.settings = settings
        self.current_user: Any = None


class _NoConnection:
    """Enough of a connection to build the handler whose default headers the fast path sends."""

    def set_close_callback(self, callback: Any) -> None:
        return None


class FastJobReads(routing.Router):
    def __init__(self, app: web.Application, handler: type[web.RequestHandler], name: str) -> None:
        self.app = app
        self.settings = app.settings
        self.handler = handler
        self.handler_kwargs = {"name": name}
        base = url_path_join(self.settings.get("base_url", "/"), "/aerofs/api/jobs/")
        self.route = re.compile(re.escape(base) + r"(?P<job_id>[0-9a-fA-F]{32})$")
        self.prefix = base
        self.hosts: dict[str, bool] = {}  # Host header -> jupyter_server's check passed
        self.answered = 0  # polls answered here (tests, the bench)
        self.handed_over = 0  # taken here, then handed to the handler (missing job, read error)
        self._label = f"{handler.__module__}.{handler.__name__}"
        self._metric: Any = None
        self._date = (0, b"")
        # Built from a handler made once (the headers it starts every answer with), at the first poll.
        self._headers: list[tuple[str, str]] | None = None
        self._head = b""  # the status line and those headers, encoded
        self._token_cors = False
        self._log: logging.Logger | None = None

    @staticmethod
    def applies(settings: dict[str, Any], app: web.Application) -> bool:
        """Whether this server's configuration lets the fast path give the handler's answer: CORS
        settings make the answer depend on more than this module replays; transforms (gzip) rewrite it."""
        return not (
            settings.get("allow_origin")
            or settings.get("allow_origin_pat")
            or settings.get("allow_credentials")
            or app.transforms
        )

    # -- routing ---------------------------------------------------------------------------------
    def find_handler(self, request: httputil.HTTPServerRequest, **kwargs: Any) -> Any:
        path = request.path
        if request.method != "GET" or not path.startswith(self.prefix):
            return None
        m = self.route.match(path)
        if m is None:
            return None
        for k, v in request.query_arguments.items():
            if k != "token" and not _is_cache_buster(k, v):
                return None
        if not isinstance(request.connection, HTTP1Connection):
            return None  # the answer is written as HTTP/1 bytes (see answer)
        headers = request.headers
        for h in _HANDLER_HEADERS:
            if h in headers:
                return None
        settings = self.settings
        if not self.applies(
            settings, self.app
        ):  # checked at install; again in case a later extension changed it
            return None
        caller = _Caller(request, settings)
        if not self._host_ok(caller):
            return None
        cache = settings.get("aerofs_identity_cache")
        provider = settings.get("identity_provider")
        if cache is None or cache.ttl <= 0 or provider is None:
            return None
        hit = cache.get(cache.key(caller, provider), count_miss=False)
        if hit is None:
            return None  # the handler asks the provider, and the cache remembers the answer
        user, attrs = hit
        for k, v in attrs.items():
            setattr(caller, k, v)
        caller.current_user = user
        if self._headers is None:
            self._prepare()
        assert self._log is not None
        fn = settings.get("log_function")
        if getattr(fn, "func", None) is not jupyter_log_request or _would_write(self._log, logging.DEBUG):
            return None  # the access line is written: the handler writes it
        try:
            token = bool(provider.is_token_authenticated(caller))
        except Exception:
            return None  # a provider that needs more of a handler than _Caller has
        return _Poll(self, request, m.group("job_id"), caller, token)

    def _host_ok(self, caller: _Caller) -> bool:
        host = caller.request.host
        ok = self.hosts.get(host)
        if ok is None:
            ok = bool(JupyterHandler.check_host(caller))  # type: ignore[arg-type]
            if ok:  # only passes are remembered (a refusal is the handler's 403, logged there)
                if len(self.hosts) > 256:
                    self.hosts.clear()
                self.hosts[host] = True
        return ok

    def _prepare(self) -> None:
        template = self.handler(
            self.app,
            httputil.HTTPServerRequest(
                connection=_NoConnection(),  # type: ignore[arg-type]
                start_line=httputil.RequestStartLine("GET", "/", "HTTP/1.1"),
                headers=httputil.HTTPHeaders({"Host": "localhost"}),
            ),
            **self.handler_kwargs,
        )
        # The headers a handler starts with (Server, X-Content-Type-Options, Content-Security-Policy,
        # the server's `headers` setting), encoded once with the status line; Date, Content-Type and
        # the rest are added per answer, in the order the handler sends them.
        self._headers = [(k, v) for k, v in template._headers.get_all() if k not in ("Date", "Content-Type")]
        self._head = b"".join(
            [b"HTTP/1.1 200 OK\r\n", *(f"{k}: {v}\r\n".encode("latin1") for k, v in self._headers)]
        )
        # jupyter_server's token exception (set_cors_headers): the request's Origin, here none.
        self._token_cors = "Access-Control-Allow-Origin" not in self.settings.get("headers", {})
        self._log = template.log  # type: ignore[attr-defined]
        fn = self.settings.get("log_function")
        record = getattr(fn, "keywords", {}).get("record_prometheus_metrics", True)
        self._metric = (
            HTTP_REQUEST_DURATION_SECONDS.labels(method="GET", handler=self._label, status_code=200)
            if record
            else None
        )

    # -- answering -------------------------------------------------------------------------------
    def date(self) -> bytes:
        now = int(time.time())
        if self._date[0] != now:  # tornado's Date has whole seconds: the same line all second long
            self._date = (now, f"Date: {httputil.format_timestamp(now)}\r\n".encode())
        return self._date[1]

    def answer(self, poll: _Poll, job: dict[str, Any]) -> None:
        body = json.dumps(public_job(job), default=str).encode()
        conn = poll.request.connection
        assert isinstance(conn, HTTP1Connection)
        # The response's head written as bytes, not through an HTTPHeaders and
        # ``HTTP1Connection.write_headers``: that builds, joins and re-checks every line of it per answer,
        # ~8% of the server's CPU in the full bench for lines that are the same on every poll. The
        # connection is told what ``write_headers`` would have told it: nothing, since with a
        # Content-Length there is no chunking (``write`` with a pre-encoded head is tornado's own,
        # documented, way), and the same Connection header, which depends on the request's version and
        # whether tornado will keep the connection open (its ``_can_keep_alive``, decided as it read the
        # request).
        parts = [self._head, self.date(), b"Content-Type: application/json\r\n"]
        if poll.token and self._token_cors:
            parts.append(b"Access-Control-Allow-Origin: \r\n")
        version = poll.request.version
        if version == "HTTP/1.1" and conn._disconnect_on_finish:  # tornado's own decision, see above
            parts.append(b"Connection: close\r\n")
        elif version == "HTTP/1.0" and poll.request.headers.get("Connection", "").lower() == "keep-alive":
            parts.append(b"Connection: Keep-Alive\r\n")
        parts += [
            b'Etag: "',
            hashlib.sha1(body).hexdigest().encode(),
            b'"\r\nContent-Length: ',
            str(len(body)).encode(),
            b"\r\n\r\n",
            body,
        ]
        conn.set_close_callback(None)
        try:
            conn.write(b"".join(parts))
            conn.finish()
        except iostream.StreamClosedError:  # the client went away; the handler would not know either
            pass
        self.settings["api_last_activity"] = utcnow()  # idle culling sees the poll
        if self._metric is not None:
            self._metric.observe(poll.request.request_time())
        self.answered += 1

    def hand_over(self, poll: _Poll) -> None:
        """Let the handler answer this request after all (it reads the job again)."""
        self.handed_over += 1
        delegate = self.app.get_handler_delegate(  # type: ignore[attr-defined]
            poll.request,
            self.handler,
            target_kwargs=self.handler_kwargs,
            path_kwargs={"job_id": poll.job_id.encode()},
        )
        request = poll.request
        start = httputil.RequestStartLine(request.method or "GET", request.uri or "", request.version)
        delegate.headers_received(start, request.headers)
        delegate.finish()


class _Poll(httputil.HTTPMessageDelegate):
    """One status poll the fast path answers: the read starts once the request has fully arrived."""

    def __init__(
        self,
        owner: FastJobReads,
        request: httputil.HTTPServerRequest,
        job_id: str,
        caller: _Caller,
        token: bool,
    ) -> None:
        self.owner = owner
        self.request = request
        self.job_id = job_id
        self.caller = caller
        self.token = token

    def data_received(self, chunk: bytes) -> None:
        return None  # a GET's body, should one come, is ignored as the handler ignores it

    def finish(self) -> None:
        js = self.owner.settings["aerofs_jobserver"]
        js.job_reads.request(self.job_id).add_done_callback(self._read)

    def _read(self, fut: Any) -> None:
        owner = self.owner
        try:
            if fut.cancelled() or fut.exception() is not None:
                owner.hand_over(self)  # the handler reads again: its answer, or its 500
                return
            job = fut.result()
            js = owner.settings["aerofs_jobserver"]
            name, admin = auth.caller(self.caller, js.admin_users, js.admin_group)
            if job is None or not name or (job["owner"] != name and not admin):
                owner.hand_over(self)  # the handler's 404 (another's job is a missing one), or 401
                return
            owner.answer(self, job)
        except Exception:
            # A bug here must not leave the client waiting for an answer that never comes.
            logging.getLogger(__name__).exception("aerofs: the status poll's fast path failed")
            stream = getattr(self.request.connection, "stream", None)
            if stream is not None:
                stream.close()


def install(app: web.Application, handler: type[web.RequestHandler], name: str) -> FastJobReads | None:
    """Put the fast path in front of every route of ``app`` (None: this configuration needs the handler)."""
    if not FastJobReads.applies(app.settings, app):
        return None
    router = FastJobReads(app, handler, name)
    app.default_router.rules.insert(0, routing.Rule(routing.AnyMatches(), router))
    return router

"""Thin-client mode: a user's Jupyter server forwards ``aerofs/api/*`` and the events WebSocket to the
team's job server, so the labextension and ``aerofs_kernel`` talk to their own server unchanged.

Configured by ``AerofsApp.jobserver_url`` (env ``AEROFS_JOBSERVER_URL``: the job server's base URL, e.g.
``http://hub:8000/services/aerofs/``) and a token for it, from ``AEROFS_JOBSERVER_TOKEN``, else the file
named by ``AEROFS_JOBSERVER_TOKEN_FILE`` (a mounted secret, re-read when it changes), else JupyterHub's
``JUPYTERHUB_API_TOKEN`` (the user's own hub token: the job server learns who calls from the hub's OAuth).

The local server still authenticates every request itself (token, cookie + XSRF, or hub OAuth): nothing
is open here either. What goes upstream is the request's method, path, query, body and a few headers,
with the configured token; never the caller's cookies or their credentials for this server.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import httpclient, httputil, web, websocket

from jobserver.handlers.base import AuthErrors, authenticated
from jobserver.redact import redact

TOKEN_ENV = "AEROFS_JOBSERVER_TOKEN"
TOKEN_FILE_ENV = "AEROFS_JOBSERVER_TOKEN_FILE"
# Request headers worth passing on; everything else (Cookie, Authorization, X-XSRFToken...) stays here.
PASS_REQUEST = ("Accept", "Content-Type", "Idempotency-Key", "X-Correlation-Id")
PASS_RESPONSE = ("Content-Type", "Content-Disposition", "Location", "WWW-Authenticate")
API = "aerofs/api/"


class Upstream:
    """Where the team's job server is and how to authenticate to it."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.base = url.rstrip("/") + "/"
        self._token = token
        self._file_cache: tuple[str, float, str] | None = None

    def token(self) -> str:
        if self._token is not None:
            return self._token
        if os.environ.get(TOKEN_ENV):
            return os.environ[TOKEN_ENV]
        path = os.environ.get(TOKEN_FILE_ENV)
        if path:
            try:
                mtime = os.stat(path).st_mtime
                if not self._file_cache or self._file_cache[:2] != (path, mtime):
                    with open(path, encoding="utf-8") as f:
                        self._file_cache = (path, mtime, f.read().strip())
                return self._file_cache[2]
            except OSError:
                return ""
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    def headers(self) -> dict[str, str]:
        tok = self.token()
        return {"Authorization": f"token {tok}"} if tok else {}

    def http_url(self, path: str, query: str = "") -> str:
        return self.base + API + path + (f"?{query}" if query else "")

    def ws_url(self, path: str, query: str = "") -> str:
        parts = urlsplit(self.http_url(path, query))
        scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
        return urlunsplit(parts._replace(scheme=scheme))

    def __repr__(self) -> str:  # never the token
        return f"<Upstream {redact(self.base)}>"


def _query(handler: Any) -> str:
    """The request's query minus this server's own credentials (``?token=`` in a URL, ``_xsrf``)."""
    pairs = parse_qsl(handler.request.query, keep_blank_values=True)
    return urlencode([(k, v) for k, v in pairs if k not in ("token", "_xsrf")])


def upstream_of(handler: Any) -> Upstream:
    return handler.settings["aerofs_upstream"]


class ForwardHandler(AuthErrors, APIHandler):  # type: ignore[misc]
    """Every REST route: the same request, sent on to the job server; its answer, sent back."""

    @property
    def upstream(self) -> Upstream:
        return upstream_of(self)

    async def _forward(self, path: str) -> None:
        up = self.upstream
        headers = up.headers()
        for h in PASS_REQUEST:
            if h in self.request.headers:
                headers[h] = self.request.headers[h]
        body = self.request.body if self.request.method in ("POST", "PUT", "PATCH") else None
        if self.request.method == "POST" and not body:
            body = b""
        state: dict[str, Any] = {"started": False}

        def on_header(line: str) -> None:
            # Status line first, then headers; a 100-continue would restart the sequence.
            line = line.strip()
            if line.startswith("HTTP/"):
                state["status"] = httputil.parse_response_start_line(line)
                state["headers"] = httputil.HTTPHeaders()
            elif line:
                state["headers"].parse_line(line)

        def on_chunk(chunk: bytes) -> None:
            # Downloads stream through without being held in memory; JSON is rewritten below.
            if not state["started"]:
                self._start(state)
                state["started"] = True
            if state.get("rewrite") is not None:
                state["rewrite"].append(chunk)
            else:
                self.write(chunk)
                self.flush()

        req = httpclient.HTTPRequest(
            up.http_url(path, _query(self)),
            method=self.request.method,
            headers=headers,
            body=body,
            header_callback=on_header,
            streaming_callback=on_chunk,
            connect_timeout=10,
            request_timeout=3600 if path.endswith("/outputs") else 120,
            follow_redirects=False,
            decompress_response=True,
        )
        try:
            await httpclient.AsyncHTTPClient().fetch(req, raise_error=False)
        except Exception as e:  # connection refused, DNS, TLS, timeout
            if state["started"]:
                raise
            self.log.warning("aerofs: job server %s unreachable: %s", up, redact(str(e)))
            self._json(502, {"message": f"the team job server is unreachable: {redact(str(e))}"})
            return
        if not state["started"]:
            self._start(state)
        if state.get("rewrite") is not None:
            self.write(self._rewrite(path, b"".join(state["rewrite"])))
        self.finish()

    def _start(self, state: dict[str, Any]) -> None:
        status = state.get("status")
        self.set_status(status.code if status else 502)
        hdrs = state.get("headers") or httputil.HTTPHeaders()
        for h in PASS_RESPONSE:
            if h in hdrs:
                value = hdrs[h]
                if h == "Location":
                    value = self._local(value)
                self.set_header(h, value)
        if self.request.path.endswith("/openapi.json"):
            state["rewrite"] = []

    def _local(self, url: str) -> str:
        """An upstream URL of the API, as the same resource on this server."""
        path = urlsplit(url).path
        i = path.find("/" + API)
        return self.base_url.rstrip("/") + path[i:] if i >= 0 else url

    def _rewrite(self, path: str, body: bytes) -> bytes:
        """The OpenAPI document's server is this one, not the job server behind it."""
        try:
            doc = json.loads(body)
            doc["servers"] = [{"url": self.base_url.rstrip("/") + "/" + API.rstrip("/")}]
            return json.dumps(doc).encode()
        except (ValueError, TypeError):
            return body

    def _json(self, status: int, doc: dict[str, Any]) -> None:
        self.clear()
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(doc))

    @authenticated
    async def get(self, path: str) -> None:
        await self._forward(path)

    @authenticated
    async def post(self, path: str) -> None:
        await self._forward(path)

    @authenticated
    async def delete(self, path: str) -> None:
        await self._forward(path)


class ForwardEventsHandler(WebSocketMixin, JupyterHandler, websocket.WebSocketHandler):  # type: ignore[misc]
    """The events WebSocket: one upstream connection per client, messages relayed both ways."""

    upstream_ws: websocket.WebSocketClientConnection | None = None

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if not self.current_user:
            raise web.HTTPError(401, "authentication required")
        up = upstream_of(self)
        req = httpclient.HTTPRequest(
            up.ws_url("events", _query(self)), headers=up.headers(), connect_timeout=10
        )
        try:
            # Connect before accepting the client: a refusal upstream (401/403) is a refusal here.
            self.upstream_ws = await websocket.websocket_connect(req)
        except httpclient.HTTPClientError as e:
            raise web.HTTPError(e.code if e.code in (401, 403, 404) else 502) from None
        except Exception as e:
            self.log.warning("aerofs: job server events unreachable: %s", redact(str(e)))
            raise web.HTTPError(502) from None
        res = super().get(*args, **kwargs)
        if res is not None:
            await res

    def open(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        from tornado.ioloop import IOLoop

        IOLoop.current().add_callback(self._relay)

    async def _relay(self) -> None:
        up = self.upstream_ws
        while up is not None:
            msg = await up.read_message()
            if msg is None:  # upstream closed: the client reconnects with ?since=
                self.close(1011, "job server connection closed")
                return
            try:
                await self.write_message(msg, binary=isinstance(msg, bytes))
            except websocket.WebSocketClosedError:
                up.close()
                return

    def on_message(self, message: str | bytes) -> None:
        if self.upstream_ws is not None:
            self.upstream_ws.write_message(message, binary=isinstance(message, bytes))

    def on_close(self) -> None:
        if self.upstream_ws is not None:
            self.upstream_ws.close()
            self.upstream_ws = None


def routes(prefix: str) -> list[tuple[str, type]]:
    api = prefix.rstrip("/") + "/api"
    return [
        (f"{api}/events", ForwardEventsHandler),
        (f"{api}/(.*)", ForwardHandler),
    ]


def settings(url: str) -> dict[str, Any]:
    return {"aerofs_upstream": Upstream(url)}

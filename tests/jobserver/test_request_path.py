"""Every check jupyter_server's API handlers make, on the routes a client hits most (``GET jobs``,
``GET jobs/{id}``, ``POST jobs``, ``DELETE jobs/{id}``), asserted on the answers: the Host allow-list
(403), authentication by token and by a session (the test identity provider's user without the
server token, as a browser cookie would be), no user (401 + WWW-Authenticate), the XSRF rule for a
session's unsafe methods (403 without the token, accepted with it, never asked of a token), the
Origin check (404 cross-site without CORS settings), CORS headers (the token exception,
``allow_origin_pat``, ``allow_credentials``), and that a request still records the server's activity
(idle culling) and its request metric. Whoever makes these routes' request path lighter keeps these
passing (a lighter ``prepare`` was measured and not kept: docs/operations.md).

``GET jobs/{id}`` has two paths: the status poll's fast path (:mod:`jobserver.handlers.fast_reads`),
which answers a known caller's plain poll without a handler, and ``JobHandler`` for everything else.
Each check runs twice here, the second time with the identity cache warm, so the fast path sees
every request it might take; the tests below also compare its answers with the handler's, header by
header, and count which path answered."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import jp_sync, submit_job

pytestmark = pytest.mark.timeout(120)

HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Credentials",
    "WWW-Authenticate",
    "Content-Type",
    "Content-Security-Policy",
    "X-Content-Type-Options",
)


def _fast(jp_serverapp: Any) -> Any:
    """The server's fast path for status polls (None when not installed)."""
    return jp_serverapp.web_app.settings.get("aerofs_fast_reads")


class Client:
    """Sends a request to ``aerofs/api/<path>`` as someone: the answer's status and its security
    headers (no exception for 4xx)."""

    def __init__(self, http: Any, url: str, token: str, dst: Any) -> None:
        self.http, self.url, self.token, self.dst, self.posts = http, url, token, dst, 0

    async def send(
        self, path: str, method: str = "GET", *, token: bool = True, who: str | None = "alice", **headers: str
    ) -> tuple[int, dict[str, str | None]]:
        r = await self.fetch(path, method, token=token, who=who, **headers)
        return r.code, {h: r.headers.get(h) for h in HEADERS}

    async def fetch(
        self, path: str, method: str = "GET", *, token: bool = True, who: str | None = "alice", **headers: str
    ) -> Any:
        """The whole answer (status, every header, body)."""
        hdrs = dict(headers)
        if token:
            hdrs["Authorization"] = f"token {self.token}"
        if who:
            hdrs["X-Test-User"] = who
        body = None
        if method == "POST":
            self.posts += 1
            body = json.dumps(
                {"pipeline": "sleepy", "params": {"src": ["a"], "dst": str(self.dst / str(self.posts))}}
            )
        return await self.http.fetch(
            self.url + path, method=method, headers=hdrs, body=body, raise_error=False, follow_redirects=False
        )


@pytest.fixture
def aerofs_config(on_both_databases: dict[str, Any]) -> dict[str, Any]:
    # Both stores: the fast path's job read is the event loop's on PostgreSQL, a store thread's on SQLite.
    return on_both_databases


@pytest.fixture(autouse=True)
def access_log_at_info(jp_serverapp: Any) -> Any:
    """The extension's log at INFO, as a server runs by default: the DEBUG access line of a success is
    not written, so the fast path may answer (pytest-jupyter's server logs at DEBUG)."""
    js = jp_serverapp.web_app.settings.get("aerofs_jobserver")
    log = js.app.log if js is not None else None
    level = log.level if log is not None else None
    if log is not None:
        log.setLevel("INFO")
    yield
    if log is not None:
        log.setLevel(level)


@pytest.fixture
def client(jp_serverapp: Any, http_server_client: Any, tmp_path: Any) -> Client:
    url = f"{jp_serverapp.web_app.settings['base_url']}aerofs/api/"  # the client adds 127.0.0.1:port
    return Client(http_server_client, url, jp_serverapp.identity_provider.token, tmp_path / "posted")


XSRF = "0123456789abcdef0123456789abcdef"  # double submit: the same value as cookie and header


@jp_sync
async def test_every_check_on_the_hot_routes(
    client: Client, jp_fetch: Any, tmp_path: Any, jp_serverapp: Any
) -> None:
    fast = _fast(jp_serverapp)
    assert fast is not None  # installed by default: the second round below goes through it
    jid = await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o")})
    one = f"jobs/{jid}"
    hot = [("jobs", "GET"), (one, "GET"), ("jobs", "POST"), (one, "DELETE")]
    # Twice: the first round fills the identity cache, the second is what a polling client sends.
    for path, method in hot + hot:
        # token + user: fine (a DELETE answers 409 once the job is cancelled)
        code, h = await client.send(path, method)
        assert code in (200, 202, 409), (path, method, code)
        # no user at all: 401 and how to authenticate
        code, h = await client.send(path, method, who=None)
        assert (code, h["WWW-Authenticate"]) == (401, 'token realm="aerofs"'), (path, method)
        # a Host outside the allow-list (DNS rebinding): refused before anything else
        code, _ = await client.send(path, method, Host="evil.example.com:8888")
        assert code == 403, (path, method)
        code, _ = await client.send(path, method, who=None, Host="evil.example.com")
        assert code == 403, (path, method)
        # token-authenticated: cross-origin allowed and told so (jupyter_server's token exception)
        code, h = await client.send(path, method, Origin="https://elsewhere.example")
        assert code in (200, 202, 409) and h["Access-Control-Allow-Origin"] == "https://elsewhere.example"
        # a session without the token: a cross-site Origin is refused (no CORS settings)
        code, h = await client.send(path, method, token=False, Origin="https://elsewhere.example")
        assert code == 404 and h["Access-Control-Allow-Origin"] is None, (path, method, code)
    for path, method in [("jobs", "POST"), (one, "DELETE")]:
        # a session's unsafe method needs the XSRF token...
        code, _ = await client.send(path, method, token=False)
        assert code == 403, (path, method)
        code, _ = await client.send(
            path, method, token=False, Cookie=f"_xsrf={XSRF}", **{"X-XSRFToken": "wrong"}
        )
        assert code == 403, (path, method)
        # ...and passes with it
        code, _ = await client.send(
            path, method, token=False, Cookie=f"_xsrf={XSRF}", **{"X-XSRFToken": XSRF}
        )
        assert code in (200, 202, 409), (path, method, code)
    # a session's safe method needs none
    code, _ = await client.send(one, "GET", token=False)
    assert code == 200
    # Of all those, the fast path answered only the plain polls of a known caller: both rounds' token
    # polls (`GET jobs` before them had the same credentials) and the session's poll just above (its
    # credentials were seen by the XSRF checks); never one with an Origin, a foreign Host or no user.
    assert (fast.answered, fast.handed_over) == (3, 0)


@jp_sync
async def test_fast_path_answers_as_the_handler(
    client: Client, jp_fetch: Any, tmp_path: Any, jp_serverapp: Any
) -> None:
    """The same request answered by both paths (``?tasks=0`` takes the handler and changes nothing in
    the answer): the same status, body and headers, but for the Date."""
    fast = _fast(jp_serverapp)
    jid = await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o")})
    assert (await client.send(f"jobs/{jid}", "DELETE"))[0] == 200  # cancelled: the answer stays put
    for token in (True, False):  # token-authenticated (jupyter's CORS exception) and a session
        await client.fetch(f"jobs/{jid}", token=token)  # the identity cache learns the caller
        before = fast.answered
        by_handler = await client.fetch(f"jobs/{jid}?tasks=0", token=token)
        by_fast = await client.fetch(f"jobs/{jid}", token=token)
        assert fast.answered == before + 1
        assert (by_fast.code, by_fast.body) == (by_handler.code, by_handler.body) == (200, by_fast.body)
        assert json.loads(by_fast.body)["state"] == "CANCELLED"

        def headers(r: Any) -> list[tuple[str, str]]:
            return sorted((k, v) for k, v in r.headers.get_all() if k != "Date")

        assert headers(by_fast) == headers(by_handler), token
        assert ("Access-Control-Allow-Origin" in by_fast.headers) is token
        # a conditional poll is the handler's: 304 for the ETag the fast path sent
        before = fast.answered
        r = await client.fetch(f"jobs/{jid}", token=token, **{"If-None-Match": by_fast.headers["Etag"]})
        assert r.code == 304 and fast.answered == before


@jp_sync
async def test_fast_path_hands_over_what_it_cannot_answer(
    client: Client, jp_fetch: Any, tmp_path: Any, jp_serverapp: Any
) -> None:
    """A missing job and another user's job: the handler's 404, the same for both (the fast path
    read them, then handed the request over); a known caller's query the route does not take: 400."""
    fast = _fast(jp_serverapp)
    jid = await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o")})
    assert (await client.send(f"jobs/{jid}"))[0] == 200
    assert (await client.send(f"jobs/{jid}", who="bob"))[0] == 404  # bob's credentials: now known
    answers = []
    for who, job in [("alice", "0" * 32), ("bob", jid), ("bob", "0" * 32)]:
        r = await client.fetch(f"jobs/{job}", who=who)
        answers.append((r.code, json.loads(r.body)))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0] == (404, {"message": "no such job", "reason": "Not Found"})
    assert fast.handed_over == 3
    assert (await client.send(f"jobs/{jid}?stat=1"))[0] == 400
    assert (fast.handed_over, fast.answered) == (3, 0)  # the typo never reached the fast path


class TestFastPathOff:
    @pytest.fixture
    def aerofs_config(self, on_both_databases: dict[str, Any]) -> dict[str, Any]:
        return {**on_both_databases, "fast_reads": False}

    @jp_sync
    async def test_not_installed(
        self, client: Client, jp_fetch: Any, tmp_path: Any, jp_serverapp: Any
    ) -> None:
        assert _fast(jp_serverapp) is None
        jid = await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o")})
        for _ in range(2):
            assert (await client.send(f"jobs/{jid}"))[0] == 200


@jp_sync
async def test_activity_and_request_metric_recorded(
    client: Client, jp_serverapp: Any, jp_fetch: Any, tmp_path
):
    from test_request_costs import _requests_seen

    jid = await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o")})
    settings = jp_serverapp.web_app.settings
    fast = _fast(jp_serverapp)
    settings["aerofs_identity_cache"].clear()  # the submit's credentials: forgotten
    for answered in (0, 1):  # the handler (identity cache cold), then the fast path (warm)
        settings.pop("api_last_activity", None)
        before = _requests_seen("jobserver.handlers.api.JobHandler")
        r = await jp_fetch("aerofs", "api", "jobs", jid, headers={"X-Test-User": "alice"})
        assert r.code == 200 and fast.answered == answered
        assert settings.get("api_last_activity") is not None  # idle culling sees the poll
        assert _requests_seen("jobserver.handlers.api.JobHandler") == before + 1


class TestCorsSettings:
    @pytest.fixture
    def jp_server_config(self, jp_server_config: dict[str, Any]) -> dict[str, Any]:
        jp_server_config["ServerApp"].update(
            allow_origin_pat=r"https://(lab|hub)\.example", allow_credentials=True
        )
        return jp_server_config

    @jp_sync
    async def test_allow_origin_pat_and_credentials(
        self, client: Client, jp_fetch: Any, tmp_path: Any, jp_serverapp: Any
    ) -> None:
        assert _fast(jp_serverapp) is None  # CORS settings: every poll is the handler's
        jid = await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o")})
        for path in ("jobs", f"jobs/{jid}"):
            code, h = await client.send(path, token=False, Origin="https://lab.example")
            assert code == 200 and h["Access-Control-Allow-Origin"] == "https://lab.example", h
            assert h["Access-Control-Allow-Credentials"] == "true"
            code, h = await client.send(path, token=False, Origin="https://evil.example")
            assert code == 404 and h["Access-Control-Allow-Origin"] is None
            code, h = await client.send(path, Origin="https://evil.example")  # token: origin not checked
            assert code == 200 and h["Access-Control-Allow-Origin"] is None  # but not granted CORS either


async def _raw_get(
    reader: Any, writer: Any, path: str, version: str, token: str, **headers: str
) -> tuple[str, dict[str, str], bytes]:
    """One GET on an open connection, written and read as bytes: the status line, the headers (as
    sent, names lowercased) and the body."""
    lines = [
        f"GET {path} {version}",
        "Host: 127.0.0.1",
        f"Authorization: token {token}",
        "X-Test-User: alice",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin1").split("\r\n")
    fields = dict(ln.split(": ", 1) if ": " in ln else (ln.rstrip(":"), "") for ln in head[1:] if ln)
    got = {k.lower(): v for k, v in fields.items()}
    return head[0], got, await reader.readexactly(int(got["content-length"]))


@jp_sync
@pytest.mark.parametrize(
    ("version", "conn", "answer", "stays_open"),
    [
        ("HTTP/1.1", None, None, True),
        ("HTTP/1.1", "close", "close", False),
        ("HTTP/1.0", "keep-alive", "Keep-Alive", True),
        ("HTTP/1.0", None, None, False),
    ],
)
async def test_fast_path_keeps_or_closes_the_connection_as_tornado_does(
    version: str,
    conn: str | None,
    answer: str | None,
    stays_open: bool,
    jp_fetch: Any,
    jp_serverapp: Any,
    http_server_port: Any,
    tmp_path: Any,
) -> None:
    """The fast path writes its answer's head as bytes: the Connection header and whether the
    connection stays open follow the request's version and Connection header exactly as tornado's
    ``write_headers`` has them for the handler (``?tasks=0`` takes the handler)."""
    import asyncio

    fast = _fast(jp_serverapp)
    jid = await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o")})
    token = jp_serverapp.identity_provider.token
    path = f"{jp_serverapp.web_app.settings['base_url']}aerofs/api/jobs/{jid}"
    extra = {"Connection": conn} if conn else {}
    reader, writer = await asyncio.open_connection("127.0.0.1", http_server_port[1])
    await _raw_get(reader, writer, path, "HTTP/1.1", token)  # the identity cache learns the caller
    writer.close()
    seen = []
    for query in ("?tasks=0", ""):  # the handler's answer, then the fast path's
        reader, writer = await asyncio.open_connection("127.0.0.1", http_server_port[1])
        try:
            before = fast.answered
            status, got, body = await _raw_get(reader, writer, path + query, version, token, **extra)
            assert fast.answered == before + (query == "")
            assert got.get("connection") == answer
            if stays_open:  # a second request on the same connection is answered
                again = await _raw_get(reader, writer, path, version, token, **extra)
                assert again[0] == status and again[2] == body
            else:  # tornado closes the connection after the answer
                assert await asyncio.wait_for(reader.read(), 30) == b""
            got.pop("date")
            seen.append((status, got, body))
        finally:
            writer.close()
    assert seen[0] == seen[1]
    assert seen[0][0] == "HTTP/1.1 200 OK"  # tornado answers as HTTP/1.1 whatever the request's version

"""Every check jupyter_server's API handlers make, on the routes a client hits most (``GET jobs``,
``GET jobs/{id}``, ``POST jobs``, ``DELETE jobs/{id}``), asserted on the answers: the Host allow-list
(403), authentication by token and by a session (the test identity provider's user without the
server token, as a browser cookie would be), no user (401 + WWW-Authenticate), the XSRF rule for a
session's unsafe methods (403 without the token, accepted with it, never asked of a token), the
Origin check (404 cross-site without CORS settings), CORS headers (the token exception,
``allow_origin_pat``, ``allow_credentials``), and that a request still records the server's activity
(idle culling) and its request metric. Whoever makes these routes' request path lighter keeps these
passing (a lighter ``prepare`` was measured and not kept: docs/operations.md)."""

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


class Client:
    """Sends a request to ``aerofs/api/<path>`` as someone: the answer's status and its security
    headers (no exception for 4xx)."""

    def __init__(self, http: Any, url: str, token: str, dst: Any) -> None:
        self.http, self.url, self.token, self.dst, self.posts = http, url, token, dst, 0

    async def send(
        self, path: str, method: str = "GET", *, token: bool = True, who: str | None = "alice", **headers: str
    ) -> tuple[int, dict[str, str | None]]:
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
        r = await self.http.fetch(
            self.url + path, method=method, headers=hdrs, body=body, raise_error=False, follow_redirects=False
        )
        return r.code, {h: r.headers.get(h) for h in HEADERS}


@pytest.fixture
def client(jp_serverapp: Any, http_server_client: Any, tmp_path: Any) -> Client:
    url = f"{jp_serverapp.web_app.settings['base_url']}aerofs/api/"  # the client adds 127.0.0.1:port
    return Client(http_server_client, url, jp_serverapp.identity_provider.token, tmp_path / "posted")


XSRF = "0123456789abcdef0123456789abcdef"  # double submit: the same value as cookie and header


@jp_sync
async def test_every_check_on_the_hot_routes(client: Client, jp_fetch: Any, tmp_path: Any) -> None:
    jid = await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o")})
    one = f"jobs/{jid}"
    for path, method in [("jobs", "GET"), (one, "GET"), ("jobs", "POST"), (one, "DELETE")]:
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


@jp_sync
async def test_activity_and_request_metric_recorded(
    client: Client, jp_serverapp: Any, jp_fetch: Any, tmp_path
):
    from test_request_costs import _requests_seen

    jid = await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o")})
    settings = jp_serverapp.web_app.settings
    settings.pop("api_last_activity", None)
    before = _requests_seen("jobserver.handlers.api.JobHandler")
    r = await jp_fetch("aerofs", "api", "jobs", jid, headers={"X-Test-User": "alice"})
    assert r.code == 200
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
        self, client: Client, jp_fetch: Any, tmp_path: Any
    ) -> None:
        jid = await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o")})
        for path in ("jobs", f"jobs/{jid}"):
            code, h = await client.send(path, token=False, Origin="https://lab.example")
            assert code == 200 and h["Access-Control-Allow-Origin"] == "https://lab.example", h
            assert h["Access-Control-Allow-Credentials"] == "true"
            code, h = await client.send(path, token=False, Origin="https://evil.example")
            assert code == 404 and h["Access-Control-Allow-Origin"] is None
            code, h = await client.send(path, Origin="https://evil.example")  # token: origin not checked
            assert code == 200 and h["Access-Control-Allow-Origin"] is None  # but not granted CORS either

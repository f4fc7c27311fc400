"""The identity cache in front of the identity provider (jobserver.identity_cache): the same
credentials are asked about once per TTL, different credentials never share an answer, and a
request whose answer set a cookie is never served from the cache."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from conftest import jp_sync, submit_job, user
from identity import CountingHeaderIdentityProvider
from tornado.httpclient import HTTPClientError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def jp_server_config(js_dir: Any, aerofs_config: dict[str, Any]) -> dict[str, Any]:
    CountingHeaderIdentityProvider.calls = 0
    return {
        "ServerApp": {
            "jpserver_extensions": {"jobserver": True},
            "identity_provider_class": "identity.CountingHeaderIdentityProvider",
        },
        "AerofsApp": {
            "data_dir": str(js_dir / "data"),
            "runner_module": "fake_runner",
            "workers": 1,
            "identity_cache_ttl": 0.5,
            **aerofs_config,
        },
    }


async def _jobs(fetch: Any, who: str | None) -> Any:
    try:
        r = await fetch("aerofs", "api", "jobs", headers=user(who))
    except HTTPClientError as e:
        return e.code
    return [j["owner"] for j in json.loads(r.body)["jobs"]]


@jp_sync
async def test_same_credentials_asked_once_per_ttl(jp_fetch, tmp_path):
    CountingHeaderIdentityProvider.calls = 0
    await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o")})
    for _ in range(5):  # a POST and GETs with the same credentials: one question
        assert await _jobs(jp_fetch, "alice") == ["alice"]
    assert CountingHeaderIdentityProvider.calls == 1
    # other credentials: their own answer, never alice's
    assert await _jobs(jp_fetch, "bob") == []
    assert await _jobs(jp_fetch, None) == 401
    assert CountingHeaderIdentityProvider.calls == 3
    # JupyterLab's cache buster (?<milliseconds>) is not part of the key
    await jp_fetch("aerofs", "api", "jobs", headers=user("alice"), params={"1700000000000": ""})
    assert CountingHeaderIdentityProvider.calls == 3
    await asyncio.sleep(0.6)  # past the TTL: asked again
    assert await _jobs(jp_fetch, "alice") == ["alice"]
    assert CountingHeaderIdentityProvider.calls == 4


@jp_sync
async def test_a_new_server_token_drops_cached_answers(jp_fetch, jp_serverapp):
    assert await _jobs(jp_fetch, "alice") == []
    provider = jp_serverapp.identity_provider
    old = provider.token
    provider.token = "another-token"
    try:
        await _jobs(jp_fetch, "alice")
        assert CountingHeaderIdentityProvider.calls == 2
    finally:
        provider.token = old


@pytest.mark.parametrize("aerofs_config", [{"identity_cache_ttl": 0}])
@jp_sync
async def test_ttl_zero_asks_every_time(jp_fetch):
    for _ in range(3):
        assert await _jobs(jp_fetch, "alice") == []
    assert CountingHeaderIdentityProvider.calls == 3


class TestJupyterTokenProvider:
    """jupyter_server's own provider: a token request without the login cookie is answered with a
    new cookie every time (never from the cache); with the cookie it is cached."""

    @pytest.fixture
    def jp_server_config(self, token_server_config: dict[str, Any]) -> dict[str, Any]:
        return token_server_config

    @jp_sync
    async def test_cookie_set_every_time_without_one(self, jp_fetch, jp_serverapp):
        cache = jp_serverapp.web_app.settings["aerofs_identity_cache"]
        for _ in range(2):
            r = await jp_fetch("aerofs", "api", "jobs")
            assert any("username-" in c for c in r.headers.get_list("Set-Cookie"))
        assert cache.hits == 0
        cookie = next(c for c in r.headers.get_list("Set-Cookie") if "username-" in c).split(";")[0]
        for _ in range(3):
            r = await jp_fetch("aerofs", "api", "jobs", headers={"Cookie": cookie})
            assert r.code == 200
            assert not any("username-" in c for c in r.headers.get_list("Set-Cookie"))
        assert cache.hits == 2
        # a bad token with the good cookie is a different key: the provider decides (the cookie
        # alone still identifies the browser, exactly as without the cache)
        bad = {"Cookie": cookie, "Authorization": "token not-the-token"}
        r = await jp_fetch("aerofs", "api", "jobs", headers=bad)
        assert r.code == 200 and cache.hits == 2


def _key(headers: list[tuple[str, str]], query: str = "") -> tuple:
    from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

    from jobserver.identity_cache import IdentityCache

    h = HTTPHeaders({"Host": "127.0.0.1"})
    for k, v in headers:
        h.add(k, v)
    req = HTTPServerRequest(
        start_line=RequestStartLine("GET", "/aerofs/api/jobs" + query, "HTTP/1.1"), headers=h
    )

    class Handler:
        request = req

    return IdentityCache().key(Handler(), _PROVIDER)


class _Provider:
    token = "t"


_PROVIDER = _Provider()  # one provider: its identity is part of the key


def test_key_ignores_per_request_headers_however_spelled():
    base = [("Authorization", "token a"), ("Cookie", "c=1")]
    plain = _key(base)
    for noise in (
        ("accept-encoding", "gzip"),
        ("X-CORRELATION-ID", "abc"),
        ("Idempotency-Key", "k"),
        ("content-length", "12"),
    ):
        assert _key([*base, noise]) == plain, noise
    # what may carry identity is part of the key, whatever its case
    assert _key([("Authorization", "token b"), ("Cookie", "c=1")]) != plain
    assert _key([*base, ("x-forwarded-user", "mallory")]) != plain
    assert _key(base, "?token=x") != plain

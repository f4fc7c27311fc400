"""Who is the caller and who is admin: the embedded default (a personal server with its own token)
and JupyterHub identity (groups and scopes from the hub's user model, via a stand-in provider)."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
from typing import Any

import pytest
from conftest import jp_sync, post_job, submit_job
from tornado.httpclient import HTTPClientError

pytestmark = pytest.mark.timeout(120)

HUB_USERS = {
    "t-carol": {"name": "carol", "groups": ["aerofs-admins"], "scopes": ["access:services"]},
    "t-dave": {"name": "dave", "groups": [], "scopes": ["access:services", "custom:aerofs:admin"]},
    "t-erin": {"name": "erin", "groups": ["ops", "analysts"], "scopes": ["access:services"]},
    "t-frank": {"name": "frank", "groups": ["analysts"], "scopes": ["access:services"]},
}


async def _code(fetch: Any, *path: str, **kw: Any) -> int:
    try:
        return (await fetch(*path, **kw)).code
    except HTTPClientError as e:
        return e.code


class TestEmbeddedDefault:
    """jupyter_server's own token: whoever holds it is the server's owner, and admin of it."""

    @pytest.fixture
    def jp_server_config(self, token_server_config: dict[str, Any]) -> dict[str, Any]:
        return token_server_config

    @jp_sync
    async def test_owner_is_the_local_user_and_admin(self, jp_fetch, jp_ws_fetch, tmp_path):
        doc = await post_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o")}, None)
        assert doc["job"]["owner"] == getpass.getuser()
        # a second client without the first one's cookie (a kernel, the browser) is the same person
        r = await jp_fetch("aerofs", "api", "jobs")
        assert [j["id"] for j in json.loads(r.body)["jobs"]] == [doc["id"]]
        r = await jp_fetch("aerofs", "api", "stats")
        assert r.code == 200 and "queue_length" in json.loads(r.body)
        ws = await jp_ws_fetch("aerofs", "api", "events", params={"since": "0"})
        seen: list[str] = []
        while doc["id"] not in seen:  # replayed, or sent live by the next poll of the bus
            msg = json.loads(await asyncio.wait_for(ws.read_message(), 10))
            seen += [e["job_id"] for e in msg.get("events", [])]
        ws.close()
        # still no way in without the token
        bad = {"Authorization": "token wrong"}
        assert await _code(jp_fetch, "aerofs", "api", "stats", headers=bad) == 401


class TestJupyterHubIdentity:
    @pytest.fixture
    def jp_server_config(
        self, js_dir: Any, aerofs_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> dict[str, Any]:
        monkeypatch.setenv("AEROFS_TEST_HUB_USERS", json.dumps(HUB_USERS))
        return {
            "ServerApp": {
                "jpserver_extensions": {"jobserver": True},
                "identity_provider_class": "hub_identity.FakeHubIdentityProvider",
            },
            "AerofsApp": {
                "data_dir": str(js_dir / "data"),
                "runner_module": "fake_runner",
                "workers": 1,
                **aerofs_config,
            },
        }

    @pytest.mark.parametrize(
        "aerofs_config,admins",
        [
            ({}, {"carol", "dave"}),  # default group aerofs-admins, or the admin scope
            ({"admin_group": "ops"}, {"erin", "dave"}),  # another group
            ({"admin_users": ["frank"]}, {"carol", "dave", "frank"}),  # a configured list too
        ],
    )
    @jp_sync
    async def test_admins_by_group_scope_or_list(self, jp_fetch, aerofs_config, admins, tmp_path):
        for token, model in HUB_USERS.items():
            code = await _code(
                jp_fetch, "aerofs", "api", "stats", headers={"Authorization": f"token {token}"}
            )
            assert code == (200 if model["name"] in admins else 403), (model, aerofs_config)
        # the hub's name is the owner, and a group admin sees everyone's jobs
        params = {"src": ["a"], "dst": str(tmp_path / "o")}
        jid = await submit_job(jp_fetch, params, None, headers={"Authorization": "token t-frank"})
        for token, model in HUB_USERS.items():
            code = await _code(
                jp_fetch, "aerofs", "api", "jobs", jid, headers={"Authorization": f"token {token}"}
            )
            expect = 200 if model["name"] in admins | {"frank"} else 404
            assert code == expect, (model, aerofs_config)
        assert os.environ["AEROFS_TEST_HUB_USERS"]

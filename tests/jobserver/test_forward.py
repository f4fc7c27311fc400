"""Thin-client mode with two real Jupyter servers: the team's job server (a subprocess: SQLite, a local
pool, the fake runner, hub-style identity from tokens) and a user's personal server (in process,
pytest-jupyter) with ``AerofsApp.jobserver_url`` pointing at it. The personal server's REST routes and
events WebSocket must behave as the team server's, with the job server's identity for the token."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import jp_sync, post_job, submit_job
from hub_server import free_port, hub_job_server
from tornado.httpclient import HTTPClientError

pytestmark = pytest.mark.timeout(180)

ALICE, BOB, ROOT = "tok-alice-7f3a", "tok-bob-c91e", "tok-root-55d0"
USERS = {
    ALICE: {"name": "alice", "groups": ["analysts"], "scopes": ["access:services"]},
    BOB: {"name": "bob", "groups": [], "scopes": ["access:services"]},
    ROOT: {"name": "root", "groups": ["aerofs-admins"], "scopes": ["access:services"]},
}
PREFIX = "/services/aerofs/"


@pytest.fixture
def team(js_dir: Path) -> Any:
    """The team job server, as JupyterHub would run it: its own process under a service prefix."""
    work = js_dir / "team"
    work.mkdir()
    with hub_job_server(work, PREFIX, USERS, ["--AerofsApp.stale_after=1.5"]) as url:
        yield url


@pytest.fixture
def jp_server_config(team: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Alice's personal server: jupyter_server's own token auth, thin client of the team server."""
    monkeypatch.setenv("AEROFS_JOBSERVER_TOKEN", ALICE)
    return {"ServerApp": {"jpserver_extensions": {"jobserver": True}}, "AerofsApp": {"jobserver_url": team}}


async def _json(fetch: Any, *path: str, **kw: Any) -> tuple[int, Any]:
    try:
        r = await fetch("aerofs", "api", *path, **kw)
    except HTTPClientError as e:
        assert e.response is not None
        r = e.response
    ctype = r.headers.get("Content-Type", "")
    return r.code, json.loads(r.body) if "json" in ctype and r.body else r.body


@jp_sync
async def test_rest_routes_are_forwarded_with_the_team_identity(jp_fetch, jp_base_url, team, tmp_path):
    code, doc = await _json(jp_fetch, "pipelines")
    assert code == 200 and [p["name"] for p in doc["pipelines"]] == ["sleepy"]

    body = json.dumps({"pipeline": "sleepy", "params": {"src": ["a", "b"], "dst": str(tmp_path / "o")}})
    r = await jp_fetch("aerofs", "api", "jobs", method="POST", body=body, headers={"Idempotency-Key": "one"})
    assert r.code == 202
    jid = json.loads(r.body)["id"]
    # the Location is this server's URL of the job, not the team server's
    assert r.headers["Location"].endswith(f"{jp_base_url}aerofs/api/jobs/{jid}")
    params = {"src": ["a", "b"], "dst": str(tmp_path / "o")}
    again = await post_job(jp_fetch, params, None, headers={"Idempotency-Key": "one"}, expect=200)
    assert again["id"] == jid

    # the job belongs to the token's user on the team server
    for _ in range(300):
        code, job = await _json(jp_fetch, "jobs", jid)
        if job["state"] == "SUCCEEDED":
            break
        await asyncio.sleep(0.1)
    assert code == 200 and job["owner"] == "alice" and job["state"] == "SUCCEEDED", job
    code, page = await _json(jp_fetch, "jobs", params={"state": "SUCCEEDED"})
    assert code == 200 and [j["id"] for j in page["jobs"]] == [jid]
    code, logs = await _json(jp_fetch, "jobs", jid, "logs")
    assert code == 200 and any("submitted by alice" in line["message"] for line in logs["lines"])
    code, outs = await _json(jp_fetch, "jobs", jid, "outputs")
    assert code == 200 and len(outs["outputs"]) == 3
    a_txt = next(o["path"] for o in outs["outputs"] if o["path"].endswith("a.txt"))
    r = await jp_fetch("aerofs", "api", "jobs", jid, "outputs", params={"path": a_txt})
    assert r.body == Path(a_txt).read_bytes() and "attachment" in r.headers["Content-Disposition"]
    code, _ = await _json(jp_fetch, "jobs", jid, method="DELETE")
    assert code == 409  # already finished: the team server's answer, passed on
    code, again = await _json(jp_fetch, "jobs", jid, "retry", method="POST", body="")
    assert code == 409 and "cannot be retried" in again["message"]

    # errors keep their status and JSON body; alice is no admin of the team server
    code, err = await _json(jp_fetch, "stats")
    assert code == 403
    err = await post_job(jp_fetch, {"src": "x"}, None, expect=400)
    assert {e["path"] for e in err["errors"]} >= {"$.src", "$"}
    code, _ = await _json(jp_fetch, "jobs", "0" * 32)
    assert code == 404

    # the OpenAPI document names this server
    code, doc = await _json(jp_fetch, "openapi.json")
    assert code == 200 and doc["servers"][0]["url"].endswith(f"{jp_base_url}aerofs/api")

    # bob's jobs stay invisible to alice through the thin client
    r = httpx.post(
        team + "aerofs/api/jobs",
        headers={"Authorization": f"token {BOB}"},
        json={"pipeline": "sleepy", "params": {"src": ["z"], "dst": str(tmp_path / "b")}},
    )
    assert r.status_code == 202
    code, _ = await _json(jp_fetch, "jobs", r.json()["id"])
    assert code == 404


@jp_sync
async def test_token_from_a_mounted_file_is_reread(jp_fetch, team, tmp_path, monkeypatch):
    secret = tmp_path / "secret" / "token"
    secret.parent.mkdir()
    secret.write_text(BOB + "\n")
    monkeypatch.delenv("AEROFS_JOBSERVER_TOKEN")
    monkeypatch.setenv("AEROFS_JOBSERVER_TOKEN_FILE", str(secret))
    doc = await post_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o")}, None)
    assert doc["job"]["owner"] == "bob"
    # the secret rotates: the next request uses the new one
    secret.write_text(ROOT)
    os.utime(secret, (time.time() + 5, time.time() + 5))
    code, stats = await _json(jp_fetch, "stats")
    assert code == 200 and "queue_length" in stats  # root is in the hub's aerofs-admins group
    # no token at all: the team server refuses, and so does the thin client
    secret.unlink()
    code, _ = await _json(jp_fetch, "jobs")
    assert code == 401


@jp_sync
async def test_events_websocket_is_relayed(jp_fetch, jp_ws_fetch, tmp_path):
    ws = await jp_ws_fetch("aerofs", "api", "events")
    hello = json.loads(await asyncio.wait_for(ws.read_message(), 10))
    assert hello["type"] == "hello"
    jid = await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o")}, None)
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while "SUCCEEDED" not in seen and time.monotonic() < deadline:
        msg = json.loads(await asyncio.wait_for(ws.read_message(), 30))
        seen += [e["state"] for e in msg.get("events", []) if e["job_id"] == jid and e["type"] == "state"]
    assert seen[0] == "PENDING" and seen[-1] == "SUCCEEDED", seen
    ws.close()
    # a reconnecting client catches up through the relay too
    ws2 = await jp_ws_fetch("aerofs", "api", "events", params={"since": "0"})
    replay = json.loads(await asyncio.wait_for(ws2.read_message(), 10))
    assert any(e["job_id"] == jid and e.get("state") == "SUCCEEDED" for e in replay["events"])
    ws2.close()


@jp_sync
async def test_thin_client_is_not_open(jp_fetch, jp_ws_fetch):
    wrong = {"Authorization": "token not-this-servers-token"}
    for path, method in [(("pipelines",), "GET"), (("jobs",), "POST"), (("jobs", "0" * 32), "DELETE")]:
        kw = {"body": "{}"} if method == "POST" else {}
        code, _ = await _json(jp_fetch, *path, method=method, headers=wrong, **kw)
        assert code == 401, path
    with pytest.raises(HTTPClientError) as ei:
        await jp_ws_fetch("aerofs", "api", "events", headers=wrong)
    assert ei.value.code == 401


@jp_sync
async def test_personal_server_token_never_goes_upstream(jp_fetch, jp_serverapp, team):
    # a ?token= in the URL authenticates to this server only; the team server sees its own token
    own = jp_serverapp.identity_provider.token
    code, page = await _json(jp_fetch, "jobs", params={"token": own}, headers={"Authorization": ""})
    assert code == 200 and page["total"] == 0


@jp_sync
async def test_unreachable_job_server_is_a_502(jp_fetch, jp_serverapp):
    from jobserver.forward import Upstream

    jp_serverapp.web_app.settings["aerofs_upstream"] = Upstream(f"http://127.0.0.1:{free_port()}/")
    code, err = await _json(jp_fetch, "jobs")
    assert code == 502 and "unreachable" in err["message"]


@jp_sync
async def test_aerofs_kernel_client_works_unchanged(
    jp_fetch, jp_serverapp, jp_http_port, jp_base_url, tmp_path
):
    import aerofs_kernel as aero

    # (jp_fetch: it is what makes pytest-jupyter's HTTP server listen on jp_http_port)

    def run() -> tuple[str, str]:
        client = aero.Client(
            f"http://127.0.0.1:{jp_http_port}{jp_base_url}", jp_serverapp.identity_provider.token
        )
        job = client.submit("sleepy", {"src": ["k"], "dst": str(tmp_path / "k")})
        job.wait(timeout=60)
        return job.status, client.request("GET", f"jobs/{job.id}")["owner"]

    # the client is synchronous: run it off the loop that serves the personal server
    status, owner = await asyncio.get_running_loop().run_in_executor(None, run)
    assert (status, owner) == ("SUCCEEDED", "alice")

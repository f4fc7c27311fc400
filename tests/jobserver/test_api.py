"""REST and WebSocket routes of the embedded server (SQLite + local pool, fake runner)."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from conftest import jp_sync, post_job, submit_job, user, wait_state
from tornado.httpclient import HTTPClientError

pytestmark = pytest.mark.timeout(120)


async def error_of(coro):
    with pytest.raises(HTTPClientError) as ei:
        await coro
    resp = ei.value.response
    return ei.value.code, (json.loads(resp.body) if resp is not None and resp.body else None)


@pytest.mark.parametrize(
    "path,method",
    [
        (("pipelines",), "GET"),
        (("jobs",), "GET"),
        (("jobs",), "POST"),
        (("stats",), "GET"),
        (("openapi.json",), "GET"),
        (("jobs", "0" * 32), "GET"),
        (("jobs", "0" * 32), "DELETE"),
        (("jobs", "0" * 32, "retry"), "POST"),
        (("jobs", "0" * 32, "logs"), "GET"),
        (("jobs", "0" * 32, "outputs"), "GET"),
    ],
)
@jp_sync
async def test_anonymous_is_refused(jp_fetch, path, method):
    kw = {"body": "{}"} if method == "POST" else {}
    code, _ = await error_of(jp_fetch("aerofs", "api", *path, method=method, headers={}, **kw))
    assert code == 401


@jp_sync
async def test_pipelines(jp_fetch):
    r = await jp_fetch("aerofs", "api", "pipelines", headers=user("alice"))
    doc = json.loads(r.body)
    assert [p["name"] for p in doc["pipelines"]] == ["sleepy"]
    assert doc["pipelines"][0]["schema"]["properties"]["src"]["type"] == "array"


@jp_sync
async def test_validation_names_each_path(jp_fetch, tmp_path):
    body = await post_job(jp_fetch, {"src": "notalist", "dst": 3, "bogus": 1}, expect=400)
    paths = {e["path"] for e in body["errors"]}
    assert {"$.src", "$.dst", "$"} <= paths, body
    body = await post_job(jp_fetch, {"src": ["a"], "dst": "x"}, pipeline="nope", expect=400)
    assert body["errors"][0]["path"] == "$.pipeline"


@jp_sync
async def test_job_lifecycle_outputs_logs_events(jp_fetch, jp_ws_fetch, tmp_path):
    ws = await jp_ws_fetch("aerofs", "api", "events", headers=user("alice"))
    hello = json.loads(await ws.read_message())
    assert hello["type"] == "hello"
    dst = tmp_path / "out"
    doc = await post_job(jp_fetch, {"src": ["a", "b", "c", "d", "e"], "dst": str(dst), "seconds": 0.05})
    assert doc["state"] == "PENDING"
    job = await wait_state(jp_fetch, doc["id"], "alice", {"SUCCEEDED", "FAILED"})
    assert job["state"] == "SUCCEEDED", job
    for k in (
        "id",
        "pipeline",
        "params",
        "owner",
        "state",
        "progress",
        "created_at",
        "started_at",
        "finished_at",
        "attempts",
        "summary",
        "outputs",
        "errors",
    ):
        assert k in job
    assert job["owner"] == "alice" and job["summary"] == {"files": 5}
    assert job["progress"]["inputs_done"] == 5 and job["progress"]["fraction"] == 1.0
    assert (dst / "all.txt").read_text().count("\n") == 5
    # events: states in order, ending SUCCEEDED
    seen: list[str] = []
    while "SUCCEEDED" not in seen:
        msg = json.loads(await asyncio.wait_for(ws.read_message(), 10))
        seen += [e["state"] for e in msg["events"] if e["job_id"] == doc["id"] and e["type"] == "state"]
    assert seen[0] == "PENDING" and seen[-1] == "SUCCEEDED" and "RUNNING" in seen
    ws.close()
    # reconnect from event 0 replays everything
    ws2 = await jp_ws_fetch("aerofs", "api", "events", params={"since": "0"}, headers=user("alice"))
    replay = json.loads(await ws2.read_message())
    assert [e["state"] for e in replay["events"] if e["type"] == "state"][-1] == "SUCCEEDED"
    assert replay["events"][-1]["job"]["state"] == "SUCCEEDED"
    ws2.close()
    # logs and outputs
    r = await jp_fetch("aerofs", "api", "jobs", doc["id"], "logs", headers=user("alice"))
    text = " ".join(line["message"] for line in json.loads(r.body)["lines"])
    assert "submitted by alice" in text and "task 0" in text and "SUCCEEDED" in text
    r = await jp_fetch("aerofs", "api", "jobs", doc["id"], "outputs", headers=user("alice"))
    outs = json.loads(r.body)["outputs"]
    assert {os.path.basename(o["path"]) for o in outs} == {
        "a.txt",
        "b.txt",
        "c.txt",
        "d.txt",
        "e.txt",
        "all.txt",
    }
    target = next(o["path"] for o in outs if o["path"].endswith("a.txt"))
    r = await jp_fetch(
        "aerofs", "api", "jobs", doc["id"], "outputs", params={"path": target}, headers=user("alice")
    )
    assert r.body == (dst / "a.txt").read_bytes()
    code, _ = await error_of(
        jp_fetch(
            "aerofs",
            "api",
            "jobs",
            doc["id"],
            "outputs",
            params={"path": "/etc/passwd"},
            headers=user("alice"),
        )
    )
    assert code == 404


@jp_sync
async def test_permissions_owner_other_admin(jp_fetch, tmp_path):
    jid = await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o"), "seconds": 5})
    for path, method in [
        ((jid,), "GET"),
        ((jid, "logs"), "GET"),
        ((jid, "outputs"), "GET"),
        ((jid,), "DELETE"),
        ((jid, "retry"), "POST"),
    ]:
        kw = {"body": ""} if method == "POST" else {}
        code, _ = await error_of(
            jp_fetch("aerofs", "api", "jobs", *path, method=method, headers=user("bob"), **kw)
        )
        assert code == 404, (path, method)
    r = await jp_fetch("aerofs", "api", "jobs", headers=user("bob"))
    assert json.loads(r.body)["total"] == 0
    r = await jp_fetch("aerofs", "api", "jobs", params={"owner": "alice"}, headers=user("bob"))
    assert json.loads(r.body)["total"] == 0
    code, _ = await error_of(jp_fetch("aerofs", "api", "stats", headers=user("bob")))
    assert code == 403
    # the admin sees and controls it
    r = await jp_fetch("aerofs", "api", "jobs", headers=user("root"))
    assert [j["id"] for j in json.loads(r.body)["jobs"]] == [jid]
    r = await jp_fetch("aerofs", "api", "stats", headers=user("root"))
    stats = json.loads(r.body)
    for k in (
        "queue_length",
        "workers_busy",
        "workers_idle",
        "jobs_per_minute",
        "failure_rate",
        "longest_running",
    ):
        assert k in stats
    r = await jp_fetch("aerofs", "api", "jobs", jid, method="DELETE", headers=user("root"))
    assert json.loads(r.body)["state"] == "CANCELLED"
    code, _ = await error_of(jp_fetch("aerofs", "api", "jobs", jid, method="DELETE", headers=user("alice")))
    assert code == 409
    # the owner retries it
    r = await jp_fetch("aerofs", "api", "jobs", jid, "retry", method="POST", body="", headers=user("alice"))
    assert r.code == 202 and json.loads(r.body)["state"] == "PENDING"


@jp_sync
async def test_cancel_stops_running_task(jp_fetch, tmp_path):
    dst = tmp_path / "o"
    jid = await submit_job(jp_fetch, {"src": ["a", "b"], "dst": str(dst), "seconds": 30})
    await wait_state(jp_fetch, jid, "alice", {"RUNNING"})
    await asyncio.sleep(0.5)
    r = await jp_fetch("aerofs", "api", "jobs", jid, method="DELETE", headers=user("alice"))
    assert json.loads(r.body)["state"] == "CANCELLED"
    # the workers let go of the tasks within a couple of heartbeats: a new job runs at once
    quick = await submit_job(jp_fetch, {"src": ["q"], "dst": str(tmp_path / "q")})
    job = await wait_state(jp_fetch, quick, "alice", {"SUCCEEDED"}, timeout=10)
    assert job["state"] == "SUCCEEDED"
    assert not (dst / "a.txt").exists()


@jp_sync
async def test_idempotency_key(jp_fetch, tmp_path):
    params = {"src": ["a"], "dst": str(tmp_path / "o")}
    key = {"Idempotency-Key": "k-1"}
    d1 = await post_job(jp_fetch, params, headers=key)
    d2 = await post_job(jp_fetch, params, headers=key, expect=200)
    d3 = await post_job(jp_fetch, params, "bob", headers=key)
    assert d1["id"] == d2["id"] != d3["id"]


@jp_sync
async def test_list_filter_and_paginate(jp_fetch, tmp_path):
    ids = []
    for i in range(5):
        ids.append(
            await submit_job(jp_fetch, {"src": [f"n{i}"], "dst": str(tmp_path / f"o{i}"), "fail": i == 0})
        )
    await wait_state(jp_fetch, ids[0], "alice", {"FAILED"})
    for i in ids[1:]:
        await wait_state(jp_fetch, i, "alice", {"SUCCEEDED"})
    r = await jp_fetch(
        "aerofs", "api", "jobs", params={"limit": "2", "offset": "1", "order": "asc"}, headers=user("alice")
    )
    page = json.loads(r.body)
    assert page["total"] == 5 and [j["id"] for j in page["jobs"]] == ids[1:3]
    r = await jp_fetch("aerofs", "api", "jobs", params={"state": "FAILED"}, headers=user("alice"))
    assert [j["id"] for j in json.loads(r.body)["jobs"]] == [ids[0]]
    r = await jp_fetch("aerofs", "api", "jobs", params={"q": "o3"}, headers=user("alice"))
    assert [j["id"] for j in json.loads(r.body)["jobs"]] == [ids[3]]
    # A typo is an error, JupyterLab's cache buster (`?<milliseconds>`, sent with every GET) is not.
    code, _ = await error_of(
        jp_fetch("aerofs", "api", "jobs", params={"stat": "FAILED"}, headers=user("alice"))
    )
    assert code == 400
    r = await jp_fetch("aerofs", "api", "jobs", params={"1795924439740": ""}, headers=user("alice"))
    assert json.loads(r.body)["total"] == 5
    failed = await wait_state(jp_fetch, ids[0], "alice", {"FAILED"})
    assert failed["attempts"] == 3 and "failed on purpose" in failed["error"]


@jp_sync
async def test_openapi_and_metrics(jp_fetch, tmp_path):
    r = await jp_fetch("aerofs", "api", "openapi.json", headers=user("alice"))
    doc = json.loads(r.body)
    assert doc["openapi"].startswith("3.") and "/jobs/{job_id}" in doc["paths"]
    jid = await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o")})
    await wait_state(jp_fetch, jid, "alice", {"SUCCEEDED"})
    r = await jp_fetch("aerofs", "metrics", headers=user("alice"))
    text = r.body.decode()
    assert 'aerofs_jobs_finished_total{pipeline="sleepy",state="SUCCEEDED"} 1.0' in text
    assert "aerofs_queue_length" in text and "aerofs_job_duration_seconds_bucket" in text
    code, _ = await error_of(jp_fetch("aerofs", "metrics", headers={}))
    assert code == 401


async def status_of(fetch, *path, who=None, method="GET", **kw):
    if method == "POST":
        kw.setdefault("body", "")
    try:
        r = await fetch(*path, method=method, headers=user(who), **kw)
    except HTTPClientError as e:
        return e.code
    return r.code


# Each route, and what anonymous (401: no credentials) / the owner / another user / an admin get.
# {id} is alice's job; bob is another user; root is an admin (AerofsApp.admin_users).
MATRIX = [
    # path, method, anonymous, owner, other, admin
    (("aerofs", "api", "pipelines"), "GET", 401, 200, 200, 200),
    (("aerofs", "api", "openapi.json"), "GET", 401, 200, 200, 200),
    (("aerofs", "api", "jobs"), "GET", 401, 200, 200, 200),
    (("aerofs", "api", "stats"), "GET", 401, 403, 403, 200),
    (("aerofs", "metrics"), "GET", 401, 200, 200, 200),
    (("aerofs", "api", "jobs", "{id}"), "GET", 401, 200, 404, 200),
    (("aerofs", "api", "jobs", "{id}", "logs"), "GET", 401, 200, 404, 200),
    (("aerofs", "api", "jobs", "{id}", "outputs"), "GET", 401, 200, 404, 200),
    (("aerofs", "api", "jobs", "{id}", "retry"), "POST", 401, 409, 404, 409),  # still running
]


@jp_sync
async def test_every_route_every_caller(jp_fetch, tmp_path):
    jid = await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o"), "seconds": 30})
    for path, method, *expected in MATRIX:
        path = tuple(p.replace("{id}", jid) for p in path)
        got = [await status_of(jp_fetch, *path, who=w, method=method) for w in (None, "alice", "bob", "root")]
        assert got == expected, (path, method)
    # what each one sees in the list
    for who, total in (("alice", 1), ("bob", 0), ("root", 1)):
        r = await jp_fetch("aerofs", "api", "jobs", headers=user(who))
        assert json.loads(r.body)["total"] == total, who
    # POST jobs: anonymous refused; anyone else submits as themselves (an "owner" field is ignored)
    body = json.dumps(
        {"pipeline": "sleepy", "params": {"src": ["b"], "dst": str(tmp_path / "p")}, "owner": "x"}
    )
    assert await status_of(jp_fetch, "aerofs", "api", "jobs", method="POST", body=body) == 401
    bobs = await post_job(jp_fetch, {"src": ["b"], "dst": str(tmp_path / "p")}, "bob", owner="x")
    assert bobs["job"]["owner"] == "bob"
    # DELETE: anonymous and another user cannot; the owner and an admin can
    assert await status_of(jp_fetch, "aerofs", "api", "jobs", jid, method="DELETE") == 401
    assert await status_of(jp_fetch, "aerofs", "api", "jobs", jid, method="DELETE", who="bob") == 404
    assert await status_of(jp_fetch, "aerofs", "api", "jobs", jid, method="DELETE", who="alice") == 200
    other = await submit_job(jp_fetch, {"src": ["c"], "dst": str(tmp_path / "q"), "seconds": 30})
    assert await status_of(jp_fetch, "aerofs", "api", "jobs", other, method="DELETE", who="root") == 200
    # retry of a cancelled job: owner and admin yes, the others no
    assert await status_of(jp_fetch, "aerofs", "api", "jobs", jid, "retry", method="POST") == 401
    assert await status_of(jp_fetch, "aerofs", "api", "jobs", jid, "retry", method="POST", who="bob") == 404
    assert await status_of(jp_fetch, "aerofs", "api", "jobs", jid, "retry", method="POST", who="alice") == 202
    assert (
        await status_of(jp_fetch, "aerofs", "api", "jobs", other, "retry", method="POST", who="root") == 202
    )
    for j in (jid, other):
        await jp_fetch("aerofs", "api", "jobs", j, method="DELETE", headers=user("root"))


@jp_sync
async def test_events_websocket_every_caller(jp_fetch, jp_ws_fetch, tmp_path):
    with pytest.raises(HTTPClientError) as ei:
        await jp_ws_fetch("aerofs", "api", "events", headers={})
    assert ei.value.code == 401
    socks = {
        w: await jp_ws_fetch("aerofs", "api", "events", headers=user(w)) for w in ("alice", "bob", "root")
    }
    for ws in socks.values():
        assert json.loads(await ws.read_message())["type"] == "hello"
    alices = await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "o")})
    bobs = await submit_job(jp_fetch, {"src": ["b"], "dst": str(tmp_path / "p")}, "bob")

    async def states(ws, until_job):
        seen: dict[str, list[str]] = {}
        while "SUCCEEDED" not in seen.get(until_job, []):
            msg = json.loads(await asyncio.wait_for(ws.read_message(), 20))
            for e in msg["events"]:
                if e["type"] == "state":
                    seen.setdefault(e["job_id"], []).append(e["state"])
        return seen

    alice, root, bob = await states(socks["alice"], alices), await states(socks["root"], alices), None
    bob = await states(socks["bob"], bobs)
    assert alices in alice and bobs not in alice  # owners see their own jobs
    assert alices not in bob and bobs in bob
    assert alices in root  # admins see all
    await wait_state(jp_fetch, bobs, "root", {"SUCCEEDED"})
    root = await states(socks["root"], bobs) if bobs not in root else root
    assert bobs in root
    for ws in socks.values():
        ws.close()
    # a reconnect with ?since=0 replays only what the caller may see
    ws = await jp_ws_fetch("aerofs", "api", "events", params={"since": "0"}, headers=user("bob"))
    replay = json.loads(await asyncio.wait_for(ws.read_message(), 10))
    assert {e["job_id"] for e in replay["events"]} == {bobs}
    ws.close()


@jp_sync
async def test_idempotency_key_in_body_and_header(jp_fetch, tmp_path):
    params = {"src": ["a"], "dst": str(tmp_path / "o")}
    d1 = await post_job(jp_fetch, params, headers={"Idempotency-Key": "retry-me"})
    # the client gave up waiting and tried again: same job, not a second one
    d2 = await post_job(jp_fetch, params, headers={"Idempotency-Key": "retry-me"}, expect=200)
    d3 = await post_job(jp_fetch, params, idempotency_key="retry-me", expect=200)
    assert d1["id"] == d2["id"] == d3["id"]
    r = await jp_fetch("aerofs", "api", "jobs", headers=user("alice"))
    assert json.loads(r.body)["total"] == 1
    body = await post_job(jp_fetch, params, idempotency_key=7, expect=400)
    assert body["errors"][0]["path"] == "$.idempotency_key"

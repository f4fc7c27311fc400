"""REST and WebSocket routes of the embedded server (SQLite + local pool, fake runner)."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from conftest import jp_sync, user, wait_state
from tornado.httpclient import HTTPClientError

pytestmark = pytest.mark.timeout(120)


async def submit(fetch, who, params, pipeline="sleepy", headers=None):
    r = await fetch(
        "aerofs",
        "api",
        "jobs",
        method="POST",
        headers={**user(who), **(headers or {})},
        body=json.dumps({"pipeline": pipeline, "params": params}),
    )
    return r.code, json.loads(r.body)


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
    assert code in (401, 403)


@jp_sync
async def test_pipelines(jp_fetch):
    r = await jp_fetch("aerofs", "api", "pipelines", headers=user("alice"))
    doc = json.loads(r.body)
    assert [p["name"] for p in doc["pipelines"]] == ["sleepy"]
    assert doc["pipelines"][0]["schema"]["properties"]["src"]["type"] == "array"


@jp_sync
async def test_validation_names_each_path(jp_fetch, tmp_path):
    code, body = await error_of(submit(jp_fetch, "alice", {"src": "notalist", "dst": 3, "bogus": 1}))
    assert code == 400
    paths = {e["path"] for e in body["errors"]}
    assert {"$.src", "$.dst", "$"} <= paths, body
    code, body = await error_of(submit(jp_fetch, "alice", {"src": ["a"], "dst": "x"}, pipeline="nope"))
    assert code == 400 and body["errors"][0]["path"] == "$.pipeline"


@jp_sync
async def test_job_lifecycle_outputs_logs_events(jp_fetch, jp_ws_fetch, tmp_path):
    ws = await jp_ws_fetch("aerofs", "api", "events", headers=user("alice"))
    hello = json.loads(await ws.read_message())
    assert hello["type"] == "hello"
    dst = tmp_path / "out"
    code, doc = await submit(
        jp_fetch, "alice", {"src": ["a", "b", "c", "d", "e"], "dst": str(dst), "seconds": 0.05}
    )
    assert code == 202 and doc["state"] == "PENDING"
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
    _, doc = await submit(jp_fetch, "alice", {"src": ["a"], "dst": str(tmp_path / "o"), "seconds": 5})
    jid = doc["id"]
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
    _, doc = await submit(jp_fetch, "alice", {"src": ["a", "b"], "dst": str(dst), "seconds": 30})
    await wait_state(jp_fetch, doc["id"], "alice", {"RUNNING"})
    await asyncio.sleep(0.5)
    r = await jp_fetch("aerofs", "api", "jobs", doc["id"], method="DELETE", headers=user("alice"))
    assert json.loads(r.body)["state"] == "CANCELLED"
    # the workers let go of the tasks within a couple of heartbeats: a new job runs at once
    _, quick = await submit(jp_fetch, "alice", {"src": ["q"], "dst": str(tmp_path / "q")})
    job = await wait_state(jp_fetch, quick["id"], "alice", {"SUCCEEDED"}, timeout=10)
    assert job["state"] == "SUCCEEDED"
    assert not (dst / "a.txt").exists()


@jp_sync
async def test_idempotency_key(jp_fetch, tmp_path):
    params = {"src": ["a"], "dst": str(tmp_path / "o")}
    c1, d1 = await submit(jp_fetch, "alice", params, headers={"Idempotency-Key": "k-1"})
    c2, d2 = await submit(jp_fetch, "alice", params, headers={"Idempotency-Key": "k-1"})
    c3, d3 = await submit(jp_fetch, "bob", params, headers={"Idempotency-Key": "k-1"})
    assert (c1, c2, c3) == (202, 200, 202)
    assert d1["id"] == d2["id"] != d3["id"]


@jp_sync
async def test_list_filter_and_paginate(jp_fetch, tmp_path):
    ids = []
    for i in range(5):
        _, d = await submit(
            jp_fetch, "alice", {"src": [f"n{i}"], "dst": str(tmp_path / f"o{i}"), "fail": i == 0}
        )
        ids.append(d["id"])
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
    failed = await wait_state(jp_fetch, ids[0], "alice", {"FAILED"})
    assert failed["attempts"] == 3 and "failed on purpose" in failed["error"]


@jp_sync
async def test_openapi_and_metrics(jp_fetch, tmp_path):
    r = await jp_fetch("aerofs", "api", "openapi.json", headers=user("alice"))
    doc = json.loads(r.body)
    assert doc["openapi"].startswith("3.") and "/jobs/{job_id}" in doc["paths"]
    _, d = await submit(jp_fetch, "alice", {"src": ["a"], "dst": str(tmp_path / "o")})
    await wait_state(jp_fetch, d["id"], "alice", {"SUCCEEDED"})
    r = await jp_fetch("aerofs", "metrics", headers=user("alice"))
    text = r.body.decode()
    assert 'aerofs_jobs_finished_total{pipeline="sleepy",state="SUCCEEDED"} 1.0' in text
    assert "aerofs_queue_length" in text and "aerofs_job_duration_seconds_bucket" in text
    code, _ = await error_of(jp_fetch("aerofs", "metrics", headers={}))
    assert code == 403

"""A job's transitions as a worker makes them (plan, claim, finish, progress, merge's end), on both
stores: PostgreSQL sends each as one statement, SQLite as a transaction; the rows, the events handed
to ``on_events`` and the guarantees must be the same."""

from __future__ import annotations

import threading

import pytest

from jobserver.store import open_store
from jobserver.store.base import Work


@pytest.fixture
def store(store_url):
    s = open_store(store_url)
    s.migrate()
    yield s
    s.close()


def _plan(store, job_id, specs, worker="planner"):
    [work] = [w for w in store.next_work(job_id=job_id) if w.kind == "plan"]
    assert store.claim_step(work, worker)
    return store.plan_job(job_id, worker, specs)


def test_a_job_s_rows_through_its_transitions(store):
    seen: list = []
    store.on_events = seen.extend
    job, _ = store.create_job("p", {"src": "a", "n": 1}, "alice", correlation_id="cid-7")
    jid = job["id"]
    assert _plan(store, jid, [{"index": 0, "bytes": 10}, {"index": 1, "bytes": 30}]) == [
        Work("task", jid, 0, 0, 1),
        Work("task", jid, 0, 1, 1),
    ]
    assert store.plan_job(jid, "planner", [{"index": 0}]) is None  # the claim is gone: nothing written
    t0 = store.claim_task("w1", Work("task", jid, 0, 0, 1))
    assert t0["state"] == "RUNNING" and t0["attempts"] == 1 and t0["worker"] == "w1"
    assert t0["spec"] == {"index": 0, "bytes": 10}
    # what running it needs comes with the claim
    assert t0["job"] == {
        "id": jid,
        "pipeline": "p",
        "params": {"src": "a", "n": 1},
        "correlation_id": "cid-7",
    }
    assert store.claim_task("w9", Work("task", jid, 0, 0, 1)) is None  # taken
    t1 = store.claim_task("w2", Work("task", jid, 0, 1, 1))
    running = store.get_job(jid)
    assert running["state"] == "RUNNING" and running["started_at"] and running["attempts"] == 1
    assert not store.finish_task(jid, 0, "w2", {"x": 1}, log="not mine")  # w1's task: no row, no log
    assert store.finish_task(jid, 0, "w1", {"x": 1}, {"bytes_done": 10, "bytes_total": 10}, log="t0 done")
    assert store.finish_task(jid, 1, "w2", {"x": 2}, log="t1 done")
    prog = store.publish_progress(jid)
    assert prog["tasks_done"] == 2 and prog["fraction"] == pytest.approx(10 / 40)
    assert store.claim_step(Work("merge", jid, 0), "m1")
    done = store.succeed_job(
        jid, [("/o/b", 2), ("/o/a", None)], summary={"n": 2}, outputs=["/o/a"], errors=[]
    )
    assert done and done["state"] == "SUCCEEDED" and done["summary"] == {"n": 2} and done["finished_at"]
    assert store.get_job(jid) == done
    assert store.outputs(jid) == [{"path": "/o/a", "size": None}, {"path": "/o/b", "size": 2}]
    events = store.events_since(0)
    assert [(e["type"], e["data"].get("state")) for e in events] == [
        ("state", "PENDING"),
        ("state", "QUEUED"),
        ("state", "RUNNING"),
        ("progress", "RUNNING"),
        ("state", "SUCCEEDED"),
    ]
    assert events[3]["data"]["progress"] == prog
    # every row, as the events table has it, handed over once committed
    assert [(e["id"], e["type"], e["data"], e["owner"], e["at"]) for e in seen] == [
        (e["id"], e["type"], e["data"], e["owner"], e["at"]) for e in events
    ]
    messages = [line["message"] for line in store.logs(jid)]
    assert messages == [
        "submitted by alice (correlation id cid-7)",
        "planned 2 task(s) on planner",
        "task 0 attempt 1 started on w1",
        "state RUNNING",
        "task 1 attempt 1 started on w2",
        "t0 done",
        "t1 done",
        "state SUCCEEDED",
    ]
    assert t1["idx"] == 1


def test_concurrent_first_claims_move_the_job_once(store, store_url):
    """Workers claiming a QUEUED job's tasks at the same moment: every task claimed once, the job
    RUNNING with one RUNNING event and one "state RUNNING" log line, attempts 1."""
    n = 6
    job, _ = store.create_job("p", {}, "alice")
    _plan(store, job["id"], [{"index": i} for i in range(n)])
    stores = [open_store(store_url) for _ in range(n)]
    start = threading.Barrier(n)
    got: list = [None] * n

    def claim(i: int) -> None:
        start.wait()
        got[i] = stores[i].claim_task(f"w{i}", Work("task", job["id"], 0, i, 1))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert sorted(t["idx"] for t in got) == list(range(n))
    states = [e["data"]["state"] for e in store.events_since(0) if e["type"] == "state"]
    assert states == ["PENDING", "QUEUED", "RUNNING"]
    assert [line["message"] for line in store.logs(job["id"])].count("state RUNNING") == 1
    ran = store.get_job(job["id"])
    assert ran["state"] == "RUNNING" and ran["attempts"] == 1


def test_a_retried_task_counts_its_attempts(store):
    job, _ = store.create_job("p", {}, "alice")
    _plan(store, job["id"], [{"index": 0}])
    assert store.claim_task("w1", Work("task", job["id"], 0, 0, 1))
    assert store.fail_task(job["id"], 0, "w1", "boom", max_attempts=3) == "QUEUED"
    again = store.claim_task("w2", Work("task", job["id"], 0, 0, 2))
    assert again and again["attempts"] == 2 and store.get_job(job["id"])["attempts"] == 2
    states = [e["data"]["state"] for e in store.events_since(0) if e["type"] == "state"]
    assert states == ["PENDING", "QUEUED", "RUNNING"]  # the second claim moves nothing


def test_no_claim_of_a_cancelled_job_s_task(store):
    job, _ = store.create_job("p", {}, "alice")
    _plan(store, job["id"], [{"index": 0}, {"index": 1}])
    assert store.claim_task("w1", Work("task", job["id"], 0, 0, 1))
    store.cancel_job(job["id"])
    assert store.claim_task("w2", Work("task", job["id"], 0, 1, 1)) is None


def test_the_merge_s_end_on_a_job_that_ended_writes_nothing(store):
    """A job cancelled while its merge ran keeps its state, and no output records are written."""
    seen: list = []
    store.on_events = seen.extend
    job, _ = store.create_job("p", {}, "alice")
    store.cancel_job(job["id"])
    n = len(seen)
    assert store.succeed_job(job["id"], [("/o/a", 1)], summary={}, outputs=["/o/a"], errors=[]) is None
    assert store.get_job(job["id"])["state"] == "CANCELLED" and store.outputs(job["id"]) == []
    assert len(seen) == n and [e["data"]["state"] for e in store.events_since(0)] == ["PENDING", "CANCELLED"]


def test_the_merge_s_end_replaces_earlier_output_records(store):
    """A merge that ran again (its first worker died after writing records) leaves only its own."""
    job, _ = store.create_job("p", {}, "alice")
    store.add_outputs(job["id"], [("/o/old", 1), ("/o/kept", 1)])
    assert store.succeed_job(job["id"], [("/o/kept", 5), ("/o/new", 7)], summary={}, outputs=[], errors=[])
    assert store.outputs(job["id"]) == [{"path": "/o/kept", "size": 5}, {"path": "/o/new", "size": 7}]


def test_an_empty_plan_moves_the_job_to_running_in_order(store):
    seen: list = []
    store.on_events = seen.extend
    job, _ = store.create_job("p", {}, "alice")
    assert _plan(store, job["id"], []) == [Work("merge", job["id"], 0, -1, 1)]
    assert [e["data"]["state"] for e in seen] == ["PENDING", "QUEUED", "RUNNING"]
    assert [e["id"] for e in seen] == [e["id"] for e in store.events_since(0)]
    ran = store.get_job(job["id"])
    assert ran["state"] == "RUNNING" and ran["started_at"]

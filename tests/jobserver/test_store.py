"""The store on both databases: migrations, lifecycle, claims, reaper, events, idempotency, redaction."""

from __future__ import annotations

import threading
import time

import pytest

from jobserver.store import open_store
from jobserver.store.base import Work, migrations

LATEST = migrations()[-1][0]


@pytest.fixture
def store(store_url):
    s = open_store(store_url)
    assert s.migrate() == LATEST
    yield s
    s.close()


def plan(store, job_id, specs, worker="planner"):
    """Claim the job's plan step and record ``specs`` (what a worker does)."""
    [work] = [w for w in store.next_work(job_id=job_id) if w.kind == "plan"]
    assert store.claim_step(work, worker)
    return store.plan_job(job_id, worker, specs)


def test_migrate_is_idempotent_and_recorded(store, store_url):
    assert LATEST >= 2
    assert store.migrate() == LATEST
    assert store.schema_version() == LATEST
    other = open_store(store_url)
    assert other.migrate() == LATEST
    other.close()


def in_threads(target, n):
    """Run ``target`` on ``n`` threads at once and wait for all of them."""
    ts = [threading.Thread(target=target) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def test_concurrent_migrations(store_url):
    results = []

    def go():
        s = open_store(store_url)
        results.append(s.migrate())
        s.close()

    in_threads(go, 4)
    assert results == [LATEST] * 4


def test_connections_racing_on_a_new_sqlite_file(tmp_path):
    """A server and its pool's workers open a new SQLite file together: each connection's switch to WAL
    mode must wait its turn, not fail with "database is locked"."""
    for n in range(10):
        url = f"sqlite:///{tmp_path}/race{n}.db"
        start = threading.Barrier(8)
        errors: list[BaseException] = []

        def connect(url=url, start=start, errors=errors):
            s = open_store(url)
            try:
                start.wait()
                s._conn()  # this thread's connection, opened as every store call opens it
            except BaseException as e:
                errors.append(e)
            finally:
                s.close()

        in_threads(connect, 8)
        assert not errors, errors


def test_lifecycle_and_events(store):
    job, created = store.create_job("p", {"src": "a", "dst": "b"}, "alice", "key", "cid-1")
    assert created and job["state"] == "PENDING" and job["correlation_id"] == "cid-1"
    again, created2 = store.create_job("p", {"src": "x"}, "alice", "key")
    assert not created2 and again["id"] == job["id"]
    new = plan(store, job["id"], [{"index": 0, "bytes": 10}, {"index": 1, "bytes": 30}])
    assert [w.key for w in new] == [f"aerofs-task-{job['id']}-0-{i}-1" for i in (0, 1)]
    assert not store.claim_step(Work("plan", job["id"], 0), "other")  # planned already
    t0 = store.claim_task("w1")
    t1 = store.claim_task("w2")
    assert {t0["idx"], t1["idx"]} == {0, 1} and store.claim_task("w3") is None
    assert store.get_job(job["id"])["state"] == "RUNNING"
    assert store.heartbeat(job["id"], t0["idx"], "w1", {"bytes_done": 10, "bytes_total": 10})
    assert not store.heartbeat(job["id"], t0["idx"], "w2", {})
    assert store.finish_task(job["id"], t0["idx"], "w1", {"outputs": ["o0"]})
    assert not store.claim_merge(job["id"])
    assert store.finish_task(job["id"], t1["idx"], "w2", {"outputs": ["o1"]})
    assert store.claim_merge(job["id"]) and not store.claim_merge(job["id"])
    store.set_job_state(job["id"], "SUCCEEDED", summary={"n": 2}, outputs=["o0", "o1"], errors=[])
    done = store.get_job(job["id"])
    assert done["state"] == "SUCCEEDED" and done["summary"] == {"n": 2} and done["finished_at"]
    assert store.set_job_state(job["id"], "FAILED") is None  # terminal never moves
    states = [e["data"]["state"] for e in store.events_since(0) if e["type"] == "state"]
    assert states == ["PENDING", "QUEUED", "RUNNING", "SUCCEEDED"]
    ids = [e["id"] for e in store.events_since(0)]
    assert ids == sorted(ids) and store.events_since(ids[-1]) == []


def test_get_jobs_reads_many_in_chunks(store):
    ids = [store.create_job("p", {"src": f"s{i}"}, "alice")[0]["id"] for i in range(5)]
    store.set_job_state(ids[1], "RUNNING")
    store.GET_JOBS_CHUNK = 2  # 5 ids and a missing one: three statements
    got = store.get_jobs([*ids, "0" * 32])
    assert sorted(got) == sorted(ids)
    assert got[ids[1]] == store.get_job(ids[1]) and got[ids[1]]["state"] == "RUNNING"
    assert got[ids[4]]["params"] == {"src": "s4"}
    assert store.get_jobs([]) == {}


def test_reaper_requeues_then_fails(store):
    job, _ = store.create_job("p", {}, "bob")
    plan(store, job["id"], [{"index": 0}])
    for attempt in (1, 2):
        t = store.claim_task(f"w{attempt}")
        assert t["attempts"] == attempt and store.get_job(job["id"])["attempts"] == attempt
        time.sleep(0.3)
        assert store.reap(0.2, max_attempts=3) == [Work("task", job["id"], 0, 0, attempt + 1)]
        assert store.tasks(job["id"])[0]["state"] == "QUEUED"
    store.claim_task("w3")
    time.sleep(0.3)
    store.reap(0.2, max_attempts=3)
    failed = store.get_job(job["id"])
    assert failed["state"] == "FAILED" and "after 3 attempts" in failed["error"] and failed["attempts"] == 3


def test_list_filters(store):
    for i in range(6):
        _j, _ = store.create_job(
            "csv" if i % 2 else "exif", {"src": f"/data/file-{i}-z"}, "alice" if i < 4 else "bob"
        )
    jobs, total = store.list_jobs(owner="alice")
    assert total == 4 and len(jobs) == 4
    jobs, total = store.list_jobs(owner="alice", pipeline="csv", limit=1, offset=1)
    assert total == 2 and len(jobs) == 1
    jobs, total = store.list_jobs(text="file-5-z")
    assert total == 1 and jobs[0]["owner"] == "bob"
    jobs, total = store.list_jobs(states=["PENDING"], order="asc")
    assert total == 6 and {j["params"]["src"] for j in jobs} == {f"/data/file-{i}-z" for i in range(6)}


def test_cancel_and_retry(store):
    job, _ = store.create_job("p", {}, "alice")
    plan(store, job["id"], [{"index": 0}, {"index": 1}])
    store.claim_task("w1")
    c = store.cancel_job(job["id"])
    assert c["state"] == "CANCELLED"
    assert [t["state"] for t in store.tasks(job["id"])] == ["RUNNING", "CANCELLED"]
    assert store.claim_task("w2") is None
    r = store.retry_job(job["id"])
    assert r["state"] == "PENDING" and store.tasks(job["id"]) == []
    assert store.retry_job(job["id"]) is None
    assert store.next_work(job_id=job["id"]) == [Work("plan", job["id"], 1, -1, 1)]  # a new generation


def test_no_credentials_stored(store):
    job, _ = store.create_job(
        "p",
        {
            "src": "s3://b/k",
            "dst": "postgresql://user:hunter2@db/x",
            "storage_options": {"secret": "hunter2"},
        },
        "alice",
    )
    store.add_log(job["id"], "connecting to redis://:hunter2@cache:6379/0")
    store.set_job_state(
        job["id"], "FAILED", error="could not connect to postgresql://u:hunter2@h/db password=hunter2"
    )
    dump = repr(store.get_job(job["id"])) + repr(store.logs(job["id"])) + repr(store.events_since(0))
    assert "hunter2" not in dump
    assert "postgresql://***@db/x" in dump


def test_attempts_of_a_first_successful_run(store):
    """One attempt per task, however many tasks: the job reads ``attempts == 1`` (it read 2)."""
    job, _ = store.create_job("p", {}, "alice")
    plan(store, job["id"], [{"index": 0}, {"index": 1}])
    for w in ("w1", "w2"):
        t = store.claim_task(w)
        assert store.finish_task(job["id"], t["idx"], w, {})
    assert store.get_job(job["id"])["attempts"] == 1


def test_merge_step_is_claimed_once_and_reaped(store):
    """A worker dying in the merge step no longer leaves the job RUNNING forever: the step heartbeats,
    the reaper releases it for another worker, and after ``max_attempts`` claims the job fails."""
    job, _ = store.create_job("p", {}, "alice")
    plan(store, job["id"], [{"index": 0}])
    t = store.claim_task("w1")
    store.finish_task(job["id"], t["idx"], "w1", {})
    [merge] = store.next_work(job_id=job["id"])
    assert merge == Work("merge", job["id"], 0, -1, 1)
    assert store.claim_step(merge, "m1") and not store.claim_step(merge, "m2")
    assert store.step_heartbeat(job["id"], "m1") and not store.step_heartbeat(job["id"], "m2")
    time.sleep(0.3)
    assert store.reap(0.2, max_attempts=2) == [Work("merge", job["id"], 0, -1, 2)]
    assert store.get_job(job["id"])["state"] == "RUNNING"
    assert store.claim_step(Work("merge", job["id"], 0, -1, 2), "m2")
    time.sleep(0.3)
    assert store.reap(0.2, max_attempts=2) == []
    failed = store.get_job(job["id"])
    assert failed["state"] == "FAILED" and "merge step: worker m2 stopped" in failed["error"]
    assert "after 2 attempts" in failed["error"]


def test_plan_step_reaped_and_an_empty_plan_goes_to_merge(store):
    job, _ = store.create_job("p", {}, "alice")
    [work] = store.next_work(job_id=job["id"])
    assert store.claim_step(work, "p1") and store.next_work(job_id=job["id"]) == []
    time.sleep(0.3)
    assert store.reap(0.2, max_attempts=3) == [Work("plan", job["id"], 0, -1, 2)]
    assert store.get_job(job["id"])["state"] == "PENDING"
    assert plan(store, job["id"], []) == [Work("merge", job["id"], 0, -1, 1)]
    assert store.get_job(job["id"])["state"] == "RUNNING"
    states = [e["data"]["state"] for e in store.events_since(0) if e["type"] == "state"]
    assert states == ["PENDING", "QUEUED", "RUNNING"]


def test_events_are_handed_over_after_commit(store):
    seen: list = []
    store.on_events = seen.extend
    job, _ = store.create_job("p", {}, "alice")
    store.publish_progress(job["id"])
    assert [e["type"] for e in seen] == ["state", "progress"]
    assert [e["id"] for e in seen] == [e["id"] for e in store.events_since(0)]
    with pytest.raises(RuntimeError), store.tx() as c:
        store._event(c, job["id"], "alice", "progress", {})
        raise RuntimeError("rolled back")
    assert len(seen) == 2


def test_a_new_job_is_its_three_rows_or_none(store, monkeypatch):
    """A submit writes the job, its PENDING event and its "submitted by" log line in one transaction
    (on PostgreSQL one statement): all three, as the job's own, or nothing when one of them fails."""
    job, created = store.create_job("p", {"src": "a"}, "alice", "key-1", "corr-1")
    assert created and store.get_job(job["id"]) == job
    assert job["correlation_id"] == "corr-1" and job["state"] == "PENDING"
    events = [e for e in store.events_since(0) if e["job_id"] == job["id"]]
    assert [(e["type"], e["data"], e["owner"]) for e in events] == [("state", {"state": "PENDING"}, "alice")]
    assert [line["message"] for line in store.logs(job["id"])] == [
        "submitted by alice (correlation id corr-1)"
    ]
    assert store.create_job("p", {"src": "a"}, "alice", "key-1") == (job, False)
    # the same id again: the job's insert fails, and neither the event nor the log line is left behind
    monkeypatch.setattr("jobserver.store.base.uuid.uuid4", lambda: type("U", (), {"hex": job["id"]})())
    with pytest.raises(Exception):  # noqa: B017 - sqlite3's or psycopg's IntegrityError
        store.create_job("p", {"src": "b"}, "alice")
    assert len([e for e in store.events_since(0) if e["job_id"] == job["id"]]) == 1
    assert len(store.logs(job["id"])) == 1


def test_next_work_merges_then_tasks_then_plans_oldest_first(store):
    """One statement gives the three kinds of work in the worker's order (merges, ready tasks, plans;
    each oldest job first, tasks by index), each kind limited on its own, or one job's."""
    done, _ = store.create_job("p", {}, "alice")  # will wait for its merge
    plan(store, done["id"], [{"index": 0}])
    t = store.claim_task("w1")
    assert store.finish_task(done["id"], t["idx"], "w1", {})
    running, _ = store.create_job("p", {}, "alice")  # two ready tasks
    plan(store, running["id"], [{"index": 0}, {"index": 1}])
    time.sleep(0.002)  # created_at has millisecond resolution
    first, _ = store.create_job("p", {}, "alice")
    time.sleep(0.002)
    second, _ = store.create_job("p", {}, "bob")
    assert store.next_work() == [
        Work("merge", done["id"], 0, -1, 1),
        Work("task", running["id"], 0, 0, 1),
        Work("task", running["id"], 0, 1, 1),
        Work("plan", first["id"], 0, -1, 1),
        Work("plan", second["id"], 0, -1, 1),
    ]
    assert store.next_work(limit=1) == [
        Work("merge", done["id"], 0, -1, 1),
        Work("task", running["id"], 0, 0, 1),
        Work("plan", first["id"], 0, -1, 1),
    ]
    assert store.next_work(job_id=running["id"]) == [
        Work("task", running["id"], 0, 0, 1),
        Work("task", running["id"], 0, 1, 1),
    ]
    assert store.next_work(job_id=second["id"]) == [Work("plan", second["id"], 0, -1, 1)]


def test_failed_task_waits_its_backoff(store):
    job, _ = store.create_job("p", {}, "alice")
    plan(store, job["id"], [{"index": 0}])
    store.claim_task("w1")
    assert store.fail_task(job["id"], 0, "w1", "boom", 3, backoff=30) == "QUEUED"
    assert store.next_work() == [] and store.claim_task("w2") is None
    # a queue message for the retry still claims it (RQ delivered it after the backoff)
    assert store.claim_task("w2", Work("task", job["id"], 0, 0, 2))["attempts"] == 2

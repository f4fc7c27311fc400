"""The batched job read on the server's event loop (PostgreSQL: an async psycopg pool of its own,
jobserver.store.pg_loop_reads); SQLite keeps the store thread. Same answers as the store's get_jobs,
no answer older than its request, the pool opened at start and closed at stop."""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import jp_sync, submit_job, user

from jobserver.store import open_store
from jobserver.store.pg_loop_reads import LoopReads


@pytest.mark.integration
def test_loop_reads_answer_as_the_store_does(pg_url):
    store = open_store(pg_url)
    try:
        store.migrate()
        ids = [store.create_job("sleepy", {"src": [f"a{i}"]}, "alice")[0]["id"] for i in range(3)]
        wanted = [*ids, "0" * 32]

        async def main() -> None:
            reads = store.loop_reads(2)
            assert isinstance(reads, LoopReads)
            await reads.open()
            # Opened full, each connection warmed and left idle.
            stats = reads.pool.get_stats()
            assert stats["pool_size"] == 2 and stats["pool_available"] == 2, stats
            got = await reads.get_jobs(wanted)
            assert got == store.get_jobs(wanted)
            assert sorted(got) == sorted(ids)  # the missing id is absent, as from the store
            # Fresh: a change committed before the read is in its answer.
            store.cancel_job(ids[0])
            assert (await reads.get_jobs([ids[0]]))[ids[0]]["state"] == "CANCELLED"
            await reads.close()
            assert reads.pool.closed

        asyncio.run(main())
    finally:
        store.close()


def test_sqlite_has_no_loop_reads(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/jobs.db")
    assert store.loop_reads(2) is None
    store.close()


@pytest.fixture
def aerofs_config(on_both_databases):
    return on_both_databases


@jp_sync
async def test_status_reads_through_the_server(jp_serverapp, jp_fetch, tmp_path):
    app = jp_serverapp.extension_manager.extension_points["aerofs"].app
    js = app.service
    job_id = await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "out")})
    # Several polls at once, batched; each answers the job as the store has it.
    got = await asyncio.gather(
        *[jp_fetch("aerofs", "api", "jobs", job_id, headers=user("alice")) for _ in range(5)]
    )
    assert {r.code for r in got} == {200}
    reads = js.job_reads.loop_reads
    if "postgresql" in app.database_url_resolved:
        assert reads is not None and not reads.pool.closed
        js.store.cancel_job(job_id)  # committed before the next request
        r = await jp_fetch("aerofs", "api", "jobs", job_id, headers=user("alice"))
        assert json.loads(r.body)["state"] == "CANCELLED"
        await app.stop_extension()
        assert reads.pool.closed
    else:
        assert reads is None

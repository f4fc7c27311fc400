"""What the job server pays at start-up so its first requests do not: the store threads running, the
PostgreSQL pool grown to cover them (every connection opened and warmed), each pipeline's validator
built (docs/operations.md, "The submit burst at start-up")."""

from __future__ import annotations

import threading

import pytest
from conftest import jp_sync, submit_job

from jobserver.handlers.base import STORE_THREADS
from jobserver.store import open_store


@pytest.mark.integration
def test_warm_up_opens_and_keeps_the_connections(pg_url):
    store = open_store(pg_url)
    try:
        store.migrate()
        store.warm_up(4)
        stats = store.pool.get_stats()
        # Opened (at least: the pool may already hold one more than its old min_size), idle in the
        # pool, and kept there (min_size) rather than closed after max_idle.
        assert stats["pool_size"] >= 4 and stats["pool_available"] == stats["pool_size"], stats
        assert store.pool.min_size == 4 and store.pool.max_size >= 4
        # Each connection answers (the warm-up left none in a transaction).
        held = [store.pool.getconn(timeout=5) for _ in range(4)]
        assert len({id(c) for c in held}) == 4
        for c in held:
            assert c.info.transaction_status == 0  # IDLE
            store.pool.putconn(c)
        # A smaller request never shrinks the pool.
        store.warm_up(2)
        assert store.pool.min_size == 4
    finally:
        store.close()


def test_warm_up_is_a_no_op_on_sqlite(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/jobs.db")
    store.migrate()
    store.warm_up(10)
    store.close()


@pytest.fixture
def aerofs_config(on_both_databases):
    return on_both_databases


@jp_sync
async def test_server_starts_warm(jp_serverapp, jp_fetch, tmp_path):
    js = jp_serverapp.web_app.settings["aerofs_jobserver"]
    # Store threads run before any request.
    names = {t.name for t in threading.enumerate()}
    assert {f"aerofs-store-{i}" for i in range(STORE_THREADS)} <= names
    pool = getattr(js.store, "pool", None)
    if pool is not None:  # PostgreSQL: one connection per store thread plus the event bus's and reaper's
        assert pool.min_size == STORE_THREADS + 2
        assert pool.get_stats()["pool_size"] >= STORE_THREADS + 2
    # The first submit goes through as any other.
    assert await submit_job(jp_fetch, {"src": ["a"], "dst": str(tmp_path / "out")})


def test_preload_imports_every_pipeline_and_builds_its_validator():
    """What ``aerofs worker`` loads before its first message (and a ``--fork`` work horse inherits):
    every pipeline's module and compiled option validator. Run in a fresh interpreter, where nothing
    has loaded them yet."""
    import json
    import subprocess
    import sys

    probe = (
        "import json\n"
        "from jobserver.worker import load_runner, preload, registry\n"
        "runner = load_runner()\n"
        "preload(runner)\n"
        "ps = registry(runner).all_pipelines()\n"
        "print(json.dumps({'names': [p.name for p in ps],\n"
        "    'compiled': [('_compiled' in type(p).__dict__) for p in ps]}))\n"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True).stdout)
    assert sorted(out["names"]) == ["csv-to-parquet", "exif", "log-sessions", "word-count"]
    assert all(out["compiled"]), out

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))


@pytest.fixture
def js_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(HERE), str(HERE.parent.parent), os.environ.get("PYTHONPATH", "")])
    )
    for k in ("AEROFS_DATABASE_URL", "AEROFS_REDIS_URL", "AEROFS_ADMIN_USERS", "AEROFS_ALLOWED_ROOTS"):
        monkeypatch.delenv(k, raising=False)
    return tmp_path


@pytest.fixture
def aerofs_config() -> dict[str, Any]:
    """Per-test overrides of the AerofsApp config (tests modify it before the server starts)."""
    return {}


@pytest.fixture
def jp_server_config(js_dir: Path, aerofs_config: dict[str, Any]) -> dict[str, Any]:
    cfg = {
        "data_dir": str(js_dir / "data"),
        "runner_module": "fake_runner",
        "admin_users": ["root"],
        "workers": 2,
        "stale_after": 1.5,
        "max_attempts": 3,
        **aerofs_config,
    }
    return {
        "ServerApp": {
            "jpserver_extensions": {"jobserver": True},
            "identity_provider_class": "identity.HeaderIdentityProvider",
        },
        "AerofsApp": cfg,
    }


def user(name: str | None) -> dict[str, str]:
    return {"X-Test-User": name} if name else {}


async def wait_state(fetch: Any, job_id: str, who: str, states: set[str], timeout: float = 30) -> dict:
    import json

    deadline = time.monotonic() + timeout
    job: dict = {}
    while time.monotonic() < deadline:
        r = await fetch("aerofs", "api", "jobs", job_id, headers=user(who))
        job = json.loads(r.body)
        if job["state"] in states:
            return job
        import asyncio

        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} stuck in {job.get('state')}: {job}")


def jp_sync(fn: Any) -> Any:
    """Run an async test on pytest-jupyter's loop (the server's). pytest-asyncio (asyncio_mode=auto)
    would otherwise run it on a loop of its own where the server never answers."""
    import functools

    from jupyter_core.utils import ensure_event_loop

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return ensure_event_loop(prefer_selector_loop=True).run_until_complete(fn(*args, **kwargs))

    return wrapper


def _pg_url_with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_url() -> Any:
    """A PostgreSQL URL whose search_path is a fresh schema (dropped afterwards)."""
    import uuid

    import psycopg

    base = os.environ.get("AEROFS_TEST_DATABASE_URL")
    if not base:
        pytest.skip("AEROFS_TEST_DATABASE_URL not set (scripts/services.sh env)")
    schema = f"js_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    yield _pg_url_with_schema(base, schema)
    with psycopg.connect(base, autocommit=True) as c:
        c.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/jobs.db"
    return request.getfixturevalue("pg_url")

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


@pytest.fixture
def token_server_config(js_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A personal server's config: jupyter_server's own identity provider and token (the embedded
    default), no hub user in the environment; use it as a test class's ``jp_server_config``."""
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    return {
        "ServerApp": {"jpserver_extensions": {"jobserver": True}},
        "AerofsApp": {"data_dir": str(js_dir / "data"), "runner_module": "fake_runner", "workers": 1},
    }


def user(name: str | None) -> dict[str, str]:
    return {"X-Test-User": name} if name else {}


async def post_job(
    fetch: Any,
    params: Any,
    who: str | None = "alice",
    pipeline: str = "sleepy",
    *,
    expect: int = 202,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """``POST aerofs/api/jobs`` with ``{"pipeline", "params", **fields}`` as ``who`` (None: no test
    user header, for servers that authenticate by token), asserting the answer's status is
    ``expect`` (202 a new job, 200 the job an idempotency key already made, 400 refused); the
    answer's JSON body. A job in the answer is checked to be the one it names."""
    import json

    from tornado.httpclient import HTTPClientError

    body = json.dumps({"pipeline": pipeline, "params": params, **fields})
    try:
        r = await fetch(
            "aerofs", "api", "jobs", method="POST", headers={**user(who), **(headers or {})}, body=body
        )
    except HTTPClientError as e:  # jp_fetch raises for 4xx: the answer is what is checked
        if e.response is None:
            raise
        r = e.response
    doc = json.loads(r.body)
    assert r.code == expect, (r.code, doc)
    if r.code in (200, 202):
        assert doc["id"] == doc["job"]["id"] and doc["state"] == doc["job"]["state"], doc
    return dict(doc)


async def submit_job(
    fetch: Any, params: Any, who: str | None = "alice", pipeline: str = "sleepy", **kw: Any
) -> str:
    """:func:`post_job` of a new job (202); its id."""
    return str((await post_job(fetch, params, who, pipeline, **kw))["id"])


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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def on_both_databases(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The extension's config for the embedded SQLite store, then for PostgreSQL: a module runs its
    server tests on both with ``aerofs_config`` returning this."""
    if request.param == "sqlite":
        return {}
    return {"database_url": request.getfixturevalue("pg_url")}


# -- team mode: real redis-server, PostgreSQL and `aerofs worker` processes ---------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Any, timeout: float = 30.0, what: str = "condition", every: float = 0.1) -> Any:
    """Poll ``cond()`` until truthy (generous deadlines; no timing assertions)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


class RedisServer:
    """A private redis-server on a free loopback port, AOF on (``appendfsync everysec``); TLS with
    ``tls={"cert":..., "key":..., "ca":...}`` (plain port off); ``password`` sets ``requirepass``."""

    def __init__(self, workdir: Path, tls: dict[str, str] | None = None, password: str | None = None):
        import shutil

        if not shutil.which("redis-server"):
            pytest.skip("redis-server not installed")
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls = tls
        self.password = password
        self.proc: Any = None

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        cred = f"default:{self.password}@" if self.password else ""
        return f"{scheme}://{cred}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        import subprocess

        cmd = ["redis-server", "--bind", "127.0.0.1", "--dir", str(self.dir), "--appendonly", "yes"]
        cmd += ["--appendfsync", "everysec", "--save", "", "--logfile", str(self.dir / "redis.log")]
        if self.tls:
            cmd += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", self.tls["cert"]]
            cmd += ["--tls-key-file", self.tls["key"], "--tls-ca-cert-file", self.tls["ca"]]
            cmd += ["--tls-auth-clients", "no"]
        else:
            cmd += ["--port", str(self.port)]
        if self.password:
            cmd += ["--requirepass", self.password]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._up, 20, "redis-server to listen")
        return self

    def _up(self) -> bool:
        import socket

        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: whatever AOF had not fsynced (up to a second) is lost, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except Exception:
                self.proc.kill()


@pytest.fixture
def redis_server(tmp_path: Path) -> Any:
    r = RedisServer(tmp_path / "redis").start()
    yield r
    r.stop()


class Workers:
    """``python -m jobserver.worker`` processes (what ``aerofs worker`` runs) in team mode."""

    def __init__(self, db_url: str, redis_url: str, workdir: Path, **env: str) -> None:
        self.db_url, self.redis_url, self.workdir = db_url, redis_url, workdir
        self.env = env
        self.procs: list[Any] = []
        self.logs: list[Path] = []

    def start(self, n: int = 1, *args: str) -> Workers:
        import subprocess

        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent.parent)]),
            "AEROFS_DATABASE_URL": self.db_url,
            "AEROFS_REDIS_URL": self.redis_url,
            **self.env,
        }
        for _ in range(n):
            i = len(self.procs)
            log = self.workdir / f"worker-{i}.log"
            self.workdir.mkdir(parents=True, exist_ok=True)
            cmd = [
                sys.executable,
                "-m",
                "jobserver.worker",
                "--runner",
                env.get("TEST_RUNNER", "fake_runner"),
            ]
            cmd += ["--workdir", str(self.workdir / "work"), "--stale-after", "1.5", "--name", f"w{i}", *args]
            with open(log, "wb") as f:
                self.procs.append(
                    subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
                )
            self.logs.append(log)
        return self

    def kill_running(self, pid: int) -> int:
        """SIGKILL the worker that runs a task (a machine lost): ``pid`` ran the task, either the worker
        itself (messages run in its process) or, with ``--fork``, the work horse it forked, killed with
        it. The worker's pid."""
        import signal

        workers = {p.pid for p in self.procs}
        worker = pid
        if pid not in workers:
            with open(f"/proc/{pid}/stat") as f:
                worker = int(f.read().rsplit(")", 1)[1].split()[1])
            assert worker in workers, f"{pid} is neither a worker nor a worker's work horse"
        os.kill(worker, signal.SIGKILL)
        if pid != worker:
            os.kill(pid, signal.SIGKILL)
        return worker

    def stop(self) -> None:
        import signal

        for p in self.procs:
            with _suppress():
                os.killpg(p.pid, signal.SIGKILL)
        for p in self.procs:
            with _suppress():
                p.wait(10)

    def output(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs if p.exists())


def _suppress() -> Any:
    import contextlib

    return contextlib.suppress(Exception)


def rq_horses_of(dst: Path, index: int = 0) -> list[int]:
    """Pids of the processes that started task ``index`` (fake_runner writes attempt-<idx>-<pid>)."""
    files = sorted(dst.glob(f"attempt-{index}-*"), key=lambda f: f.stat().st_mtime) if dst.exists() else []
    return [int(f.name.rsplit("-", 1)[1]) for f in files]

"""The Jupyter server extension ``aerofs``: configuration (traitlets + environment), the job
service (store, local worker pool, event bus) and the routes under ``aerofs/api/``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import IOLoop, PeriodicCallback
from traitlets import Bool, Float, Int, List, TraitError, Unicode, default, validate

from jobserver import auth, gcfreeze, priority, stalls
from jobserver.events import EventBus
from jobserver.identity_cache import IdentityCache
from jobserver.logging import log_event
from jobserver.queue import Maintenance, open_queue
from jobserver.redact import redact
from jobserver.store import Store, open_store
from jobserver.wake import WakePipe


class JobService:
    """What the handlers use: the store, validation, the event bus, the local pool."""

    def __init__(self, app: AerofsApp, store: Store) -> None:
        self.app = app
        self.store = store
        self.admin_users = set(app.admin_users)
        self.admin_group = app.admin_group
        self.metrics_auth = app.metrics_auth
        # Team mode (a Redis URL): RQ carries the work and pub/sub the live events; else the local pool
        # polls the store. Either way the store is the source of truth.
        self.queue = open_queue(app.redis_url, app.redis_ca_file or None, app.task_timeout)
        self.team = self.queue.mode == "rq"
        self.bus = EventBus(store, app.event_poll_interval, self.queue.redis)
        from jobserver.handlers.job_reads import JobReads

        self.job_reads = JobReads(store)
        self.pool: list[subprocess.Popen[bytes]] = []
        # Idle pool workers block on this pipe; a submitted job wakes one (jobserver.wake).
        self.wake: WakePipe | None = None
        self.maintenance = Maintenance(store, self.queue, app.stale_after, app.max_attempts)
        self._pool_watch = PeriodicCallback(self.maintain, 1000)
        self._sender = ThreadPoolExecutor(1, thread_name_prefix="aerofs-enqueue")
        self.base_url = "/"
        self.submitted_count: dict[tuple[str, str], int] = {}

    # -- pipelines and validation ---------------------------------------------------------------
    def _registry(self) -> Any:
        from jobserver.worker import load_runner, registry

        return registry(load_runner(self.app.runner_module or None))

    def pipelines(self) -> list[Any]:
        return list(self._registry().all_pipelines())

    def validate(self, pipeline: Any, params: Any, user: str) -> list[dict[str, str]]:
        if not isinstance(pipeline, str) or not pipeline:
            return [{"path": "$.pipeline", "message": "required: the name of a pipeline"}]
        if not isinstance(params, dict):
            return [{"path": "$.params", "message": "must be an object"}]
        try:
            spec = self._registry().get_pipeline(pipeline)
        except KeyError:
            names = ", ".join(p.name for p in self.pipelines())
            return [{"path": "$.pipeline", "message": f"unknown pipeline {pipeline!r} (known: {names})"}]
        clean = {k: v for k, v in params.items() if k != "storage_options"}
        errors = [{"path": e.path, "message": redact(e.message)} for e in spec.validate(clean)]
        errors += auth.check_roots(params, list(self.app.allowed_roots), user)
        if "storage_options" in params and self.app.allowed_roots:
            errors.append({"path": "$.storage_options", "message": auth.STORAGE_OPTIONS_REFUSED})
        return errors

    def submitted(self, job: dict[str, Any], created: bool) -> None:
        if created and self.team:
            self._sender.submit(self._enqueue_job, job["id"])
        elif created and self.wake is not None:
            self.wake.wake()
        if created:
            key = (job["pipeline"], job["owner"])
            self.submitted_count[key] = self.submitted_count.get(key, 0) + 1
            log_event(
                "job.submitted",
                job_id=job["id"],
                pipeline=job["pipeline"],
                owner=job["owner"],
                correlation_id=job.get("correlation_id"),
            )

    def _enqueue_job(self, job_id: str) -> None:
        """Send the new (or retried) job's plan message; should Redis be down, the sweeper sends it."""
        try:
            self.queue.enqueue(self.store.next_work(job_id=job_id))
        except Exception as e:
            log_event("job.enqueue_failed", job_id=job_id, error=redact(f"{type(e).__name__}: {e}"))

    def api_url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/aerofs/api/" + path

    def stats(self) -> dict[str, Any]:
        s = self.store.stats()
        if self.team:  # what RQ knows: messages waiting in rq:queue:aerofs, registered workers
            try:
                q = self.queue.stats()
            except Exception as e:
                log_event("stats.redis_error", error=redact(f"{type(e).__name__}: {e}"))
                q = {}
            s.update(
                {k: q[k] for k in ("queue_length", "workers_total", "workers_busy", "workers_idle") if k in q}
            )
            s["queue_scheduled"] = q.get("scheduled", 0)
            s["queue_mode"] = "rq"
            return s
        workers = len(self.pool) if self.pool else self.app.workers
        s["workers_total"] = workers
        s["workers_idle"] = max(0, workers - s["workers_busy"])
        s["queue_mode"] = "local"
        return s

    # -- the local pool -------------------------------------------------------------------------
    def start(self) -> None:
        # Import the runner and pipelines, and compile each pipeline's option validator, now rather
        # than in the first submits (the validator is built at its first use; see Pipeline._validator).
        from jobserver.worker import load_runner, preload

        preload(load_runner(self.app.runner_module or None))
        self.bus.start()
        self.maintenance.start()
        self._pool_watch.start()
        # Both on the loop, which runs only once every extension has loaded (start-up is over).
        IOLoop.current().add_callback(gcfreeze.freeze_after_startup)
        # Off unless AEROFS_STALL_LOG is set.
        IOLoop.current().add_callback(lambda: stalls.start_from_env(asyncio.get_running_loop()))
        if self.app.local_pool:
            self.wake = WakePipe.create()
            for i in range(self.app.workers):
                self.pool.append(self._spawn(i))

    def _spawn(self, i: int) -> subprocess.Popen[bytes]:
        cmd = [
            sys.executable, "-m", "jobserver.worker",
            "--database-url", self.app.database_url_resolved,
            "--workdir", os.path.join(self.app.data_dir_resolved, "work"),
            "--name", f"local-{os.getpid()}-{i}", "--parent-pid", str(os.getpid()),
            "--max-attempts", str(self.app.max_attempts),
            "--task-timeout", str(self.app.task_timeout),
            "--stale-after", str(self.app.stale_after),
            "--max-tasks", str(self.app.max_tasks),
            "--nice", str(self.app.worker_nice),
        ]  # fmt: skip
        if self.app.runner_module:
            cmd += ["--runner", self.app.runner_module]
        fds: tuple[int, ...] = ()
        if self.wake is not None:
            cmd += ["--wake-fds", self.wake.spec]
            fds = (self.wake.read_fd, self.wake.write_fd)
        env = {**os.environ}
        env.pop("AEROFS_REDIS_URL", None)
        if self.team:  # credentials through the environment, not the command line
            env["AEROFS_REDIS_URL"] = self.app.redis_url
            if self.app.redis_ca_file:
                env["AEROFS_REDIS_CA_FILE"] = self.app.redis_ca_file
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env, pass_fds=fds)

    def maintain(self) -> None:
        """Every second: restart local workers that died (the reaper runs on its own thread)."""
        for i, p in enumerate(self.pool):
            if p.poll() is not None:
                log_event("pool.restart", worker=i, exit_code=p.returncode)
                self.pool[i] = self._spawn(i)

    def stop(self) -> None:
        self.bus.stop()
        self.maintenance.stop()
        self._pool_watch.stop()
        self._sender.shutdown(wait=False)
        for p in self.pool:
            if p.poll() is None:
                p.terminate()
        for p in self.pool:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        self.pool = []
        if self.wake is not None:
            self.wake.close()
            self.wake = None
        self.queue.close()


class AerofsApp(ExtensionApp):
    name = "aerofs"
    extension_url = "/aerofs/api/pipelines"
    load_other_extensions = True

    database_url = Unicode(
        "",
        help="SQLAlchemy-style URL of the job store (env AEROFS_DATABASE_URL); "
        "empty: SQLite in the Jupyter data dir",
    ).tag(config=True)
    redis_url = Unicode(
        "", help="Redis URL for team mode: RQ workers elsewhere (env AEROFS_REDIS_URL; rediss:// for TLS)"
    ).tag(config=True)
    redis_ca_file = Unicode(
        "", help="CA bundle that signs Redis's TLS certificate (env AEROFS_REDIS_CA_FILE)"
    ).tag(config=True)
    data_dir = Unicode("", help="where the embedded store and work files live (env AEROFS_DATA_DIR)").tag(
        config=True
    )
    admin_users = List(
        Unicode(), help="user names with admin rights (env AEROFS_ADMIN_USERS, comma separated)"
    ).tag(config=True)
    admin_group = Unicode(auth.ADMIN_GROUP, help="JupyterHub group granting admin").tag(config=True)
    allowed_roots = List(
        Unicode(),
        help="path/S3 prefixes users may read and write, with {username} "
        "(env AEROFS_ALLOWED_ROOTS, comma separated); empty: no limit",
    ).tag(config=True)
    max_attempts = Int(3, help="attempts per task before the job fails (env AEROFS_MAX_ATTEMPTS)").tag(
        config=True
    )
    task_timeout = Float(3600.0, help="seconds before a task is stopped (env AEROFS_TASK_TIMEOUT)").tag(
        config=True
    )
    stale_after = Float(3.0, help="seconds without a heartbeat before a task is requeued").tag(config=True)
    max_tasks = Int(4, help="tasks a job is split into at most").tag(config=True)
    workers = Int(2, help="local pool size (env AEROFS_WORKERS)").tag(config=True)
    worker_nice = Int(
        priority.POOL_DEFAULT,
        help="how much lower the local pool's workers run in CPU priority than this server, 0 to 19 "
        "(os.nice; env AEROFS_WORKER_NICE; 0: the same): a background job must not make the notebook "
        "server sluggish (see jobserver.priority)",
    ).tag(config=True)
    local_pool = Bool(True, help="start the local worker pool (off when workers run elsewhere)").tag(
        config=True
    )
    runner_module = Unicode("", help="module with plan_job/run_task/merge_job (tests)").tag(config=True)
    metrics_auth = Bool(True, help="require authentication for aerofs/metrics").tag(config=True)
    event_poll_interval = Float(0.2, help="seconds between event-table polls").tag(config=True)
    identity_cache_ttl = Float(
        10.0,
        help="seconds a request's identity (same credentials) is remembered; 0: ask the identity "
        "provider every time (env AEROFS_IDENTITY_CACHE_TTL; see jobserver.identity_cache)",
    ).tag(config=True)
    fast_reads = Bool(
        True,
        help="answer status polls of a known caller without building a request handler, same checks and "
        "answer (env AEROFS_FAST_READS=0 to turn off; see jobserver.handlers.fast_reads)",
    ).tag(config=True)
    jobserver_url = Unicode(
        "",
        help="a team job server to forward aerofs/api/* to, this server being a thin client "
        "(env AEROFS_JOBSERVER_URL; token: see jobserver.forward); empty: run jobs here",
    ).tag(config=True)

    @default("jobserver_url")
    def _jsurl_default(self) -> str:
        return os.environ.get("AEROFS_JOBSERVER_URL", "")

    @default("database_url")
    def _db_default(self) -> str:
        return os.environ.get("AEROFS_DATABASE_URL", "")

    @default("redis_url")
    def _redis_default(self) -> str:
        return os.environ.get("AEROFS_REDIS_URL", "")

    @default("redis_ca_file")
    def _redis_ca_default(self) -> str:
        return os.environ.get("AEROFS_REDIS_CA_FILE", "")

    @default("stale_after")
    def _sa_default(self) -> float:
        return float(os.environ.get("AEROFS_STALE_AFTER", "3"))

    @default("identity_cache_ttl")
    def _ict_default(self) -> float:
        return float(os.environ.get("AEROFS_IDENTITY_CACHE_TTL", "10"))

    @default("fast_reads")
    def _fast_reads_default(self) -> bool:
        return os.environ.get("AEROFS_FAST_READS", "1") != "0"

    @default("data_dir")
    def _dd_default(self) -> str:
        return os.environ.get("AEROFS_DATA_DIR", "")

    @default("admin_users")
    def _admins_default(self) -> list[str]:
        return [u.strip() for u in os.environ.get("AEROFS_ADMIN_USERS", "").split(",") if u.strip()]

    @default("allowed_roots")
    def _roots_default(self) -> list[str]:
        return [u.strip() for u in os.environ.get("AEROFS_ALLOWED_ROOTS", "").split(",") if u.strip()]

    @default("max_attempts")
    def _ma_default(self) -> int:
        return int(os.environ.get("AEROFS_MAX_ATTEMPTS", "3"))

    @default("task_timeout")
    def _tt_default(self) -> float:
        return float(os.environ.get("AEROFS_TASK_TIMEOUT", "3600"))

    @default("worker_nice")
    def _nice_default(self) -> int:
        return priority.from_env(priority.POOL_DEFAULT)

    @validate("worker_nice")
    def _nice_valid(self, proposal: Any) -> int:
        try:
            return priority.check(proposal["value"])
        except ValueError as e:
            raise TraitError(f"AerofsApp.worker_nice: {e}") from None

    @default("workers")
    def _w_default(self) -> int:
        return int(os.environ.get("AEROFS_WORKERS", "2"))

    @property
    def data_dir_resolved(self) -> str:
        return self.data_dir or os.path.join(jupyter_data_dir(), "aerofs")

    @property
    def database_url_resolved(self) -> str:
        return self.database_url or "sqlite:///" + os.path.join(self.data_dir_resolved, "jobs.db")

    def initialize_settings(self) -> None:
        if self.jobserver_url:  # thin client: no store, no pool; jobserver.forward does the rest
            from jobserver import forward

            self.settings.update(forward.settings(self.jobserver_url))
            self.log.info("aerofs: thin client of the job server at %s", redact(self.jobserver_url))
            return
        store = open_store(self.database_url_resolved)
        version = store.migrate()
        # Start-up costs paid now, not by the first requests (docs/operations.md, "The submit burst at
        # start-up"): the store threads, and a warmed connection for each, plus the event bus's and the
        # reaper's.
        from jobserver.handlers.base import start_store_threads

        store.warm_up(start_store_threads() + 2)
        self.service = JobService(self, store)
        self.service.base_url = self.serverapp.base_url if self.serverapp else "/"
        self.settings["aerofs_jobserver"] = self.service
        self.settings["aerofs_identity_cache"] = IdentityCache(self.identity_cache_ttl)
        self.log.info(
            "aerofs job server: store %s (schema %d), %s",
            redact(self.database_url_resolved),
            version,
            f"local pool of {self.workers}" if self.local_pool else "external workers",
        )
        if self.redis_url:
            self.log.info("aerofs job server: team mode, RQ queue 'aerofs' on %s", redact(self.redis_url))
        self.service.start()

    def initialize_handlers(self) -> None:
        from jobserver import forward
        from jobserver.handlers import routes

        self.handlers.extend(forward.routes("/aerofs") if self.jobserver_url else routes("/aerofs"))
        if self.fast_reads and not self.jobserver_url and self.serverapp is not None:
            from jobserver.handlers import JobHandler, fast_reads

            # In front of every route (jupyter_server's own ~100 come first otherwise); it answers only
            # the status polls it can answer as JobHandler would, and routes nothing else. In the
            # settings as `aerofs_fast_reads` (its counters), absent when not installed.
            web_app = self.serverapp.web_app
            router = fast_reads.install(web_app, JobHandler, self.name)
            if router is not None:
                web_app.settings["aerofs_fast_reads"] = router

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        # The server's loop runs now: open the loop's read pool (PostgreSQL) before the first status poll.
        svc = getattr(self, "service", None)
        if svc is not None:
            await svc.job_reads.start()

    async def stop_extension(self) -> None:
        svc = getattr(self, "service", None)
        if svc is not None:
            svc.stop()
            await svc.job_reads.close()

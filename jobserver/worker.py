"""The worker: plans jobs into tasks, runs tasks (``runner.run_task``), merges finished jobs.

:meth:`Worker.handle` is the one task function: it claims a unit of work (:class:`Work`) in the store
and does it. The embedded local pool (``python -m jobserver.worker``, processes the server starts)
finds work by polling the store; in team mode (``AEROFS_REDIS_URL`` set) ``aerofs worker`` runs an RQ
worker whose messages call :func:`perform`, which calls the same ``handle``.

The store stays the source of truth: a claimed task heartbeats while it runs (so do plan and merge
steps), and the reaper (every worker and the server run one, see :class:`jobserver.queue.Maintenance`)
requeues work whose worker stopped heartbeating: a SIGKILLed worker's task runs again elsewhere within
seconds, up to ``max_attempts``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from jobserver import priority
from jobserver.logging import log_event
from jobserver.queue import LocalQueue, Maintenance, open_queue, redis_connection, task_backoff
from jobserver.redact import redact
from jobserver.store import Store, open_store
from jobserver.store.base import Work
from jobserver.wake import WakePipe

DEFAULT_RUNNER = "aerofs_kernel.runner"
T = TypeVar("T")


def load_runner(name: str | None = None) -> Any:
    return importlib.import_module(name or os.environ.get("AEROFS_JOBSERVER_RUNNER") or DEFAULT_RUNNER)


def registry(runner: Any) -> Any:
    """Where ``runner``'s pipelines are looked up: the runner itself when it has a registry (tests'
    runners), else AeroFS's own (``aerofs_kernel.pipelines``)."""
    if hasattr(runner, "all_pipelines"):
        return runner
    from aerofs_kernel import pipelines

    return pipelines


def preload(runner: Any) -> None:
    """Import every pipeline and build each one's option validator now, once, rather than at first use.

    The server calls it at start (its first submits would pay it). ``aerofs worker`` in team mode calls
    it before its first message, which would pay it otherwise; with ``--fork`` every message runs in a
    fresh work horse, which loads again whatever the parent did not: measured before this (py-spy,
    server bench with Redis), 83% of a horse's CPU was imports and the JSON-schema validators' build,
    ~0.3-0.6 s a tiny task."""
    for p in registry(runner).all_pipelines():
        p.validate({})


def _progress_obj() -> Any:
    from aerofs_kernel import _engine

    return _engine.Progress()


def _transient(e: BaseException) -> bool:
    """A store error that a later try may not hit (database restarting, pool exhausted, locked)."""
    name = type(e).__name__
    return name in ("OperationalError", "InterfaceError", "PoolTimeout", "TooManyRequests") or isinstance(
        e, ConnectionError
    )


def retrying(fn: Callable[..., T], *args: Any, deadline: float = 120.0, **kwargs: Any) -> T:
    """``fn(*args)``, tried again with backoff while the store is unreachable (up to ``deadline`` s):
    a finished task's result must not be lost to a database restart."""
    end = time.monotonic() + deadline
    wait = 0.25
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            if not _transient(e) or time.monotonic() + wait > end:
                raise
            log_event(
                "store.retry", call=getattr(fn, "__name__", "?"), error=redact(f"{type(e).__name__}: {e}")
            )
            time.sleep(wait)
            wait = min(wait * 2, 5.0)


class Worker:
    def __init__(
        self,
        store: Store,
        workdir: str,
        runner: Any = None,
        name: str | None = None,
        max_attempts: int = 3,
        task_timeout: float = 3600.0,
        heartbeat: float = 0.5,
        stale_after: float = 3.0,
        max_tasks: int = 4,
        progress_factory: Any = None,
        queue: Any = None,
        progress_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.workdir = workdir
        self.runner = runner or load_runner()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.max_attempts = max_attempts
        self.task_timeout = task_timeout
        self.heartbeat_s = heartbeat
        self.stale_after = stale_after
        self.max_tasks = max_tasks
        self.progress_factory = progress_factory or getattr(self.runner, "Progress", None) or _progress_obj
        self.queue = queue or LocalQueue()
        self.progress_interval = progress_interval
        self.stopping = False
        # A local-pool worker's server (see --parent-pid); 0 for a worker started on its own.
        self.parent_pid = 0
        # The local pool's wake-up pipe (see jobserver.wake; --wake-fds), shared with the server.
        self.wake: WakePipe | None = None

    # -- the task function -------------------------------------------------------------------------
    def handle(self, work: Work, progress_fresh: bool = False) -> bool:
        """Claim ``work`` in the store and do it; False when it was not (or no longer) to be done.
        ``progress_fresh``: the job's progress was just published (a merge need not again)."""
        if work.kind == "task":
            task = self.store.claim_task(self.name, work)
            if not task:
                return False
            self.run(task, work.gen)
            return True
        job = self.store.claim_step(work, self.name)
        if not job:
            return False
        if work.kind == "plan":
            self.plan(job)
        else:
            self.merge(job, progress_fresh)
        return True

    def step(self) -> bool:
        """Local pool: do one unit of ready work found in the store; False when there was none."""
        return any(self.handle(w) for w in self.store.next_work(limit=5))

    def _beating(self, job_id: str, fn: Callable[[], T]) -> T:
        """``fn()`` on a thread while this worker heartbeats its claim on the job's plan/merge step."""
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = fn()
            except BaseException as e:
                box["error"] = e

        th = threading.Thread(target=target, name=f"step-{job_id}", daemon=True)
        th.start()
        while th.is_alive():
            th.join(self.heartbeat_s)
            if not th.is_alive():
                break  # done within the beat: no heartbeat needed
            with contextlib.suppress(Exception):
                self.store.step_heartbeat(job_id, self.name)
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    def plan(self, job: dict[str, Any]) -> None:
        cid = job.get("correlation_id")
        try:
            params = self._params(job)
            specs = self._beating(
                job["id"], lambda: list(self.runner.plan_job(job["pipeline"], params, self.max_tasks))
            )
        except Exception as e:
            retrying(
                self.store.set_job_state,
                job["id"],
                "FAILED",
                error=f"planning failed: {type(e).__name__}: {e}",
            )
            log_event("job.plan_failed", job_id=job["id"], correlation_id=cid, error=redact(str(e)))
            return
        new = retrying(self.store.plan_job, job["id"], self.name, specs)
        if new is None:
            return
        log_event("job.planned", job_id=job["id"], correlation_id=cid, tasks=len(specs), worker=self.name)
        if not new:
            return
        # This worker runs the first task (or the merge of a job with none) now, rather than send it
        # and wait for it to come back: in team mode a message saved (RQ's bookkeeping is ~40% of a
        # tiny job's worker CPU) and the task does not queue a second time behind other jobs' work.
        # The others go to any worker first: messages in team mode, a wake-up for idle local workers.
        rest = new[1:]
        if rest and getattr(self.queue, "mode", "") != "local":
            self.queue.enqueue(rest)
        elif rest and self.wake is not None:
            self.wake.wake(len(rest))
        self.handle(new[0])

    def _params(self, job: dict[str, Any]) -> dict[str, Any]:
        return dict(job["params"] or {})

    def run(self, task: dict[str, Any], gen: int = 0) -> None:
        job_id, idx = task["job_id"], int(task["idx"])
        job = task["job"]  # the claim read it: pipeline, params, correlation_id
        cid = job.get("correlation_id")
        log_event(
            "task.start",
            job_id=job_id,
            task=idx,
            attempt=task["attempts"],
            worker=self.name,
            correlation_id=cid,
        )
        progress = self.progress_factory()
        result: dict[str, Any] = {}

        def target() -> None:
            try:
                result["value"] = self.runner.run_task(
                    job["pipeline"],
                    self._params(job),
                    task["spec"],
                    progress,
                    os.path.join(self.workdir, job_id),
                )
            except BaseException as e:
                result["error"] = e
                result["trace"] = traceback.format_exc()

        t0 = time.monotonic()
        th = threading.Thread(target=target, name=f"task-{job_id}-{idx}", daemon=True)
        th.start()
        last_pub = 0.0
        cancelled = timed_out = False
        while th.is_alive():
            th.join(self.heartbeat_s)
            if not th.is_alive():
                # Done within the beat: finish_task records the last progress; a beat, a progress
                # event and a cancel check now would be three round trips for nothing.
                break
            now = time.monotonic()
            try:  # the store may be restarting: the task goes on, the next beat tries again
                still_ours = self.store.heartbeat(job_id, idx, self.name, _snapshot(progress))
                if now - last_pub >= self.progress_interval:
                    self.store.publish_progress(job_id)
                    last_pub = now
                cur = self.store.get_job(job_id)
            except Exception as e:
                log_event("task.heartbeat_failed", job_id=job_id, task=idx, error=redact(str(e)))
                still_ours, cur = True, None
            if (not still_ours or (cur and cur["state"] == "CANCELLED")) and not cancelled:
                cancelled = True
                _cancel(progress)
            if now - t0 > self.task_timeout and not timed_out:
                timed_out = True
                _cancel(progress)
        seconds = time.monotonic() - t0
        if "error" in result or cancelled or timed_out:
            if cancelled:
                self.store.add_log(job_id, f"task {idx} stopped (job cancelled or task taken over)")
                return
            err = result.get("error")
            msg = (
                f"task timed out after {self.task_timeout:g} s"
                if timed_out
                else f"{type(err).__name__}: {err}"
            )
            attempt = int(task["attempts"])
            backoff = task_backoff(attempt)
            new = retrying(self.store.fail_task, job_id, idx, self.name, msg, self.max_attempts, backoff)
            if new == "QUEUED":
                self.queue.enqueue([Work("task", job_id, gen, idx, attempt + 1)], delay=backoff)
            log_event(
                "task.failed",
                job_id=job_id,
                task=idx,
                worker=self.name,
                error=redact(msg),
                next_state=new,
                correlation_id=cid,
                seconds=round(seconds, 3),
            )
            return
        value = json.loads(json.dumps(result.get("value") or {}, default=str))
        done = f"task {idx} finished in {seconds:.3f} s"
        if not retrying(self.store.finish_task, job_id, idx, self.name, value, _snapshot(progress), log=done):
            return
        log_event(
            "task.done",
            job_id=job_id,
            task=idx,
            worker=self.name,
            seconds=round(seconds, 3),
            correlation_id=cid,
            pipeline=job["pipeline"],
        )
        prog = self.store.publish_progress(job_id)
        # With one task, what was just published is final; with several, another task's slower
        # publish may land after this one, so the merge publishes again.
        self.handle(Work("merge", job_id, gen), progress_fresh=prog.get("tasks_total") == 1)

    def merge(self, job: dict[str, Any], progress_fresh: bool = False) -> None:
        job_id = job["id"]
        partials = [t["result"] or {} for t in self.store.tasks(job_id)]
        try:
            out = self._beating(
                job_id,
                lambda: self.runner.merge_job(
                    job["pipeline"], self._params(job), partials, os.path.join(self.workdir, job_id)
                ),
            )
        except Exception as e:
            retrying(
                self.store.set_job_state, job_id, "FAILED", error=f"merge failed: {type(e).__name__}: {e}"
            )
            return
        outputs = list(out.get("outputs") or [])
        if not progress_fresh:  # the last task's worker merges right after publishing it
            retrying(self.store.publish_progress, job_id)
        # The output records and SUCCEEDED in one transaction (one statement on PostgreSQL).
        retrying(
            self.store.succeed_job,
            job_id,
            [(str(p), _size(p)) for p in outputs],
            summary=out.get("summary") or {},
            outputs=outputs,
            errors=json.loads(redact(json.dumps(out.get("errors") or [], default=str))),
        )
        log_event(
            "job.succeeded", job_id=job_id, correlation_id=job.get("correlation_id"), pipeline=job["pipeline"]
        )

    # -- loop ------------------------------------------------------------------------------------
    def loop(self, idle_wait: float = 1.0, burst: bool = False) -> None:
        """The local pool's loop: reap every second, do ready work, wait for work when there is none."""
        maint = Maintenance(self.store, self.queue, self.stale_after, self.max_attempts)
        last_tick = 0.0
        while not self.stopping:
            if time.monotonic() - last_tick >= 1.0:
                if self.parent_pid and os.getppid() != self.parent_pid:
                    # The server that started this pool is gone without stopping it (killed, or a
                    # process that exits without running extension shutdown): do not outlive it.
                    log_event("worker.orphaned", worker=self.name, parent=self.parent_pid)
                    return
                maint.tick()
                last_tick = time.monotonic()
            try:
                did = self.step()
            except Exception as e:
                log_event("worker.error", worker=self.name, error=redact(f"{type(e).__name__}: {e}"))
                time.sleep(1.0)
                continue
            if not did:
                if burst:
                    return
                # Idle: block until woken (the pool's pipe, else the store's own way), at most until
                # the next maintenance tick.
                wait = max(0.0, min(idle_wait, last_tick + 1.0 - time.monotonic()))
                if self.wake is not None:
                    self.wake.wait(wait)
                else:
                    self.store.wait_for_work(wait)


def _snapshot(progress: Any) -> dict[str, Any]:
    try:
        snap = dict(progress.snapshot())
    except Exception:
        return {}
    snap.pop("cancelled", None)
    return snap


def _cancel(progress: Any) -> None:
    with contextlib.suppress(Exception):
        progress.cancel()


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


# -- team mode: RQ -----------------------------------------------------------------------------------
# ``aerofs worker`` fills this in before forking work horses (they inherit it); a process that imports
# ``perform`` without it (RQ's own ``rq worker``) reads the environment.
_TEAM: dict[str, Any] = {}


def _team_config() -> dict[str, Any]:
    if _TEAM:
        return _TEAM
    return {
        "database_url": os.environ["AEROFS_DATABASE_URL"],
        "redis_url": os.environ["AEROFS_REDIS_URL"],
        "workdir": os.environ.get("AEROFS_WORKDIR") or _default_workdir(),
        "runner": None,
        "max_attempts": int(os.environ.get("AEROFS_MAX_ATTEMPTS", "3")),
        "task_timeout": float(os.environ.get("AEROFS_TASK_TIMEOUT", "3600")),
        "stale_after": float(os.environ.get("AEROFS_STALE_AFTER", "3")),
        "max_tasks": int(os.environ.get("AEROFS_MAX_TASKS", "4")),
    }


def perform(kind: str, job_id: str, gen: int = 0, idx: int = -1, attempt: int = 1) -> dict[str, Any]:
    """The RQ message function (JSON arguments): :meth:`Worker.handle`. Raises only when the store or
    Redis is unreachable: RQ then retries the message with backoff.

    In ``aerofs worker``'s own process (the default, see :func:`run_rq_worker`) it uses that process's
    store and Redis connection, opened once. In a forked work horse (``--fork``, or RQ's own ``rq
    worker``) it opens its own and closes them after: a forked process must not share its parent's
    sockets."""
    cfg = _team_config()
    shared = cfg.get("shared")
    if shared is not None and shared[0] == os.getpid():
        _, store, queue = shared
        return _perform(cfg, store, queue, Work(kind, job_id, int(gen), int(idx), int(attempt)))
    store = open_store(cfg["database_url"])
    queue = open_queue(cfg["redis_url"], job_timeout=cfg["task_timeout"])
    store.on_events = queue.publish  # live updates: every event row this worker writes
    try:
        return _perform(cfg, store, queue, Work(kind, job_id, int(gen), int(idx), int(attempt)))
    finally:
        store.close()
        queue.close()


def _perform(cfg: dict[str, Any], store: Store, queue: Any, work: Work) -> dict[str, Any]:
    w = Worker(
        store,
        cfg["workdir"],
        load_runner(cfg["runner"]),
        max_attempts=cfg["max_attempts"],
        task_timeout=cfg["task_timeout"],
        stale_after=cfg["stale_after"],
        max_tasks=cfg["max_tasks"],
        queue=queue,
    )
    done = w.handle(work)
    return {"work": work.key, "claimed": done, "worker": w.name}


def run_rq_worker(args: argparse.Namespace, nice: int = 0) -> int:
    """``aerofs worker`` in team mode: an RQ worker on queue ``aerofs`` (restarted when Redis goes
    away), plus the reaper/sweeper on a thread.

    Messages run in this process (RQ's ``SimpleWorker``) with one store and one Redis connection for
    all of them, as the local pool's workers run theirs. RQ's default forks a work horse per message,
    which then opens its own store (a PostgreSQL backend) and Redis connections and touches the
    parent's memory copy-on-write: measured with the server bench and Redis, 2 workers, tiny
    csv-to-parquet jobs, that cost ~140 ms of CPU a job (three messages) and capped the pair at ~7
    jobs/s (docs/operations.md, "Team-mode workers"). Nothing in AeroFS's durability needs the horse:
    a task's heartbeat and the reaper (not RQ) find a worker that died, and the worker stops a task
    at ``task_timeout`` itself. ``--fork`` (env ``AEROFS_WORKER_FORK=1``) keeps RQ's work horses, for
    runners whose crashes or leaks should end with the message."""
    from rq import Queue, SimpleWorker
    from rq import Worker as RQWorker
    from rq.serializers import JSONSerializer

    # ``python -m jobserver.worker`` runs this as ``__main__``; RQ's messages import ``jobserver.worker``.
    from jobserver import worker as this
    from jobserver.queue import QUEUE_NAME

    this._TEAM.update(
        database_url=args.database_url,
        redis_url=args.redis_url,
        workdir=args.workdir or _default_workdir(),
        runner=args.runner,
        max_attempts=args.max_attempts,
        task_timeout=args.task_timeout,
        stale_after=args.stale_after,
        max_tasks=args.max_tasks,
    )
    preload(load_runner(args.runner))  # once here (a forked work horse inherits it)
    store = open_store(args.database_url)
    retrying(store.migrate, deadline=600)
    queue = open_queue(args.redis_url, job_timeout=args.task_timeout)
    if not args.fork:  # perform() uses these two; the reaper's own events are then published too
        store.on_events = queue.publish
        this._TEAM["shared"] = (os.getpid(), store, queue)
    maint = Maintenance(store, queue, args.stale_after, args.max_attempts)
    maint.start()
    base = args.name or f"aerofs-{socket.gethostname()}-{os.getpid()}"
    stop = threading.Event()

    class _RQWorker(RQWorker if args.fork else SimpleWorker):  # type: ignore[misc,valid-type]
        # RQ only flags a stop asked for while a job runs; an idle worker's SIGTERM must end us too.
        def request_stop(self, signum: Any, frame: Any) -> None:
            stop.set()
            super().request_stop(signum, frame)

    log_event("worker.start", worker=base, mode="rq", queue=QUEUE_NAME, nice=nice, fork=args.fork)
    n = 0
    w: Any = None
    try:
        while not stop.is_set():
            conn = redis_connection(args.redis_url)  # no socket timeout: RQ blocks on BLPOP
            rq_queue = Queue(QUEUE_NAME, connection=conn, serializer=JSONSerializer)
            w = _RQWorker(
                [rq_queue],
                connection=conn,
                serializer=JSONSerializer,
                name=f"{base}.{n}",
                maintenance_interval=10,
                job_monitoring_interval=5,
            )
            try:
                w.work(with_scheduler=True, logging_level=args.log_level, burst=args.burst)
            except Exception as e:  # Redis went away under RQ: start a new RQ worker when it is back
                log_event("worker.rq_error", worker=w.name, error=redact(f"{type(e).__name__}: {e}"))
            if args.burst or stop.is_set() or getattr(w, "_stop_requested", False):
                break
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            stop.wait(1.0)
            n += 1
    finally:
        maint.stop()
        queue.close()
        store.close()
        _reap_children(w)
    return 0


def _reap_children(w: Any, grace: float = 5.0) -> None:
    """End what RQ forked and may have left behind: its scheduler process (a ``multiprocessing``
    child, left running when an RQ worker ends by an exception or is replaced after a Redis outage,
    or when the stop signal comes while it starts) and a work horse. Otherwise they outlive us with
    parent 1."""
    import multiprocessing

    horse = getattr(w, "horse_pid", 0) if w is not None else 0
    if horse:
        with contextlib.suppress(OSError):
            os.kill(horse, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.waitpid(horse, 0)
    children = multiprocessing.active_children()
    for child in children:
        with contextlib.suppress(OSError):
            child.terminate()
    for child in children:
        child.join(grace)
        if child.is_alive():
            child.kill()
            child.join(grace)


def _default_workdir() -> str:
    return os.path.join(os.path.expanduser("~"), ".cache", "aerofs", "work")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="aerofs worker",
        description="AeroFS job worker: an RQ worker on queue 'aerofs' when a Redis URL is set (team "
        "mode), else a local worker that polls the job store.",
    )
    ap.add_argument("--database-url", default=os.environ.get("AEROFS_DATABASE_URL"))
    ap.add_argument(
        "--redis-url",
        default=os.environ.get("AEROFS_REDIS_URL"),
        help="team mode (env AEROFS_REDIS_URL; rediss:// with AEROFS_REDIS_CA_FILE for TLS)",
    )
    ap.add_argument("--workdir", default=os.environ.get("AEROFS_WORKDIR"))
    ap.add_argument("--runner", default=None, help="module with plan_job/run_task/merge_job")
    ap.add_argument("--name", default=None)
    ap.add_argument("--max-attempts", type=int, default=int(os.environ.get("AEROFS_MAX_ATTEMPTS", "3")))
    ap.add_argument(
        "--task-timeout", type=float, default=float(os.environ.get("AEROFS_TASK_TIMEOUT", "3600"))
    )
    ap.add_argument("--stale-after", type=float, default=float(os.environ.get("AEROFS_STALE_AFTER", "3")))
    ap.add_argument("--max-tasks", type=int, default=int(os.environ.get("AEROFS_MAX_TASKS", "4")))
    ap.add_argument("--log-level", default=os.environ.get("AEROFS_WORKER_LOG_LEVEL", "WARNING"))
    ap.add_argument("--burst", action="store_true", help="exit when there is nothing to do")
    ap.add_argument("--wake-fds", default=None, help="R,W: the local pool's wake-up pipe (jobserver.wake)")
    ap.add_argument(
        "--nice",
        type=int,
        default=None,
        help="lower this worker's CPU priority by N, 0 to 19 (env AEROFS_WORKER_NICE; default 0, the "
        "local pool passes 10: see jobserver.priority)",
    )
    ap.add_argument(
        "--fork",
        action="store_true",
        default=os.environ.get("AEROFS_WORKER_FORK", "").strip().lower() in ("1", "true", "yes"),
        help="team mode: run each message in a forked RQ work horse (env AEROFS_WORKER_FORK=1) instead "
        "of in this process",
    )
    ap.add_argument(
        "--parent-pid",
        type=int,
        default=0,
        help="exit (between tasks) once this process is no longer the parent",
    )
    args = ap.parse_args(argv)
    if not args.database_url:
        print("aerofs worker: set --database-url or AEROFS_DATABASE_URL", file=sys.stderr)
        return 2
    # First, before any thread starts: threads inherit their creator's niceness (jobserver.priority).
    try:
        nice = priority.lower(priority.from_env(0) if args.nice is None else args.nice)
    except ValueError as e:
        print(f"aerofs worker: {e}", file=sys.stderr)
        return 2
    if args.redis_url:
        return run_rq_worker(args, nice)
    store = open_store(args.database_url)
    store.migrate()
    w = Worker(
        store,
        args.workdir or _default_workdir(),
        load_runner(args.runner),
        name=args.name,
        max_attempts=args.max_attempts,
        task_timeout=args.task_timeout,
        stale_after=args.stale_after,
        max_tasks=args.max_tasks,
    )

    w.parent_pid = args.parent_pid
    if args.wake_fds:
        w.wake = WakePipe.parse(args.wake_fds)

    def stop(*_: Any) -> None:
        w.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log_event("worker.start", worker=w.name, mode="local", nice=nice)
    w.loop(burst=args.burst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

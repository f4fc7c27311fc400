"""The worker: plans PENDING jobs into tasks, runs tasks (``runner.run_task``), merges finished jobs.

The same loop runs in the embedded local pool (processes started by the server) and as ``aerofs worker``
in team mode. The store is the durable queue: a task is claimed in a transaction, heartbeats while it
runs, and a reaper (every worker and the server run it) requeues tasks whose worker stopped
heartbeating — a SIGKILLed worker's task runs again elsewhere within seconds, up to ``max_attempts``.
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
from typing import Any

from jobserver.logging import log_event
from jobserver.redact import redact
from jobserver.store import Store, open_store

DEFAULT_RUNNER = "aerofs_kernel.runner"


def load_runner(name: str | None = None) -> Any:
    return importlib.import_module(name or os.environ.get("AEROFS_JOBSERVER_RUNNER") or DEFAULT_RUNNER)


def _progress_obj() -> Any:
    from aerofs_kernel import _engine

    return _engine.Progress()


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
        self.stopping = False

    # -- one step ---------------------------------------------------------------------------------
    def step(self) -> bool:
        """Do one unit of work (reap, plan, run a task, merge); False when there was nothing to do."""
        self.store.reap(self.stale_after, self.max_attempts)
        job = self.store.claim_pending_job()
        if job:
            self.plan(job)
            return True
        task = self.store.claim_task(self.name)
        if task:
            self.run(task)
            return True
        return False

    def plan(self, job: dict[str, Any]) -> None:
        cid = job.get("correlation_id")
        try:
            params = self._params(job)
            specs = self.runner.plan_job(job["pipeline"], params, self.max_tasks)
        except Exception as e:
            self.store.set_job_state(job["id"], "FAILED", error=f"planning failed: {type(e).__name__}: {e}")
            log_event("job.plan_failed", job_id=job["id"], correlation_id=cid, error=redact(str(e)))
            return
        if not specs:
            self.store.add_tasks(job["id"], [])
            self.store.set_job_state(job["id"], "RUNNING")
            self.merge(job["id"])
            return
        self.store.add_tasks(job["id"], specs)
        self.store.add_log(job["id"], f"planned {len(specs)} task(s) on {self.name}")
        log_event("job.planned", job_id=job["id"], correlation_id=cid, tasks=len(specs), worker=self.name)

    def _params(self, job: dict[str, Any]) -> dict[str, Any]:
        return dict(job["params"] or {})

    def run(self, task: dict[str, Any]) -> None:
        job_id, idx = task["job_id"], int(task["idx"])
        job = self.store.get_job(job_id)
        if not job:
            return
        cid = job.get("correlation_id")
        log_event(
            "task.start",
            job_id=job_id,
            task=idx,
            attempt=task["attempts"],
            worker=self.name,
            correlation_id=cid,
        )
        self.store.add_log(job_id, f"task {idx} attempt {task['attempts']} started on {self.name}")
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
            snap = _snapshot(progress)
            still_ours = self.store.heartbeat(job_id, idx, self.name, snap)
            now = time.monotonic()
            if now - last_pub >= 1.0:
                self.store.publish_progress(job_id)
                last_pub = now
            cur = self.store.get_job(job_id)
            if (not still_ours or (cur and cur["state"] == "CANCELLED")) and not cancelled:
                cancelled = True
                _cancel(progress)
            if now - t0 > self.task_timeout and not timed_out:
                timed_out = True
                _cancel(progress)
        seconds = time.monotonic() - t0
        if "error" in result or cancelled or timed_out:
            if cancelled:
                self.store.add_log(job_id, f"task {idx} stopped (job cancelled)")
                return
            err = result.get("error")
            msg = (
                f"task timed out after {self.task_timeout:g} s"
                if timed_out
                else f"{type(err).__name__}: {err}"
            )
            new = self.store.fail_task(job_id, idx, self.name, msg, self.max_attempts)
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
        self.store.heartbeat(job_id, idx, self.name, _snapshot(progress))
        if not self.store.finish_task(job_id, idx, self.name, value):
            return
        self.store.add_log(job_id, f"task {idx} finished in {seconds:.3f} s")
        log_event(
            "task.done",
            job_id=job_id,
            task=idx,
            worker=self.name,
            seconds=round(seconds, 3),
            correlation_id=cid,
            pipeline=job["pipeline"],
        )
        self.store.publish_progress(job_id)
        self.merge(job_id)

    def merge(self, job_id: str) -> None:
        if not self.store.claim_merge(job_id):
            tasks = self.store.tasks(job_id)
            if tasks:
                return
        job = self.store.get_job(job_id)
        if not job or job["state"] != "RUNNING":
            return
        partials = [t["result"] or {} for t in self.store.tasks(job_id)]
        try:
            out = self.runner.merge_job(
                job["pipeline"], self._params(job), partials, os.path.join(self.workdir, job_id)
            )
        except Exception as e:
            self.store.set_job_state(job_id, "FAILED", error=f"merge failed: {type(e).__name__}: {e}")
            return
        outputs = list(out.get("outputs") or [])
        self.store.add_outputs(job_id, [(str(p), _size(p)) for p in outputs])
        self.store.publish_progress(job_id)
        self.store.set_job_state(
            job_id,
            "SUCCEEDED",
            summary=out.get("summary") or {},
            outputs=outputs,
            errors=json.loads(redact(json.dumps(out.get("errors") or [], default=str))),
        )
        log_event(
            "job.succeeded", job_id=job_id, correlation_id=job.get("correlation_id"), pipeline=job["pipeline"]
        )

    # -- loop ------------------------------------------------------------------------------------
    def loop(self, poll: float = 0.2, burst: bool = False) -> None:
        while not self.stopping:
            try:
                did = self.step()
            except Exception as e:
                log_event("worker.error", worker=self.name, error=redact(f"{type(e).__name__}: {e}"))
                time.sleep(1.0)
                continue
            if not did:
                if burst:
                    return
                time.sleep(poll)


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="aerofs worker", description="AeroFS job worker")
    ap.add_argument("--database-url", default=os.environ.get("AEROFS_DATABASE_URL"))
    ap.add_argument("--workdir", default=os.environ.get("AEROFS_WORKDIR"))
    ap.add_argument("--runner", default=None, help="module with plan_job/run_task/merge_job")
    ap.add_argument("--name", default=None)
    ap.add_argument("--max-attempts", type=int, default=int(os.environ.get("AEROFS_MAX_ATTEMPTS", "3")))
    ap.add_argument(
        "--task-timeout", type=float, default=float(os.environ.get("AEROFS_TASK_TIMEOUT", "3600"))
    )
    ap.add_argument("--stale-after", type=float, default=float(os.environ.get("AEROFS_STALE_AFTER", "3")))
    ap.add_argument("--max-tasks", type=int, default=int(os.environ.get("AEROFS_MAX_TASKS", "4")))
    ap.add_argument("--burst", action="store_true", help="exit when there is nothing to do")
    args = ap.parse_args(argv)
    if not args.database_url:
        print("aerofs worker: set --database-url or AEROFS_DATABASE_URL", file=sys.stderr)
        return 2
    store = open_store(args.database_url)
    store.migrate()
    workdir = args.workdir or os.path.join(os.path.expanduser("~"), ".cache", "aerofs", "work")
    w = Worker(
        store,
        workdir,
        load_runner(args.runner),
        name=args.name,
        max_attempts=args.max_attempts,
        task_timeout=args.task_timeout,
        stale_after=args.stale_after,
        max_tasks=args.max_tasks,
    )

    def stop(*_: Any) -> None:
        w.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log_event("worker.start", worker=w.name)
    w.loop(burst=args.burst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The job store: jobs, tasks, events (append-only), logs, outputs. One SQL dialect-neutral
implementation; back ends supply a connection, a transaction and the migration lock."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, NamedTuple

from jobserver.redact import redact, redact_params

if TYPE_CHECKING:
    from jobserver.store.pg_loop_reads import LoopReads

STATES = ("PENDING", "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
JSON_COLS = ("params", "progress", "summary", "outputs", "errors")
JOB_COLS = (
    "id, pipeline, params, owner, state, progress, created_at, started_at, finished_at, attempts, "
    "summary, outputs, errors, error, correlation_id, cancel_requested"
)


class Work(NamedTuple):
    """One unit of work: ``plan`` a job, run task ``idx``, or ``merge`` a job. ``gen`` (the job's retry
    generation) and ``attempt`` only make queue message ids unique; claims go by the store's state."""

    kind: str
    job_id: str
    gen: int
    idx: int = -1
    attempt: int = 1

    @property
    def key(self) -> str:
        idx = [str(self.idx)] if self.kind == "task" else []
        return "-".join(["aerofs", self.kind, self.job_id, str(self.gen), *idx, str(self.attempt)])


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def migrations() -> list[tuple[int, str]]:
    """``[(version, sql)]`` from ``jobserver/migrations/NNNN_*.sql`` in order."""
    out = []
    for f in resources.files("jobserver.migrations").iterdir():
        if f.name.endswith(".sql") and f.name[:4].isdigit():
            out.append((int(f.name[:4]), f.read_text()))
    return sorted(out)


def _row_job(row: dict[str, Any]) -> dict[str, Any]:
    job = dict(row)
    for k in JSON_COLS:
        job[k] = json.loads(job[k]) if job.get(k) else None
    job["cancel_requested"] = job.get("cancel_requested") == 1  # 2 marks "merge claimed"
    return job


def _claimed(task: dict[str, Any]) -> dict[str, Any]:
    """A claimed task's row as :meth:`Store.claim_task` returns it (JSON decoded)."""
    task["spec"] = json.loads(task["spec"])
    job = task["job"] = dict(task["job"])
    job["params"] = json.loads(job["params"]) if job.get("params") else None
    return task


class Store(ABC):
    """Synchronous, thread-safe store. SQL uses ``?`` placeholders (translated by back ends)."""

    @abstractmethod
    @contextmanager
    def tx(self) -> Iterator[Any]:
        """A transaction; yields a cursor-like object with ``execute(sql, args)``, ``fetchone``,
        ``fetchall`` (rows as dicts)."""

    @abstractmethod
    def migrate(self) -> int:
        """Apply pending migrations under the back end's exclusive lock; returns the version."""

    @contextmanager
    def read(self) -> Iterator[Any]:
        """A cursor for ONE read-only statement, outside any explicit transaction (a single statement
        is atomic on its own): no BEGIN/COMMIT round trips. Back ends may override; this default is
        :meth:`tx`."""
        with self.tx() as c:
            yield c

    @contextmanager
    def batch(self) -> Iterator[Any]:
        """A transaction whose statements need no result before the last one (no ``rowcount``, no
        ``fetchone`` between them): back ends may send them together. This default is :meth:`tx`."""
        with self.tx() as c:
            yield c

    def close(self) -> None:  # noqa: B027 - optional for back ends
        pass

    def warm_up(self, connections: int) -> None:  # noqa: B027 - optional for back ends
        """Pay the store's first-use costs at start-up, before any request waits for them: hold
        ``connections`` connections open and make each ready for the hot statements. This default does
        nothing (SQLite opens a thread's connection on its first call, in well under a millisecond)."""

    def loop_reads(self, connections: int) -> LoopReads | None:
        """The batched job read on the event loop, over ``connections`` connections of its own
        (PostgreSQL: :mod:`jobserver.store.pg_loop_reads`); None: that read runs on a store thread
        (SQLite's reads take microseconds and its driver has no async API)."""
        return None

    # -- helpers ------------------------------------------------------------------------------
    def _one(self, sql: str, args: tuple = ()) -> dict[str, Any] | None:
        with self.read() as c:
            c.execute(sql, args)
            return c.fetchone()

    def _all(self, sql: str, args: tuple = ()) -> list[dict[str, Any]]:
        with self.read() as c:
            c.execute(sql, args)
            return c.fetchall()

    def _write(self, sql: str, args: tuple = ()) -> int:
        """ONE write statement that needs no company (no event row, no other statement): atomic on
        its own, so it runs outside an explicit transaction, one round trip instead of three
        (BEGIN, the statement, COMMIT). The number of rows it changed."""
        with self.read() as c:
            c.execute(sql, args)
            return c.rowcount

    def wait_for_work(self, timeout: float) -> None:
        """Block until work may have become ready, or ``timeout`` seconds (spurious returns are
        allowed), for a worker that has no wake-up pipe (see ``jobserver.wake``): a worker started
        on its own. This default polls as before (0.2 s); SQLite watches its commit counter.

        (PostgreSQL LISTEN/NOTIFY was tried for this: with a NOTIFY per submitted job the server
        bench finished about a third fewer jobs per second, reproducibly; the cause was not pinned
        down, the pipe has no such cost.)"""
        time.sleep(min(timeout, 0.2))

    # Set ``on_events`` to be told of the event rows a transaction wrote, once it committed (team-mode
    # workers publish them on Redis pub/sub; the server forwards them to WebSocket subscribers).
    on_events: Callable[[list[dict[str, Any]]], None] | None = None

    @property
    def _outbox(self) -> threading.local:
        box = self.__dict__.get("_outbox_local")
        if box is None:
            box = self.__dict__["_outbox_local"] = threading.local()
        return box

    def _event(self, c: Any, job_id: str, owner: str, type_: str, data: dict[str, Any]) -> None:
        row: dict[str, Any] = {"job_id": job_id, "owner": owner, "type": type_, "data": data, "at": now_iso()}
        args = (job_id, owner, type_, json.dumps(data, default=str), row["at"])
        sql = "INSERT INTO events (job_id, owner, type, data, at) VALUES (?, ?, ?, ?, ?)"
        if self.on_events is None:
            c.execute(sql, args)
            return
        c.execute(sql + " RETURNING id", args)
        row["id"] = int(c.fetchone()["id"])
        self._to_outbox(row)

    def _to_outbox(self, row: dict[str, Any]) -> None:
        """An event row this thread's transaction wrote, for ``on_events`` once it commits."""
        pending = getattr(self._outbox, "rows", None)
        if pending is None:
            pending = self._outbox.rows = []
        pending.append(row)

    def _committed(self, ok: bool) -> None:
        """Back ends call this after each transaction (``ok``: it committed)."""
        rows = getattr(self._outbox, "rows", None)
        if not rows:
            return
        self._outbox.rows = []
        if ok and self.on_events is not None:
            # Live updates are best effort; the events table has every row.
            with contextlib.suppress(Exception):
                self.on_events(rows)

    def schema_version(self) -> int:
        row = self._one("SELECT MAX(version) AS v FROM schema_version")
        return int(row["v"] or 0) if row else 0

    # -- jobs -----------------------------------------------------------------------------------
    def create_job(
        self,
        pipeline: str,
        params: dict[str, Any],
        owner: str,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """``(job, created)``; an existing job with the same owner and key is returned as is."""
        if idempotency_key:
            found = self._one(
                f"SELECT {JOB_COLS} FROM jobs WHERE owner = ? AND idempotency_key = ?",
                (owner, idempotency_key),
            )
            if found:
                return _row_job(found), False
        job_id = uuid.uuid4().hex
        at = now_iso()
        clean = redact_params(params)
        cid = correlation_id or job_id
        # The new row is known here, so nothing needs reading back and the transaction's statements
        # can go to the server as one batch (PostgreSQL pipeline mode: one round trip, not six).
        row: dict[str, Any] = dict.fromkeys(c.strip() for c in JOB_COLS.split(","))
        row.update(
            id=job_id,
            pipeline=pipeline,
            params=json.dumps(clean),
            owner=owner,
            state="PENDING",
            created_at=at,
            attempts=0,
            correlation_id=cid,
            cancel_requested=0,
        )
        self._insert_job(row, idempotency_key)
        return _row_job(row), True

    # The new job's three rows, in one transaction. A back end may send them another way (PostgreSQL:
    # one statement), the rows and the event for ``on_events`` being the same.
    _NEW_JOB = (
        "INSERT INTO jobs (id, pipeline, params, owner, state, created_at, attempts, "
        "idempotency_key, correlation_id) VALUES (?, ?, ?, ?, 'PENDING', ?, 0, ?, ?)"
    )
    _NEW_JOB_LOG = "INSERT INTO logs (job_id, at, level, message) VALUES (?, ?, 'INFO', ?)"

    @staticmethod
    def _new_job_args(row: dict[str, Any], idempotency_key: str | None) -> tuple[tuple, tuple]:
        job_id, owner, at = row["id"], row["owner"], row["created_at"]
        return (
            (job_id, row["pipeline"], row["params"], owner, at, idempotency_key, row["correlation_id"]),
            (job_id, at, f"submitted by {owner} (correlation id {row['correlation_id']})"),
        )

    def _insert_job(self, row: dict[str, Any], idempotency_key: str | None) -> None:
        job_args, log_args = self._new_job_args(row, idempotency_key)
        with self.batch() as c:
            c.execute(self._NEW_JOB, job_args)
            self._event(c, row["id"], row["owner"], "state", {"state": "PENDING"})
            c.execute(self._NEW_JOB_LOG, log_args)

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        row = self._one(f"SELECT {JOB_COLS} FROM jobs WHERE id = ?", (job_id,))
        return _row_job(row) if row else None

    # Ids per statement of :meth:`get_jobs` (SQLite before 3.32 takes at most 999 parameters).
    GET_JOBS_CHUNK = 500

    def get_jobs(self, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        """``{id: job}`` of those of ``job_ids`` that exist; one statement per 500 ids."""
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(job_ids), self.GET_JOBS_CHUNK):
            chunk = job_ids[i : i + self.GET_JOBS_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            for row in self._all(f"SELECT {JOB_COLS} FROM jobs WHERE id IN ({marks})", tuple(chunk)):
                out[row["id"]] = _row_job(row)
        return out

    def list_jobs(
        self,
        owner: str | None = None,
        states: list[str] | None = None,
        pipeline: str | None = None,
        text: str | None = None,
        sort: str = "created_at",
        order: str = "desc",
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        where, args = [], []
        if owner:
            where.append("owner = ?")
            args.append(owner)
        if states:
            where.append(f"state IN ({', '.join('?' for _ in states)})")
            args.extend(states)
        if pipeline:
            where.append("pipeline = ?")
            args.append(pipeline)
        if text:
            where.append(
                "(LOWER(id) LIKE ? OR LOWER(pipeline) LIKE ? OR LOWER(params) LIKE ? OR LOWER(owner) LIKE ?)"
            )
            args.extend([f"%{text.lower()}%"] * 4)
        cond = f"WHERE {' AND '.join(where)}" if where else ""
        col = (
            sort
            if sort in ("created_at", "started_at", "finished_at", "pipeline", "state", "owner")
            else "created_at"
        )
        direction = "ASC" if order == "asc" else "DESC"
        with self.tx() as c:
            c.execute(f"SELECT COUNT(*) AS n FROM jobs {cond}", tuple(args))
            total = int(c.fetchone()["n"])
            c.execute(
                f"SELECT {JOB_COLS} FROM jobs {cond} ORDER BY {col} {direction}, id {direction} LIMIT ? OFFSET ?",
                (*args, int(limit), int(offset)),
            )
            rows = c.fetchall()
        return [_row_job(r) for r in rows], total

    def set_job_state(
        self,
        job_id: str,
        state: str,
        error: str | None = None,
        from_states: tuple[str, ...] | None = None,
        **fields: Any,
    ) -> dict | None:
        """Move a job to ``state`` (a terminal job never moves; with ``from_states``, only a job in
        one of them moves); records an event. The job as it now is, or None when it did not move."""
        with self.tx() as c:
            row = self._set_state(c, job_id, state, error, from_states, **fields)
        return _row_job(row) if row else None

    def _set_state(
        self,
        c: Any,
        job_id: str,
        state: str,
        error: str | None = None,
        from_states: tuple[str, ...] | None = None,
        **fields: Any,
    ) -> dict | None:
        """:meth:`set_job_state` inside the caller's transaction ``c``; the job's row or None."""
        sql, args, data, log = self._state_change(job_id, state, error, from_states, fields)
        c.execute(sql, args)
        row = c.fetchone()
        if row is None:
            return None
        self._event(c, job_id, row["owner"], "state", data)
        c.execute("INSERT INTO logs (job_id, at, level, message) VALUES (?, ?, ?, ?)", (job_id, *log))
        return dict(row)

    @staticmethod
    def _state_change(
        job_id: str,
        state: str,
        error: str | None,
        from_states: tuple[str, ...] | None,
        fields: dict[str, Any],
    ) -> tuple[str, tuple, dict[str, Any], tuple[str, str, str]]:
        """A state change's parts, for :meth:`_set_state` and a back end that sends it as one
        statement: the UPDATE (``RETURNING`` the job; no row when the job did not move), its
        arguments, the state event's data and the log line's ``(at, level, message)``."""
        assert state in STATES
        at = now_iso()
        sets, args = ["state = ?"], [state]
        if state == "RUNNING":
            sets.append("started_at = COALESCE(started_at, ?)")
            args.append(at)
        if state in TERMINAL:
            sets.append("finished_at = ?")
            args.append(at)
        if error is not None:
            sets.append("error = ?")
            args.append(redact(error))
        for k, v in fields.items():
            sets.append(f"{k} = ?")
            args.append(json.dumps(v, default=str) if k in JSON_COLS else v)
        only = f" AND state IN ({', '.join('?' for _ in from_states)})" if from_states else ""
        sql = (
            f"UPDATE jobs SET {', '.join(sets)} WHERE id = ? AND state NOT IN ('SUCCEEDED', 'FAILED', "
            f"'CANCELLED'){only} RETURNING {JOB_COLS}"
        )
        data: dict[str, Any] = {"state": state}
        if error:
            data["error"] = redact(error)
        log = (
            at,
            "ERROR" if state == "FAILED" else "INFO",
            f"state {state}" + (f": {redact(error)}" if error else ""),
        )
        return sql, (*args, job_id, *(from_states or ())), data, log

    def succeed_job(
        self,
        job_id: str,
        files: list[tuple[str, int | None]],
        summary: dict[str, Any],
        outputs: list[str],
        errors: list[Any],
    ) -> dict | None:
        """The merge's end in one transaction: the job SUCCEEDED with its summary, and its output
        records (``files``: path, size) replaced. A job that already ended (cancelled meanwhile)
        keeps its state and records; the job as it now is, or None when it did not move."""
        with self.tx() as c:
            row = self._set_state(c, job_id, "SUCCEEDED", summary=summary, outputs=outputs, errors=errors)
            if row is not None:
                c.execute("DELETE FROM outputs WHERE job_id = ?", (job_id,))
                for path, size in files:
                    c.execute(
                        "INSERT INTO outputs (job_id, path, size) VALUES (?, ?, ?)", (job_id, path, size)
                    )
        return _row_job(row) if row else None

    def cancel_job(self, job_id: str) -> dict | None:
        with self.tx() as c:
            c.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            c.execute("UPDATE tasks SET state = 'CANCELLED' WHERE job_id = ? AND state = 'QUEUED'", (job_id,))
        return self.set_job_state(job_id, "CANCELLED", error="cancelled by request") or self.get_job(job_id)

    def retry_job(self, job_id: str) -> dict | None:
        """A finished job (FAILED/CANCELLED) starts again from PENDING, as a new generation (queue
        messages of the old one no longer match); its tasks are planned again."""
        with self.tx() as c:
            c.execute(
                "UPDATE jobs SET state = 'PENDING', finished_at = NULL, error = NULL, cancel_requested = 0, "
                "summary = NULL, outputs = NULL, errors = NULL, generation = generation + 1, "
                "step_worker = NULL, step_heartbeat = NULL, step_attempts = 0 "
                "WHERE id = ? AND state IN ('FAILED', 'CANCELLED')",
                (job_id,),
            )
            if c.rowcount != 1:
                return None
            c.execute("DELETE FROM tasks WHERE job_id = ?", (job_id,))
            c.execute("SELECT owner FROM jobs WHERE id = ?", (job_id,))
            self._event(c, job_id, c.fetchone()["owner"], "state", {"state": "PENDING", "retry": True})
        return self.get_job(job_id)

    # -- work: plan, tasks, merge -----------------------------------------------------------------
    # Every unit of work is claimed in the store (worker name + heartbeat), whatever delivered it: the
    # local pool finds it with ``next_work``, an RQ worker gets a ``Work`` message. A claim is a
    # conditional UPDATE, so a duplicate or stale message is a no-op.
    def next_work(self, limit: int = 10, job_id: str | None = None) -> list[Work]:
        """Unclaimed work, oldest jobs first: merges of finished jobs, ready tasks, jobs to plan.

        One statement (the three kinds' selects as a UNION ALL, each with its own order and limit) where
        it was three: a local worker asks after every step and every 0.2 s when idle, and each
        statement is a round trip and a statement's overhead in the database."""
        now = time.time()
        only = " AND j.id = ?" if job_id else ""
        extra: tuple = (job_id,) if job_id else ()
        rows = self._all(
            # kind 0: merges, 1: tasks, 2: plans; `idx` -1 for the job-level steps.
            "SELECT * FROM (SELECT 0 AS kind, j.id AS job_id, -1 AS idx, j.generation, "
            "j.step_attempts AS attempts, j.created_at FROM jobs j WHERE j.state = 'RUNNING' "
            "AND j.step_worker IS NULL AND j.cancel_requested <> 1 AND NOT EXISTS "
            f"(SELECT 1 FROM tasks t WHERE t.job_id = j.id AND t.state <> 'SUCCEEDED'){only} "
            "ORDER BY j.created_at LIMIT ?) merges "
            "UNION ALL SELECT * FROM (SELECT 1 AS kind, t.job_id, t.idx, j.generation, t.attempts, "
            "j.created_at FROM tasks t JOIN jobs j ON j.id = t.job_id "
            "WHERE t.state = 'QUEUED' AND j.state IN ('QUEUED', 'RUNNING') "
            f"AND (t.not_before IS NULL OR t.not_before <= ?){only.replace('j.id', 't.job_id')} "
            "ORDER BY j.created_at, t.idx LIMIT ?) tasks "
            "UNION ALL SELECT * FROM (SELECT 2 AS kind, j.id AS job_id, -1 AS idx, j.generation, "
            "j.step_attempts AS attempts, j.created_at FROM jobs j WHERE j.state = 'PENDING' "
            f"AND j.step_worker IS NULL{only} ORDER BY j.created_at LIMIT ?) plans "
            "ORDER BY kind, created_at, idx",
            (*extra, limit, now, *extra, limit, *extra, limit),
        )
        kinds = ("merge", "task", "plan")
        return [
            Work(
                kinds[int(r["kind"])],
                r["job_id"],
                int(r["generation"]),
                int(r["idx"]),
                int(r["attempts"]) + 1,
            )
            for r in rows
        ]

    def claim_step(self, work: Work, worker: str) -> dict | None:
        """Claim a job-level step (``plan`` a PENDING job, ``merge`` a RUNNING job whose tasks all
        succeeded) for ``worker``; the job, or None when it is not (or no longer) to be done."""
        # One statement (atomic on its own) that claims and returns the job: one round trip.
        state = "PENDING" if work.kind == "plan" else "RUNNING"
        tasks_done = (
            " AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.job_id = jobs.id AND t.state <> 'SUCCEEDED')"
            if work.kind == "merge"
            else ""
        )
        row = self._one(
            "UPDATE jobs SET step_worker = ?, step_heartbeat = ?, step_attempts = step_attempts + 1 "
            f"WHERE id = ? AND state = ? AND step_worker IS NULL AND cancel_requested <> 1{tasks_done} "
            f"RETURNING {JOB_COLS}",
            (worker, time.time(), work.job_id, state),
        )
        return _row_job(row) if row else None

    def step_heartbeat(self, job_id: str, worker: str) -> bool:
        return (
            self._write(
                "UPDATE jobs SET step_heartbeat = ? WHERE id = ? AND step_worker = ?",
                (time.time(), job_id, worker),
            )
            == 1
        )

    def plan_job(self, job_id: str, worker: str, specs: list[dict[str, Any]]) -> list[Work] | None:
        """Record the plan of a job whose plan step ``worker`` holds, in one transaction: the tasks
        (QUEUED) and the job (QUEUED, or RUNNING when there is nothing to run but the merge).
        The new work, or None when the claim was lost."""
        state = "QUEUED" if specs else "RUNNING"
        now, at = time.time(), now_iso()
        with self.tx() as c:
            c.execute(
                "UPDATE jobs SET state = ?, step_worker = NULL, step_heartbeat = NULL, step_attempts = 0, "
                "started_at = CASE WHEN ? = 'RUNNING' THEN COALESCE(started_at, ?) ELSE started_at END "
                "WHERE id = ? AND state = 'PENDING' AND step_worker = ?",
                (state, state, at, job_id, worker),
            )
            if c.rowcount != 1:
                return None
            c.execute("SELECT owner, generation FROM jobs WHERE id = ?", (job_id,))
            row = c.fetchone()
            for i, spec in enumerate(specs):
                c.execute(
                    "INSERT INTO tasks (job_id, idx, state, attempts, spec, queued_at) "
                    "VALUES (?, ?, 'QUEUED', 0, ?, ?)",
                    (job_id, i, json.dumps(spec, default=str), now),
                )
            c.execute(
                "INSERT INTO logs (job_id, at, level, message) VALUES (?, ?, 'INFO', ?)",
                (job_id, at, f"planned {len(specs)} task(s) on {worker}"),
            )
            self._event(c, job_id, row["owner"], "state", {"state": "QUEUED"})
            if not specs:
                self._event(c, job_id, row["owner"], "state", {"state": "RUNNING"})
        gen = int(row["generation"])
        if not specs:
            return [Work("merge", job_id, gen, -1, 1)]
        return [Work("task", job_id, gen, i, 1) for i in range(len(specs))]

    def add_tasks(self, job_id: str, specs: list[dict[str, Any]]) -> None:
        with self.tx() as c:
            for i, spec in enumerate(specs):
                c.execute(
                    "INSERT INTO tasks (job_id, idx, state, attempts, spec, queued_at) "
                    "VALUES (?, ?, 'QUEUED', 0, ?, ?)",
                    (job_id, i, json.dumps(spec, default=str), time.time()),
                )

    def claim_task(self, worker: str, work: Work | None = None) -> dict | None:
        """Take a QUEUED task of a live job (``work``'s, or the oldest ready one): RUNNING, attempts+1,
        heartbeat now. The job's ``attempts`` is its most-tried task's attempt count. The task's row,
        with ``job``: the job's ``id, pipeline, params, correlation_id`` (what running it needs, so
        the worker does not read the job again)."""
        if work is None:
            ready = [w for w in self.next_work(limit=20) if w.kind == "task"]
            for w in ready:
                task = self.claim_task(worker, w)
                if task:
                    return task
            return None
        with self.tx() as c:
            c.execute(
                "UPDATE tasks SET state = 'RUNNING', attempts = attempts + 1, worker = ?, heartbeat = ?, "
                "not_before = NULL WHERE job_id = ? AND idx = ? AND state = 'QUEUED' AND EXISTS "
                "(SELECT 1 FROM jobs j WHERE j.id = ? AND j.state IN ('QUEUED', 'RUNNING')) RETURNING *",
                (worker, time.time(), work.job_id, work.idx, work.job_id),
            )
            row = c.fetchone()
            if row is None:
                return None
            task = dict(row)
            c.execute(
                "UPDATE jobs SET attempts = ? WHERE id = ? AND attempts < ?",
                (task["attempts"], work.job_id, task["attempts"]),
            )
            c.execute(
                "INSERT INTO logs (job_id, at, level, message) VALUES (?, ?, 'INFO', ?)",
                (work.job_id, now_iso(), f"task {work.idx} attempt {task['attempts']} started on {worker}"),
            )
            # The job's first running task makes it RUNNING, in the same transaction (a no-op
            # UPDATE for the others).
            self._set_state(c, work.job_id, "RUNNING", from_states=("QUEUED",))
            c.execute("SELECT id, pipeline, params, correlation_id FROM jobs WHERE id = ?", (work.job_id,))
            task["job"] = c.fetchone()
        return _claimed(task)

    def heartbeat(self, job_id: str, idx: int, worker: str, progress: dict[str, Any] | None) -> bool:
        """Refresh a running task's heartbeat and progress; False if the task is no longer ours."""
        return (
            self._write(
                "UPDATE tasks SET heartbeat = ?, progress = ? WHERE job_id = ? AND idx = ? AND worker = ? "
                "AND state = 'RUNNING'",
                (time.time(), json.dumps(progress), job_id, idx, worker),
            )
            == 1
        )

    def job_progress(self, job_id: str) -> dict[str, Any]:
        """The aggregate of the tasks' progress (sums) plus ``fraction`` and task counts."""
        rows = self._all("SELECT state, progress, spec FROM tasks WHERE job_id = ?", (job_id,))
        agg: dict[str, Any] = {
            "inputs_total": 0,
            "inputs_done": 0,
            "bytes_total": 0,
            "bytes_done": 0,
            "rows": 0,
            "errors": 0,
            "tasks_total": len(rows),
            "tasks_done": 0,
        }
        for r in rows:
            p = json.loads(r["progress"]) if r["progress"] else {}
            spec = json.loads(r["spec"])
            done = r["state"] == "SUCCEEDED"
            agg["tasks_done"] += done
            for k in ("inputs_done", "bytes_done", "rows", "errors"):
                agg[k] += int(p.get(k) or 0)
            agg["inputs_total"] += int(
                p.get("inputs_total") or spec.get("files") or len(spec.get("inputs", [])) or 0
            )
            agg["bytes_total"] += int(p.get("bytes_total") or spec.get("bytes") or 0)
        if agg["bytes_total"]:
            agg["fraction"] = min(1.0, agg["bytes_done"] / agg["bytes_total"])
        elif agg["tasks_total"]:
            agg["fraction"] = agg["tasks_done"] / agg["tasks_total"]
        else:
            agg["fraction"] = 0.0
        return agg

    def publish_progress(self, job_id: str) -> dict[str, Any]:
        """Store the job's aggregate progress and record a progress event; the aggregate."""
        prog = self.job_progress(job_id)
        with self.tx() as c:
            c.execute(
                "UPDATE jobs SET progress = ? WHERE id = ? RETURNING owner, state", (json.dumps(prog), job_id)
            )
            row = c.fetchone()
            if row is not None:
                self._event(c, job_id, row["owner"], "progress", {"state": row["state"], "progress": prog})
        return prog

    def finish_task(
        self,
        job_id: str,
        idx: int,
        worker: str,
        result: dict[str, Any],
        progress: dict[str, Any] | None = None,
        log: str | None = None,
    ) -> bool:
        """The task succeeded with ``result`` (and its last ``progress``, when given); ``log``: a line
        for the job's log, written with it. False when the task is no longer this worker's."""
        sql, args = self._finish_task(job_id, idx, worker, result, progress)
        if log is None:
            return self._write(sql, args) == 1
        with self.tx() as c:
            c.execute(sql, args)
            if c.rowcount != 1:
                return False
            c.execute(
                "INSERT INTO logs (job_id, at, level, message) VALUES (?, ?, 'INFO', ?)",
                (job_id, now_iso(), redact(log)),
            )
        return True

    @staticmethod
    def _finish_task(
        job_id: str, idx: int, worker: str, result: dict[str, Any], progress: dict[str, Any] | None
    ) -> tuple[str, tuple]:
        prog, arg = (", progress = ?", (json.dumps(progress),)) if progress is not None else ("", ())
        return (
            f"UPDATE tasks SET state = 'SUCCEEDED', result = ?, heartbeat = ?{prog} WHERE job_id = ? "
            "AND idx = ? AND worker = ? AND state = 'RUNNING'",
            (json.dumps(result, default=str), time.time(), *arg, job_id, idx, worker),
        )

    def fail_task(
        self,
        job_id: str,
        idx: int,
        worker: str | None,
        error: str,
        max_attempts: int,
        backoff: float = 0.0,
    ) -> str:
        """Requeue (attempts left; not before ``backoff`` seconds) or fail the task and its job;
        returns the task's new state."""
        error = redact(error)
        with self.tx() as c:
            c.execute("SELECT attempts, state, worker FROM tasks WHERE job_id = ? AND idx = ?", (job_id, idx))
            row = c.fetchone()
            if not row or row["state"] != "RUNNING" or (worker and row["worker"] != worker):
                return row["state"] if row else "GONE"
            new = "QUEUED" if int(row["attempts"]) < max_attempts else "FAILED"
            now = time.time()
            c.execute(
                "UPDATE tasks SET state = ?, error = ?, worker = NULL, queued_at = ?, not_before = ? "
                "WHERE job_id = ? AND idx = ?",
                (new, error, now, now + backoff if backoff else None, job_id, idx),
            )
            c.execute(
                "INSERT INTO logs (job_id, at, level, message) VALUES (?, ?, 'WARNING', ?)",
                (
                    job_id,
                    now_iso(),
                    f"task {idx} attempt {row['attempts']} failed: {error}"
                    + ("; requeued" if new == "QUEUED" else "; no attempts left"),
                ),
            )
        if new == "FAILED":
            self.set_job_state(
                job_id, "FAILED", error=f"task {idx} failed after {max_attempts} attempts: {error}"
            )
        return new

    def tasks(self, job_id: str) -> list[dict[str, Any]]:
        rows = self._all("SELECT * FROM tasks WHERE job_id = ? ORDER BY idx", (job_id,))
        for r in rows:
            for k in ("spec", "result", "progress"):
                r[k] = json.loads(r[k]) if r.get(k) else None
        return rows

    def claim_merge(self, job_id: str, worker: str = "merger") -> bool:
        """True for exactly one caller once every task succeeded (see :meth:`claim_step`)."""
        return self.claim_step(Work("merge", job_id, 0), worker) is not None

    def reap(self, stale_seconds: float, max_attempts: int) -> list[Work]:
        """Work whose worker stopped heartbeating: tasks requeued (or failed when out of attempts), plan
        and merge steps released (or the job failed after ``max_attempts`` claims). The new work."""
        cutoff = time.time() - stale_seconds
        rows = self._all(
            "SELECT t.job_id, t.idx, t.worker, j.generation FROM tasks t JOIN jobs j ON j.id = t.job_id "
            "WHERE t.state = 'RUNNING' AND t.heartbeat < ?",
            (cutoff,),
        )
        out = []
        for r in rows:
            new = self.fail_task(
                r["job_id"],
                r["idx"],
                r["worker"],
                f"worker {r['worker']} stopped (no heartbeat for {stale_seconds:g} s)",
                max_attempts,
            )
            if new == "QUEUED":
                task = self._one(
                    "SELECT attempts FROM tasks WHERE job_id = ? AND idx = ?", (r["job_id"], r["idx"])
                )
                attempts = int(task["attempts"]) if task else 0
                out.append(Work("task", r["job_id"], int(r["generation"]), int(r["idx"]), attempts + 1))
        steps = self._all(
            "SELECT id, state, generation, step_worker, step_attempts FROM jobs WHERE step_worker IS NOT NULL "
            "AND step_heartbeat < ? AND state IN ('PENDING', 'RUNNING')",
            (cutoff,),
        )
        for r in steps:
            kind = "plan" if r["state"] == "PENDING" else "merge"
            why = f"{kind} step: worker {r['step_worker']} stopped (no heartbeat for {stale_seconds:g} s)"
            if int(r["step_attempts"]) >= max_attempts:
                self.set_job_state(r["id"], "FAILED", error=f"{why} after {r['step_attempts']} attempts")
                continue
            with self.tx() as c:
                c.execute(
                    "UPDATE jobs SET step_worker = NULL, step_heartbeat = NULL WHERE id = ? AND step_worker = ?",
                    (r["id"], r["step_worker"]),
                )
                if c.rowcount != 1:
                    continue
                c.execute(
                    "INSERT INTO logs (job_id, at, level, message) VALUES (?, ?, 'WARNING', ?)",
                    (r["id"], now_iso(), f"{why}; requeued"),
                )
            out.append(Work(kind, r["id"], int(r["generation"]), -1, int(r["step_attempts"]) + 1))
        return out

    # -- events, logs, outputs ------------------------------------------------------------------
    def events_since(self, since: int, owner: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        if owner:
            rows = self._all(
                "SELECT * FROM events WHERE id > ? AND owner = ? ORDER BY id LIMIT ?", (since, owner, limit)
            )
        else:
            rows = self._all("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (since, limit))
        return [{**r, "data": json.loads(r["data"])} for r in rows]

    def last_event_id(self) -> int:
        row = self._one("SELECT MAX(id) AS m FROM events")
        return int(row["m"] or 0) if row else 0

    def add_log(self, job_id: str, message: str, level: str = "INFO") -> None:
        self._write(
            "INSERT INTO logs (job_id, at, level, message) VALUES (?, ?, ?, ?)",
            (job_id, now_iso(), level, redact(message)),
        )

    def logs(self, job_id: str) -> list[dict[str, Any]]:
        return self._all("SELECT at, level, message FROM logs WHERE job_id = ? ORDER BY id", (job_id,))

    def add_outputs(self, job_id: str, outputs: list[tuple[str, int | None]]) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM outputs WHERE job_id = ?", (job_id,))
            for path, size in outputs:
                c.execute("INSERT INTO outputs (job_id, path, size) VALUES (?, ?, ?)", (job_id, path, size))

    def outputs(self, job_id: str) -> list[dict[str, Any]]:
        return self._all("SELECT path, size FROM outputs WHERE job_id = ? ORDER BY path", (job_id,))

    # -- stats ----------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        with self.tx() as c:
            c.execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            by_state = {r["state"]: int(r["n"]) for r in c.fetchall()}
            c.execute("SELECT COUNT(*) AS n FROM tasks WHERE state = 'QUEUED'")
            queued_tasks = int(c.fetchone()["n"])
            c.execute("SELECT COUNT(DISTINCT worker) AS n FROM tasks WHERE state = 'RUNNING'")
            busy = int(c.fetchone()["n"])
            c.execute(
                "SELECT finished_at, state FROM jobs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1000"
            )
            finished = c.fetchall()
            c.execute(
                "SELECT id, owner, pipeline, started_at FROM jobs WHERE state = 'RUNNING' ORDER BY started_at LIMIT 1"
            )
            longest = c.fetchone()
        cutoff = datetime.now(UTC).timestamp() - 600
        recent = [r for r in finished if _ts(r["finished_at"]) >= cutoff]
        failed = sum(1 for r in recent if r["state"] == "FAILED")
        return {
            "jobs_by_state": by_state,
            "queue_length": by_state.get("PENDING", 0) + queued_tasks,
            "queued_tasks": queued_tasks,
            "workers_busy": busy,
            "jobs_per_minute": round(len(recent) / 10.0, 3),
            "failure_rate": round(failed / len(recent), 4) if recent else 0.0,
            "longest_running": dict(longest) if longest else None,
        }


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()

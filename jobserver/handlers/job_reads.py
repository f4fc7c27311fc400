"""Reads of single jobs (``GET jobs/{id}`` and every route that checks a job's owner), batched.

Under the server bench nearly every request is a client polling one job's status, and each read was
its own hand-over to a store thread, pool checkout, statement and hand-back: a sixth to a fifth of the
server's CPU per request. Here the reads that arrive while a query is running wait for the next
query, which fetches all their jobs at once (``SELECT ... WHERE id IN (...)``, :meth:`Store.get_jobs`).

Nothing is cached: each answer comes from a statement that started after its request arrived, so it
is never older than anything the server answered or committed before that request came in (a client
never sees a job go back, whatever other channel told it more). What a request pays instead is the
wait for the query in flight, at most ``parallel`` statements being out at once.

On PostgreSQL the statement runs on the event loop over an async pool of ``parallel`` connections
(:mod:`jobserver.store.pg_loop_reads`), with no hand-over to a store thread; on SQLite it runs on a
store thread. The batching above is the same either way.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jobserver.handlers.base import offload
from jobserver.store import Store


class JobReads:
    def __init__(self, store: Store, parallel: int = 2) -> None:
        self.store = store
        self.parallel = parallel
        self.running = 0
        self.loop_reads = store.loop_reads(parallel)
        # Job id -> the futures of the requests waiting for it, for the next statement.
        self._waiting: dict[str, list[asyncio.Future[dict[str, Any] | None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Open the loop's pool now (on the server's loop, once it runs) rather than at the first read."""
        if self.loop_reads is not None:
            await self.loop_reads.open()

    async def close(self) -> None:
        if self.loop_reads is not None:
            await self.loop_reads.close()

    async def _get_jobs(self, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        if self.loop_reads is not None:
            return await self.loop_reads.get_jobs(job_ids)
        return await offload(self.store.get_jobs, job_ids)

    async def get(self, job_id: str) -> dict[str, Any] | None:
        """The job as the store has it now, or None; the dict is the caller's own."""
        return await self.request(job_id)

    def request(self, job_id: str) -> asyncio.Future[dict[str, Any] | None]:
        """As :meth:`get`, as a future (the status poll's fast path waits with a callback, no task)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[dict[str, Any] | None] = loop.create_future()
        self._waiting.setdefault(job_id, []).append(fut)
        if self.running < self.parallel:
            self.running += 1
            task = loop.create_task(self._run())
            self._tasks.add(task)  # the loop only holds tasks weakly
            task.add_done_callback(self._tasks.discard)
        return fut

    async def _run(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                try:
                    jobs = await self._get_jobs(list(batch))
                except Exception as e:  # every request of the batch fails as its own read would have
                    for futs in batch.values():
                        for f in futs:
                            if not f.done():
                                f.set_exception(e)
                    continue
                for job_id, futs in batch.items():
                    job = jobs.get(job_id)
                    for f in futs:
                        if not f.done():  # a request that went away meanwhile
                            # Handlers add to the dict (``tasks``): one copy per request.
                            f.set_result(dict(job) if job is not None else None)
        finally:
            self.running -= 1

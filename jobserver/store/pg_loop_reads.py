"""The batched job read (:class:`jobserver.handlers.job_reads.JobReads`) on the server's event loop:
psycopg 3's ``AsyncConnectionPool``, PostgreSQL only.

Through the store threads each status poll's read went to a thread and back, and the thread then
waited for the GIL, which the busy loop thread hands over when it blocks in epoll or after the 5 ms
switch interval: most of a status poll's latency at the median (docs/operations.md, "The status read
on the event loop"). Here the statement is sent and its rows read by the loop itself; every other
store call (submits, claims, lists, the event bus) keeps the threads and the sync pool.

The pool has a fixed size, one connection per read in flight (``JobReads.parallel``), each warmed as
it is opened (the catalog of ``jobs`` loaded by a first statement: a new backend's first read of a
table costs ~1-4 ms), including the ones opened again after a PostgreSQL restart. It is bound to the
loop that opens it: the first :meth:`LoopReads.open` (the extension's start, or else the first read).
"""

from __future__ import annotations

import asyncio
import logging
import select
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from jobserver.store.base import JOB_COLS, Store, _row_job

log = logging.getLogger(__name__)


def suspect(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """Whether an idle connection needs the real check (an empty query) before it is handed out.

    An idle connection has nothing to read: a readable socket means the server closed it or sent an
    error (a restart, an idle timeout). A closed or broken one raises: the pool replaces it."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("connection closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    return bool(readable)


async def _check(conn: psycopg.AsyncConnection[Any]) -> None:
    if suspect(conn):
        await AsyncConnectionPool.check_connection(conn)


class LoopReads:
    def __init__(self, url: str, size: int, warm: tuple[str, ...]) -> None:
        self.warm = warm
        self.pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url,
            min_size=size,
            max_size=size,
            open=False,
            # As the sync pool's: autocommit (one statement, one round trip), the same cheap check, a
            # read waits up to 30 s for a connection (a restart), the pool retries connecting for an hour.
            kwargs={"row_factory": dict_row, "autocommit": True},
            configure=self._warm,
            check=_check,
            timeout=30,
            reconnect_timeout=3600,
            name="aerofs-loop-reads",
        )
        self._opening: asyncio.Task[None] | None = None

    async def _warm(self, conn: psycopg.AsyncConnection[Any]) -> None:
        for sql in self.warm:
            await (await conn.execute(sql, ("",))).fetchall()

    def open(self) -> asyncio.Task[None]:
        """Open the pool on the running loop (once; later calls return the same task)."""
        if self._opening is None:
            self._opening = asyncio.get_running_loop().create_task(self._open())
        return self._opening

    async def _open(self) -> None:
        await self.pool.open(wait=False)
        try:
            await self.pool.wait(timeout=30)
        except PoolTimeout:
            # PostgreSQL answered the migrations a moment ago; should it be down now, the pool keeps
            # connecting in the background and each read waits for a connection as it would after a
            # restart, rather than every read failing on a start-up that failed once.
            log.warning("aerofs: the loop's read pool is not full after 30 s; it keeps connecting")

    async def get_jobs(self, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        """As :meth:`Store.get_jobs`, on the loop."""
        await self.open()  # a done task: no suspension
        out: dict[str, dict[str, Any]] = {}
        async with self.pool.connection() as conn, conn.cursor() as cur:
            for i in range(0, len(job_ids), Store.GET_JOBS_CHUNK):
                chunk = job_ids[i : i + Store.GET_JOBS_CHUNK]
                marks = ", ".join("%s" for _ in chunk)
                await cur.execute(f"SELECT {JOB_COLS} FROM jobs WHERE id IN ({marks})", tuple(chunk))
                for row in await cur.fetchall():
                    out[row["id"]] = _row_job(row)
        return out

    async def close(self) -> None:
        if self._opening is not None:
            await self._opening
        await self.pool.close()

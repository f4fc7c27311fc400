"""SQLite store (the embedded default): WAL, one connection per thread, migrations under an
exclusive transaction."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jobserver.store.base import Store, migrations, now_iso


class _Cursor:
    def __init__(self, cur: sqlite3.Cursor) -> None:
        self.cur = cur

    def execute(self, sql: str, args: tuple = ()) -> None:
        self.cur.execute(sql, args)

    @property
    def rowcount(self) -> int:
        return self.cur.rowcount

    def fetchone(self) -> dict[str, Any] | None:
        row = self.cur.fetchone()
        return dict(row) if row is not None else None

    def fetchall(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.cur.fetchall()]


def _wal(conn: sqlite3.Connection, wait: float = 30.0) -> None:
    """Put the database in WAL mode (it stays so: later connections find it set).

    Setting it takes an exclusive lock, and when connections race to set it on a new file (a server and
    its pool's workers starting together) SQLite answers "database is locked" at once, without waiting
    out the busy timeout: one of four threads migrating a new file failed so in CI. Try again for up to
    ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class SQLiteStore(Store):
    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            _wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def tx(self) -> Iterator[Any]:
        conn = self._conn()
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield _Cursor(cur)
        except BaseException:
            cur.execute("ROLLBACK")
            self._committed(False)
            raise
        else:
            cur.execute("COMMIT")
            self._committed(True)

    @contextmanager
    def read(self) -> Iterator[Any]:
        # One statement in autocommit mode is its own (read) transaction: no BEGIN IMMEDIATE, which
        # would take the write lock and wait behind every writer.
        cur = self._conn().cursor()
        try:
            yield _Cursor(cur)
        finally:
            cur.close()

    def wait_for_work(self, timeout: float) -> None:
        """Until another connection commits (``PRAGMA data_version`` moves: a read of shared memory,
        no query of the tables) or ``timeout``. Any commit wakes the worker, which then looks for work."""
        conn = self._conn()
        start = conn.execute("PRAGMA data_version").fetchone()[0]
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
            if conn.execute("PRAGMA data_version").fetchone()[0] != start:
                return

    def migrate(self) -> int:
        conn = self._conn()
        conn.execute("BEGIN EXCLUSIVE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)"
            )
            have = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
            for version, sql in migrations():
                if version > have:
                    for stmt in [s for s in sql.split(";") if s.strip() and not _only_comments(s)]:
                        conn.execute(stmt)
                    conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, now_iso()))
                    have = version
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return int(have)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _only_comments(stmt: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in stmt.splitlines())

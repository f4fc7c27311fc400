"""Job stores: :class:`~jobserver.store.base.Store` with SQLite and PostgreSQL back ends."""

from __future__ import annotations

from jobserver.store.base import TERMINAL, Store


def open_store(url: str) -> Store:
    """``sqlite:///path`` (or a bare path) -> SQLite; ``postgresql://...`` -> PostgreSQL."""
    if url.startswith(("postgres://", "postgresql://")):
        from jobserver.store.postgres import PostgresStore

        return PostgresStore(url)
    from jobserver.store.sqlite import SQLiteStore

    return SQLiteStore(url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url)


__all__ = ["TERMINAL", "Store", "open_store"]

"""AeroFS job server: a Jupyter server extension with durable jobs (REST + WebSocket under
``aerofs/api/``), a SQLite/PostgreSQL store, a local worker pool or workers elsewhere, metrics."""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from jobserver.app import AerofsApp

    return [{"module": "jobserver.app", "app": AerofsApp}]


__all__ = ["_jupyter_server_extension_points"]

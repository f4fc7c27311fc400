"""WebSocket ``aerofs/api/events``: live job updates; ``?since=<event id>`` replays what was missed."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web, websocket

from jobserver.events import dumps, message
from jobserver.handlers.base import identity, offload


class EventsHandler(WebSocketMixin, ExtensionHandlerMixin, JupyterHandler, websocket.WebSocketHandler):  # type: ignore[misc]
    @property
    def js(self) -> Any:
        return self.settings["aerofs_jobserver"]

    async def get(self, *args: Any, **kwargs: Any) -> None:
        # Authenticated like every route: no user (token, cookie or hub OAuth), no upgrade.
        name, admin = identity(self) if self.current_user else (None, False)
        if not name:
            raise web.HTTPError(401, "authentication required")
        self.user_name, self.is_admin = name, admin
        res = super().get(*args, **kwargs)
        if res is not None:
            await res

    def may_see(self, ev: dict[str, Any]) -> bool:
        return self.is_admin or ev["owner"] == self.user_name

    def send(self, batch: list[dict[str, Any]]) -> None:
        held = getattr(self, "_held", None)
        if held is not None:  # still replaying: live events wait so the client sees ids in order
            held.extend(batch)
            return
        try:
            self.write_message(dumps(batch))
        except websocket.WebSocketClosedError:
            self.js.bus.unsubscribe(self)

    async def open(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        since = self.get_query_argument("since", None)
        replay = since is not None and since.isdigit()
        self._held: list[dict[str, Any]] | None = [] if replay else None
        self.js.bus.subscribe(self)
        if replay:
            owner = None if self.is_admin else self.user_name
            try:
                evs = await offload(self._replay, int(since or 0), owner, self.js.bus.last)
            finally:
                held, self._held = self._held or [], None
            if evs + held:
                self.send(evs + held)
        self.write_message(json.dumps({"type": "hello", "last_event_id": self.js.bus.last}))

    def _replay(self, since: int, owner: str | None, last: int) -> list[dict[str, Any]]:
        """Events after ``since`` up to what the bus has already sent (on a store thread)."""
        store = self.js.store
        evs = [e for e in store.events_since(since, owner=owner, limit=10000) if e["id"] <= last]
        jobs = {jid: store.get_job(jid) for jid in {e["job_id"] for e in evs}}
        return [message(e, jobs[e["job_id"]]) for e in evs]

    def on_message(self, msg: str | bytes) -> None:
        pass

    def on_close(self) -> None:
        self.js.bus.unsubscribe(self)

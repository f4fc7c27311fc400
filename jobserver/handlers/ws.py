"""WebSocket ``aerofs/api/events``: live job updates; ``?since=<event id>`` replays what was missed."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web, websocket

from jobserver import auth
from jobserver.events import dumps, message


class EventsHandler(WebSocketMixin, ExtensionHandlerMixin, JupyterHandler, websocket.WebSocketHandler):  # type: ignore[misc]
    @property
    def js(self) -> Any:
        return self.settings["aerofs_jobserver"]

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if not self.current_user:
            raise web.HTTPError(403)
        self.user_name = auth.username(self.current_user)
        self.is_admin = auth.is_admin(self.current_user, self.js.admin_users, self.js.admin_group)
        res = super().get(*args, **kwargs)
        if res is not None:
            await res

    def may_see(self, ev: dict[str, Any]) -> bool:
        return self.is_admin or ev["owner"] == self.user_name

    def send(self, batch: list[dict[str, Any]]) -> None:
        try:
            self.write_message(dumps(batch))
        except websocket.WebSocketClosedError:
            self.js.bus.unsubscribe(self)

    def open(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        since = self.get_query_argument("since", None)
        self.js.bus.subscribe(self)
        if since is not None and since.isdigit():
            owner = None if self.is_admin else self.user_name
            evs = self.js.store.events_since(int(since), owner=owner, limit=10000)
            evs = [e for e in evs if e["id"] <= self.js.bus.last]
            if evs:
                jobs = {e["job_id"]: self.js.store.get_job(e["job_id"]) for e in evs}
                self.send([message(e, jobs[e["job_id"]]) for e in evs])
        self.write_message(json.dumps({"type": "hello", "last_event_id": self.js.bus.last}))

    def on_message(self, msg: str | bytes) -> None:
        pass

    def on_close(self) -> None:
        self.js.bus.unsubscribe(self)

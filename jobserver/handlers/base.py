"""Shared handler base: authentication, the job server's services, permission checks."""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from jobserver import auth
from jobserver.redact import redact


class BaseHandler(ExtensionHandlerMixin, APIHandler):  # type: ignore[misc]
    @property
    def js(self) -> Any:
        """The :class:`jobserver.app.JobService` of this server."""
        return self.settings["aerofs_jobserver"]

    @property
    def username(self) -> str:
        name = auth.username(self.current_user)
        if not name:
            raise web.HTTPError(403)
        return name

    @property
    def admin(self) -> bool:
        return auth.is_admin(self.current_user, self.js.admin_users, self.js.admin_group)

    def job_or_404(self, job_id: str) -> dict[str, Any]:
        job = self.js.store.get_job(job_id)
        if job is None or (job["owner"] != self.username and not self.admin):
            # Another user's job is indistinguishable from a missing one.
            raise web.HTTPError(404, "no such job")
        return job

    def send_json(self, doc: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(doc, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            reason = exc.log_message % exc.args if exc.args else exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": redact(str(reason)), "reason": self._reason}))


def public_job(job: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in job.items() if k not in ("cancel_requested",)}
    return out

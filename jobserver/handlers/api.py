"""REST handlers under ``aerofs/api/``. Every store call goes through :meth:`BaseHandler.call`
(a bounded thread pool), so no request waits on another's database round trips."""

from __future__ import annotations

import json
import os
from typing import Any

from tornado import web

from jobserver.handlers.base import BaseHandler, public_job
from jobserver.redact import redact
from jobserver.store import TERMINAL

SORTS = ("created_at", "started_at", "finished_at", "pipeline", "state", "owner")


class PipelinesHandler(BaseHandler):
    @web.authenticated
    def get(self) -> None:
        self.send_json({"pipelines": [p.describe() for p in self.js.pipelines()]})


def _problem(message: str, path: str = "$") -> dict[str, Any]:
    return {"message": message, "errors": [{"path": path, "message": message}]}


class JobsHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        states = [s.upper() for v in self.get_query_arguments("state") for s in v.split(",") if s]
        owner = self.get_query_argument("owner", None)
        if not self.admin:
            if owner and owner != self.username:
                self.send_json({"jobs": [], "total": 0, "limit": 0, "offset": 0})
                return
            owner = self.username
        try:
            limit = max(1, min(500, int(self.get_query_argument("limit", "50"))))
            offset = max(0, int(self.get_query_argument("offset", "0")))
        except ValueError:
            raise web.HTTPError(400, "limit and offset must be integers") from None
        jobs, total = await self.call(
            self.js.store.list_jobs,
            owner=owner or None,
            states=states or None,
            pipeline=self.get_query_argument("pipeline", None) or None,
            text=self.get_query_argument("q", None) or self.get_query_argument("text", None) or None,
            sort=self.get_query_argument("sort", "created_at"),
            order=self.get_query_argument("order", "desc"),
            limit=limit,
            offset=offset,
        )
        self.send_json(
            {"jobs": [public_job(j) for j in jobs], "total": total, "limit": limit, "offset": offset}
        )

    @web.authenticated
    async def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            self.send_json(_problem("body is not JSON"), 400)
            return
        if not isinstance(body, dict):
            self.send_json(_problem("body must be an object"), 400)
            return
        pipeline = body.get("pipeline")
        params = body.get("params", {})
        # Validation is a schema check in memory (plus the allowed roots): cheap, stays on the loop.
        # Planning (listing inputs, splitting files) is the worker's job, never the request's.
        errors = self.js.validate(pipeline, params, self.username)
        if errors:
            msg = "; ".join(f"{e['path']}: {e['message']}" for e in errors)
            self.send_json({"message": f"invalid job: {redact(msg)}", "errors": errors}, 400)
            return
        key = self.request.headers.get("Idempotency-Key") or body.get("idempotency_key")
        if key is not None and (not isinstance(key, str) or not key or len(key) > 200):
            self.send_json(
                _problem("idempotency key: a string of 1 to 200 characters", "$.idempotency_key"), 400
            )
            return
        cid = self.request.headers.get("X-Correlation-Id")
        job, created = await self.call(self.js.store.create_job, pipeline, params, self.username, key, cid)
        self.js.submitted(job, created)
        self.set_header("Location", self.js.api_url(f"jobs/{job['id']}"))
        self.send_json(
            {"id": job["id"], "state": job["state"], "job": public_job(job)}, 202 if created else 200
        )


class JobHandler(BaseHandler):
    @web.authenticated
    async def get(self, job_id: str) -> None:
        job = await self.job_or_404(job_id)
        if self.get_query_argument("tasks", "") in ("1", "true"):
            job["tasks"] = [
                {k: t[k] for k in ("idx", "state", "attempts", "worker", "progress", "error")}
                for t in await self.call(self.js.store.tasks, job_id)
            ]
        self.send_json(public_job(job))

    @web.authenticated
    async def delete(self, job_id: str) -> None:
        job = await self.job_or_404(job_id)
        if job["state"] in TERMINAL:
            self.send_json(public_job(job), 409)
            return
        self.send_json(public_job(await self.call(self.js.store.cancel_job, job_id) or job))


class JobRetryHandler(BaseHandler):
    @web.authenticated
    async def post(self, job_id: str) -> None:
        job = await self.job_or_404(job_id)
        again = await self.call(self.js.store.retry_job, job_id)
        if again is None:
            self.send_json(
                {"message": f"a {job['state']} job cannot be retried", "job": public_job(job)}, 409
            )
            return
        self.js.submitted(again, True)
        self.send_json({"id": again["id"], "state": again["state"], "job": public_job(again)}, 202)


class JobLogsHandler(BaseHandler):
    @web.authenticated
    async def get(self, job_id: str) -> None:
        await self.job_or_404(job_id)
        lines = await self.call(self.js.store.logs, job_id)
        accept = self.request.headers.get("Accept", "")
        if "text/plain" in accept and "json" not in accept:
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish("".join(f"{r['at']} {r['level']} {r['message']}\n" for r in lines))
            return
        self.send_json({"lines": lines})


class JobOutputsHandler(BaseHandler):
    @web.authenticated
    async def get(self, job_id: str) -> None:
        await self.job_or_404(job_id)
        outs = await self.call(self.js.store.outputs, job_id)
        want = self.get_query_argument("path", None)
        if want is None:
            self.send_json({"outputs": outs})
            return
        if want not in {o["path"] for o in outs}:
            raise web.HTTPError(404, "not an output of this job")
        if "://" in want or not os.path.isfile(want):
            raise web.HTTPError(404, "output not available for download from this server")
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Disposition", f'attachment; filename="{os.path.basename(want)}"')
        with open(want, "rb") as f:
            while chunk := await self.call(f.read, 1 << 20):
                self.write(chunk)
                await self.flush()
        self.finish()


class StatsHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        if not self.admin:
            raise web.HTTPError(403, "admins only")
        self.send_json(await self.call(self.js.stats))


class OpenAPIHandler(BaseHandler):
    @web.authenticated
    def get(self) -> None:
        from jobserver.openapi import document

        self.send_json(document(self.js.api_url("")))


class MetricsHandler(BaseHandler):
    async def get(self) -> None:
        if self.js.metrics_auth and not self.current_user:
            raise web.HTTPError(403)
        from jobserver.metrics import render

        body, ctype = await self.call(render, self.js)
        self.set_header("Content-Type", ctype)
        self.finish(body)

    def check_xsrf_cookie(self) -> None:  # GET only
        return None

"""REST handlers under ``aerofs/api/``. Every store call goes through :meth:`BaseHandler.call`
(a bounded thread pool), so no request waits on another's database round trips."""

from __future__ import annotations

import json
import os
from typing import Any

from tornado import web

from jobserver.handlers.base import BaseHandler, authenticated, public_job
from jobserver.openapi import SORTS
from jobserver.redact import redact
from jobserver.store import TERMINAL


class PipelinesHandler(BaseHandler):
    @authenticated
    def get(self) -> None:
        self.check_query()
        self.send_json({"pipelines": [p.describe() for p in self.js.pipelines()]})


def _problem(message: str, path: str = "$") -> dict[str, Any]:
    return {"message": message, "errors": [{"path": path, "message": message}]}


class JobsHandler(BaseHandler):
    @authenticated
    async def get(self) -> None:
        self.check_query("state", "pipeline", "owner", "q", "sort", "order", "limit", "offset")
        states = [s.upper() for v in self.get_query_arguments("state") for s in v.split(",") if s]
        problems = []
        try:
            limit = int(self.get_query_argument("limit", "50"))
            if not 1 <= limit <= 500:
                problems.append(("limit", "between 1 and 500"))
        except ValueError:
            limit = 0
            problems.append(("limit", "an integer"))
        try:
            offset = int(self.get_query_argument("offset", "0"))
            if offset < 0:
                problems.append(("offset", "0 or more"))
        except ValueError:
            offset = 0
            problems.append(("offset", "an integer"))
        sort = self.get_query_argument("sort", "created_at")
        order = self.get_query_argument("order", "desc")
        if sort not in SORTS:
            problems.append(("sort", "one of " + ", ".join(SORTS)))
        if order not in ("asc", "desc"):
            problems.append(("order", "asc or desc"))
        if problems:
            errors = [{"path": f"$.query.{k}", "message": f"must be {m}"} for k, m in problems]
            self.send_json(
                {
                    "message": "bad query: " + "; ".join(f"{k} must be {m}" for k, m in problems),
                    "errors": errors,
                },
                400,
            )
            return
        owner = self.get_query_argument("owner", None)
        if not self.admin:
            if owner and owner != self.username:  # other people's jobs: none that you may see
                self.send_json({"jobs": [], "total": 0, "limit": limit, "offset": offset})
                return
            owner = self.username
        jobs, total = await self.call(
            self.js.store.list_jobs,
            owner=owner or None,
            states=states or None,
            pipeline=self.get_query_argument("pipeline", None) or None,
            text=self.get_query_argument("q", None) or None,
            sort=sort,
            order=order,
            limit=limit,
            offset=offset,
        )
        self.send_json(
            {"jobs": [public_job(j) for j in jobs], "total": total, "limit": limit, "offset": offset}
        )

    @authenticated
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
        if "params" not in body:
            self.send_json(_problem("required: the pipeline's options (src, dst, ...)", "$.params"), 400)
            return
        params = body["params"]
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
        self.set_header("Location", self.js.api_url(f"jobs/{job['id']}"))
        self.send_json(
            {"id": job["id"], "state": job["state"], "job": public_job(job)}, 202 if created else 200
        )
        # The job is committed: answer first, then wake a worker (or send the RQ message) and write
        # the `job.submitted` line. Neither changes the answer, and the line's JSON and log record
        # (~40 us) no longer delay it; the wake still goes out before the loop takes anything else.
        self.js.submitted(job, created)


class JobHandler(BaseHandler):
    @authenticated
    async def get(self, job_id: str) -> None:
        self.check_query("tasks")
        job = await self.job_or_404(job_id)
        if self.get_query_argument("tasks", "") in ("1", "true"):
            job["tasks"] = [
                {k: t[k] for k in ("idx", "state", "attempts", "worker", "progress", "error")}
                for t in await self.call(self.js.store.tasks, job_id)
            ]
        self.send_json(public_job(job))

    @authenticated
    async def delete(self, job_id: str) -> None:
        self.check_query()
        job = await self.job_or_404(job_id)
        if job["state"] in TERMINAL:
            self.send_json(public_job(job), 409)
            return
        self.send_json(public_job(await self.call(self.js.store.cancel_job, job_id) or job))


class JobRetryHandler(BaseHandler):
    @authenticated
    async def post(self, job_id: str) -> None:
        self.check_query()
        job = await self.job_or_404(job_id)
        again = await self.call(self.js.store.retry_job, job_id)
        if again is None:
            self.send_json(
                {"message": f"a {job['state']} job cannot be retried", "job": public_job(job)}, 409
            )
            return
        self.send_json({"id": again["id"], "state": again["state"], "job": public_job(again)}, 202)
        self.js.submitted(again, True)  # after the answer, as a submit's (JobsHandler.post)


class JobLogsHandler(BaseHandler):
    @authenticated
    async def get(self, job_id: str) -> None:
        self.check_query()
        await self.job_or_404(job_id)
        lines = await self.call(self.js.store.logs, job_id)
        accept = self.request.headers.get("Accept", "")
        if "text/plain" in accept and "json" not in accept:
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish("".join(f"{r['at']} {r['level']} {r['message']}\n" for r in lines))
            return
        self.send_json({"lines": lines})


class JobOutputsHandler(BaseHandler):
    @authenticated
    async def get(self, job_id: str) -> None:
        self.check_query("path")
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
    @authenticated
    async def get(self) -> None:
        self.check_query()
        if not self.admin:
            raise web.HTTPError(403, "admins only")
        self.send_json(await self.call(self.js.stats))


class OpenAPIHandler(BaseHandler):
    @authenticated
    def get(self) -> None:
        from jobserver.openapi import document

        self.check_query()
        self.send_json(document(self.js.api_url(""), [p.describe() for p in self.js.pipelines()]))


class MetricsHandler(BaseHandler):
    async def get(self) -> None:
        if self.js.metrics_auth and not self.current_user:
            raise web.HTTPError(401, "authentication required")
        from jobserver.metrics import render

        body, ctype = await self.call(render, self.js)
        self.set_header("Content-Type", ctype)
        self.finish(body)

    def check_xsrf_cookie(self) -> None:  # GET only
        return None


class NotFoundHandler(BaseHandler):
    """Anything else under ``aerofs/api/``: a JSON 404 (not the server's HTML page)."""

    @authenticated
    def get(self, path: str) -> None:
        raise web.HTTPError(404, "no such route: %s", path)

    post = delete = put = patch = get

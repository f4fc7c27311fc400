"""The OpenAPI 3.0 document of ``aerofs/api/`` (checked against the server by schemathesis in
tests/jobserver/test_schemathesis.py: every status a route answers is listed here, with its body)."""

from __future__ import annotations

from typing import Any

STATES = ["PENDING", "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
SORTS = ["created_at", "started_at", "finished_at", "pipeline", "state", "owner"]

_ERR = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}, "reason": {"type": "string", "nullable": True}},
}
_PROBLEMS = {
    "type": "object",
    "required": ["message", "errors"],
    "properties": {
        "message": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "message"],
                "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_JOB = {
    "type": "object",
    "required": [
        "id",
        "pipeline",
        "params",
        "owner",
        "state",
        "progress",
        "created_at",
        "started_at",
        "finished_at",
        "attempts",
        "summary",
        "outputs",
        "errors",
    ],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "pipeline": {"type": "string"},
        "params": {"type": "object"},
        "owner": {"type": "string"},
        "state": {"type": "string", "enum": STATES},
        "progress": {"type": "object", "nullable": True},
        "created_at": {"type": "string"},
        "started_at": {"type": "string", "nullable": True},
        "finished_at": {"type": "string", "nullable": True},
        "attempts": {"type": "integer", "minimum": 0},
        "summary": {"type": "object", "nullable": True},
        "outputs": {"type": "array", "nullable": True},
        "errors": {"type": "array", "nullable": True},
        "error": {"type": "string", "nullable": True},
        "correlation_id": {"type": "string", "nullable": True},
        "tasks": {"type": "array", "items": {"type": "object"}},
    },
}
_ACCEPTED = {
    "type": "object",
    "required": ["id", "state", "job"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "state": {"type": "string", "enum": STATES},
        "job": {"$ref": "#/components/schemas/Job"},
    },
}
_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}


def _json(desc: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": schema}}}


def _err(desc: str) -> dict[str, Any]:
    return _json(desc, {"$ref": "#/components/schemas/Error"})


def _responses(ok: dict[str, Any], *, job: bool = False, **more: dict[str, Any]) -> dict[str, Any]:
    out = {"400": _err("unknown query parameter"), **ok, "401": _err("not authenticated")}
    if job:
        out["404"] = _err("no such job (or another user's)")
    out.update(more)
    return out


def document(base: str, pipelines: list[str] | None = None) -> dict[str, Any]:
    """The document for the API at ``base``; ``pipelines``: the names this server knows (their
    options' JSON Schemas are served by ``GET pipelines``)."""
    pipeline: dict[str, Any] = {"type": "string"}
    if pipelines:
        pipeline["enum"] = list(pipelines)
    job_ref = {"$ref": "#/components/schemas/Job"}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "AeroFS job server",
            "version": "1",
            "description": "Durable jobs over the AeroFS pipelines. Live updates: the WebSocket "
            "`events` beside these routes (`?since=<event id>` replays what was missed).",
        },
        "servers": [{"url": base.rstrip("/")}],
        "components": {
            "schemas": {"Job": _JOB, "Problems": _PROBLEMS, "Error": _ERR, "Accepted": _ACCEPTED},
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "Authorization"}},
        },
        "security": [{"token": []}],
        "paths": {
            "/pipelines": {
                "get": {
                    "operationId": "listPipelines",
                    "responses": _responses(
                        {
                            "200": _json(
                                "pipelines with the JSON Schema of their options",
                                {
                                    "type": "object",
                                    "required": ["pipelines"],
                                    "properties": {
                                        "pipelines": {"type": "array", "items": {"type": "object"}}
                                    },
                                },
                            )
                        }
                    ),
                }
            },
            "/jobs": {
                "get": {
                    "operationId": "listJobs",
                    "parameters": [
                        {"name": n, "in": "query", "required": False, "schema": s}
                        for n, s in [
                            ("state", {"type": "string", "description": "comma-separated states"}),
                            ("pipeline", {"type": "string"}),
                            (
                                "owner",
                                {"type": "string", "description": "admins: anyone's; others: their own"},
                            ),
                            ("q", {"type": "string"}),
                            ("sort", {"type": "string", "enum": SORTS}),
                            ("order", {"type": "string", "enum": ["asc", "desc"]}),
                            ("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                            ("offset", {"type": "integer", "minimum": 0}),
                        ]
                    ],
                    "responses": _responses(
                        {
                            "200": _json(
                                "a page of jobs",
                                {
                                    "type": "object",
                                    "required": ["jobs", "total", "limit", "offset"],
                                    "properties": {
                                        "jobs": {"type": "array", "items": job_ref},
                                        "total": {"type": "integer", "minimum": 0},
                                        "limit": {"type": "integer"},
                                        "offset": {"type": "integer"},
                                    },
                                },
                            ),
                            "400": _err("bad query (Problems: each error with its parameter)"),
                        }
                    ),
                },
                "post": {
                    "operationId": "submitJob",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                        },
                        {
                            "name": "X-Correlation-Id",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["pipeline", "params"],
                                    "properties": {
                                        "pipeline": pipeline,
                                        "params": {
                                            "type": "object",
                                            "description": "the pipeline's options: its JSON Schema is in "
                                            "GET pipelines; src and dst must lie under the caller's allowed roots",
                                        },
                                        "idempotency_key": {
                                            "type": "string",
                                            "minLength": 1,
                                            "maxLength": 200,
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": _responses(
                        {
                            "202": _json(
                                "accepted: recorded and queued", {"$ref": "#/components/schemas/Accepted"}
                            ),
                            "200": _json(
                                "the job already submitted with this idempotency key",
                                {"$ref": "#/components/schemas/Accepted"},
                            ),
                            "400": _json(
                                "invalid job: each error with its JSON path",
                                {"$ref": "#/components/schemas/Problems"},
                            ),
                        }
                    ),
                },
            },
            "/jobs/{job_id}": {
                "parameters": [_ID],
                "get": {
                    "operationId": "getJob",
                    "parameters": [
                        {"name": "tasks", "in": "query", "required": False, "schema": {"type": "boolean"}}
                    ],
                    "responses": _responses({"200": _json("the job", job_ref)}, job=True),
                },
                "delete": {
                    "operationId": "cancelJob",
                    "responses": _responses(
                        {"200": _json("cancelled", job_ref)},
                        job=True,
                        **{"409": _json("already finished", job_ref)},
                    ),
                },
            },
            "/jobs/{job_id}/retry": {
                "parameters": [_ID],
                "post": {
                    "operationId": "retryJob",
                    "responses": _responses(
                        {"202": _json("requeued", {"$ref": "#/components/schemas/Accepted"})},
                        job=True,
                        **{
                            "409": _json(
                                "only a FAILED or CANCELLED job can be retried",
                                {
                                    "type": "object",
                                    "required": ["message", "job"],
                                    "properties": {"message": {"type": "string"}, "job": job_ref},
                                },
                            )
                        },
                    ),
                },
            },
            "/jobs/{job_id}/logs": {
                "parameters": [_ID],
                "get": {
                    "operationId": "jobLogs",
                    "responses": _responses(
                        {
                            "200": {
                                "description": "log lines (text/plain when asked for it)",
                                "content": {
                                    "application/json": {
                                        "schema": {
                                            "type": "object",
                                            "required": ["lines"],
                                            "properties": {
                                                "lines": {
                                                    "type": "array",
                                                    "items": {
                                                        "type": "object",
                                                        "required": ["at", "level", "message"],
                                                        "properties": {
                                                            "at": {"type": "string"},
                                                            "level": {"type": "string"},
                                                            "message": {"type": "string"},
                                                        },
                                                    },
                                                }
                                            },
                                        }
                                    },
                                    "text/plain": {"schema": {"type": "string"}},
                                },
                            }
                        },
                        job=True,
                    ),
                },
            },
            "/jobs/{job_id}/outputs": {
                "parameters": [
                    _ID,
                    {
                        "name": "path",
                        "in": "query",
                        "required": False,
                        "description": "one of the listed outputs: download it",
                        "schema": {"type": "string"},
                    },
                ],
                "get": {
                    "operationId": "jobOutputs",
                    "responses": _responses(
                        {
                            "200": {
                                "description": "the outputs, or the file asked for",
                                "content": {
                                    "application/json": {
                                        "schema": {
                                            "type": "object",
                                            "required": ["outputs"],
                                            "properties": {
                                                "outputs": {
                                                    "type": "array",
                                                    "items": {
                                                        "type": "object",
                                                        "required": ["path"],
                                                        "properties": {
                                                            "path": {"type": "string"},
                                                            "size": {"type": "integer", "nullable": True},
                                                        },
                                                    },
                                                }
                                            },
                                        }
                                    },
                                    "application/octet-stream": {
                                        "schema": {"type": "string", "format": "binary"}
                                    },
                                },
                            }
                        },
                        job=True,
                    ),
                },
            },
            "/stats": {
                "get": {
                    "operationId": "stats",
                    "responses": _responses(
                        {
                            "200": _json(
                                "queue and worker figures",
                                {
                                    "type": "object",
                                    "required": [
                                        "queue_length",
                                        "workers_busy",
                                        "workers_idle",
                                        "jobs_per_minute",
                                        "failure_rate",
                                        "longest_running",
                                    ],
                                    "properties": {
                                        "queue_length": {"type": "integer"},
                                        "workers_busy": {"type": "integer"},
                                        "workers_idle": {"type": "integer"},
                                        "jobs_per_minute": {"type": "number"},
                                        "failure_rate": {"type": "number"},
                                        "longest_running": {"type": "object", "nullable": True},
                                    },
                                },
                            ),
                            "403": _err("admins only"),
                        }
                    ),
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "responses": _responses({"200": _json("this document", {"type": "object"})}),
                }
            },
        },
    }

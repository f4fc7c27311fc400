"""The OpenAPI 3.0 document of ``aerofs/api/``."""

from __future__ import annotations

from typing import Any

_ERR = {"type": "object", "properties": {"message": {"type": "string"}}}
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
        "id": {"type": "string"},
        "pipeline": {"type": "string"},
        "params": {"type": "object"},
        "owner": {"type": "string"},
        "state": {
            "type": "string",
            "enum": ["PENDING", "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"],
        },
        "progress": {"type": "object", "nullable": True},
        "created_at": {"type": "string"},
        "started_at": {"type": "string", "nullable": True},
        "finished_at": {"type": "string", "nullable": True},
        "attempts": {"type": "integer"},
        "summary": {"type": "object", "nullable": True},
        "outputs": {"type": "array", "nullable": True},
        "errors": {"type": "array", "nullable": True},
        "error": {"type": "string", "nullable": True},
    },
}
_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}


def _resp(
    desc: str, schema: dict[str, Any] | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "200": {
            "description": desc,
            **({"content": {"application/json": {"schema": schema}}} if schema else {}),
        }
    }
    out["403"] = {"description": "not authenticated", "content": {"application/json": {"schema": _ERR}}}
    out.update(extra or {})
    return out


def _nf() -> dict[str, Any]:
    return {"404": {"description": "no such job", "content": {"application/json": {"schema": _ERR}}}}


def document(base: str) -> dict[str, Any]:
    job_ref = {"$ref": "#/components/schemas/Job"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "AeroFS job server", "version": "1"},
        "servers": [{"url": base.rstrip("/")}],
        "components": {
            "schemas": {"Job": _JOB, "Problems": _PROBLEMS, "Error": _ERR},
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "Authorization"}},
        },
        "security": [{"token": []}],
        "paths": {
            "/pipelines": {
                "get": {
                    "operationId": "listPipelines",
                    "responses": _resp(
                        "pipelines with their option schema",
                        {
                            "type": "object",
                            "required": ["pipelines"],
                            "properties": {"pipelines": {"type": "array"}},
                        },
                    ),
                }
            },
            "/jobs": {
                "get": {
                    "operationId": "listJobs",
                    "parameters": [
                        {"name": n, "in": "query", "required": False, "schema": s}
                        for n, s in [
                            ("state", {"type": "string"}),
                            ("pipeline", {"type": "string"}),
                            ("owner", {"type": "string"}),
                            ("q", {"type": "string"}),
                            (
                                "sort",
                                {
                                    "type": "string",
                                    "enum": [
                                        "created_at",
                                        "started_at",
                                        "finished_at",
                                        "pipeline",
                                        "state",
                                        "owner",
                                    ],
                                },
                            ),
                            ("order", {"type": "string", "enum": ["asc", "desc"]}),
                            ("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                            ("offset", {"type": "integer", "minimum": 0}),
                        ]
                    ],
                    "responses": _resp(
                        "a page of jobs",
                        {
                            "type": "object",
                            "required": ["jobs", "total"],
                            "properties": {
                                "jobs": {"type": "array", "items": job_ref},
                                "total": {"type": "integer"},
                            },
                        },
                        {
                            "400": {
                                "description": "bad query",
                                "content": {"application/json": {"schema": _ERR}},
                            }
                        },
                    ),
                },
                "post": {
                    "operationId": "submitJob",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["pipeline", "params"],
                                    "properties": {
                                        "pipeline": {"type": "string"},
                                        "params": {"type": "object"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "accepted",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["id", "state"],
                                        "properties": {"id": {"type": "string"}, "state": {"type": "string"}},
                                    }
                                }
                            },
                        },
                        "200": {"description": "the job already submitted with this idempotency key"},
                        "400": {
                            "description": "invalid job",
                            "content": {"application/json": {"schema": _PROBLEMS}},
                        },
                        "403": {"description": "not authenticated"},
                    },
                },
            },
            "/jobs/{job_id}": {
                "parameters": [_ID],
                "get": {"operationId": "getJob", "responses": _resp("the job", job_ref, _nf())},
                "delete": {
                    "operationId": "cancelJob",
                    "responses": _resp(
                        "cancelled", job_ref, {**_nf(), "409": {"description": "already finished"}}
                    ),
                },
            },
            "/jobs/{job_id}/retry": {
                "parameters": [_ID],
                "post": {
                    "operationId": "retryJob",
                    "responses": {
                        "202": {"description": "requeued"},
                        "403": {"description": "not authenticated"},
                        "409": {"description": "not retryable"},
                        **_nf(),
                    },
                },
            },
            "/jobs/{job_id}/logs": {
                "parameters": [_ID],
                "get": {
                    "operationId": "jobLogs",
                    "responses": _resp(
                        "log lines",
                        {"type": "object", "required": ["lines"], "properties": {"lines": {"type": "array"}}},
                        _nf(),
                    ),
                },
            },
            "/jobs/{job_id}/outputs": {
                "parameters": [
                    _ID,
                    {"name": "path", "in": "query", "required": False, "schema": {"type": "string"}},
                ],
                "get": {"operationId": "jobOutputs", "responses": _resp("outputs or a file", None, _nf())},
            },
            "/stats": {
                "get": {
                    "operationId": "stats",
                    "responses": _resp(
                        "queue and worker figures (admins)",
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
                        },
                    ),
                }
            },
        },
    }

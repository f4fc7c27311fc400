"""The OpenAPI 3.1 document of ``aerofs/api/`` (checked against the server by schemathesis in
tests/jobserver/test_schemathesis.py: every status a route answers is listed here, with its body).

3.1 because its schemas are JSON Schema 2020-12, the dialect of the pipelines' option schemas: each
pipeline's ``schema`` (:mod:`aerofs_kernel.pipelines`) is placed in the document as it is, the one
definition the server also validates ``POST jobs`` against, never a copy to keep in step.

The WebSocket ``events`` is described as its upgrade ``GET`` (tag ``websocket``: plain HTTP clients
and schemathesis leave it out) with the schemas of the messages it sends.
"""

from __future__ import annotations

from typing import Any

STATES = ["PENDING", "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
SORTS = ["created_at", "started_at", "finished_at", "pipeline", "state", "owner"]

_ERR = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}, "reason": {"type": ["string", "null"]}},
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
        "progress": {"type": ["object", "null"]},
        "created_at": {"type": "string"},
        "started_at": {"type": ["string", "null"]},
        "finished_at": {"type": ["string", "null"]},
        "attempts": {"type": "integer", "minimum": 0},
        "summary": {"type": ["object", "null"]},
        "outputs": {"type": ["array", "null"]},
        "errors": {"type": ["array", "null"]},
        "error": {"type": ["string", "null"]},
        "correlation_id": {"type": ["string", "null"]},
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
# -- the events WebSocket's messages (jobserver.events.message, jobserver.handlers.ws) -----------------
_PROGRESS = {
    "type": "object",
    "description": "the sums of the job's tasks' progress",
    "properties": {
        **{
            k: {"type": "integer", "minimum": 0}
            for k in ("inputs_total", "inputs_done", "bytes_total", "bytes_done", "rows", "errors")
        },
        "tasks_total": {"type": "integer", "minimum": 0},
        "tasks_done": {"type": "integer", "minimum": 0},
        "fraction": {"type": "number", "minimum": 0, "maximum": 1},
    },
}
_EVENT_COMMON = {
    "event_id": {
        "type": "integer",
        "minimum": 1,
        "description": "increasing; pass the last one seen as since",
    },
    "job_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
    "at": {"type": "string", "description": "when the event was recorded (ISO 8601, UTC)"},
    "job": {
        "$ref": "#/components/schemas/Job",
        "description": "the job as it is when the event is sent (it may be newer than the event)",
    },
}
_STATE_EVENT = {
    "type": "object",
    "description": "the job moved to `state`",
    "required": ["event_id", "type", "job_id", "at", "state"],
    "properties": {
        **_EVENT_COMMON,
        "type": {"const": "state"},
        "state": {"type": "string", "enum": STATES},
        "error": {"type": "string", "description": "why it failed"},
        "retry": {"type": "boolean", "description": "PENDING again after POST jobs/{id}/retry"},
    },
}
_PROGRESS_EVENT = {
    "type": "object",
    "description": "a progress checkpoint of a running job (at most about once a second per task)",
    "required": ["event_id", "type", "job_id", "at", "state", "progress"],
    "properties": {
        **_EVENT_COMMON,
        "type": {"const": "progress"},
        "state": {"type": "string", "enum": STATES},
        "progress": {"$ref": "#/components/schemas/Progress"},
    },
}
_EVENTS_BATCH = {
    "type": "object",
    "description": "events in event-id order: those of the caller's jobs (an admin's: everyone's)",
    "required": ["events"],
    "additionalProperties": False,
    "properties": {
        "events": {
            "type": "array",
            "minItems": 1,
            "items": {
                "oneOf": [
                    {"$ref": "#/components/schemas/StateEvent"},
                    {"$ref": "#/components/schemas/ProgressEvent"},
                ],
                "discriminator": {
                    "propertyName": "type",
                    "mapping": {
                        "state": "#/components/schemas/StateEvent",
                        "progress": "#/components/schemas/ProgressEvent",
                    },
                },
            },
        }
    },
}
_HELLO = {
    "type": "object",
    "description": "sent once, after the replay (if any): later batches are live",
    "required": ["type", "last_event_id"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "hello"},
        "last_event_id": {"type": "integer", "minimum": 0, "description": "the newest event sent so far"},
    },
}
_EVENTS_MESSAGE = {
    "description": "one text frame, one JSON message",
    "oneOf": [{"$ref": "#/components/schemas/EventsHello"}, {"$ref": "#/components/schemas/EventsBatch"}],
}
_EVENTS_DESCRIPTION = """A WebSocket (RFC 6455) of live job updates, authenticated like every route.

The server sends text frames, each one JSON message (`EventsMessage`): with `since`, first the events
recorded after that id as `EventsBatch` messages; then one `EventsHello`; then an `EventsBatch` whenever
events happen. A client reconnects with `since` set to the last `event_id` it saw and misses nothing.
Messages from the client are ignored."""

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


def options_ref(name: str) -> str:
    """Where the document keeps the option schema of pipeline ``name``."""
    return f"#/components/schemas/Options.{name}"


def _submit_ref(name: str) -> str:
    return f"#/components/schemas/Submit.{name}"


def _submit(p: dict[str, Any]) -> dict[str, Any]:
    """``POST jobs``'s body for pipeline ``p`` (a ``describe()``)."""
    return {
        "type": "object",
        "title": p.get("title") or p["name"],
        "description": p.get("description", ""),
        "required": ["pipeline", "params"],
        "properties": {
            "pipeline": {"const": p["name"]},
            "params": {
                "$ref": options_ref(p["name"]),
                "description": "the pipeline's options; src and dst must lie under the caller's allowed "
                "roots. Beside them, `storage_options` (fsspec options) is taken only by a server "
                "without allowed roots.",
            },
            "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 200},
        },
    }


def _submit_body(pipelines: list[dict[str, Any]]) -> dict[str, Any]:
    if not pipelines:  # nothing to discriminate: any pipeline name (the server answers 400)
        return {
            "type": "object",
            "required": ["pipeline", "params"],
            "properties": {
                "pipeline": {"type": "string"},
                "params": {"type": "object"},
                "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 200},
            },
        }
    return {
        "oneOf": [{"$ref": _submit_ref(p["name"])} for p in pipelines],
        "discriminator": {
            "propertyName": "pipeline",
            "mapping": {p["name"]: _submit_ref(p["name"]) for p in pipelines},
        },
    }


def document(base: str, pipelines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The document for the API at ``base``; ``pipelines``: what this server runs, each as its spec's
    ``describe()`` (name, title, description, schema), whose option schema goes in as it is."""
    pipelines = list(pipelines or [])
    job_ref = {"$ref": "#/components/schemas/Job"}
    schemas: dict[str, Any] = {
        "Job": _JOB,
        "Problems": _PROBLEMS,
        "Error": _ERR,
        "Accepted": _ACCEPTED,
        "Progress": _PROGRESS,
        "StateEvent": _STATE_EVENT,
        "ProgressEvent": _PROGRESS_EVENT,
        "EventsBatch": _EVENTS_BATCH,
        "EventsHello": _HELLO,
        "EventsMessage": _EVENTS_MESSAGE,
    }
    for p in pipelines:
        schemas[f"Options.{p['name']}"] = p["schema"]
        schemas[f"Submit.{p['name']}"] = _submit(p)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AeroFS job server",
            "version": "1",
            "description": "Durable jobs over the AeroFS pipelines. Live updates: the WebSocket "
            "`GET events` (`?since=<event id>` replays what was missed).",
        },
        "servers": [{"url": base.rstrip("/")}],
        "tags": [{"name": "websocket", "description": "a WebSocket upgrade, not a plain HTTP request"}],
        "components": {
            "schemas": schemas,
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
                        "description": "a job of one pipeline (`pipeline` says which) with its options",
                        "content": {"application/json": {"schema": _submit_body(pipelines)}},
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
                                                            "size": {"type": ["integer", "null"]},
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
                                        "longest_running": {"type": ["object", "null"]},
                                    },
                                },
                            ),
                            "403": _err("admins only"),
                        }
                    ),
                }
            },
            "/events": {
                "get": {
                    "operationId": "events",
                    "tags": ["websocket"],
                    "summary": "live job updates (WebSocket)",
                    "description": _EVENTS_DESCRIPTION,
                    "parameters": [
                        {
                            "name": "since",
                            "in": "query",
                            "required": False,
                            "description": "replay the events after this event id first",
                            "schema": {"type": "integer", "minimum": 0},
                        },
                        {
                            "name": "Upgrade",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string", "const": "websocket"},
                        },
                        {
                            "name": "Connection",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string", "const": "Upgrade"},
                        },
                    ],
                    "responses": {
                        "101": {
                            "description": "switching protocols: from then on the server sends "
                            "EventsMessage frames (x-websocket-messages)",
                        },
                        "400": {"description": "not a WebSocket upgrade"},
                        "401": _err("not authenticated"),
                    },
                    "x-websocket-messages": {"$ref": "#/components/schemas/EventsMessage"},
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

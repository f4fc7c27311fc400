"""The OpenAPI document itself: a valid OpenAPI 3.1 document, each registered pipeline's option schema
in it exactly as its spec defines it (and the server rejecting what that schema rejects, naming the
path), and the events WebSocket's message schemas matching what a live server sends.
(tests/jobserver/test_schemathesis.py checks the HTTP routes against the document.)"""

from __future__ import annotations

import asyncio
import copy
import importlib
import json
import sys
from typing import Any

import fake_runner
import jsonschema
import pytest
from conftest import jp_sync, post_job, submit_job, user, wait_state
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from jobserver.openapi import document, options_ref

pytestmark = pytest.mark.timeout(120)
DOC_URI = "urn:aerofs:openapi"


def validate_openapi(doc: dict[str, Any]) -> None:
    """openapi-spec-validator (the document and every schema in it) when installed, else the OpenAPI
    3.1 meta-schema schemathesis checks documents with."""
    try:
        from openapi_spec_validator import validate
    except ImportError:
        from schemathesis.specs.openapi.definitions import OPENAPI_31

        jsonschema.Draft202012Validator(OPENAPI_31).validate(doc)
        # that meta-schema leaves the schemas themselves alone: check each against JSON Schema 2020-12
        for schema in _schemas(doc):
            jsonschema.Draft202012Validator.check_schema(schema)
        return
    validate(doc)


def _schemas(node: Any) -> list[dict[str, Any]]:
    """Every Schema Object of the document: components/schemas and each ``schema`` of a parameter or
    a media type."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "schema" and isinstance(v, dict):
                found.append(v)
            elif k == "schemas" and isinstance(v, dict):
                found.extend(x for x in v.values() if isinstance(x, dict))
            else:
                found.extend(_schemas(v))
    elif isinstance(node, list):
        for v in node:
            found.extend(_schemas(v))
    return found


def validator(doc: dict[str, Any], ref: str) -> jsonschema.Draft202012Validator:
    """A validator for the schema at ``ref`` (``#/components/...``) with the document's other schemas
    resolvable, as a client reading the document would use it."""
    registry = Registry().with_resource(DOC_URI, Resource(contents=doc, specification=DRAFT202012))
    return jsonschema.Draft202012Validator({"$ref": DOC_URI + ref}, registry=registry)


def real_pipelines() -> list[Any]:
    return list(importlib.import_module("aerofs_kernel.pipelines").all_pipelines())


@pytest.fixture(params=["openapi-spec-validator", "fallback"])
def validators(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways :func:`validate_openapi` checks (the fallback: as on a machine without the package)."""
    if request.param == "fallback":
        monkeypatch.setitem(sys.modules, "openapi_spec_validator", None)  # import fails
    else:
        pytest.importorskip("openapi_spec_validator")
    return str(request.param)


def test_the_document_is_valid_openapi(validators: str) -> None:
    for runner in (None, fake_runner, importlib.import_module("aerofs_kernel.pipelines")):
        pipelines = [p.describe() for p in runner.all_pipelines()] if runner else []
        validate_openapi(document("http://127.0.0.1/aerofs/api/", pipelines))


def test_an_invalid_document_is_caught(validators: str) -> None:
    # The check above must be able to fail: a schema with a type OpenAPI does not know.
    doc = copy.deepcopy(document("http://127.0.0.1/aerofs/api/", [p.describe() for p in real_pipelines()]))
    doc["components"]["schemas"]["Job"]["properties"]["attempts"] = {"type": "int"}
    with pytest.raises(Exception, match="int"):
        validate_openapi(doc)


# -- the pipelines' option schemas, served by a server running the real pipelines -------------------
# the server's runner: the real pipeline registry (no worker pool: no job of these runs)
REAL = pytest.mark.parametrize("aerofs_config", [{"runner_module": "", "local_pool": False}], ids=["real"])


async def served_document(fetch: Any) -> dict[str, Any]:
    r = await fetch("aerofs", "api", "openapi.json", headers=user("alice"))
    return json.loads(r.body)


@REAL
@jp_sync
async def test_each_pipeline_schema_is_the_specs(jp_fetch, aerofs_config) -> None:
    doc = await served_document(jp_fetch)
    validate_openapi(doc)
    specs = real_pipelines()
    assert {p.name for p in specs} == {"csv-to-parquet", "exif", "word-count", "log-sessions"}
    schemas = doc["components"]["schemas"]
    body = doc["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["discriminator"]["propertyName"] == "pipeline"
    assert set(body["discriminator"]["mapping"]) == {p.name for p in specs}
    for spec in specs:
        # the spec's own definition, as served (defaults and descriptions included)
        assert schemas[f"Options.{spec.name}"] == json.loads(json.dumps(spec.schema)), spec.name
        submit = schemas[body["discriminator"]["mapping"][spec.name].rsplit("/", 1)[1]]
        assert submit["properties"]["pipeline"] == {"const": spec.name}
        assert submit["properties"]["params"]["$ref"] == options_ref(spec.name)
        assert {"$ref": body["discriminator"]["mapping"][spec.name]} in body["oneOf"]


def _wrong_value(schema: dict[str, Any]) -> tuple[str, Any]:
    """An option of ``schema`` and a value of the wrong type for it."""
    for name, prop in schema["properties"].items():
        if prop.get("type") == "integer":
            return name, "many"
        if prop.get("type") == "boolean":
            return name, "yes"
    raise AssertionError(f"no integer or boolean option in {schema.get('title')}")


@REAL
@jp_sync
async def test_a_job_the_schema_rejects_is_a_400_naming_the_path(jp_fetch, aerofs_config, tmp_path) -> None:
    doc = await served_document(jp_fetch)
    body_schema = validator(doc, "#/paths/~1jobs/post/requestBody/content/application~1json/schema")
    problems = validator(doc, "#/components/schemas/Problems")
    for spec in real_pipelines():
        good = {"src": [str(tmp_path / "in")], "dst": str(tmp_path / "out")}
        name, value = _wrong_value(spec.schema)
        bad = {"pipeline": spec.name, "params": {**good, name: value}}
        # the document says so ...
        assert body_schema.is_valid({"pipeline": spec.name, "params": good}), spec.name
        assert not body_schema.is_valid(bad), spec.name
        # ... and so does the server, naming the option
        answer = await post_job(jp_fetch, bad["params"], pipeline=spec.name, expect=400)
        problems.validate(answer)
        assert [e["path"] for e in answer["errors"]] == [f"$.{name}"], answer


# -- the events WebSocket: its documented messages are what a live server sends ---------------------
@jp_sync
async def test_websocket_messages_match_the_document(jp_fetch, jp_ws_fetch, tmp_path) -> None:
    doc = await served_document(jp_fetch)
    op = doc["paths"]["/events"]["get"]
    assert "websocket" in op["tags"] and "101" in op["responses"]
    assert [p["name"] for p in op["parameters"] if p["in"] == "query"] == ["since"]
    messages = validator(doc, op["x-websocket-messages"]["$ref"])
    got: list[dict[str, Any]] = []

    ws = await jp_ws_fetch("aerofs", "api", "events", headers=user("alice"))
    got.append(json.loads(await asyncio.wait_for(ws.read_message(), 10)))
    job_id = await submit_job(jp_fetch, {"src": ["a", "b"], "dst": str(tmp_path / "o")})
    await wait_state(jp_fetch, job_id, "alice", {"SUCCEEDED"})
    states: list[str] = []
    while "SUCCEEDED" not in states:
        got.append(json.loads(await asyncio.wait_for(ws.read_message(), 10)))
        states += [e["state"] for e in got[-1].get("events", []) if e["type"] == "state"]
    ws.close()
    # a reconnect replays from `since` (a batch), then says hello
    ws = await jp_ws_fetch("aerofs", "api", "events", params={"since": "0"}, headers=user("alice"))
    got.append(json.loads(await asyncio.wait_for(ws.read_message(), 10)))
    got.append(json.loads(await asyncio.wait_for(ws.read_message(), 10)))
    ws.close()

    for msg in got:
        messages.validate(msg)
    assert got[0]["type"] == "hello" and got[-1]["type"] == "hello"
    events = [e for m in got for e in m.get("events", [])]
    assert {e["type"] for e in events} == {"state", "progress"}
    # the check can fail: a message the document does not describe is refused
    assert not messages.is_valid({"type": "bye"})
    assert not messages.is_valid({"events": [{**events[0], "type": "log"}]})

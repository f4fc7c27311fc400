"""schemathesis against the OpenAPI document: generated requests (valid and invalid) to every operation
of a real job server (a subprocess: SQLite, the fake runner, hub-style token identity); every answer must
be documented (status, content type, body schema) and none may be a 500. Bounded examples per operation
so the whole module stays well under a minute."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hub_server import hub_job_server
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from jobserver.openapi import document

USERS = {
    "st-alice": {"name": "alice", "groups": [], "scopes": []},
    "st-root": {"name": "root", "groups": ["aerofs-admins"], "scopes": []},
}
PREFIX = "/jobsvc/"

# The document the server serves (checked below), built here so pytest can parametrize at collection.
DOC = document("http://127.0.0.1" + PREFIX + "aerofs/api/", ["sleepy"])
schema = schemathesis.openapi.from_dict(DOC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    work = tmp_path_factory.mktemp("schemathesis")
    with hub_job_server(work, PREFIX, USERS) as url:
        base = url + "aerofs/api"
        # one real job, so listing, logs and outputs have something to show
        httpx.post(
            base + "/jobs",
            headers={"Authorization": "token st-alice"},
            json={"pipeline": "sleepy", "params": {"src": ["a"], "dst": str(work / "out")}},
        ).raise_for_status()
        yield base


@pytest.fixture(scope="module")
def served_schema(server: str) -> Any:
    """The document as the server serves it (with its pipelines' names)."""
    return schemathesis.openapi.from_url(
        server + "/openapi.json", headers={"Authorization": "token st-alice"}
    )


@pytest.mark.timeout(120)
@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_matches_its_document(case: Any, server: str) -> None:
    # A job's options are checked against its pipeline's own JSON Schema and the caller's allowed roots,
    # which this document only points to: a schema-valid POST jobs may well be a 400.
    excluded = [positive_data_acceptance] if case.operation.label == "POST /jobs" else []
    for token in ("st-alice", "st-root"):
        case.call_and_validate(
            base_url=server, headers={"Authorization": f"token {token}"}, excluded_checks=excluded
        )

"""schemathesis against the OpenAPI document: generated requests (valid and invalid) to every operation
of a real job server (a subprocess: SQLite, the fake runner, hub-style token identity); every answer must
be documented (status, content type, body schema) and none may be a 500. Bounded examples per operation
so the whole module stays well under a minute."""

from __future__ import annotations

from typing import Any

import fake_runner
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
DOC = document(
    "http://127.0.0.1" + PREFIX + "aerofs/api/", [p.describe() for p in fake_runner.all_pipelines()]
)
# The WebSocket's upgrade GET is no plain request/response: test_openapi.py checks its messages instead.
schema = schemathesis.openapi.from_dict(DOC).exclude(tag="websocket")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    work = tmp_path_factory.mktemp("schemathesis")
    # Generated jobs are valid sleepy jobs often enough, and sleepy writes where src and dst say: the
    # allowed roots keep them inside this test's folder.
    roots = f"--AerofsApp.allowed_roots={work / 'jobs'}"
    with hub_job_server(work, PREFIX, USERS, [roots]) as url:
        base = url + "aerofs/api"
        # one real job, so listing, logs and outputs have something to show
        r = httpx.post(
            base + "/jobs",
            headers={"Authorization": "token st-alice"},
            json={
                "pipeline": "sleepy",
                "params": {"src": [str(work / "jobs" / "a")], "dst": str(work / "jobs")},
            },
        )
        assert r.status_code == 202, r.text
        yield base


def test_the_served_document_is_the_one_tested(server: str) -> None:
    served = httpx.get(server + "/openapi.json", headers={"Authorization": "token st-alice"}).json()
    assert served["servers"] == [{"url": PREFIX + "aerofs/api"}]
    assert {**served, "servers": None} == {**DOC, "servers": None}


def test_only_the_websocket_is_left_out() -> None:
    tested = {op.ok().label for op in schema.get_all_operations()}
    every = {op.ok().label for op in schemathesis.openapi.from_dict(DOC).get_all_operations()}
    assert every - tested == {"GET /events"}


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
    # A job's src and dst must also lie under the caller's allowed roots, which no schema can say: a
    # schema-valid POST jobs may well be a 400 (naming the path).
    excluded = [positive_data_acceptance] if case.operation.label == "POST /jobs" else []
    for token in ("st-alice", "st-root"):
        case.call_and_validate(
            base_url=server, headers={"Authorization": f"token {token}"}, excluded_checks=excluded
        )

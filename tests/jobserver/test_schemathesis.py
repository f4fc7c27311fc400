"""schemathesis against the OpenAPI document: generated requests (valid and invalid) to every operation
of a real job server (a subprocess: SQLite, the fake runner, hub-style token identity); every answer must
be documented (status, content type, body schema) and none may be a 500. Bounded examples per operation
so the whole module stays well under a minute."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from jobserver.openapi import document

HERE = Path(__file__).parent
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
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AEROFS_")},
        "AEROFS_TEST_HUB_USERS": json.dumps(USERS),
        "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent.parent), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [
        sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--ServerApp.base_url={PREFIX}", f"--ServerApp.root_dir={work}",
        "--ServerApp.jpserver_extensions={'jobserver': True}",
        "--ServerApp.identity_provider_class=hub_identity.FakeHubIdentityProvider",
        "--AerofsApp.runner_module=fake_runner", f"--AerofsApp.data_dir={work / 'data'}",
        "--AerofsApp.workers=1",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(work / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}{PREFIX}aerofs/api"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if (
                    httpx.get(base + "/pipelines", headers={"Authorization": "token st-alice"}).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((work / "server.log").read_text()[-3000:])
            time.sleep(0.2)
        # one real job, so listing, logs and outputs have something to show
        httpx.post(
            base + "/jobs",
            headers={"Authorization": "token st-alice"},
            json={"pipeline": "sleepy", "params": {"src": ["a"], "dst": str(work / "out")}},
        ).raise_for_status()
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        if os.environ.get("AEROFS_KEEP_LOG"):
            print((work / "server.log").read_text()[-5000:])


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

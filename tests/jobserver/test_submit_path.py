"""The submit (``POST aerofs/api/jobs``) answers once the job is committed; the wake-up of a worker
and the ``job.submitted`` line come after the answer (docs/operations.md, "The submit's path"). So
what happens after the commit cannot turn a created job into an error answer, which a client without
an idempotency key would retry into a second job; and it still happens, once a new job, never for an
idempotent replay."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from conftest import jp_sync, post_job, user

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def aerofs_config(on_both_databases: dict[str, Any]) -> dict[str, Any]:
    return on_both_databases


@pytest.fixture
def submitted_calls(jp_serverapp: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool, int]]:
    """Each ``JobService.submitted`` call: (job id, created, the submit answers finished by then)."""
    js = jp_serverapp.web_app.settings["aerofs_jobserver"]
    calls: list[tuple[str, bool, int]] = []
    real = js.submitted
    from jobserver.handlers.api import JobsHandler

    finished = {"n": 0}
    real_finish = JobsHandler.finish

    def finish(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = real_finish(self, *args, **kwargs)
        finished["n"] += 1
        return out

    def submitted(job: dict[str, Any], created: bool) -> None:
        calls.append((job["id"], created, finished["n"]))
        real(job, created)

    monkeypatch.setattr(JobsHandler, "finish", finish)
    monkeypatch.setattr(js, "submitted", submitted)
    return calls


@jp_sync
async def test_answer_then_wake_once_per_new_job(jp_fetch: Any, tmp_path: Any, submitted_calls: list) -> None:
    params = {"src": ["a"], "dst": str(tmp_path / "o")}
    first = await post_job(jp_fetch, params, headers={"Idempotency-Key": "k"})
    again = await post_job(jp_fetch, params, headers={"Idempotency-Key": "k"}, expect=200)
    assert again["id"] == first["id"]
    # the new job: submitted after its answer was finished; the replay: after its own, created=False
    assert submitted_calls == [(first["id"], True, 1), (first["id"], False, 2)]


@jp_sync
async def test_a_failure_after_the_commit_still_answers_the_job(
    jp_fetch: Any, jp_serverapp: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    js = jp_serverapp.web_app.settings["aerofs_jobserver"]

    def broken(job: dict[str, Any], created: bool) -> None:
        raise RuntimeError("wake pipe gone")

    monkeypatch.setattr(js, "submitted", broken)
    caplog.set_level(logging.ERROR)
    r = await jp_fetch(
        "aerofs",
        "api",
        "jobs",
        method="POST",
        headers=user("alice"),
        body=json.dumps({"pipeline": "sleepy", "params": {"src": ["a"], "dst": str(tmp_path / "o")}}),
    )
    doc = json.loads(r.body)
    assert r.code == 202 and r.headers["Location"].endswith(f"/aerofs/api/jobs/{doc['id']}")
    got = await jp_fetch("aerofs", "api", "jobs", doc["id"], headers=user("alice"))
    assert json.loads(got.body)["id"] == doc["id"]  # the job the answer named exists
    assert any("wake pipe gone" in (r.exc_text or "") for r in caplog.records)  # and the error is logged

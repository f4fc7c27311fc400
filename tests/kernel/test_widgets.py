"""The widgets' models: traits, the progress thread's throttling, cancel, the form's checks and run."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import aerofs_kernel as aero
from aerofs_kernel import progress
from aerofs_kernel.progress import MAX_UPDATES_PER_SECOND, ProgressPoller
from aerofs_kernel.widgets import BackgroundRun, JobForm, ProgressWidget, ResultWidget


def test_poller_throttles_to_ten_updates_a_second() -> None:
    counter = itertools.count()
    # A source that changes on every look: without throttling it would update thousands of times.
    source = lambda: {"bytes_done": next(counter), "bytes_total": 10**9, "inputs_done": 0}  # noqa: E731
    seen: list[dict[str, Any]] = []
    poller = ProgressPoller(source, seen.append)
    poller.start()
    time.sleep(1.05)
    poller.stop()
    assert 5 <= len(seen) <= MAX_UPDATES_PER_SECOND + 2, len(seen)
    assert seen[-1]["rate"] > 0 and seen[-1]["eta"] is not None


def test_poller_skips_unchanged_snapshots() -> None:
    seen: list[dict[str, Any]] = []
    poller = ProgressPoller(lambda: {"bytes_done": 5, "bytes_total": 10}, seen.append)
    poller.start()
    time.sleep(0.5)
    poller.stop()
    assert 1 <= len(seen) <= 2  # the first look, and the forced last one


def test_rate_follows_the_last_seconds_and_gives_an_eta(monkeypatch: Any) -> None:
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    est = progress.RateEstimate()
    seen = []
    for t, done in [(0.0, 0), (1.0, 100), (2.0, 200), (5.0, 500), (6.0, 1500), (7.0, 2500)]:
        clock[0] = 100.0 + t
        seen.append(est.add({"bytes_done": done, "bytes_total": 4000}))
    assert seen[0]["rate"] == 0.0 and seen[0]["eta"] is None  # nothing to go on yet
    assert seen[3]["rate"] == pytest.approx(100.0) and seen[3]["eta"] == pytest.approx(35.0)
    # 1,000 B/s since t=5 s: the window (~3 s) follows the speed-up, the ETA shrinks with it.
    assert seen[5]["rate"] == pytest.approx(1000.0) and seen[5]["elapsed"] == pytest.approx(7.0)
    assert seen[5]["eta"] == pytest.approx(1.5)


def test_progress_widget_traits_and_cancel(frontend_msg: Any) -> None:
    progress = aero.Progress()
    w = ProgressWidget(description="csv-to-parquet", on_cancel=progress.cancel)
    w.update({"inputs_total": 4, "inputs_done": 1, "bytes_total": 100, "bytes_done": 25, "rows": 7,
              "errors": 2, "current": "/data/a.csv", "rate": 12.5, "eta": 6.0})  # fmt: skip
    assert (w.inputs_done, w.bytes_done, w.errors, w.current, w.rate, w.eta) == (
        1,
        25,
        2,
        "/data/a.csv",
        12.5,
        6.0,
    )
    state = w.get_state()
    assert state["bytes_total"] == 100 and state["description"] == "csv-to-parquet"
    assert (
        "export default" in Path(w._esm).read_text()
        if isinstance(w._esm, Path)
        else "export default" in str(w._esm)
    )
    frontend_msg(w, {"type": "cancel"})
    assert progress.cancelled and w.message.startswith("cancelling")


def test_an_ended_run_has_no_eta() -> None:
    w = ProgressWidget(description="word-count")
    w.update({"state": "running", "bytes_total": 100, "bytes_done": 25, "rate": 12.5, "eta": 151.0})
    assert w.eta == 151.0
    # The last poll of a cancelled run still carries its guess at the time left.
    w.update({"state": "cancelled", "bytes_done": 30, "rate": 12.0, "eta": 150.0})
    assert w.state == "cancelled" and w.eta is None
    w.update({"eta": 140.0})  # a late poll
    assert w.eta is None and w.get_state()["eta"] is None
    for ended in ("failed", "succeeded"):
        w = ProgressWidget(description="word-count")
        w.update({"state": "running", "eta": 9.0})
        w.state = ended  # as BackgroundRun and the blocking API's display end a run
        assert w.eta is None, ended


def test_background_run_keeps_the_widget_live_and_returns_the_result(csv_tree: Path, tmp_path: Path) -> None:
    run = BackgroundRun("csv-to-parquet", {"src": str(csv_tree), "dst": str(tmp_path / "o")}).start()
    result = run.wait(30)
    assert run.widget.state == "succeeded" and run.widget.eta is None
    assert run.widget.inputs_total == 3 and run.widget.inputs_done == 3 and run.widget.errors == 1
    assert result.summary["files"] == 3
    view = ResultWidget(result)
    assert "csv-to-parquet" in view.html and "bad.csv" in view.html


def test_background_run_failure_is_shown(tmp_path: Path) -> None:
    run = BackgroundRun(
        "csv-to-parquet", {"src": str(tmp_path / "missing"), "dst": str(tmp_path / "o")}
    ).start()
    run.done.wait(10)
    assert run.widget.state == "failed" and "no such file" in run.widget.message


def test_job_form_from_schema_checks_paths_and_runs_here(
    csv_tree: Path, tmp_path: Path, frontend_msg: Any
) -> None:
    form = JobForm("csv-to-parquet", src=str(tmp_path / "nowhere"), dst=str(tmp_path / "o"))
    assert set(form.schema["properties"]) >= {"src", "dst", "layout"}
    assert form.values["layout"] == "per_file"  # defaults from the schema
    assert form.start("local") is None
    assert any(p["path"] == "$.src" and "no such file" in p["message"] for p in form.problems)
    form.values = {**form.values, "layout": "diagonal"}
    form.check()
    assert any(p["path"] == "$.layout" for p in form.problems)
    form.values = {
        **form.values,
        "src": str(csv_tree),
        "layout": "merged",
        "dst": str(tmp_path / "m.parquet"),
    }
    frontend_msg(form, {"type": "run", "mode": "local"})  # what "Run here" sends
    run = form.run_
    assert run is not None
    run.wait(30)
    assert form.problems == [] and form.status == "succeeded"
    assert pq.read_table(tmp_path / "m.parquet").num_rows == 4
    # Under the form: the live progress widget, then the result view (appended from the run's thread).
    progress, result = form.output.outputs
    assert progress["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] == run.widget.model_id
    assert result["output_type"] == "display_data" and "aerofs-summary" in result["data"]["text/html"]


def test_job_form_submit_without_server_says_why(csv_tree: Path, tmp_path: Path, monkeypatch: Any) -> None:
    import aerofs_kernel.client as client

    for k in ("AEROFS_SERVER_URL", "JUPYTER_SERVER_URL", "JUPYTERHUB_SERVICE_PREFIX"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(client, "_from_runtime_files", lambda: None)
    form = JobForm("csv-to-parquet", src=str(csv_tree), dst=str(tmp_path / "o"))
    assert form.start("submit") is None
    assert form.status.startswith("submit failed") and "no job server" in form.status

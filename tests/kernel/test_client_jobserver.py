"""The job-server client against the REAL job server: a Jupyter server with the jobserver extension on
its embedded default (SQLite + local worker pool), started in a subprocess as ``python -m
aerofs_kernel.demo`` does. Submit, watch progress, cancel (from the widget's button), results, logs,
outputs, failures, the CLI and the magics, and finding the server from its runtime file."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import aerofs_kernel as aero
from aerofs_kernel import demo
from aerofs_kernel.client import Client, JobServerError


class Server:
    def __init__(self, url: str, token: str, root: Path, runtime: Path) -> None:
        self.url, self.token, self.root, self.runtime = url, token, root, runtime

    def client(self) -> Client:
        return Client(self.url, self.token)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("jobserver")
    runtime = root / "runtime"
    token = secrets.token_hex(16)
    proc, url = demo.start_server(root, token, env={"JUPYTER_RUNTIME_DIR": str(runtime)})
    try:
        demo.wait_ready(proc, url, token, root / "server.log", timeout=120)
        yield Server(url, token, root, runtime)
    finally:
        demo.stop_server(proc)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return demo.make_sample_data(tmp_path_factory.mktemp("data"))


def wait_for(cond: Any, what: str, limit: float = 120.0) -> Any:
    """Poll ``cond`` until it returns something truthy (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def test_submit_result_logs_outputs(server: Server, data: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "exif.parquet"
    job = aero.submit("exif", src=str(data["exif"]), dst=str(dst), url=server.url, token=server.token)
    assert "exif" in repr(job) and server.token not in repr(job) + repr(job.client)
    assert job.status in ("PENDING", "QUEUED", "RUNNING", "SUCCEEDED")
    res = job.result(timeout=180)
    assert job.status == "SUCCEEDED"
    assert res.pipeline == "exif" and res.outputs == [str(dst)] and res.errors == []
    assert res.summary["images"] == 3 and res.summary["with_exif"] == 3
    assert sorted(res.table.column("Make").to_pylist()) == ["Canon", "FUJIFILM", "Nikon"]
    assert res.seconds is not None and res.seconds >= 0
    # The job's result displays like a run here: cameras, timeline, GPS scatter.
    page = res._repr_html_()
    assert (
        "data-chart='cameras'" in page and "data-chart='timeline'" in page and "data-chart='scatter'" in page
    )
    assert job.progress["inputs_done"] == job.progress["inputs_total"] == 3
    log = job.logs()
    assert "state RUNNING" in log and "finished" in log
    c = server.client()
    assert [(o["path"], o["size"] > 0) for o in c.outputs(job.id)] == [(str(dst), True)]
    copy = c.download(job.id, str(dst), str(tmp_path / "copy.parquet"))
    assert pq.read_table(copy).equals(pq.read_table(dst))
    assert job.id in {j["id"] for j in c.jobs()}
    assert {p["name"] for p in c.pipelines()} >= {"csv-to-parquet", "exif", "word-count", "log-sessions"}
    # Cancelling a job that already ended changes nothing and is not an error.
    assert job.cancel()["state"] == "SUCCEEDED" and job.status == "SUCCEEDED"


def test_progress_and_cancel_from_the_widget(
    server: Server, many_big: Path, tmp_path: Path, frontend_msg: Any
) -> None:
    out = tmp_path / "out"
    job = server.client().submit(
        "csv-to-parquet", {"src": str(many_big), "dst": str(out), "threads": 1, "block_size": 1 << 20}
    )
    widget = job.widget()
    # Live progress: the job runs, bytes are counted, and the widget shows them.
    snap = wait_for(
        lambda: (s := job.snapshot())["state"] == "running" and s.get("bytes_done", 0) > 0 and s,
        "the job to report progress",
    )
    assert 0 < snap["bytes_done"] < snap["bytes_total"] and 0 < snap["fraction"] < 1
    # A job's progress carries no rate: the widget estimates it from its polls, as for a run here.
    wait_for(
        lambda: (
            widget.bytes_done > 0 and widget.state == "running" and widget.rate > 0 and widget.eta is not None
        ),
        "the widget to show progress, its rate and ETA",
    )
    frontend_msg(widget, {"type": "cancel"})  # what the widget's Cancel button sends
    job.wait(timeout=120)
    assert job.status == "CANCELLED"
    wait_for(lambda: widget.state == "cancelled", "the widget to show the cancel")
    with pytest.raises(aero.Cancelled):
        job.result()

    # Nothing half-written where a reader looks: every file a reader sees is whole, at once. The job is
    # CANCELLED when asked; a task still writing stops at its next heartbeat (0.5 s) and removes its
    # hidden temporary file (``.NAME.aerofs-tmp-*``, which dataset readers skip) as it stops.
    def listing() -> list[Path]:
        return sorted(out.rglob("*")) if out.exists() else []

    visible = [f for f in listing() if not f.name.startswith(".")]
    assert all(f.suffix == ".parquet" for f in visible), visible
    for f in visible:
        assert pq.read_table(f).num_rows == 1_500_000
    wait_for(
        lambda: not any(f.name.startswith(".") for f in listing()),
        "the stopped tasks to remove their temporary files",
        limit=30,
    )
    finished = listing()
    assert all(f.suffix == ".parquet" for f in finished) and len(finished) < 20, finished
    for f in finished:
        assert pq.read_table(f).num_rows == 1_500_000


def test_failures_name_the_problem(server: Server, tmp_path: Path) -> None:
    c = server.client()
    job = c.submit("csv-to-parquet", {"src": str(tmp_path / "missing"), "dst": str(tmp_path / "o")})
    with pytest.raises(JobServerError, match=r"no such file or folder: .*missing"):
        job.result(timeout=120)
    assert job.status == "FAILED"
    with pytest.raises(aero.OptionsError, match=r"\$\.layout"):
        c.submit("csv-to-parquet", {"src": "/x", "dst": "/y", "layout": "sideways"})
    with pytest.raises(aero.OptionsError, match="unknown pipeline"):
        c.submit("nope", {"src": "/x"})
    with pytest.raises(JobServerError) as e:
        c.job("no-such-job")
    assert e.value.status == 404
    with pytest.raises(JobServerError) as e:
        Client(server.url, "wrong-token").jobs()
    assert e.value.status == 401  # not authenticated (403 is for a known user without the right)


def test_cli_against_the_real_server(
    server: Server, data: dict[str, Path], tmp_path: Path, monkeypatch: Any
) -> None:
    from typer.testing import CliRunner

    from aerofs_kernel import cli

    monkeypatch.setenv("AEROFS_SERVER_URL", server.url)
    monkeypatch.setenv("AEROFS_TOKEN", server.token)
    dst = tmp_path / "words.parquet"
    r = CliRunner().invoke(
        cli.app, ["submit", "word-count", str(data["word-count"]), str(dst), "--wait", "--json"]
    )
    assert r.exit_code == cli.EXIT_OK, r.output
    doc = json.loads(r.stdout)
    assert (
        doc["state"] == "SUCCEEDED"
        and doc["summary"]["total_words"] == 10_000
        and doc["outputs"] == [str(dst)]
    )
    r = CliRunner().invoke(cli.app, ["jobs", "list", "--json"])
    assert r.exit_code == 0 and doc["id"] in {j["id"] for j in json.loads(r.stdout)}
    r = CliRunner().invoke(cli.app, ["jobs", "logs", doc["id"]])
    assert r.exit_code == 0 and "state SUCCEEDED" in r.stdout
    r = CliRunner().invoke(cli.app, ["jobs", "show", doc["id"], "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["pipeline"] == "word-count"
    r = CliRunner().invoke(cli.app, ["jobs", "cancel", doc["id"], "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["state"] == "SUCCEEDED"
    r = CliRunner().invoke(cli.app, ["submit", "word-count", str(tmp_path / "none"), "--wait", "--json"])
    assert r.exit_code == cli.EXIT_FAILED and json.loads(r.stdout)["state"] == "FAILED"
    r = CliRunner().invoke(cli.app, ["submit", "word-count", str(data["word-count"]), "--min-length", "x"])
    assert r.exit_code == cli.EXIT_USAGE


def test_magics_against_the_real_server(
    server: Server, data: dict[str, Path], tmp_path: Path, monkeypatch: Any
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setenv("AEROFS_SERVER_URL", server.url)
    monkeypatch.setenv("AEROFS_TOKEN", server.token)
    ip = InteractiveShell.instance()
    try:
        ip.run_cell("%load_ext aerofs_kernel")
        r = ip.run_cell(f"%aerofs submit exif {data['exif']} {tmp_path / 'e.parquet'}")
        assert r.success, r.error_in_exec
        job = ip.user_ns["_aerofs_job"]
        r = ip.run_cell(
            f"%%aerofs submit log-sessions {data['log-sessions']} {tmp_path / 'sessions'}\ntimeout_minutes: 30\n"
        )
        assert r.success, r.error_in_exec
        logs_job = r.result
        assert logs_job.client.job(logs_job.id)["params"]["timeout_minutes"] == 30
        res = logs_job.result(timeout=180)
        assert res.summary["sessions"] > 0 and "sessions" in res.tables
        assert job.result(timeout=180).table.num_rows == 3
        r = ip.run_cell("%aerofs jobs")
        assert r.success and job.id in r.result.data and "SUCCEEDED" in r.result.data
    finally:
        InteractiveShell.clear_instance()


def test_client_finds_the_server_from_its_runtime_file(server: Server, monkeypatch: Any) -> None:
    for k in (
        "AEROFS_SERVER_URL", "AEROFS_TOKEN", "JUPYTER_SERVER_URL", "JUPYTER_TOKEN", "JPY_API_TOKEN",
        "JUPYTERHUB_SERVICE_PREFIX", "JUPYTERHUB_API_TOKEN",
    ):  # fmt: skip
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(server.runtime))
    monkeypatch.chdir(server.root)  # a kernel started by that server runs under its root folder
    c = Client()
    assert c.base_url == server.url
    assert {j["id"] for j in c.jobs()} == {j["id"] for j in server.client().jobs()}


def test_jobs_are_fetched_page_by_page(server: Server, data: dict[str, Path], tmp_path: Path) -> None:
    c = server.client()
    for i in range(3):
        c.submit("word-count", {"src": str(data["word-count"]), "dst": str(tmp_path / f"w{i}.parquet")})
    every = c.jobs()
    assert len(every) >= 3 and len({j["id"] for j in every}) == len(every)
    assert len(c.jobs(limit=2)) == 2
    c.page_size = 2  # several pages, none lost or repeated
    assert [j["id"] for j in c.jobs()] == [j["id"] for j in every]


def test_job_form_submits_to_the_real_server(
    server: Server, data: dict[str, Path], tmp_path: Path, monkeypatch: Any
) -> None:
    from aerofs_kernel.widgets import JobForm

    monkeypatch.setenv("AEROFS_SERVER_URL", server.url)
    monkeypatch.setenv("AEROFS_TOKEN", server.token)
    form = JobForm("word-count", src=str(data["word-count"]), dst=str(tmp_path / "w.parquet"), top=5)
    job = form.start("submit")
    assert job is not None and form.status == f"submitted job {job.id}"
    res = job.result(timeout=180)
    assert res.table.num_rows == 5 and res.summary["total_words"] == 10_000
    # A bad value stays in the form with its JSON path; nothing is submitted.
    before = len(server.client().jobs())
    form.values = {**form.values, "top": "five"}
    assert form.start("submit") is None and [p["path"] for p in form.problems] == ["$.top"]
    assert len(server.client().jobs()) == before


def test_widget_of_a_failed_job_says_why(server: Server, tmp_path: Path) -> None:
    job = server.client().submit("word-count", {"src": str(tmp_path / "gone")})
    w = job.widget()
    wait_for(lambda: w.state == "failed", "the widget to show the failure", limit=180)
    wait_for(lambda: "no such file or folder" in w.message, "the widget to say why")

"""The job-server client against a small in-process HTTP server speaking the REST contract of DESIGN.md
(the real server is tested by the job-server suite; this checks the client's side of the wire)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import aerofs_kernel as aero
from aerofs_kernel import client as client_mod
from aerofs_kernel.client import Client, JobServerError, discover

TOKEN = "s3cret-token"


class _State:
    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.polls = 0
        self.outputs: list[str] = []


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, _State]]:
    state = _State()

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.requests.append((method, self.path, dict(self.headers), body))
            if self.headers.get("Authorization") != f"token {TOKEN}":
                return self._send(401, {"message": "authentication required"})
            path = self.path.split("?")[0]
            assert path.startswith("/base/aerofs/api/"), path
            route = path[len("/base/aerofs/api/") :]
            if method == "POST" and route == "jobs":
                if body["params"].get("layout") == "bad":
                    return self._send(
                        400, {"message": "invalid", "errors": [{"path": "$.layout", "message": "no"}]}
                    )
                jid = str(len(state.jobs) + 1)
                state.jobs[jid] = {"id": jid, "pipeline": body["pipeline"], "params": body["params"], "state": "QUEUED",
                                   "progress": {"bytes_done": 0, "bytes_total": 100}, "summary": None,
                                   "outputs": [], "errors": []}  # fmt: skip
                return self._send(202, {"id": jid, "state": "PENDING"})
            if method == "GET" and route == "jobs":
                jobs = list(state.jobs.values())
                return self._send(200, {"jobs": jobs, "total": len(jobs), "limit": 50, "offset": 0})
            parts = route.split("/")
            job = state.jobs.get(parts[1]) if len(parts) > 1 else None
            if job is None:
                return self._send(404, {"message": "no such job"})
            if method == "GET" and len(parts) == 2:
                state.polls += 1
                if job["state"] == "QUEUED":
                    job["state"] = "RUNNING"
                elif job["state"] == "RUNNING" and state.polls >= 3:
                    job.update(state="SUCCEEDED", summary={"images": 1}, outputs=state.outputs,
                               progress={"bytes_done": 100, "bytes_total": 100})  # fmt: skip
                return self._send(200, job)
            if method == "DELETE" and len(parts) == 2:
                job["state"] = "CANCELLED"
                return self._send(202, {"id": job["id"], "state": "CANCELLED"})
            if method == "GET" and parts[2:] == ["logs"]:
                return self._send(
                    200, {"logs": [{"at": "t0", "level": "INFO", "message": "started"}, "plain line"]}
                )
            return self._send(404, {"message": "no route"})

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/base/", state
    httpd.shutdown()
    httpd.server_close()


def test_discover_order(monkeypatch: Any) -> None:
    for k in (
        "AEROFS_SERVER_URL",
        "AEROFS_TOKEN",
        "JUPYTER_SERVER_URL",
        "JUPYTER_TOKEN",
        "JUPYTERHUB_SERVICE_PREFIX",
    ):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(client_mod, "_from_runtime_files", lambda: ("http://runtime/", "rt"))
    assert discover() == ("http://runtime/", "rt")
    monkeypatch.setenv("JUPYTER_SERVER_URL", "http://lab/")
    monkeypatch.setenv("JUPYTER_TOKEN", "lt")
    assert discover() == ("http://lab/", "lt")
    monkeypatch.setenv("AEROFS_SERVER_URL", "http://aero/")
    monkeypatch.setenv("AEROFS_TOKEN", "at")
    assert discover() == ("http://aero/", "at")
    assert discover("http://given/", "gt") == ("http://given/", "gt")


def test_submit_wait_result(server: tuple[str, _State], tmp_path: Path) -> None:
    url, state = server
    out = tmp_path / "exif.parquet"
    pq.write_table(pa.table({"path": ["a.jpg"], "Make": ["Canon"]}), out)
    state.outputs = [str(out)]
    job = aero.submit("exif", src="photos", dst=str(out), url=url, token=TOKEN, threads=2)
    method, path, _headers, body = state.requests[-1]
    assert (method, path) == ("POST", "/base/aerofs/api/jobs")
    assert body == {
        "pipeline": "exif",
        "params": {"src": str(Path("photos").resolve()), "dst": str(out), "threads": 2},
    }
    assert TOKEN not in repr(job.client) and TOKEN not in repr(job)
    assert job.status in ("RUNNING", "SUCCEEDED")
    res = job.result(timeout=10)
    assert res.summary == {"images": 1} and res.outputs == [str(out)]
    assert res.table.column("Make").to_pylist() == ["Canon"]
    assert job.progress == {"bytes_done": 100, "bytes_total": 100}
    assert "started" in job.logs() and "plain line" in job.logs()


def test_cancel_errors_and_auth(server: tuple[str, _State]) -> None:
    url, _state = server
    c = Client(url, TOKEN)
    job = c.submit("exif", {"src": "/x"})
    job.cancel()
    assert job.status == "CANCELLED"
    assert job.wait(timeout=1) is job
    with pytest.raises(aero.OptionsError, match=r"\$\.layout"):
        c.submit("csv-to-parquet", {"src": "/x", "dst": "/y", "layout": "bad"})
    with pytest.raises(JobServerError) as e:
        c.job("999")
    assert e.value.status == 404
    with pytest.raises(JobServerError) as e:
        Client(url, "wrong").jobs()
    assert e.value.status == 401
    assert [j["id"] for j in c.jobs()] == ["1"]


def test_cli_against_the_server(server: tuple[str, _State], monkeypatch: Any) -> None:
    from typer.testing import CliRunner

    from aerofs_kernel import cli

    url, state = server
    monkeypatch.setenv("AEROFS_SERVER_URL", url)
    monkeypatch.setenv("AEROFS_TOKEN", TOKEN)
    r = CliRunner().invoke(cli.app, ["submit", "exif", "/photos", "--threads", "3", "--json"])
    assert r.exit_code == 0, r.output
    jid = json.loads(r.stdout)["id"]
    assert state.jobs[jid]["params"] == {"src": "/photos", "threads": 3}
    r = CliRunner().invoke(cli.app, ["jobs", "wait", jid, "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["state"] == "SUCCEEDED"
    r = CliRunner().invoke(cli.app, ["jobs", "list", "--json"])
    assert r.exit_code == 0 and [j["id"] for j in json.loads(r.stdout)] == [jid]
    r = CliRunner().invoke(cli.app, ["jobs", "show", "404404"])
    assert r.exit_code == cli.EXIT_SERVER
    r = CliRunner().invoke(cli.app, ["submit", "exif", "/photos", "--wait", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["state"] == "SUCCEEDED"


def test_magics_submit_and_jobs(server: tuple[str, _State], monkeypatch: Any, tmp_path: Path) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    url, state = server
    monkeypatch.setenv("AEROFS_SERVER_URL", url)
    monkeypatch.setenv("AEROFS_TOKEN", TOKEN)
    ip = InteractiveShell.instance()
    try:
        ip.run_cell("%load_ext aerofs_kernel")
        r = ip.run_cell(f"%aerofs submit exif {tmp_path} --threads 2")
        assert r.success, r.error_in_exec
        job = ip.user_ns["_aerofs_job"]
        assert state.jobs[job.id]["params"] == {"src": str(tmp_path), "threads": 2}
        r = ip.run_cell(f"%%aerofs submit exif {tmp_path}\non_error: fail\n")
        assert r.success and state.jobs[r.result.id]["params"]["on_error"] == "fail"
        r = ip.run_cell("%aerofs jobs")
        assert r.success and "exif" in r.result.data and job.id in r.result.data
    finally:
        InteractiveShell.clear_instance()

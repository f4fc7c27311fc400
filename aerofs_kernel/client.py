"""The job-server client: ``submit(...)`` and :class:`JobHandle`, over the REST API (``aerofs/api/``).

Where the server is, in order: the ``url``/``token`` arguments; ``AEROFS_SERVER_URL`` + ``AEROFS_TOKEN``;
``JUPYTER_SERVER_URL`` + ``JUPYTER_TOKEN`` (or JupyterHub's ``JUPYTERHUB_API_TOKEN``); the running
Jupyter servers' runtime files (``jupyter_server.serverapp.list_running_servers``), preferring the one
whose root folder holds the current folder — inside a JupyterLab kernel that is the server that started it.
The token is sent as ``Authorization: token ...`` and never printed.
"""

from __future__ import annotations

import os
import posixpath
import random
import threading
import time
from typing import Any

from aerofs_kernel import _engine
from aerofs_kernel.progress import RateEstimate

API = "aerofs/api/"
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


class JobServerError(RuntimeError):
    """The job server answered with an error (``status`` holds the HTTP status) or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _from_runtime_files() -> tuple[str, str] | None:
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:
        return None
    cwd = os.path.realpath(os.getcwd())
    best: tuple[int, str, str] | None = None
    for info in list_running_servers():
        url, token = info.get("url"), info.get("token", "")
        root = os.path.realpath(info.get("root_dir") or info.get("notebook_dir") or "/")
        score = len(root) if (cwd + os.sep).startswith(root.rstrip(os.sep) + os.sep) else -1
        if url and (best is None or score > best[0]):
            best = (score, url, token)
    return (best[1], best[2]) if best else None


def discover(url: str | None = None, token: str | None = None) -> tuple[str, str]:
    """``(base_url, token)`` of the job server; JobServerError when none is known."""
    env = os.environ
    if url:
        return url, token if token is not None else env.get("AEROFS_TOKEN", "")
    if env.get("AEROFS_SERVER_URL"):
        return env["AEROFS_SERVER_URL"], token or env.get("AEROFS_TOKEN", "")
    if env.get("JUPYTER_SERVER_URL"):
        tok = (
            token
            or env.get("JUPYTER_TOKEN")
            or env.get("JPY_API_TOKEN")
            or env.get("JUPYTERHUB_API_TOKEN", "")
        )
        return env["JUPYTER_SERVER_URL"], tok
    if env.get("JUPYTERHUB_SERVICE_PREFIX") and env.get("JUPYTERHUB_API_TOKEN"):
        base = env.get("JUPYTERHUB_BASE_URL", "http://127.0.0.1:8000/").rstrip("/")
        return base + env["JUPYTERHUB_SERVICE_PREFIX"], token or env["JUPYTERHUB_API_TOKEN"]
    found = _from_runtime_files()
    if found:
        return found[0], token or found[1]
    raise JobServerError(
        "no job server found: pass url=/token= (CLI: --url/--token), set AEROFS_SERVER_URL and AEROFS_TOKEN, "
        "or run inside JupyterLab with the aerofs server extension"
    )


class Client:
    """A thin REST client of the job server."""

    page_size = 500  # jobs per request when listing them all (the server's maximum)

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 30.0) -> None:
        import httpx

        base, tok = discover(url, token)
        self.base_url = base.rstrip("/") + "/"
        self._token = tok
        headers = {"Authorization": f"token {tok}"} if tok else {}
        self._http = httpx.Client(base_url=self.base_url + API, headers=headers, timeout=timeout)

    def __repr__(self) -> str:  # never the token
        return f"<aerofs Client {self.base_url}>"

    def request(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            r = self._http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise JobServerError(f"cannot reach the job server at {self.base_url}: {e}") from None
        if r.status_code >= 400:
            try:
                body = r.json()
                msg = body.get("message") or body.get("error") or body.get("reason") or r.text
                if body.get("errors"):
                    msg = f"{msg}: " + "; ".join(
                        f"{e.get('path', '')}: {e.get('message', e)}" if isinstance(e, dict) else str(e)
                        for e in body["errors"]
                    )
            except Exception:
                msg = r.text
            if r.status_code in (400, 422):
                raise _engine.OptionsError(f"{method} {path}: {msg}")
            raise JobServerError(f"{method} {path}: HTTP {r.status_code}: {msg}", r.status_code)
        if not r.content:
            return None
        ctype = r.headers.get("content-type", "")
        return r.json() if "json" in ctype else r.text

    # -- routes ------------------------------------------------------------------------------
    def pipelines(self) -> list[dict[str, Any]]:
        """The server's pipelines (name, title, description, schema)."""
        doc = self.request("GET", "pipelines")
        return list(doc.get("pipelines", []) if isinstance(doc, dict) else doc or [])

    def submit(self, pipeline: str, params: dict[str, Any]) -> JobHandle:
        doc = self.request("POST", "jobs", json={"pipeline": pipeline, "params": params})
        # The 202 answer is {"id", "state", "job": {the whole job}}.
        return JobHandle(self, doc["id"], doc.get("job") or doc)

    def jobs(self, **filters: Any) -> list[dict[str, Any]]:
        """Jobs matching ``filters`` (state, pipeline, owner, q, sort, order). With ``limit`` (and
        ``offset``) one page; without, every matching job, fetched page by page."""
        params = {k: v for k, v in filters.items() if v is not None}
        if "limit" in params:
            return list(self.request("GET", "jobs", params=params)["jobs"])
        found: list[dict[str, Any]] = []
        while True:
            page = self.request(
                "GET", "jobs", params={**params, "limit": self.page_size, "offset": len(found)}
            )
            found.extend(page["jobs"])
            if not page["jobs"] or len(found) >= page["total"]:
                return found

    def job(self, job_id: str) -> dict[str, Any]:
        return self.request("GET", f"jobs/{job_id}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Ask the server to cancel; returns the job. A job that already ended (HTTP 409) is
        returned as it is, not an error: cancelling is a wish that the job stop."""
        try:
            return self.request("DELETE", f"jobs/{job_id}") or self.job(job_id)
        except JobServerError as e:
            if e.status == 409:
                return self.job(job_id)
            raise

    def retry(self, job_id: str) -> Any:
        return self.request("POST", f"jobs/{job_id}/retry")

    def logs(self, job_id: str) -> str:
        doc = self.request("GET", f"jobs/{job_id}/logs")
        if isinstance(doc, dict):
            lines = doc.get("logs", doc.get("lines", ""))
            if isinstance(lines, list):
                return "\n".join(
                    ln
                    if isinstance(ln, str)
                    else " ".join(str(ln.get(k, "")) for k in ("at", "time", "level", "message") if k in ln)
                    for ln in lines
                )
            return str(lines)
        return str(doc or "")

    def outputs(self, job_id: str) -> list[dict[str, Any]]:
        """The job's outputs: ``[{"path", "size"}, ...]``."""
        doc = self.request("GET", f"jobs/{job_id}/outputs")
        return list(doc.get("outputs", []) if isinstance(doc, dict) else doc or [])

    def download(self, job_id: str, path: str, to: str) -> str:
        """Save the output ``path`` of a job (one on the server's disk) to the local file ``to``."""
        import httpx

        tmp = f"{to}.part"
        try:
            with self._http.stream("GET", f"jobs/{job_id}/outputs", params={"path": path}) as r:
                if r.status_code >= 400:
                    r.read()
                    raise JobServerError(
                        f"GET jobs/{job_id}/outputs?path={path}: HTTP {r.status_code}: {r.text}",
                        r.status_code,
                    )
                with open(tmp, "wb") as f:
                    for chunk in r.iter_bytes(1 << 20):
                        f.write(chunk)
            os.replace(tmp, to)
        except httpx.HTTPError as e:
            raise JobServerError(f"cannot reach the job server at {self.base_url}: {e}") from None
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return to

    def handle(self, job_id: str) -> JobHandle:
        return JobHandle(self, job_id)


def _progress_dict(p: Any) -> dict[str, Any]:
    if isinstance(p, dict):
        return p
    if isinstance(p, (int, float)):
        return {"fraction": float(p)}
    return {}


def poll_pause(poll: float) -> float:
    """The wait before a job's next status poll: ``poll`` s on average, each wait drawn from 0.5-1.5 times
    it. Clients that poll a shared server at one fixed period fall into step with each other (the
    server answers a batch together, so its clients ask again together; the batches only merge), and
    then every period the server gets all their polls at once: under the server bench's 100 clients a
    bare tornado app's p99 was 16 ms in lockstep and 2 ms with these waits (docs/operations.md, "Load
    test: the bench's clients"). The bench's clients wait the same way."""
    return poll * random.uniform(0.5, 1.5)


#: A job widget stops polling after this many failed polls in a row (about a minute).
MAX_POLL_FAILURES = 120
#: Parquet outputs of a job up to this size are read back into ``Result.tables``.
MAX_TABLE_BYTES = 256 << 20


def _seconds_between(start: Any, end: Any) -> float | None:
    import datetime as dt

    try:
        t0 = dt.datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        t1 = dt.datetime.fromisoformat(str(end).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (t1 - t0).total_seconds()


def _read_result_tables(outputs: list[str]) -> dict[str, Any]:
    """The job's Parquet outputs (local files or fsspec URLs, each at most MAX_TABLE_BYTES) as tables:
    ``table`` when there is one (or it is exif.parquet/words.parquet), else by file name. Outputs that
    cannot be read from here (another machine's disk, no credentials) are left out."""
    import pyarrow.parquet as pq

    from aerofs_kernel.sources import filesystem

    tables: dict[str, Any] = {}
    for out in outputs:
        if not isinstance(out, str) or not out.endswith(".parquet"):
            continue
        try:
            fs, path = filesystem(out)
            if fs.size(path) > MAX_TABLE_BYTES:
                continue
            with fs.open(path, "rb") as f:
                table = pq.read_table(f)
        except (OSError, ValueError):
            continue
        name = posixpath.basename(out)[: -len(".parquet")]
        tables["table" if len(outputs) == 1 or name in ("exif", "words") else name] = table
    return tables


class JobHandle:
    """A submitted job: ``.status``, ``.progress``, ``.wait()``, ``.cancel()``, ``.logs()``, ``.result()``
    and a live progress widget in a notebook."""

    def __init__(self, client: Client, job_id: str, doc: dict[str, Any] | None = None) -> None:
        self.client = client
        self.id = str(job_id)
        self._doc = doc or {}

    def refresh(self) -> dict[str, Any]:
        self._doc = self.client.job(self.id)
        return self._doc

    @property
    def info(self) -> dict[str, Any]:
        return self.refresh()

    @property
    def status(self) -> str:
        return str(self.refresh().get("state", "UNKNOWN"))

    state = status

    @property
    def progress(self) -> dict[str, Any]:
        return _progress_dict(self.refresh().get("progress"))

    def done(self) -> bool:
        return self.status in TERMINAL

    def wait(self, timeout: float | None = None, poll: float = 0.5) -> JobHandle:
        """Block until the job ends (TimeoutError after ``timeout`` s); KeyboardInterrupt stops waiting
        (the job goes on; ``.cancel()`` stops it)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.status not in TERMINAL:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.id} still {self._doc.get('state')} after {timeout} s")
            time.sleep(poll_pause(poll))
        return self

    def cancel(self) -> dict[str, Any]:
        """Cancel the job (nothing happens to one that already ended); returns the job."""
        self._doc = self.client.cancel(self.id)
        return self._doc

    def retry(self) -> Any:
        return self.client.retry(self.id)

    def logs(self) -> str:
        return self.client.logs(self.id)

    def result(self, timeout: float | None = None) -> Any:
        """Wait, then the job's :class:`~aerofs_kernel.result.Result` (tables read back from local
        Parquet outputs when they are small enough). Raises JobServerError when the job failed."""
        from aerofs_kernel.result import Result

        self.wait(timeout)
        doc = self._doc
        if doc.get("state") == "FAILED":
            raise JobServerError(f"job {self.id} failed: {doc.get('error') or doc.get('errors')}")
        if doc.get("state") == "CANCELLED":
            raise _engine.Cancelled(f"job {self.id} was cancelled")
        res = Result(
            pipeline=doc.get("pipeline", ""),
            summary=doc.get("summary") or {},
            outputs=list(doc.get("outputs") or []),
            errors=list(doc.get("errors") or []),
            seconds=_seconds_between(doc.get("started_at"), doc.get("finished_at")),
        )
        if res.pipeline != "csv-to-parquet":  # its outputs are the user's dataset, not a result table
            res.tables = _read_result_tables(res.outputs)
        return res

    def snapshot(self) -> dict[str, Any]:
        doc = self.refresh()
        snap = dict(_progress_dict(doc.get("progress")))
        snap["state"] = str(doc.get("state", "")).lower()
        return snap

    def widget(self) -> Any:
        """A live :class:`~aerofs_kernel.widgets.ProgressWidget` of this job (polled ~2 times a second until it ends;
        its cancel button cancels the job)."""
        from aerofs_kernel.widgets import ProgressWidget

        w = ProgressWidget(description=f"{self._doc.get('pipeline', 'job')} {self.id}", on_cancel=self.cancel)

        def poll() -> None:
            failures = 0
            rate = RateEstimate()  # the job's progress has no rate: estimate it from the polls, as for a run
            while True:
                try:
                    snap = rate.add(self.snapshot())
                    failures = 0
                    w.update(snap)
                    if snap["state"].upper() in TERMINAL:
                        if snap["state"] == "failed":
                            w.message = str(self._doc.get("error") or "failed")
                        return
                except Exception as e:
                    failures += 1
                    w.message = str(e)
                    if failures >= MAX_POLL_FAILURES:  # the server is gone: stop, say so
                        w.message = f"stopped following the job: {e}"
                        return
                time.sleep(poll_pause(0.5))

        threading.Thread(target=poll, daemon=True, name=f"aerofs-job-{self.id}").start()
        return w

    def __repr__(self) -> str:
        return f"<JobHandle {self.id} {self._doc.get('pipeline', '')} {self._doc.get('state', '')}>"

    def _repr_mimebundle_(self, **kw: Any) -> Any:
        return self.widget()._repr_mimebundle_(**kw)


def submit(
    pipeline: str,
    src: Any = None,
    dst: str | None = None,
    *,
    url: str | None = None,
    token: str | None = None,
    **options: Any,
) -> JobHandle:
    """Hand a job to the job server; returns its :class:`JobHandle` at once (HTTP 202)."""
    params: dict[str, Any] = {"src": src, **options}
    if dst is not None:
        params["dst"] = dst
    if isinstance(src, str) and "://" not in src:
        params["src"] = os.path.abspath(src)
    if isinstance(src, list):
        params["src"] = [s if "://" in s else os.path.abspath(s) for s in src]
    if dst is not None and "://" not in dst:
        params["dst"] = os.path.abspath(dst)
    return Client(url, token).submit(pipeline, params)

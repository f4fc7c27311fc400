"""A small runner + pipeline for job-server tests (plan/run/merge with the real signatures).

Pipeline ``sleepy``: ``{"src": [names], "dst": dir, "seconds": float, "fail": bool}``. Each task
writes ``dst/<name>.txt`` (content derived from the name) after sleeping; merge writes ``dst/all.txt``.
``fail: true`` makes every task raise (bounded attempts). A task checks ``progress.cancelled``.
A remote ``dst`` (``s3://…``, used by the allowed-roots tests) is written under the temp folder, never
relative to the worker's working directory.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class OptionError:
    path: str
    message: str


class Progress:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.c = {
            "inputs_total": 0,
            "inputs_done": 0,
            "bytes_total": 0,
            "bytes_done": 0,
            "rows": 0,
            "errors": 0,
            "current": "",
        }
        self.cancelled = False

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {**self.c, "cancelled": self.cancelled}

    def cancel(self) -> None:
        self.cancelled = True


class Sleepy:
    name = "sleepy"
    schema = {
        "type": "object",
        "required": ["src", "dst"],
        "properties": {
            "src": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "dst": {"type": "string"},
            "seconds": {"type": "number", "minimum": 0},
            "fail": {"type": "boolean"},
        },
        "additionalProperties": False,
    }

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "title": "Sleepy", "description": "test pipeline", "schema": self.schema}

    def validate(self, params: dict[str, Any]) -> list[OptionError]:
        import jsonschema

        v = jsonschema.Draft202012Validator(self.schema)
        return [
            OptionError(
                "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
                if e.absolute_path
                else "$",
                e.message,
            )
            for e in v.iter_errors(params)
        ]


_P = Sleepy()


def all_pipelines() -> list[Sleepy]:
    return [_P]


def get_pipeline(name: str) -> Sleepy:
    if name != "sleepy":
        raise KeyError(name)
    return _P


def plan_job(pipeline: str, params: dict[str, Any], max_tasks: int) -> list[dict[str, Any]]:
    names = list(params["src"])
    n = max(1, min(max_tasks, len(names)))
    return [
        {"index": i, "inputs": names[i::n], "files": len(names[i::n]), "bytes": 100 * len(names[i::n])}
        for i in range(n)
    ]


def _dst(params: dict[str, Any]) -> str:
    dst = params["dst"]
    if "://" in dst:
        return os.path.join(tempfile.gettempdir(), "aerofs-fake-remote", dst.replace("://", "/", 1))
    return dst


def run_task(
    pipeline: str, params: dict[str, Any], task: dict[str, Any], progress: Progress, workdir: str
) -> dict:
    dst = _dst(params)
    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(dst, f"attempt-{task['index']}-{os.getpid()}"), "w") as f:
        f.write(str(time.time()))
    if params.get("fail"):
        raise RuntimeError(f"task {task['index']} failed on purpose")
    outs = []
    for name in task["inputs"]:
        deadline = time.monotonic() + float(params.get("seconds", 0))
        while time.monotonic() < deadline:
            if progress.cancelled:
                raise RuntimeError("cancelled")
            time.sleep(0.02)
        path = os.path.join(dst, f"{name}.txt")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(hashlib.sha256(name.encode()).hexdigest() + "\n")
        os.replace(tmp, path)
        outs.append(path)
        with progress._lock:
            progress.c["inputs_done"] += 1
            progress.c["bytes_done"] += 100
            progress.c["rows"] += 1
    return {"index": task["index"], "summary": {"files": len(outs)}, "outputs": outs, "errors": []}


def merge_job(pipeline: str, params: dict[str, Any], partials: list[dict], workdir: str) -> dict:
    outs = sorted(o for p in partials for o in p["outputs"])
    path = os.path.join(_dst(params), "all.txt")
    with open(path, "w") as f:
        for o in outs:
            with open(o) as g:
                f.write(os.path.basename(o) + " " + g.read())
    return {
        "summary": {"files": sum(p["summary"]["files"] for p in partials)},
        "outputs": [*outs, path],
        "errors": [],
    }

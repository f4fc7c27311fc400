"""The one code path every execution mode uses: the notebook call, the CLI, widgets, the local worker
pool and RQ workers.

* :func:`run_pipeline` — interactive/CLI: resolve ``src``, stream remote inputs, ``spec.run``, upload.
* :func:`plan_job` / :func:`run_task` / :func:`merge_job` — a job split into tasks for workers.

``params`` is ``{"src": ..., "dst": ..., **options}`` exactly as in REST ``POST jobs``; an optional
``storage_options`` key (fsspec/s3fs options; never logged) is taken out before validation.
Validation problems raise :class:`_engine.OptionsError` with each offending JSON path.

Resumability: :func:`run_task` writes ``task-<index>.json`` under ``workdir`` last, atomically, after
the task's outputs are committed; a retried job calling it again for a finished task (same inputs)
returns that record without running. A retried task (no record yet) runs again and overwrites its
own outputs (every output is written to a temporary name and renamed). A pipeline whose merge finds
that some tasks' outputs disagree with the others' (:class:`AlignsTasks`) has those tasks' inputs
converted again in the merge step, their new outputs replacing the old ones file by file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import posixpath
import shutil
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.parquet as pq

from aerofs_kernel import _engine
from aerofs_kernel.pipelines import atomic, get_pipeline
from aerofs_kernel.pipelines.base import Pipeline, RunOutput, TaskTables, split_range
from aerofs_kernel.result import ParquetTable, Result, Tables, peek
from aerofs_kernel.sources import Input, Sink, StreamSet, filesystem, is_remote, list_inputs

__all__ = ["Input", "merge_job", "plan_job", "resolve_inputs", "run_pipeline", "run_task", "validate_params"]


def _spec(pipeline: str) -> Pipeline:
    try:
        return get_pipeline(pipeline)
    except KeyError as e:
        raise _engine.OptionsError(str(e.args[0])) from None


def validate_params(
    pipeline: str, params: dict[str, Any]
) -> tuple[Pipeline, dict[str, Any], dict[str, Any] | None]:
    """``(spec, options with defaults, storage_options)``; raises OptionsError naming each bad path."""
    spec = _spec(pipeline)
    params = dict(params)
    storage_options = params.pop("storage_options", None)
    if storage_options is not None and not isinstance(storage_options, dict):
        raise _engine.OptionsError(f"{pipeline}: $.storage_options: must be an object")
    if "src" not in params or params["src"] in (None, "", []):
        raise _engine.OptionsError(f"{pipeline}: $.src: required")
    if spec.needs_dst and not params.get("dst"):
        raise _engine.OptionsError(f"{pipeline}: $.dst: required")
    options = spec.options(params)
    return spec, options, storage_options


def resolve_inputs(pipeline: str, src: str | list[str], options: dict[str, Any]) -> list[Input]:
    """Every input of ``src`` for ``pipeline`` (folders filtered by the pipeline's suffixes and the
    ``include``/``exclude`` options); one listing per item. Raises OptionsError when nothing matches."""
    spec = _spec(pipeline)
    try:
        found = list_inputs(
            src,
            suffixes=spec.input_suffixes,
            include=options.get("include") or None,
            exclude=options.get("exclude") or None,
            storage_options=options.get("storage_options"),
        )
    except FileNotFoundError as e:
        raise _engine.OptionsError(f"{pipeline}: $.src: {e}") from None
    if not found:
        raise _engine.OptionsError(f"{pipeline}: $.src: no input files found in {src!r}")
    return found


def _run_options(options: dict[str, Any]) -> dict[str, Any]:
    """``include``/``exclude`` were applied by :func:`resolve_inputs` relative to ``src``; a spec must not
    apply them again relative to a different root."""
    return {**options, **{k: [] for k in ("include", "exclude") if k in options}}


def _to_result(pipeline: str, out: RunOutput, seconds: float) -> Result:
    return Result(
        pipeline=pipeline,
        summary=out.summary,
        outputs=out.outputs,
        errors=out.errors,
        tables=out.tables,
        parts=out.parts,
        seconds=seconds,
    )


def run_pipeline(pipeline: str, params: dict[str, Any], progress: _engine.Progress | None = None) -> Result:
    """Run ``pipeline`` here, blocking: resolve, stream remote inputs into the engine (never copied
    to disk), run on the engine, upload to a remote ``dst``. Raises OptionsError, Cancelled
    (``progress.cancel()``), KeyboardInterrupt."""
    t0 = time.perf_counter()
    spec, options, storage_options = validate_params(pipeline, params)
    progress = progress or _engine.Progress()
    inputs = resolve_inputs(pipeline, params["src"], {**options, "storage_options": storage_options})
    with StreamSet(storage_options, progress) as streams:
        inputs = streams.register(inputs)
        with Sink(params.get("dst"), storage_options) as sink, _unstaged_exceptions(inputs):
            out = spec.run([i.local_path for i in inputs], sink.local, _run_options(options), progress)  # type: ignore[misc]
            _unstage(out, inputs)
            if sink.remote:
                out.outputs = sink.commit(out.outputs, progress)
    return _to_result(pipeline, out, time.perf_counter() - t0)


def _by_engine_path(inputs: list[Input]) -> dict[str, str]:
    """The user's URL of each remote input, by the stream token the engine read it through."""
    return {
        i.local_path: i.url for i in inputs if i.local_path and i.local_path != i.url and is_remote(i.url)
    }


def _unstage_error(err: dict[str, Any], inputs: list[Input]) -> dict[str, Any]:
    """Errors name the user's URL, not the engine's stream token."""
    by_local = _by_engine_path(inputs)
    if err.get("path") in by_local:
        return {**err, "path": by_local[err["path"]]}
    return err


def _unstage(out: RunOutput, inputs: list[Input]) -> None:
    """Errors and the tables' ``path`` columns name the user's URLs (``s3://...``), not the stream
    tokens the engine read (``aerofs-stream://...``, meaningless once the run returns). Written tables
    are rewritten before they are committed, since the pipeline wrote them from the tokens."""
    by_local = _by_engine_path(inputs)
    if not by_local:
        return
    out.errors = [_unstage_error(e, inputs) for e in out.errors]
    # Summaries and merge parts may key by input (word-count's per_file, csv's files): a job's tasks
    # read the same object through different tokens, and their merge must see one name.
    out.summary = _renamed(out.summary, by_local)
    out.parts = _renamed(out.parts, by_local)
    for name in list(out.tables):
        table = peek(out.tables, name)
        if isinstance(table, ParquetTable):
            continue  # still in the file the engine wrote (log-sessions' sessions: no input paths); not loaded
        if "path" in table.column_names and pa.types.is_string(table.schema.field("path").type):
            before = table.column("path").to_pylist()
            paths = [by_local.get(p, p) for p in before]
            if paths == before:
                continue
            idx = table.column_names.index("path")
            out.tables[name] = table.set_column(idx, table.schema.field("path"), pa.array(paths, pa.string()))
            for o in out.outputs:  # a written copy of this table (exif's Parquet) gets the same paths
                if o.endswith(".parquet") and os.path.exists(o) and _same_rows(o, table):
                    atomic.write_table(out.tables[name], o)


def _renamed(obj: Any, by_local: dict[str, str]) -> Any:
    """``obj`` (JSON-like) with every string that is an engine path replaced by its URL."""
    if isinstance(obj, str):
        return by_local.get(obj, obj)
    if isinstance(obj, dict):
        return {_renamed(k, by_local): _renamed(v, by_local) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_renamed(v, by_local) for v in obj]
    return obj


def _same_rows(path: str, table: pa.Table) -> bool:
    try:
        meta = pq.read_metadata(path)
        return meta.num_rows == table.num_rows and pq.read_schema(path).names == table.column_names
    except (OSError, pa.ArrowInvalid):
        return False


class _unstaged_exceptions:
    """An InputError (or OSError) about a stream token is raised again naming the user's URL."""

    def __init__(self, inputs: list[Input]) -> None:
        self.by_local = _by_engine_path(inputs)

    def __enter__(self) -> None:
        return None

    def __exit__(self, _t: Any, e: BaseException | None, _tb: Any) -> None:
        path = getattr(e, "path", None) or getattr(e, "filename", None)
        if e is None or path not in self.by_local:
            return
        url = self.by_local[path]
        new: BaseException
        if isinstance(e, _engine.InputError):
            new = _engine.InputError(str(e).replace(path, url))
            new.path, new.line, new.offset = url, e.line, e.offset
        elif isinstance(e, OSError):
            new = type(e)(e.errno, e.strerror, url)
        else:
            return
        raise new from None


# -- jobs ------------------------------------------------------------------------------------------


def plan_job(
    pipeline: str, params: dict[str, Any], max_tasks: int, progress: _engine.Progress | None = None
) -> list[dict[str, Any]]:
    """Split a job into at most ``max_tasks`` JSON-able tasks: ``{"index", "inputs": [Input dicts],
    "bytes", "files", "rel_root", "options"}`` (``rel_root``: the job-wide common folder, so per-file
    outputs mirror one tree; ``options``: the pipeline's :meth:`~Pipeline.job_options`, the same in
    every task)."""
    spec, options, storage_options = validate_params(pipeline, params)
    inputs = resolve_inputs(pipeline, params["src"], {**options, "storage_options": storage_options})
    by_url = {i.url: i for i in inputs}
    root = _rel_root([i.rel for i in inputs])
    batches = spec.plan([(i.url, i.size) for i in inputs], options, max(1, int(max_tasks)))
    # One task sees every input itself, as an interactive run does: nothing job-wide to add.
    job_options = (
        _job_options(spec, inputs, options, storage_options, progress or _engine.Progress())
        if len(batches) > 1
        else {}
    )

    def planned(item: str) -> Input:
        # A plan item is an input's URL, or ``URL#bytes=S-E`` for part of it (big logs and texts).
        url, byte_range = split_range(item)
        whole = by_url[url]
        return dataclasses.replace(whole, byte_range=byte_range)

    tasks = []
    for n, batch in enumerate(batches):
        items = [planned(u) for u in batch]
        tasks.append(
            {
                "index": n,
                "inputs": [i.to_dict() for i in items],
                "bytes": sum(i.byte_range[1] - i.byte_range[0] if i.byte_range else i.size for i in items),
                "files": len({i.url for i in items}),
                "rel_root": root,
                "options": job_options,
            }
        )
    return tasks


def _job_options(
    spec: Pipeline,
    inputs: list[Input],
    options: dict[str, Any],
    storage_options: dict[str, Any] | None,
    progress: _engine.Progress,
) -> dict[str, Any]:
    """The pipeline's job-wide task options, from every input of the job (remote ones streamed: a
    pipeline that samples reads only the heads it needs)."""
    if type(spec).job_options is Pipeline.job_options:
        return {}  # no streams to open for a pipeline without job-wide options
    # No read-ahead: sampling reads each object's head only; read-ahead would fetch tens of MiB of
    # every object for nothing.
    with StreamSet(storage_options, progress, read_ahead=False) as streams:
        inputs = streams.register(inputs)
        with _unstaged_exceptions(inputs):
            found = spec.job_options([i.engine_item() for i in inputs], _run_options(options), progress)
        return _renamed(found, _by_engine_path(inputs))  # type: ignore[no-any-return]


def _rel_root(rels: list[str]) -> str:
    """The common folder of relative posix paths ("" when they share none)."""
    dirs = [posixpath.dirname(r) for r in rels]
    if not dirs or any(d == "" for d in dirs):
        return ""
    return posixpath.commonpath(dirs)


def _task_key(pipeline: str, params: dict[str, Any], task: dict[str, Any]) -> str:
    doc = {
        "pipeline": pipeline,
        "params": {k: v for k, v in params.items() if k != "storage_options"},
        "task": task,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _write_json_atomic(path: str, doc: dict[str, Any]) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(doc, f, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


#: Rows per row group of a task's tables (written here, or by the pipeline: log-sessions' engine writes
#: its sessions file in them): a Parquet reader decodes a whole row group at once, so this bounds what
#: a merge that reads the tables batch by batch (log-sessions) holds per task (~3 MB of sessions; the
#: writers' default row group of 1Mi rows is ~180 MB).
TASK_ROW_GROUP_ROWS = 1 << 14


def run_task(
    pipeline: str, params: dict[str, Any], task: dict[str, Any], progress: _engine.Progress, workdir: str
) -> dict[str, Any]:
    """Run one task from :func:`plan_job`. Returns a JSON-able partial: ``{"index", "key", "summary",
    "outputs", "errors", "parts", "tables": {name: parquet path under workdir}, "task"}`` (``task``: the
    task itself, for a merge that converts its inputs again). Pipelines that write
    per task (csv-to-parquet) write their outputs to ``dst`` here; the others leave their tables under
    ``workdir`` for :func:`merge_job`: written here from the tables the pipeline returns, or by the
    pipeline itself as it runs (:meth:`Pipeline.run_task`: log-sessions' sessions), recorded the same
    way. A finished task (record present, same key, table files there) is not run again."""
    spec, options, storage_options = validate_params(pipeline, params)
    os.makedirs(workdir, exist_ok=True)
    index = int(task["index"])
    key = _task_key(pipeline, params, task)
    record = os.path.join(workdir, f"task-{index}.json")
    if os.path.exists(record):
        with open(record) as f:
            done = json.load(f)
        if done.get("key") == key and all(os.path.exists(p) for p in done.get("tables", {}).values()):
            done["resumed"] = True
            return done
    layout = TaskTables(workdir, index, TASK_ROW_GROUP_ROWS)
    out = _convert(spec, params, options, storage_options, task, progress, workdir, tables=layout)
    tables = {}
    for name in list(out.tables):
        path = layout.path(name)
        if not _written_at(peek(out.tables, name), path):
            with atomic.atomic_path(path) as tmp:  # snappy: written once, read back once
                pq.write_table(
                    out.tables[name], tmp, compression="snappy", row_group_size=TASK_ROW_GROUP_ROWS
                )
        tables[name] = path
    partial = {
        "index": index,
        "key": key,
        "summary": out.summary,
        "outputs": out.outputs,
        "errors": out.errors,
        "parts": out.parts,
        "tables": tables,
        # The merge step may convert this task's inputs again (see :class:`AlignsTasks`).
        "task": task,
    }
    _write_json_atomic(record, partial)
    return partial


def _written_at(table: pa.Table | ParquetTable, path: str) -> bool:
    """Whether the pipeline wrote ``table`` at ``path`` itself (see :meth:`Pipeline.run_task`)."""
    return isinstance(table, ParquetTable) and table.locate() == path


def _convert(
    spec: Pipeline,
    params: dict[str, Any],
    options: dict[str, Any],
    storage_options: dict[str, Any] | None,
    task: dict[str, Any],
    progress: _engine.Progress,
    workdir: str,
    replaces: list[str] | None = None,
    tables: TaskTables | None = None,
) -> RunOutput:
    """Run ``task``'s inputs through ``spec.run_task`` (``tables``: where its tables go) or, in a merge
    that converts a task again (no tables kept), ``spec.run``; a pipeline that writes in tasks writes
    under ``dst`` (uploaded when remote). ``replaces``: the outputs of an earlier run of this task (in
    a folder ``dst``) that this one takes the place of, see :func:`_replace_outputs`."""
    inputs = [Input.from_dict(d) for d in task["inputs"]]
    with StreamSet(storage_options, progress) as streams:
        # A byte range of a remote input streams only that range (the engine opens it at its start).
        inputs = streams.register(inputs)
        local = [i.engine_item() for i in inputs]
        dst = params.get("dst") if spec.writes_in_tasks() else None
        with Sink(dst, storage_options, workdir=workdir) as sink:
            task_dst = sink.local
            if task_dst is not None:
                # Mirror the job's tree: per-file outputs sit where they would in a one-task run.
                job_root = os.path.join("/", task.get("rel_root", ""))
                batch_root = os.path.join("/", _rel_root([i.rel for i in inputs]))
                task_dst = spec.task_dst(task_dst, batch_root, job_root, options)
            stage = None
            if replaces is not None and sink.local is not None and task_dst is not None:
                # Written first into a dot folder beside dst: on dst's file system, so each file
                # lands by rename, and outside it, where no reader's glob (DuckDB's dst/**) finds it.
                root = os.path.normpath(sink.local)
                stage = os.path.join(
                    os.path.dirname(root), f".{os.path.basename(root)}.aerofs-again-{int(task['index'])}"
                )
                shutil.rmtree(stage, ignore_errors=True)  # left by an attempt that died
                task_dst = os.path.join(stage, os.path.relpath(task_dst, sink.local))
            run_options = {**_run_options(options), **task.get("options", {})}
            try:
                with _unstaged_exceptions(inputs):
                    if tables is None:
                        out = spec.run(local, task_dst, run_options, progress)  # type: ignore[arg-type]
                    else:
                        out = spec.run_task(local, task_dst, run_options, progress, tables)  # type: ignore[arg-type]
                _unstage(out, inputs)
                if stage is not None:
                    out.outputs = _replace_outputs(sink, stage, out.outputs, replaces or [], progress)
                elif sink.remote:
                    out.outputs = sink.commit(out.outputs, progress)
            finally:
                if stage is not None:
                    shutil.rmtree(stage, ignore_errors=True)
    return out


def _replace_outputs(
    sink: Sink, stage: str, new: list[str], old: list[str], progress: _engine.Progress
) -> list[str]:
    """Put a task's new outputs (written under ``stage``) in place of its ``old`` ones under the sink's
    ``dst``, one file at a time, each by an atomic rename (local) or a whole-object upload (remote): a
    reader sees each file whole, old or new (while it runs, some of the task's files may be new and
    others still old).

    File names: a dataset task writes one file per folder, named by its inputs' lasting names
    (``part-<hash>``; a remote input by its URL, not its run's stream token), so a new file has its
    old file's name and replaces it, never appears beside it (a reader would count its rows twice).
    Old files in a folder the new run did not write (a partition column widened, so its value is
    spelled differently: ``x=7`` then ``x=007``) are removed once the new ones are in place; until
    then a reader listing both sees those rows twice."""
    root = sink.local
    assert root is not None
    placed = []
    for path in new:
        final = os.path.join(root, os.path.relpath(path, stage))
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.replace(path, final)
        placed.append(final)
    finals = sink.commit(placed, progress) if sink.remote else placed
    for o in old:
        if o not in finals:
            _remove_output(o, sink.storage_options)
    return finals


def _remove_output(path: str, storage_options: dict[str, Any] | None) -> None:
    """Remove a superseded output; already gone (a merge retried after it removed it) is fine."""
    try:
        if is_remote(path):
            fs, rpath = filesystem(path, storage_options)
            fs.rm_file(rpath)
        else:
            os.remove(path)
            with contextlib.suppress(OSError):  # its partition folder, when it was the last file
                os.rmdir(os.path.dirname(path))
    except FileNotFoundError:
        pass


#: ``convert_again(n, replaces, extra_options)``: run task ``n`` of a job again with ``extra_options``
#: over its task options, its new outputs taking the place of ``replaces`` (its current outputs);
#: None when the task cannot be run again (a partial recorded without its task).
ConvertAgain = Callable[[int, list[str], dict[str, Any]], RunOutput | None]


@runtime_checkable
class AlignsTasks(Protocol):
    """A pipeline whose tasks write under ``dst`` and whose merge step may find that some tasks'
    outputs disagree with the others' (csv-to-parquet: a column one task widened late) and convert
    those tasks' inputs again. :meth:`align_tasks` returns the parts with the redone tasks' outputs in
    their place; :func:`merge_job` then merges them as usual."""

    def align_tasks(
        self, parts: list[RunOutput], options: dict[str, Any], convert_again: ConvertAgain
    ) -> list[RunOutput]: ...


def _task_tables(paths: dict[str, str]) -> Tables:
    """A task's tables, each still in the Parquet file :func:`run_task` wrote (see :class:`Tables`)."""
    return Tables({name: ParquetTable(lambda p=path: p) for name, path in paths.items()})  # type: ignore[misc]


def merge_job(
    pipeline: str, params: dict[str, Any], partials: list[dict[str, Any]], workdir: str
) -> dict[str, Any]:
    """Merge the tasks' partials with the pipeline's :meth:`~Pipeline.merge`, write the job's outputs to
    ``dst`` (uploaded when remote) and return ``{"summary", "outputs", "errors", "parts"}``."""
    spec, options, storage_options = validate_params(pipeline, params)
    ordered = sorted(partials, key=lambda p: p.get("index", 0))
    parts = [
        RunOutput(
            summary=p.get("summary", {}),
            outputs=list(p.get("outputs", [])),
            errors=list(p.get("errors", [])),
            # Left in their files, read when a merge first uses them (log-sessions reads its tables
            # batch by batch, never whole; the other merges index them and get them whole).
            tables=_task_tables(p.get("tables", {})),
            parts=p.get("parts", {}),
        )
        for p in ordered
    ]
    dst = params.get("dst")
    if isinstance(spec, AlignsTasks) and spec.writes_in_tasks():

        def convert_again(n: int, replaces: list[str], extra: dict[str, Any]) -> RunOutput | None:
            task = ordered[n].get("task")
            if task is None:
                return None  # a partial recorded before tasks kept their spec: cannot run it again
            task = {**task, "options": {**task.get("options", {}), **extra}}
            os.makedirs(workdir, exist_ok=True)  # a remote dst stages under it
            progress = _engine.Progress()
            return _convert(spec, params, options, storage_options, task, progress, workdir, replaces)

        parts = spec.align_tasks(parts, options, convert_again)
    if spec.writes_in_tasks() or not dst:
        merged = spec.merge(parts, None if spec.writes_in_tasks() else dst, options)
    else:
        os.makedirs(workdir, exist_ok=True)
        with Sink(dst, storage_options, workdir=workdir) as sink:
            merged = spec.merge(parts, sink.local, options)
            if sink.remote:
                # Task outputs already final (remote) stay as they are; merge-written local files upload.
                local_out = [o for o in merged.outputs if not is_remote(o) and os.path.exists(o)]
                uploaded = sink.commit(local_out)
                merged.outputs = [o for o in merged.outputs if o not in local_out] + uploaded
    return {
        "summary": merged.summary,
        "outputs": merged.outputs,
        "errors": merged.errors,
        "parts": merged.parts,
    }

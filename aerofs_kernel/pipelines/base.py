"""The one definition of a pipeline, read by the API, the CLI, the widgets, the job server and the sidebar.

A pipeline is a subclass of :class:`Pipeline` registered in :mod:`aerofs_kernel.pipelines`. It says:

* what it is called and what its options are (``schema``: one JSON Schema, with defaults and
  descriptions; ``src`` and ``dst`` are part of it);
* how to run a batch of *local* inputs on the engine (:meth:`Pipeline.run`); sources and sinks
  (globs, folders, ``s3://``) are resolved by :mod:`aerofs_kernel.sources` before it is called;
* how to split a job into tasks (:meth:`Pipeline.plan`) and merge the tasks' partial results
  (:meth:`Pipeline.merge`), so that a job server spreads one job over many workers.

The interactive call, the CLI, the local worker pool and RQ workers all go through these methods:
one code path per behaviour.
"""

from __future__ import annotations

import copy
import os
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from aerofs_kernel import _engine

#: Marker a plan appends to an input to give a task only part of that file: ``path#bytes=START-END``
#: (a line belongs to the range it starts in). Pipelines whose engine takes ``byte_ranges`` split big
#: uncompressed inputs this way; the runner carries the range in the task's ``Input.byte_range``.
RANGE_MARK = "#bytes="


def split_range(item: str) -> tuple[str, list[int] | None]:
    """``path#bytes=S-E`` -> (path, [S, E]); a plain path -> (path, None)."""
    head, sep, tail = item.rpartition(RANGE_MARK)
    if sep and tail.count("-") == 1:
        s, e = tail.split("-")
        if s.isdigit() and e.isdigit():
            return head, [int(s), int(e)]
    return item, None


#: Compressed inputs cannot be cut into byte ranges (a range of a .gz is not a stream of its own).
COMPRESSED = (".gz", ".zst", ".zstd")


def split_into_ranges(
    inputs: list[tuple[str, int]], max_tasks: int, split_bytes: int
) -> list[tuple[str, int]]:
    """Plan items for line-oriented pipelines: whole files, except that an uncompressed file bigger than
    ``split_bytes`` (and than its share of the tasks) is cut into ``path#bytes=S-E`` ranges."""
    total = sum(max(s, 1) for _, s in inputs)
    share = max(split_bytes, total // max(1, max_tasks))
    items: list[tuple[str, int]] = []
    for path, size in inputs:
        if size > share and not path.lower().endswith(COMPRESSED):
            n = min(max_tasks, -(-size // share))
            step = -(-size // n)
            for s in range(0, size, step):
                items.append((f"{path}{RANGE_MARK}{s}-{min(size, s + step)}", min(step, size - s)))
        else:
            items.append((path, size))
    return items


def _jsonschema() -> Any:
    """jsonschema, imported at the first validation rather than with the package.

    Importing it also imports rfc3987_syntax (when installed, as Jupyter's dependencies make it),
    whose grammar takes ~1.5 s to compile, only for the "iri" string formats that no pipeline schema
    uses. If nothing has imported it yet, it is hidden for the duration of the import, so a first
    run in a kernel or the CLI does not pay for it; anyone importing it afterwards still gets it.
    """
    if "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
        try:
            import jsonschema
        finally:
            del sys.modules["rfc3987_syntax"]
    import jsonschema

    return jsonschema


@dataclass
class RunOutput:
    """What one run (or one task, or a merge of tasks) produced.

    ``summary`` and ``errors`` are JSON-able; ``tables`` maps a table name (``"table"``, ``"sessions"``)
    to a pyarrow Table; ``outputs`` are the files written (final paths, committed). ``parts`` holds
    pipeline-private intermediate data that :meth:`Pipeline.merge` needs (JSON-able), e.g. paths of
    partial tables written to a work folder.
    """

    summary: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    tables: dict[str, pa.Table] = field(default_factory=dict)
    parts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_engine(cls, result: tuple[str, dict[str, pa.Table]]) -> RunOutput:
        """Build from an engine call's ``(result_json, tables)``."""
        import json

        doc = json.loads(result[0])
        return cls(
            summary=doc.get("summary", {}),
            outputs=list(doc.get("outputs", [])),
            errors=list(doc.get("errors", [])),
            tables=dict(result[1]),
            parts={k: v for k, v in doc.items() if k not in ("summary", "outputs", "errors")},
        )


@dataclass(frozen=True)
class TaskTables:
    """Where a job's task leaves its tables for the merge (:func:`aerofs_kernel.runner.run_task`):
    ``path(name)`` under the job's work folder, Parquet in row groups of ``row_group_rows`` (a merge
    may read them a row group at a time)."""

    folder: str
    index: int
    row_group_rows: int

    def path(self, name: str) -> str:
        return os.path.join(self.folder, f"task-{self.index}-{name}.parquet")


@dataclass(frozen=True)
class OptionError:
    """One validation problem: the JSON path of the offending value and what is wrong with it."""

    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class Pipeline(ABC):
    """Base class of every pipeline spec. Subclasses set the class attributes and implement ``run``."""

    #: The public name (``csv-to-parquet``, ``exif``, ``word-count``, ``log-sessions``).
    name: ClassVar[str]
    #: A short human title for forms and the sidebar.
    title: ClassVar[str]
    #: One paragraph for ``--help``, forms and the OpenAPI document.
    description: ClassVar[str]
    #: JSON Schema (draft 2020-12) of the job parameters: ``src`` (required), ``dst`` and the options.
    schema: ClassVar[dict[str, Any]]
    _compiled: ClassVar[tuple[dict[str, Any], Any] | None] = None
    #: File name suffixes this pipeline takes when ``src`` is a folder (``None``: every file).
    input_suffixes: ClassVar[tuple[str, ...] | None] = None
    #: Whether ``dst`` is required.
    needs_dst: ClassVar[bool] = False
    #: Whether each task of a job writes its outputs straight under ``dst`` (csv-to-parquet), rather
    #: than returning tables that :meth:`merge` writes once (exif, word-count, log-sessions).
    #: ``None``: the same as ``needs_dst``.
    task_writes_dst: ClassVar[bool | None] = None

    def writes_in_tasks(self) -> bool:
        return self.needs_dst if self.task_writes_dst is None else self.task_writes_dst

    def task_dst(
        self, dst: str | None, batch_root: str, job_root: str, options: dict[str, Any]
    ) -> str | None:
        """The ``dst`` a task passes to :meth:`run` when the task's inputs (common folder ``batch_root``)
        are a slice of the job's (common folder ``job_root``). Per-file outputs mirror the job's tree,
        so the default moves ``dst`` down by the batch's place in it (for the ``per_file`` layout)."""
        if dst is None or options.get("layout", "per_file") != "per_file" or batch_root == job_root:
            return dst
        rel = os.path.relpath(batch_root, job_root)
        return dst if rel.startswith("..") else os.path.join(dst, rel)

    # -- options ---------------------------------------------------------------------------
    def defaults(self) -> dict[str, Any]:
        """The default value of every option that has one."""
        return {
            k: copy.deepcopy(v["default"])
            for k, v in self.schema.get("properties", {}).items()
            if "default" in v
        }

    def validate(self, params: dict[str, Any]) -> list[OptionError]:
        """Every problem with ``params`` (src/dst included), each with its JSON path. Empty when valid."""
        validator = self._validator()
        problems = []
        for err in sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path)):
            path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
            problems.append(OptionError(path=path, message=err.message))
        return problems

    def _validator(self) -> Any:
        """The schema's compiled validator, kept with the schema it was made from: the job server
        validates every submitted job, and compiling costs more than validating."""
        cached = type(self).__dict__.get("_compiled")
        if cached is None or cached[0] is not self.schema:
            cached = (self.schema, _jsonschema().Draft202012Validator(self.schema))
            type(self)._compiled = cached
        return cached[1]

    def options(self, params: dict[str, Any]) -> dict[str, Any]:
        """Validated options with defaults filled in (``src``/``dst`` removed). Raises OptionsError."""
        problems = self.validate(params)
        if problems:
            raise _engine.OptionsError(
                f"{self.name}: invalid options: " + "; ".join(f"{p.path}: {p.message}" for p in problems)
            )
        merged = {**self.defaults(), **params}
        merged.pop("src", None)
        merged.pop("dst", None)
        return merged

    # -- running ---------------------------------------------------------------------------
    @abstractmethod
    def run(
        self, inputs: list[str], dst: str | None, options: dict[str, Any], progress: _engine.Progress
    ) -> RunOutput:
        """Run the engine on local ``inputs`` and write under the local ``dst`` (a folder or file path,
        or None). Blocking; the engine releases the GIL, honours ``progress.cancel()`` and raises
        KeyboardInterrupt on a kernel interrupt."""

    def run_task(
        self,
        inputs: list[str],
        dst: str | None,
        options: dict[str, Any],
        progress: _engine.Progress,
        tables: TaskTables,
    ) -> RunOutput:
        """Run a job's task: :meth:`run`, whose tables the runner then writes at ``tables.path(name)``.
        A pipeline may instead write a table there itself as it runs (atomically: whole or absent)
        and return it as a :class:`~aerofs_kernel.result.ParquetTable` located at that path, which
        the runner records as it is: log-sessions streams its sessions there, so a task never holds
        them."""
        return self.run(inputs, dst, options, progress)

    def plan(self, inputs: list[tuple[str, int]], options: dict[str, Any], max_tasks: int) -> list[list[str]]:
        """Split ``inputs`` (path, size) into at most ``max_tasks`` batches of similar total size.

        The default balances whole files; pipelines that can split one huge file by byte ranges
        override it.
        """
        if not inputs:
            return []
        n = max(1, min(max_tasks, len(inputs)))
        batches: list[list[str]] = [[] for _ in range(n)]
        loads = [0] * n
        for path, size in sorted(inputs, key=lambda x: -x[1]):
            i = loads.index(min(loads))
            batches[i].append(path)
            loads[i] += max(size, 1)
        return [sorted(b) for b in batches if b]

    def job_options(
        self, inputs: list[str], options: dict[str, Any], progress: _engine.Progress
    ) -> dict[str, Any]:
        """Options every task of a job runs with, computed once at plan time over ALL the job's
        (local or streamed) ``inputs``: what a task seeing only its own batch cannot know but an
        interactive run over every input would (csv-to-parquet: the unified column types). JSON-able;
        they are recorded in each task's spec (and its key) and merged over the options :meth:`run`
        gets. Input paths in them are renamed to the user's URLs. Default: none."""
        return {}

    def merge(self, parts: list[RunOutput], dst: str | None, options: dict[str, Any]) -> RunOutput:
        """Combine the partial results of a job's tasks into the job's result.

        The default concatenates outputs, errors and tables and sums numeric summary values;
        pipelines whose results are not additive (word counts, sessions) override it.
        """
        merged = RunOutput()
        for part in parts:
            merged.outputs.extend(part.outputs)
            merged.errors.extend(part.errors)
            for k, v in part.summary.items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    merged.summary[k] = merged.summary.get(k, 0) + v
                else:
                    merged.summary.setdefault(k, v)
            for name, table in part.tables.items():
                merged.tables[name] = (
                    pa.concat_tables([merged.tables[name], table]) if name in merged.tables else table
                )
        return merged

    # -- display -----------------------------------------------------------------------------
    def charts(self, result: Any) -> list[str]:
        """The pipeline's charts in a result's rich display, as self-contained HTML fragments (inline
        SVG, see :mod:`aerofs_kernel.charts`). ``result`` is an :class:`~aerofs_kernel.result.Result`
        (its table may be absent, e.g. a job whose outputs are remote). Empty: the generic display."""
        return []

    # -- description -------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The pipeline as the REST API and the sidebar see it."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "schema": self.schema,
        }

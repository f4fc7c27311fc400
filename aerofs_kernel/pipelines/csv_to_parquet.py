"""``csv-to-parquet``: CSV files (plain, ``.gz``, ``.zst``) to Parquet, on the Rust engine.

Layouts: ``per_file`` (one Parquet per CSV, mirroring the input tree under ``dst``), ``merged``
(one file ``dst``) and ``partitioned`` (a Hive-style dataset under ``dst``, split by
``partition_by``). Types are inferred from a sample of each input (fixed-point numbers such as
prices as exact decimals unless ``decimals=False``) and unified across inputs (in a job, across
ALL the job's inputs at plan time: see :meth:`CsvToParquet.job_options`); a value met later that does not fit widens its column and the input is converted again, so the
output types always hold every value. The result's ``parts`` carry ``schema``, ``drift`` (which
inputs disagreed on which column, and how it was resolved) and ``files`` (rows per input).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, ClassVar

from aerofs_kernel import _engine
from aerofs_kernel.pipelines import register
from aerofs_kernel.pipelines.base import Pipeline, RunOutput

if TYPE_CHECKING:  # the runner imports the pipelines
    from aerofs_kernel.runner import ConvertAgain

SUFFIXES = (
    ".csv",
    ".tsv",
    ".txt",
    ".tab",
    ".psv",
    ".csv.gz",
    ".tsv.gz",
    ".txt.gz",
    ".csv.zst",
    ".tsv.zst",
    ".txt.zst",
)

_CHAR = {"type": ["string", "null"], "minLength": 1, "maxLength": 1}
# decimal(p,s) or decimal(p), precision 1-38 (scale <= precision is checked by the engine).
_DECIMAL_TYPE = r"^decimal\(\s*(3[0-8]|[12][0-9]|[1-9])\s*(,\s*(3[0-8]|[12][0-9]|[0-9])\s*)?\)$"

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "csv-to-parquet",
    "type": "object",
    "required": ["src", "dst"],
    "additionalProperties": False,
    "properties": {
        "src": {
            "description": "CSV file, folder (searched recursively), glob or list of them; local or fsspec URL.",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        },
        "dst": {
            "type": "string",
            "description": "per_file/partitioned: output folder (per_file with one input may name a .parquet "
            "file); merged: the output file.",
        },
        "layout": {
            "enum": ["per_file", "merged", "partitioned"],
            "default": "per_file",
            "description": "One Parquet per CSV (mirroring the tree), one merged file, or a Hive-style dataset.",
        },
        "partition_by": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Columns of the partitioned layout: files go to dst/col=value/part-<id>.parquet.",
        },
        "include": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Glob patterns (on the path relative to src) an input must match; empty: all.",
        },
        "exclude": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Glob patterns of inputs to leave out.",
        },
        "delimiter": {**_CHAR, "default": None, "description": "Field delimiter; null detects , tab ; |."},
        "quote": {
            **_CHAR,
            "default": '"',
            "description": 'Quote character (null: no quoting). "" inside quotes is a quote.',
        },
        "escape": {**_CHAR, "default": None, "description": "Escape character (e.g. backslash); null: none."},
        "comment": {
            **_CHAR,
            "default": None,
            "description": "Lines starting with this character are skipped.",
        },
        "header": {
            "type": "boolean",
            "default": True,
            "description": "The first record holds the column names.",
        },
        "encoding": {
            "enum": ["utf8", "latin1"],
            "default": "utf8",
            "description": "Text encoding; a UTF-8 byte order mark is always skipped.",
        },
        "null_values": {
            "type": "array",
            "items": {"type": "string"},
            "default": [""],
            "description": 'Unquoted field values read as null (a quoted "" is an empty string).',
        },
        "columns": {
            "type": "object",
            "additionalProperties": {
                "anyOf": [
                    {"enum": ["string", "int64", "float64", "bool", "date", "timestamp", "timestamp_tz"]},
                    {"type": "string", "pattern": _DECIMAL_TYPE},
                ]
            },
            "default": {},
            "description": "Column name -> type, overriding inference: string, int64, float64, bool, date, "
            'timestamp, timestamp_tz or decimal(precision,scale) (e.g. "decimal(10,2)"; precision 1-38). '
            "Values that do not parse (or do not fit the decimal exactly) become null and are reported.",
        },
        "decimals": {
            "type": "boolean",
            "default": True,
            "description": "Infer columns of fixed-point numbers with one number of fractional digits (19.99, "
            "-3.10) as exact decimals (decimal(18,s), or decimal(38,s) for more than 16 digits); false: "
            "float64. Varying fractional digits or exponents are always float64.",
        },
        "infer_rows": {
            "type": "integer",
            "minimum": 1,
            "default": 10000,
            "description": "Rows sampled per input to infer types.",
        },
        "sample_bytes": {
            "type": "integer",
            "minimum": 1024,
            "default": 1048576,
            "description": "Bytes read per input for sniffing and inference.",
        },
        "unify": {
            "type": "boolean",
            "default": True,
            "description": "Give same-named columns one type across inputs (int->decimal->float, decimal "
            "scales to the larger, anything->string).",
        },
        "malformed": {
            "enum": ["skip", "fail", "null_fill"],
            "default": "skip",
            "description": "Ragged rows, broken quotes, invalid UTF-8: drop the row, fail the input, or keep it "
            "with nulls. Each is reported with file and line.",
        },
        "on_error": {
            "enum": ["skip", "fail"],
            "default": "skip",
            "description": "A failing input is reported and the run goes on (skip), or stops the run (fail).",
        },
        "compression": {
            "enum": ["zstd", "snappy", "lz4", "none"],
            "default": "zstd",
            "description": "Parquet codec.",
        },
        "compression_level": {
            "type": ["integer", "null"],
            "default": None,
            "description": "zstd level (1-22); null: 2 (faster than 3, output ~5% larger).",
        },
        "row_group_size": {
            "type": "integer",
            "minimum": 1,
            "default": 1048576,
            "description": "Most rows per row group (row groups also end at each ~block_size of input).",
        },
        "block_size": {
            "type": "integer",
            "minimum": 1024,
            "default": 16777216,
            "description": "Bytes of CSV parsed per task; bounds memory (a few blocks are in flight).",
        },
        "page_size": {
            "type": "integer",
            "minimum": 4096,
            "default": 8388608,
            "description": "Target Parquet data page size in bytes (larger pages compress text better).",
        },
        "dictionary": {
            "type": "boolean",
            "default": True,
            "description": "Dictionary-encode string columns whose sampled values repeat.",
        },
        "statistics": {
            "type": "boolean",
            "default": True,
            "description": "Write min/max/null-count statistics.",
        },
        "threads": {
            "type": "integer",
            "minimum": 0,
            "default": 0,
            "description": "Worker threads; 0: one per core.",
        },
    },
}

# Options that are the spec's own (resolved here in Python), not the engine's. ``job_drift`` is a
# job's plan-time drift report (see ``CsvToParquet.job_options``), handed back through ``parts``.
_PY_ONLY = {"include", "exclude", "src", "dst", "job_drift"}


def output_name(path: str) -> str:
    """The Parquet file name of an input: its name with the CSV/compression suffixes replaced."""
    name = PurePath(path).name
    lower = name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)] + ".parquet"
    return name + ".parquet"


def output_paths(inputs: list[str], dst: str) -> list[str]:
    """Per-file layout: each input's output under ``dst``, mirroring the tree below the inputs' common
    folder. One input and a ``dst`` ending in ``.parquet``: that file."""
    if len(inputs) == 1 and dst.lower().endswith(".parquet"):
        return [dst]
    parents = [os.path.dirname(os.path.abspath(p)) for p in inputs]
    root = os.path.commonpath(parents) if parents else ""
    out = []
    for p in inputs:
        rel = os.path.relpath(os.path.dirname(os.path.abspath(p)), root)
        out.append(os.path.normpath(os.path.join(dst, rel, output_name(p))))
    # Inputs that differ only by suffix (a.csv, a.csv.gz) keep their whole name: no output overwrites another.
    counts: dict[str, int] = {}
    for o in out:
        counts[o] = counts.get(o, 0) + 1
    return [
        os.path.join(os.path.dirname(o), PurePath(p).name + ".parquet") if counts[o] > 1 else o
        for o, p in zip(out, inputs, strict=True)
    ]


def _filtered(inputs: list[str], include: list[str], exclude: list[str]) -> list[str]:
    if not include and not exclude:
        return inputs
    parents = [os.path.dirname(os.path.abspath(p)) for p in inputs]
    root = os.path.commonpath(parents) if parents else ""
    keep = []
    for p in inputs:
        rel = os.path.relpath(os.path.abspath(p), root)
        name = os.path.basename(p)
        if include and not any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(name, g) for g in include):
            continue
        if any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(name, g) for g in exclude):
            continue
        keep.append(p)
    return keep


def engine_options(options: dict[str, Any], inputs: list[str], dst: str | None) -> dict[str, Any]:
    """The engine's options JSON object: the user's options minus the Python-only ones, plus the
    output paths (``outputs[i]`` for ``inputs[i]`` in the per-file layout, ``dst`` otherwise)."""
    eng = {k: v for k, v in options.items() if k not in _PY_ONLY}
    layout = eng.get("layout", "per_file")
    if layout == "per_file":
        if dst is None:
            raise _engine.OptionsError("csv-to-parquet: dst is required")
        eng["outputs"] = output_paths(inputs, dst)
    else:
        eng["dst"] = dst
    return eng


class CsvToParquet(Pipeline):
    name: ClassVar[str] = "csv-to-parquet"
    title: ClassVar[str] = "CSV to Parquet"
    description: ClassVar[str] = (
        "Convert CSV files (plain, .gz, .zst) to Parquet: one file per CSV mirroring the tree, one merged "
        "file, or a Hive-partitioned dataset. Dialect and types are detected; schemas are unified across "
        "files with a drift report; malformed rows are skipped, kept with nulls, or fail the input."
    )
    schema: ClassVar[dict[str, Any]] = SCHEMA
    input_suffixes: ClassVar[tuple[str, ...] | None] = SUFFIXES
    needs_dst: ClassVar[bool] = True

    def run(
        self, inputs: list[str], dst: str | None, options: dict[str, Any], progress: _engine.Progress
    ) -> RunOutput:
        inputs = _filtered(list(inputs), options.get("include", []), options.get("exclude", []))
        eng = engine_options(options, inputs, dst)
        out = RunOutput.from_engine(_engine.csv_to_parquet(inputs, json.dumps(eng), progress))
        if "job_drift" in options:
            out.parts["job_drift"] = options["job_drift"]
        return out

    def job_options(
        self, inputs: list[str], options: dict[str, Any], progress: _engine.Progress
    ) -> dict[str, Any]:
        """A job's tasks each sample only their own files; an interactive run samples all of them
        and unifies (``3.5`` in one file and ``1.25`` in another: one decimal(18,2) column, not a
        decimal(18,1) in one output and a decimal(18,2) in the other). So the plan samples every
        input once, with the run's own inference, and gives each task the unified types as
        ``base_types`` (a starting point that still widens late, not an override) and the drift
        that unification found as ``job_drift`` (the tasks then report only their late widenings;
        :meth:`merge` puts the two together, as an interactive run reports them)."""
        if options.get("layout", "per_file") == "per_file" and not options.get("unify", True):
            return {}  # each output keeps its own input's types, in a job as interactively
        doc = json.loads(
            _engine.infer_csv_schema(list(inputs), json.dumps(_schema_options(options)), progress)
        )
        return {"base_types": doc["types"], "job_drift": doc["drift"]}

    def align_tasks(
        self, parts: list[RunOutput], options: dict[str, Any], convert_again: ConvertAgain
    ) -> list[RunOutput]:
        """Partitioned layout: a value after the sample widens its column in the task that met it,
        which rewrites its own part files only; an interactive run would have rewritten them all.
        So the merge step joins the tasks' final types (the engine's join: the same widening as a
        run) and converts the inputs of every task whose types are narrower again, with the joined
        types as ``base_types``: values are read from the CSV under the wider type (``007`` as a
        string stays ``007``; casting an int64 part file would give ``7``). Rare (a late widening in
        a partitioned job of several tasks), and it costs those tasks' conversion once more.

        A redone task meets no value its wider types cannot hold, so one round is the rule; the
        loop is a bound, not an expectation. A task that cannot be run again (a partial without
        its task) stays as it is and :func:`_task_type_drift` reports it."""
        if options.get("layout") != "partitioned" or len(parts) < 2:
            return parts
        parts = list(parts)
        for _ in range(_ALIGN_ROUNDS):
            joined = _joined_types(parts, options)
            behind = [n for n, p in enumerate(parts) if p.outputs and _types(p) != joined]
            if not behind:
                break
            for n in behind:
                again = convert_again(n, parts[n].outputs, {"base_types": joined})
                if again is None:
                    return parts
                parts[n] = _converted_again(parts[n], again)
        return parts

    def preview(
        self, inputs: list[str], options: dict[str, Any], progress: _engine.Progress | None = None
    ) -> RunOutput:
        """Schema, drift, sample rows (``tables["sample"]``) and estimates of rows, output bytes and
        seconds, from a small sample of every input; writes nothing."""
        inputs = _filtered(list(inputs), options.get("include", []), options.get("exclude", []))
        eng = {k: v for k, v in options.items() if k not in _PY_ONLY}
        return RunOutput.from_engine(
            _engine.preview_csv(inputs, json.dumps(eng), progress or _engine.Progress())
        )

    def plan(self, inputs: list[tuple[str, int]], options: dict[str, Any], max_tasks: int) -> list[list[str]]:
        # One merged file is written by one task; the other layouts split by files.
        if options.get("layout") == "merged":
            return [sorted(p for p, _ in inputs)] if inputs else []
        return super().plan(inputs, options, max_tasks)

    def merge(self, parts: list[RunOutput], dst: str | None, options: dict[str, Any]) -> RunOutput:
        merged = super().merge(parts, dst, options)
        # With plan-time types the tasks report only their late widenings; the sample drift of the
        # whole job was found once, at plan time, and comes first (as in an interactive run).
        job_drift: list[dict[str, Any]] = next(
            (p.parts["job_drift"] for p in parts if "job_drift" in p.parts), []
        )
        merged.parts = {
            "schema": next((p.parts.get("schema") for p in parts if p.parts.get("schema")), []),
            "drift": job_drift
            + [d for p in parts for d in p.parts.get("drift", [])]
            + _task_type_drift(parts, options),
            "files": [f for p in parts for f in p.parts.get("files", [])],
        }
        return merged


#: Rounds of :meth:`CsvToParquet.align_tasks` at most (each only widens: one is the rule).
_ALIGN_ROUNDS = 4


def _schema_options(options: dict[str, Any]) -> dict[str, Any]:
    """The engine options of a schema inference (``infer_csv_schema``): the run's own, without the
    output layout and without any ``base_types``."""
    return {
        k: v
        for k, v in options.items()
        if k not in _PY_ONLY and k not in ("layout", "partition_by", "base_types")
    }


def _types(part: RunOutput) -> list[list[str]]:
    """A task's final ``[name, type]`` columns, as its run reported them."""
    return [[c["name"], c["type"]] for c in part.parts.get("schema", [])]


def _joined_types(parts: list[RunOutput], options: dict[str, Any]) -> list[list[str]]:
    """The tasks' column types joined as a run joins them: the engine's unification of no inputs over
    every task's types as ``base_types`` (repeated names are joined, in first-seen order), so the
    widening rules (decimal scales and precisions included) live in one place."""
    eng = {**_schema_options(options), "base_types": [t for p in parts for t in _types(p)]}
    doc = json.loads(_engine.infer_csv_schema([], json.dumps(eng), _engine.Progress()))
    return [list(t) for t in doc["types"]]


def _converted_again(old: RunOutput, new: RunOutput) -> RunOutput:
    """A task converted again in the merge step: the new run's outputs, errors and counts; the
    widenings the first run met stay reported (they are why the job's types are wider), and
    ``redone_inputs`` keeps counting widenings, as in an interactive run; ``merge_redone_inputs``
    counts the inputs the merge converted again."""
    summary = dict(new.summary)
    summary["redone_inputs"] = old.summary.get("redone_inputs", 0) + new.summary.get("redone_inputs", 0)
    summary["merge_redone_inputs"] = old.summary.get("merge_redone_inputs", 0) + new.summary.get("files", 0)
    drift = old.parts.get("drift", []) + new.parts.get("drift", [])
    return dataclasses.replace(new, summary=summary, parts={**new.parts, "drift": drift})


def _task_type_drift(parts: list[RunOutput], options: dict[str, Any]) -> list[dict[str, Any]]:
    """Partitioned layout: what :meth:`CsvToParquet.align_tasks` could not align (a task recorded
    without its spec, by a version before it) is reported, never silent: one drift entry per column
    whose type differs between tasks, naming the part files of each type."""
    if options.get("layout") != "partitioned" or len(parts) < 2:
        return []
    by_column: dict[str, dict[str, list[str]]] = {}
    for p in parts:
        for col in p.parts.get("schema", []):
            by_column.setdefault(col["name"], {}).setdefault(col["type"], []).extend(p.outputs)
    return [
        {
            "column": name,
            "types": {t: files[:20] for t, files in types.items()},
            "resolved": "differs between part files",
            "how": "a value after the sample widened the column in one task of the job and the merge "
            "could not convert the other tasks' inputs again; their part files keep the narrower type "
            f'(read the dataset with the widest type, or run again with columns={{"{name}": <widest type>}})',
        }
        for name, types in by_column.items()
        if len(types) > 1
    ]


register(CsvToParquet())

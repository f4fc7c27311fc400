"""``word-count``: a (word, count) table of text files, on the Rust engine.

Default rules are the classic word-count benchmark's (split on ASCII whitespace, ASCII lowercase,
punctuation kept); ``unicode`` counts runs of letters/digits with Unicode lowercasing. The table is
ordered by count (descending) then word. Summary: ``files, total_words, distinct_words, rows, bytes,
errors, per_file`` (words per input). A job may split one huge uncompressed file, local or remote,
into byte ranges (:meth:`WordCount.plan`); a word belongs to the range it starts in, and
:meth:`WordCount.merge` adds the partial counts, so the result equals one pass. A remote range is
streamed from just before its start (never from the object's start); the line numbers of its
errors are made the object's at the merge (:mod:`~aerofs_kernel.pipelines.remote_ranges`).
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from aerofs_kernel import _engine
from aerofs_kernel.pipelines import atomic, register, remote_ranges
from aerofs_kernel.pipelines.base import (
    RANGE_MARK,
    Pipeline,
    RunOutput,
    split_into_ranges,
    split_range,
)

#: Files larger than this are split into byte ranges by :meth:`WordCount.plan`.
SPLIT_BYTES = 256 << 20
#: The key of a task's ``parts`` naming the file whose ranges are the task's only inputs.
RANGES_OF = "ranges_of"

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "word-count",
    "type": "object",
    "required": ["src"],
    "additionalProperties": False,
    "properties": {
        "src": {
            "description": "Text file, folder (searched recursively), glob or list of them; .gz/.zst are "
            "decompressed. Local or fsspec URL.",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        },
        "dst": {
            "type": ["string", "null"],
            "default": None,
            "description": "Where to write the (word, count) table: a .parquet or .csv file, or a folder "
            "(word_count.parquet inside). None: the table is only returned.",
        },
        "unicode": {
            "type": "boolean",
            "default": False,
            "description": "Words are runs of Unicode letters/digits, lowercased with Unicode rules. Off: "
            "the classic rules (split on ASCII whitespace, ASCII lowercase, punctuation kept).",
        },
        "stop_words": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Words to leave out of the table (compared after lowercasing). They still count "
            "in total_words.",
        },
        "min_length": {
            "type": "integer",
            "minimum": 0,
            "default": 0,
            "description": "Leave out words shorter than this many characters.",
        },
        "top": {
            "type": ["integer", "null"],
            "minimum": 1,
            "default": None,
            "description": "Keep only the N most frequent words; null keeps all.",
        },
        "format": {
            "enum": ["parquet", "csv"],
            "default": "parquet",
            "description": "Output format when dst is a folder (a dst ending in .csv/.parquet decides itself).",
        },
        "threads": {
            "type": "integer",
            "minimum": 0,
            "default": 0,
            "description": "Worker threads; 0 uses one per core.",
        },
        "chunk_size": {
            "type": "integer",
            "minimum": 1,
            "default": 8388608,
            "description": "Bytes per parallel chunk of a file (cut at whitespace). Mostly for tests.",
        },
        "on_error": {
            "enum": ["skip", "fail"],
            "default": "skip",
            "description": "An unreadable or non-UTF-8 file: record it in errors and go on (skip), or stop.",
        },
    },
}


def output_path(dst: str, fmt: str = "parquet") -> str:
    """The table file for ``dst``: itself when it ends in .parquet/.csv, else ``dst/word_count.<fmt>``."""
    if dst.lower().endswith((".parquet", ".csv")):
        return dst
    return os.path.join(dst, f"word_count.{'csv' if fmt == 'csv' else 'parquet'}")


def _ranges(path: str, size: int, n: int) -> list[str]:
    """``path`` cut into ``n`` ranges of about equal length (``path`` itself when ``n`` is 1)."""
    if n <= 1:
        return [path]
    step = -(-size // n)
    return [f"{path}{RANGE_MARK}{s}-{min(size, s + step)}" for s in range(0, size, step)]


def _first_error_per_file(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One error per input, the one at its lowest byte (a single run stops at a file's first bad
    byte; each range of it reports its own)."""
    first: dict[Any, dict[str, Any]] = {}
    for i, e in enumerate(errors):
        k = e.get("path") or i  # an error naming no input stands alone
        kept = first.get(k)
        at = e.get("offset")
        if kept is None or (at is not None and (kept.get("offset") is None or at < kept["offset"])):
            first[k] = e
    return list(first.values())


def sort_table(table: pa.Table) -> pa.Table:
    return table.sort_by([("count", "descending"), ("word", "ascending")])


class WordCount(Pipeline):
    name: ClassVar[str] = "word-count"
    title: ClassVar[str] = "Word count"
    description: ClassVar[str] = (
        "Count the words of text files into a (word, count) table, most frequent first - the classic "
        "word-count rules by default, or Unicode words - with stop words, minimum length and top N."
    )
    schema: ClassVar[dict[str, Any]] = SCHEMA
    input_suffixes: ClassVar[tuple[str, ...] | None] = None

    def run(
        self, inputs: list[str], dst: str | None, options: dict[str, Any], progress: _engine.Progress
    ) -> RunOutput:
        eng = {k: v for k, v in options.items() if k not in ("src", "dst", "format")}
        paths, ranges = [], []
        for item in inputs:
            p, r = split_range(item)
            paths.append(p)
            ranges.append(r)
        if any(r is not None for r in ranges):
            eng["byte_ranges"] = ranges
            # A slice of a file: keep every word so that merge() can add counts exactly.
            eng.pop("top", None)
        if dst:
            eng["output"] = output_path(dst, options.get("format", "parquet"))
        try:
            out = RunOutput.from_engine(_engine.word_count(paths, json.dumps(eng), progress))
        except _engine.InputError as e:
            raise remote_ranges.relocated(e, remote_ranges.views(paths, newlines=False)) from None
        views = remote_ranges.views(paths)
        if views:
            remote_ranges.locate(out.errors, "path", views)
            out.parts[remote_ranges.PARTS_KEY] = remote_ranges.parts(views)
        ranged = {p for p, r in zip(paths, ranges, strict=True) if r is not None}
        if len(ranged) == 1 and all(r is not None for r in ranges):
            # The whole table is of one file's ranges: merge() drops it if another range of that
            # file turns out not to be valid UTF-8 (plan() never mixes it with other inputs).
            out.parts[RANGES_OF] = ranged.pop()
        return out

    def job_options(
        self, inputs: list[str], options: dict[str, Any], progress: _engine.Progress
    ) -> dict[str, Any]:
        """A job's tasks keep every word: the top N is the merge's to take (a word outside one task's
        top N may be in the job's)."""
        return {"top": None}

    def plan(self, inputs: list[tuple[str, int]], options: dict[str, Any], max_tasks: int) -> list[list[str]]:
        """Whole files, except that an uncompressed file (local or remote) bigger than ``SPLIT_BYTES``
        (and than its share of the tasks) is cut into byte ranges ``path#bytes=S-E``. A task holds
        whole files, or ranges of one file and nothing else, so that the merge can leave out all of a
        file that one task found bad, as a single run does (at most ``max_tasks`` tasks all the same:
        a file gets fewer, longer ranges when they would not fit)."""
        items = split_into_ranges(inputs, max_tasks, SPLIT_BYTES)
        whole = [(p, s) for p, s in items if split_range(p)[1] is None]
        cut = [p for p, _ in inputs if p not in {w for w, _ in whole}]
        slots = max_tasks - (1 if whole else 0)
        if not cut:
            return super().plan(whole, options, max_tasks)
        if slots < len(cut):
            return super().plan(inputs, options, max_tasks)  # too few tasks to give a file several
        sizes = dict(inputs)
        counts = {p: sum(1 for i, _ in items if split_range(i)[0] == p) for p in cut}
        while sum(counts.values()) > slots:
            counts[max(counts, key=lambda p: counts[p])] -= 1
        batches = [[r] for p in cut for r in _ranges(p, sizes[p], counts[p])]
        if whole:
            batches += super().plan(whole, options, max_tasks - len(batches))
        return batches

    def merge(self, parts: list[RunOutput], dst: str | None, options: dict[str, Any]) -> RunOutput:
        """The tasks' counts added up, as one run over all the inputs: a file that one of its ranges
        found bad is left out whole, with the error of its first bad byte (a single run validates a
        file before it counts any of it)."""
        merged = RunOutput()
        for part in parts:
            merged.errors.extend(dict(e) for e in part.errors)
        ranges = [r for p in parts for r in p.parts.get(remote_ranges.PARTS_KEY, [])]
        remote_ranges.fix_lines(merged.errors, "path", ranges)
        merged.errors = _first_error_per_file(merged.errors)
        bad = {e.get("path") for e in merged.errors}
        parts = [p for p in parts if p.parts.get(RANGES_OF) not in bad]
        per_file: dict[str, int] = {}
        tables = []
        for part in parts:
            for k, v in part.summary.get("per_file", {}).items():
                per_file[k] = per_file.get(k, 0) + v
            if "table" in part.tables:
                tables.append(part.tables["table"])
        if tables:
            t = pa.concat_tables(tables).group_by("word").aggregate([("count", "sum")])
            t = t.rename_columns(["word", "count"]).cast(
                pa.schema([("word", pa.string(), False), ("count", pa.uint64(), False)])
            )
        else:
            t = pa.table({"word": pa.array([], pa.string()), "count": pa.array([], pa.uint64())})
        t = sort_table(t)
        distinct = t.num_rows  # words after stop words/min length, before top
        if options.get("top"):
            t = t.slice(0, int(options["top"]))
        merged.tables["table"] = t
        merged.summary = {
            "files": len(per_file),
            "total_words": sum(p.summary.get("total_words", 0) for p in parts),
            "distinct_words": distinct,
            "rows": t.num_rows,
            "bytes": sum(p.summary.get("bytes", 0) for p in parts),
            "errors": len(merged.errors),
            "per_file": per_file,
        }
        if dst:
            merged.outputs = [atomic.write_table(t, output_path(dst, options.get("format", "parquet")))]
        _ = pc  # compute kernels are used through Table.group_by
        return merged


register(WordCount())

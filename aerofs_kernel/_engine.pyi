"""Type stubs of the Rust engine module (checked with mypy.stubtest against the built module).

Each pipeline's block is kept beside the others; the binding convention is the same for all:
``name(inputs, options_json, progress) -> (result_json, tables)``.
"""

from typing import Any

import pyarrow as pa

__version__: str

class AerofsError(Exception): ...

class InputError(AerofsError):
    path: str | None
    line: int | None
    offset: int | None

class SchemaError(AerofsError): ...
class OptionsError(AerofsError, ValueError): ...
class Cancelled(AerofsError): ...
class InternalError(AerofsError): ...

class Progress:
    def __init__(self) -> None: ...
    def cancel(self) -> None: ...
    @property
    def cancelled(self) -> bool: ...
    def snapshot(self) -> dict[str, Any]: ...

# --- streamed inputs (remote objects read by Python; see aerofs_kernel.sources.StreamSet) ---
def register_streams(items: list[tuple[str, Any]]) -> list[str]: ...
def unregister_streams(tokens: list[str]) -> None: ...

# --- csv-to-parquet ---
def csv_to_parquet(
    inputs: list[str], options_json: str, progress: Progress
) -> tuple[str, dict[str, pa.Table]]:
    """Convert CSV inputs (plain, .gz, .zst) to Parquet; returns ``(result_json, {})``.

    ``options_json`` is the JSON object of the pipeline's options (see
    ``aerofs_kernel/pipelines/csv_to_parquet.py``; unknown keys raise OptionsError) plus where to write:
    layout ``per_file`` takes ``outputs``, a list of output paths, ``outputs[i]`` being the Parquet
    file for ``inputs[i]`` (Python computes the mirrored tree); ``merged`` takes ``dst`` (the file) and
    ``partitioned`` takes ``dst`` (the folder) and ``partition_by``.
    The result JSON holds ``summary`` (files, rows, bytes_in, bytes_out, malformed_rows, failed_files,
    redone_inputs, seconds), ``outputs``, ``errors`` (path, kind, message, line?, offset?), ``schema``
    ([{name, type}]), ``drift`` ([{column, types: {type: [paths]}, missing_in, resolved, how}]) and
    ``files`` ([{path, rows, output?}]). Raises InputError (.path/.line) only under
    ``on_error="fail"``, Cancelled when ``progress`` is cancelled (no partial output is left).
    """

def preview_csv(inputs: list[str], options_json: str, progress: Progress) -> tuple[str, dict[str, pa.Table]]:
    """Sample every input (256 KiB each, in parallel) and return ``(result_json, {"sample": table})``:
    ``summary`` (files, bytes_in, estimated_rows, estimated_bytes_out, estimated_seconds), ``schema``,
    ``drift``, ``files`` ([{path, columns, estimated_rows, dialect}]) and ``errors``. Writes nothing."""

def infer_csv_schema(inputs: list[str], options_json: str, progress: Progress) -> str:
    """Sample and unify every input exactly as ``csv_to_parquet`` starts (``sample_bytes`` each, in
    parallel) and return ``result_json``: ``types`` ([[name, type]], ``null`` for a column without a
    sampled value), ``drift``, ``errors`` and ``summary.files``. Writes nothing. What a job's planner
    hands each task as ``base_types``."""

# --- end csv-to-parquet ---

# --- word-count ---
def word_count(inputs: list[str], options_json: str, progress: Progress) -> tuple[str, dict[str, pa.Table]]:
    """Count words of text files (gz/zst too). Options: unicode, stop_words, min_length, top, threads,
    chunk_size, output (.parquet/.csv), byte_ranges (one [start, end] or null per input), on_error.
    Tables: ``table`` (word, count) ordered by count desc then word. Summary: files, total_words,
    distinct_words, rows, bytes, errors, per_file."""

# --- end word-count ---

# --- log-sessions ---
def log_sessions(inputs: list[str], options_json: str, progress: Progress) -> tuple[str, dict[str, pa.Table]]:
    """Sessions of Apache/Nginx access logs (Common/Combined or a custom GoAccess ``%h %^[%d:%t %^]…`` /
    nginx ``$remote_addr …`` log_format; .gz/.zst). Options: session_key (ip_ua|ip), timeout_minutes,
    asset_extensions, log_format, threads, chunk_size, unparsed_samples, top, byte_ranges (one
    [start, end] or null per input), output_dir (sessions.parquet + summary.json, written as the run
    goes), sessions_file (a job's task: the sessions alone to this file, as the run goes; not with
    output_dir), row_group_rows (of the written file), visitors_table (a job's task: the visitors
    rows, else none), on_error. Tables: ``sessions`` (empty when it went to a file), ``visitors`` (ip,
    user_agent, day; empty without visitors_table) and ``counts`` (kind, value, hits), the last two for
    an exact merge of tasks. Summary: requests, sessions, unique_visitors, bytes, unparsed_lines,
    bounce_rate, durations, tops, traffic."""

# --- end log-sessions ---

# --- exif ---
def extract_exif(inputs: list[str], options_json: str, progress: Progress) -> tuple[str, dict[str, pa.Table]]:
    """EXIF of images (files, or folders walked for image suffixes): one row per image in
    ``tables["table"]``; options: tags, include_thumbnails, follow_symlinks, threads, on_error, output."""

# --- end exif ---

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

# --- csv-to-parquet ---
# --- end csv-to-parquet ---

# --- word-count ---
# --- end word-count ---

# --- log-sessions ---
# --- end log-sessions ---

# --- exif ---
# --- end exif ---

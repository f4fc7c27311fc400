"""AeroFS in a kernel: fast file and data pipelines on a Rust engine, from notebooks, scripts and the CLI.

```python
import aerofs_kernel as aero
aero.csv_to_parquet("data/", "out/")          # runs here, live progress, Ctrl-C stops it
aero.submit("word-count", src="s3://b/texts/") # hands it to the job server
```
``%load_ext aerofs_kernel`` registers the ``%aerofs`` / ``%%aerofs`` magics.
"""

from __future__ import annotations

from typing import Any

from aerofs_kernel import _engine
from aerofs_kernel._engine import AerofsError, Cancelled, InputError, OptionsError, Progress, SchemaError
from aerofs_kernel.api import count_words, csv_to_parquet, extract_exif, log_sessions, run
from aerofs_kernel.client import Client, JobHandle, JobServerError, submit
from aerofs_kernel.result import Result

__version__ = _engine.__version__


def pipelines() -> list[dict[str, Any]]:
    """Every pipeline with its name, title, description and JSON Schema."""
    from aerofs_kernel.pipelines import all_pipelines

    return [p.describe() for p in all_pipelines()]


def form(pipeline: str, **values: Any) -> Any:
    """A job form widget for ``pipeline`` (run here on a background thread, or submit)."""
    from aerofs_kernel.widgets import JobForm

    return JobForm(pipeline, **values)


def start(pipeline: str, src: Any, dst: str | None = None, **options: Any) -> Any:
    """Run in the background of this kernel; returns a BackgroundRun (``.widget``, ``.cancel()``,
    ``.wait()``) at once, so the kernel stays free."""
    from aerofs_kernel.widgets import BackgroundRun

    params: dict[str, Any] = {"src": src, **options}
    if dst is not None:
        params["dst"] = dst
    return BackgroundRun(pipeline, params).start()


def load_ipython_extension(ipython: Any) -> None:
    from aerofs_kernel.magics import AerofsMagics

    ipython.register_magics(AerofsMagics)


__all__ = [
    "AerofsError",
    "Cancelled",
    "Client",
    "InputError",
    "JobHandle",
    "JobServerError",
    "OptionsError",
    "Progress",
    "Result",
    "SchemaError",
    "_engine",
    "count_words",
    "csv_to_parquet",
    "extract_exif",
    "form",
    "load_ipython_extension",
    "log_sessions",
    "pipelines",
    "run",
    "start",
    "submit",
]

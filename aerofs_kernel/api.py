"""The public API: run a pipeline here (blocking, live progress, stops on KeyboardInterrupt) or submit it."""

from __future__ import annotations

from typing import Any

from aerofs_kernel import _engine
from aerofs_kernel.display import make_display
from aerofs_kernel.progress import ProgressPoller
from aerofs_kernel.result import Result


def run(
    pipeline: str,
    src: Any,
    dst: str | None = None,
    *,
    show_progress: bool | str | None = None,
    progress: _engine.Progress | None = None,
    **options: Any,
) -> Result:
    """Run ``pipeline`` on ``src`` in this process and wait for it. ``show_progress``: None picks a widget
    in a notebook or a bar in a terminal; False shows nothing. Pass a ``progress`` to cancel from another
    thread (``progress.cancel()`` raises Cancelled here). Ctrl-C / a kernel interrupt stops the engine
    and raises KeyboardInterrupt; no half-written output is left."""
    from aerofs_kernel.runner import run_pipeline

    params: dict[str, Any] = {"src": src, **options}
    if dst is not None:
        params["dst"] = dst
    progress = progress or _engine.Progress()
    display = make_display(pipeline, show_progress, on_cancel=progress.cancel)
    poller = ProgressPoller(progress, display.update)
    poller.start()
    state, message = "failed", ""
    result = None
    try:
        result = run_pipeline(pipeline, params, progress)
        state = "succeeded"
        return result
    except (KeyboardInterrupt, _engine.Cancelled):
        progress.cancel()
        state, message = "cancelled", "cancelled"
        raise
    except BaseException as e:
        message = f"{type(e).__name__}: {e}"
        raise
    finally:
        poller.stop()
        if result is not None and result.errors:
            snap = poller.state()
            display.update({**snap, "errors": max(int(snap.get("errors", 0)), len(result.errors))})
        display.finish(state, message)


def csv_to_parquet(src: Any, dst: str, **options: Any) -> Result:
    """CSV files (plain, .gz, .zst; local, folder, glob, s3://) to Parquet under ``dst``."""
    return run("csv-to-parquet", src, dst, **options)


def extract_exif(src: Any, dst: str | None = None, **options: Any) -> Result:
    """EXIF metadata of photos into ``.table``; with ``dst``, also written as Parquet."""
    return run("exif", src, dst, **options)


def count_words(src: Any, dst: str | None = None, **options: Any) -> Result:
    """Word frequencies across text files into ``.table`` (word, count); with ``dst``, written as Parquet."""
    return run("word-count", src, dst, **options)


def log_sessions(src: Any, dst: str | None = None, **options: Any) -> Result:
    """Sessions of a web access log (30-minute inactivity, per client IP + user agent) and a summary;
    with a ``dst`` folder: sessions.parquet, summary.json and report.html."""
    return run("log-sessions", src, dst, **options)

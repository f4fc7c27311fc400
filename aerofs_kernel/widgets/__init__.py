"""anywidget widgets: live progress, a job form per pipeline, a result view (one ESM file each).

A widget's click reaches the kernel only when no cell is running, so runs started from a widget go on a
background thread (:class:`BackgroundRun`) and the kernel stays free: the cancel button works. Progress
is polled from the engine's counters by :class:`ProgressPoller` at most ``rate`` times a second.
"""

from __future__ import annotations

import contextlib
import pathlib
import threading
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from aerofs_kernel import _engine
from aerofs_kernel.client import TERMINAL
from aerofs_kernel.progress import MAX_UPDATES_PER_SECOND, ProgressPoller

_HERE = pathlib.Path(__file__).parent

#: A run or job in one of these states changes no more: the job server's terminal states, as the widget
#: shows them (lower-cased).
ENDED_STATES = frozenset(s.lower() for s in TERMINAL)


class ProgressWidget(anywidget.AnyWidget):
    """Bar, rate, ETA, current input, error count and a cancel button for one run or job.

    Once ``state`` is one of :data:`ENDED_STATES`, ``eta`` is None and stays so: the last poll of a
    cancelled or failed run still measured time left, which would otherwise be shown for good. The view
    (progress.js) shows neither rate nor ETA for an ended run."""

    _esm = _HERE / "progress.js"
    description = traitlets.Unicode("").tag(sync=True)
    state = traitlets.Unicode("starting").tag(sync=True)
    inputs_total = traitlets.Int(0).tag(sync=True)
    inputs_done = traitlets.Int(0).tag(sync=True)
    bytes_total = traitlets.Int(0).tag(sync=True)
    bytes_done = traitlets.Int(0).tag(sync=True)
    rows = traitlets.Int(0).tag(sync=True)
    errors = traitlets.Int(0).tag(sync=True)
    current = traitlets.Unicode("").tag(sync=True)
    rate = traitlets.Float(0.0).tag(sync=True)
    eta = traitlets.Float(None, allow_none=True).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)

    def __init__(self, description: str = "", on_cancel: Callable[[], Any] | None = None, **kw: Any) -> None:
        super().__init__(description=description, **kw)
        self._on_cancel = on_cancel
        self.on_msg(self._on_custom)

    # Every way a run ends (BackgroundRun, the blocking API's display, a job's poll) sets ``state``,
    # often after the last update that carried an ETA; a late update may still carry one.
    @traitlets.observe("state")
    def _drop_eta_when_ended(self, change: Any) -> None:
        if change["new"] in ENDED_STATES:
            self.eta = None

    @traitlets.validate("eta")
    def _no_eta_once_ended(self, proposal: Any) -> float | None:
        return None if self.state in ENDED_STATES else proposal["value"]

    def _on_custom(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "cancel":
            self.cancel()

    def cancel(self) -> None:
        if self._on_cancel is not None:
            self._on_cancel()
            self.message = "cancelling…"

    def update(self, snap: dict[str, Any]) -> None:
        with self.hold_sync():
            for k in ("inputs_total", "inputs_done", "bytes_total", "bytes_done", "rows", "errors"):
                if k in snap and snap[k] is not None:
                    setattr(self, k, int(snap[k]))
            if "current" in snap:
                self.current = str(snap.get("current") or "")
            if "rate" in snap:
                self.rate = float(snap["rate"] or 0.0)
            if "eta" in snap:
                self.eta = None if snap["eta"] is None else float(snap["eta"])
            if snap.get("state"):
                self.state = str(snap["state"])


class ResultWidget(anywidget.AnyWidget):
    """The result view: summary, outputs, errors, charts and table previews (self-contained HTML)."""

    _esm = _HERE / "result.js"
    html = traitlets.Unicode("").tag(sync=True)

    def __init__(self, result: Any = None, **kw: Any) -> None:
        super().__init__(**kw)
        if result is not None:
            self.show(result)

    def show(self, result: Any) -> None:
        from aerofs_kernel.result import render_html

        self.html = render_html(result)


class BackgroundRun:
    """Runs a pipeline on a background thread with a :class:`ProgressWidget` kept up to date.
    ``cancel()`` (or the widget's button) stops it within about a second."""

    def __init__(self, pipeline: str, params: dict[str, Any], widget: ProgressWidget | None = None) -> None:
        from aerofs_kernel import runner

        self.pipeline = pipeline
        self.params = params
        self.progress = _engine.Progress()
        self.widget = widget or ProgressWidget(description=pipeline, on_cancel=self.cancel)
        self.widget._on_cancel = self.cancel
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._callbacks: list[Callable[[BackgroundRun], None]] = []
        self._runner = runner
        self._poller = ProgressPoller(self.progress, self.widget.update)
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"aerofs-run-{pipeline}")

    def on_done(self, fn: Callable[[BackgroundRun], None]) -> None:
        self._callbacks.append(fn)

    def start(self) -> BackgroundRun:
        self.widget.state = "running"
        self._poller.start()
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.result = self._runner.run_pipeline(self.pipeline, self.params, self.progress)
            state = "succeeded"
        except _engine.Cancelled as e:
            self.error, state = e, "cancelled"
        except BaseException as e:  # reported on the widget, kept for .wait()
            self.error, state = e, "failed"
        self._poller.stop()
        if self.result is not None:
            # The final count of per-input problems (malformed rows included), from the result.
            self.widget.errors = max(self.widget.errors, len(self.result.errors))
        self.widget.state = state
        if self.error is not None and state == "failed":
            self.widget.message = f"{type(self.error).__name__}: {self.error}"
        elif state == "cancelled":
            self.widget.message = "cancelled"
        else:
            self.widget.message = ""
        for fn in self._callbacks:  # before ``done``: whoever waits sees what they did
            with contextlib.suppress(Exception):
                fn(self)
        self.done.set()

    def cancel(self) -> None:
        self.progress.cancel()

    def wait(self, timeout: float | None = None) -> Any:
        self.done.wait(timeout)
        if self.error is not None:
            raise self.error
        return self.result

    def _repr_mimebundle_(self, **kw: Any) -> Any:
        return self.widget._repr_mimebundle_(**kw)


class JobForm(anywidget.AnyWidget):
    """A form for one pipeline rendered from its JSON Schema; "run here" starts a :class:`BackgroundRun`,
    "submit" hands the job to the job server. Problems (schema and paths) show under the fields."""

    _esm = _HERE / "form.js"
    pipeline = traitlets.Unicode("").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    schema = traitlets.Dict({}).tag(sync=True)
    values = traitlets.Dict({}).tag(sync=True)
    problems: traitlets.List[Any] = traitlets.List([]).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)

    def __init__(self, pipeline: str, **values: Any) -> None:
        from aerofs_kernel.pipelines import get_pipeline

        spec = get_pipeline(pipeline)
        super().__init__(
            pipeline=pipeline, title=spec.title, schema=spec.schema, values={**spec.defaults(), **values}
        )
        self.run_: BackgroundRun | None = None
        self.job: Any = None
        import ipywidgets

        self.output = ipywidgets.Output()
        self.on_msg(self._on_custom)

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in self.values.items() if v is not None or k == "dst"}

    def check(self) -> list[dict[str, str]]:
        """Schema problems plus paths that do not exist (local sources)."""
        from aerofs_kernel.pipelines import get_pipeline
        from aerofs_kernel.sources import is_remote

        params = self.params()
        if params.get("dst") is None:
            params.pop("dst", None)
        problems = [p.to_dict() for p in get_pipeline(self.pipeline).validate(params)]
        src = params.get("src")
        for s in [src] if isinstance(src, str) else (src or []):
            if (
                isinstance(s, str)
                and not is_remote(s)
                and not any(c in s for c in "*?[")
                and not pathlib.Path(s.removeprefix("file://")).expanduser().exists()
            ):
                problems.append({"path": "$.src", "message": f"no such file or folder: {s}"})
        self.problems = problems
        return problems

    def _on_custom(self, _w: Any, content: dict[str, Any], _b: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "run":
            self.start(content.get("mode", "local"))

    def start(self, mode: str = "local") -> Any:
        if self.check():
            self.status = "fix the problems above"
            return None
        params = self.params()
        if params.get("dst") is None:
            params.pop("dst", None)
        if mode == "submit":
            from aerofs_kernel.client import submit

            try:
                self.job = submit(self.pipeline, **params)
            except Exception as e:
                self.status = f"submit failed: {e}"
                return None
            self.status = f"submitted job {self.job.id}"
            self.output.append_display_data(self.job.widget())
            return self.job
        run = BackgroundRun(self.pipeline, params)
        self.run_ = run
        self.status = "running"

        def finished(r: BackgroundRun) -> None:
            self.status = r.widget.state
            if r.result is not None:
                self.output.append_display_data(r.result)

        run.on_done(finished)
        # Everything under the form is appended here, in the kernel, never captured with
        # ``with self.output:``: the result comes from the run's thread after the button's message
        # is done, which a capture misses, and a capture mixed with appends races with the front
        # end's copy of the outputs (the result view was lost in Notebook 7).
        self.output.append_display_data(run.widget)
        return run.start()

    def _ipython_display_(self) -> None:
        import ipywidgets
        from IPython.display import display

        display(ipywidgets.VBox([self, self.output]))


__all__ = [
    "ENDED_STATES",
    "MAX_UPDATES_PER_SECOND",
    "BackgroundRun",
    "JobForm",
    "ProgressPoller",
    "ProgressWidget",
    "ResultWidget",
]

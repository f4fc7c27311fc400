"""IPython magics: ``%load_ext aerofs_kernel``.

* ``%aerofs PIPELINE SRC [DST] [--opt value ...]`` — run here, live progress, display the result
  (the result is also the cell's value, and ``_aerofs`` in the user namespace).
* ``%aerofs submit PIPELINE SRC [DST] [--opt value ...]`` — submit to the job server, show the live job.
* ``%aerofs jobs`` — your jobs with their state; ``%aerofs form PIPELINE`` — a job form widget;
  ``%aerofs pipelines`` — the pipelines and their options.
* ``%%aerofs PIPELINE [SRC] [DST]`` with options as YAML in the cell body (``src``/``dst`` may be there).

Options are read against the pipeline's JSON Schema (the same parser as the CLI); ``$name`` and
``{expr}`` are expanded by IPython as in any line magic (in the ``%%aerofs`` body too). Usage errors
raise IPython's UsageError (shown without a traceback; the cell fails).
"""

from __future__ import annotations

import html
import shlex
from typing import Any

from IPython.core.error import UsageError as IPyUsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import HTML, display

USAGE = __doc__


def _split(line: str) -> tuple[list[str], list[str]]:
    """Positional words, then the ``--options`` (from the first word starting with ``--``)."""
    words = shlex.split(line)
    for i, w in enumerate(words):
        if w.startswith("--"):
            return words[:i], words[i:]
    return words, []


def _params(
    pipeline: str, positional: list[str], opts: list[str], body: dict[str, Any] | None = None
) -> dict[str, Any]:
    from aerofs_kernel.cli import UsageError, parse_options
    from aerofs_kernel.pipelines import get_pipeline

    try:
        spec = get_pipeline(pipeline)
    except KeyError as e:
        raise UsageError(str(e.args[0])) from None
    params: dict[str, Any] = dict(body or {})
    if len(positional) > 2:
        raise UsageError(f"expected SRC [DST], got {positional}")
    if positional:
        params["src"] = positional[0]
    if len(positional) > 1:
        params["dst"] = positional[1]
    params.update(parse_options(spec.schema, opts))
    if "src" not in params:
        raise UsageError("SRC is missing")
    return params


@magics_class
class AerofsMagics(Magics):
    @line_magic
    def aerofs(self, line: str) -> Any:
        """%aerofs PIPELINE SRC [DST] [--opt value ...] | submit ... | jobs | form PIPELINE | pipelines"""
        from aerofs_kernel.cli import UsageError

        positional, opts = _split(line)
        if not positional or positional[0] in ("help", "-h"):
            print(USAGE)
            return None
        cmd, rest = positional[0], positional[1:]
        try:
            if cmd == "jobs":
                return self._jobs()
            if cmd == "pipelines":
                from aerofs_kernel import pipelines

                return pipelines()
            if cmd == "form":
                if not rest:
                    raise UsageError("%aerofs form PIPELINE")
                from aerofs_kernel.widgets import JobForm

                values = _params(rest[0], rest[1:], opts) if len(rest) > 1 else {}
                form = JobForm(rest[0], **values)
                display(form)
                return None
            if cmd == "submit":
                if not rest:
                    raise UsageError("%aerofs submit PIPELINE SRC [DST] [--opt value ...]")
                return self._submit(rest[0], _params(rest[0], rest[1:], opts))
            return self._run(cmd, _params(cmd, rest, opts))
        except UsageError as e:
            raise IPyUsageError(f"%aerofs: {e}") from None

    @cell_magic("aerofs")  # type: ignore[arg-type]
    def aerofs_cell(self, line: str, cell: str) -> Any:
        """%%aerofs [submit] PIPELINE [SRC] [DST] — options as YAML in the body."""
        import yaml

        from aerofs_kernel.cli import UsageError

        positional, opts = _split(line)
        try:
            if self.shell is not None:
                cell = self.shell.var_expand(cell, depth=2)
            body = yaml.safe_load(cell) if cell.strip() else {}
            if body is not None and not isinstance(body, dict):
                raise UsageError("the cell body must be a YAML mapping of options")
            submit = bool(positional) and positional[0] == "submit"
            if submit:
                positional = positional[1:]
            if not positional:
                raise UsageError("%%aerofs [submit] PIPELINE [SRC] [DST]")
            pipeline = positional[0]
            params = _params(
                pipeline, positional[1:], opts, {k.replace("-", "_"): v for k, v in (body or {}).items()}
            )
        except (UsageError, yaml.YAMLError) as e:
            raise IPyUsageError(f"%%aerofs: {e}") from None
        return self._submit(pipeline, params) if submit else self._run(pipeline, params)

    # -- actions ----------------------------------------------------------------------------
    def _run(self, pipeline: str, params: dict[str, Any]) -> Any:
        from aerofs_kernel.api import run

        params = dict(params)
        src, dst = params.pop("src"), params.pop("dst", None)
        result = run(pipeline, src, dst, **params)
        if self.shell is not None:
            self.shell.user_ns["_aerofs"] = result
        return result

    def _submit(self, pipeline: str, params: dict[str, Any]) -> Any:
        from aerofs_kernel.client import submit

        params = dict(params)
        src, dst = params.pop("src"), params.pop("dst", None)
        job = submit(pipeline, src, dst, **params)
        if self.shell is not None:
            self.shell.user_ns["_aerofs_job"] = job
        return job

    def _jobs(self, refresh: float = 2.0, max_seconds: float = 3600.0) -> Any:
        """Your jobs as a table that refreshes every ``refresh`` s while any is unfinished (in a
        notebook); returns the widget (or the HTML outside a kernel)."""
        import threading
        import time

        from aerofs_kernel.client import TERMINAL, Client
        from aerofs_kernel.display import in_notebook

        client = Client()

        def table() -> tuple[str, bool]:
            jobs = client.jobs()
            rows = "".join(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(v))}</td>"
                    for v in (
                        j.get("id"),
                        j.get("pipeline"),
                        j.get("state"),
                        _pct(j.get("progress")),
                        j.get("created_at", ""),
                    )
                )
                + "</tr>"
                for j in jobs
            )
            head = "<tr><th>id</th><th>pipeline</th><th>state</th><th>progress</th><th>created</th></tr>"
            return f"<table class='aerofs-jobs'>{head}{rows}</table>", any(
                j.get("state") not in TERMINAL for j in jobs
            )

        text, live = table()
        if not in_notebook():
            out = HTML(text)
            display(out)
            return out
        from aerofs_kernel.widgets import ResultWidget

        widget = ResultWidget()
        widget.html = text

        def loop() -> None:
            deadline, more = time.monotonic() + max_seconds, live
            while more and time.monotonic() < deadline:
                time.sleep(refresh)
                try:
                    widget.html, more = table()
                except Exception:
                    return

        threading.Thread(target=loop, daemon=True, name="aerofs-jobs").start()
        display(widget)
        return widget


def _pct(progress: Any) -> str:
    if isinstance(progress, dict) and progress.get("bytes_total"):
        return f"{100 * progress.get('bytes_done', 0) / progress['bytes_total']:.0f}%"
    if isinstance(progress, (int, float)):
        return f"{100 * progress:.0f}%"
    return ""

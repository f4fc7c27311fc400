"""The result of a run: tables (pyarrow), summary, outputs, per-input errors and a rich display.

The notebook display is self-contained HTML (summary, errors, a table preview and the pipeline's charts
as inline SVG): no scripts, no network, so it renders the same in JupyterLab, Notebook 7, VS Code and
nbconvert output.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pyarrow as pa

from aerofs_kernel.charts import bar_chart_svg

PREVIEW_ROWS = 10


class ParquetTable:
    """A table the run left in a Parquet file (log-sessions' ``sessions.parquet`` under ``dst``), read
    the first time it is used (see :class:`Tables`). ``locate`` says where the file is at that time:
    a remote ``dst`` is written locally, uploaded, and the local copy removed, so by then it is the
    uploaded object's URL. ``schema``: the types the table had in the run, which the file's may not
    keep (Parquet has no timestamps in seconds: they read back in milliseconds)."""

    def __init__(self, locate: Callable[[], str], schema: pa.Schema | None = None):
        self.locate = locate
        self.schema = schema

    def _typed(self, t: pa.Table) -> pa.Table:
        return t if self.schema is None else t.cast(self.schema)

    def _file(self) -> Any:
        import pyarrow.parquet as pq

        from aerofs_kernel.sources import filesystem

        fs, path = filesystem(self.locate())
        return pq.ParquetFile(fs.open(path, "rb"))

    @property
    def num_rows(self) -> int:
        with self._file() as f:
            return int(f.metadata.num_rows)

    def head(self, rows: int) -> pa.Table:
        with self._file() as f:
            for batch in f.iter_batches(batch_size=rows):
                return self._typed(pa.Table.from_batches([batch]))
            return self._typed(f.schema_arrow.empty_table())

    def read(self) -> pa.Table:
        with self._file() as f:
            return self._typed(f.read())


class Tables(dict[str, pa.Table]):
    """``Result.tables``: a dict of tables in which some may still be in a file the run wrote
    (:class:`ParquetTable`), read on first access and kept. Looking a table up (``[]``, ``get``,
    ``items()``, ``values()``) reads it; the notebook display and ``repr`` only peek (row count from
    the file's footer, the preview from its first rows), so showing a result never loads a big table."""

    def peek(self, name: str) -> pa.Table | ParquetTable:
        """The table, or its file when not read yet."""
        return cast("pa.Table | ParquetTable", super().__getitem__(name))

    def __getitem__(self, name: str) -> pa.Table:
        v = self.peek(name)
        if isinstance(v, ParquetTable):
            v = v.read()
            super().__setitem__(name, v)
        return v

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return self[name] if name in self else default  # noqa: SIM401 (self.get is this method)

    def values(self) -> Iterator[pa.Table]:  # type: ignore[override]
        return (self[k] for k in list(self))

    def items(self) -> Iterator[tuple[str, pa.Table]]:  # type: ignore[override]
        return ((k, self[k]) for k in list(self))

    def pop(self, name: str, *default: Any) -> Any:
        if name in self:
            v = self[name]
            super().pop(name)
            return v
        return super().pop(name, *default)


def lazy(
    tables: dict[str, pa.Table], name: str, locate: Callable[[], str], schema: pa.Schema | None = None
) -> Tables:
    """``tables`` with ``name`` read from the Parquet file ``locate()`` on first use (as ``schema``)."""
    out = Tables(tables)
    dict.__setitem__(out, name, cast(pa.Table, ParquetTable(locate, schema)))
    return out


def peek(tables: dict[str, pa.Table], name: str) -> pa.Table | ParquetTable:
    """A table of ``tables``, or its :class:`ParquetTable` if still in its file (nothing is read)."""
    return tables.peek(name) if isinstance(tables, Tables) else tables[name]


@dataclass
class Result:
    pipeline: str
    summary: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    tables: dict[str, pa.Table] = field(default_factory=dict)
    parts: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None

    @property
    def table(self) -> pa.Table | None:
        """The main table: ``tables["table"]``, else the only table, else None (see ``.tables``)."""
        if "table" in self.tables:
            return self.tables["table"]
        if len(self.tables) == 1:
            return next(iter(self.tables.values()))
        if "sessions" in self.tables:
            return self.tables["sessions"]
        return None

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document: pipeline, summary, outputs, errors (plus seconds)."""
        return {
            "pipeline": self.pipeline,
            "summary": self.summary,
            "outputs": self.outputs,
            "errors": self.errors,
            "seconds": self.seconds,
        }

    def __repr__(self) -> str:
        tables = ", ".join(f"{k}: {peek(self.tables, k).num_rows} rows" for k in self.tables)
        return (
            f"<Result {self.pipeline}: {json.dumps(self.summary, default=str)[:300]}; "
            f"{len(self.outputs)} outputs, {len(self.errors)} errors{'; ' + tables if tables else ''}>"
        )

    # -- display -----------------------------------------------------------------------------
    def _repr_html_(self) -> str:
        return render_html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # No application/json: JupyterLab and Notebook 7 rank their JSON tree viewer above HTML, so
        # it would hide the report. Scripts get the same data from ``to_dict()`` (or the CLI's --json).
        return {"text/plain": repr(self), "text/html": render_html(self)}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    if isinstance(v, (dict, list)):
        return html.escape(json.dumps(v, default=str)[:200])
    return html.escape(str(v))


def _cell(v: Any, limit: int = 80) -> str:
    """A table cell as text: bytes by their size, maps (lists of pairs) as ``key=value; ...``,
    anything else as ``str``; at most ``limit`` characters."""
    if isinstance(v, (bytes, bytearray)):
        return html.escape(f"<{len(v):,} bytes>")
    if isinstance(v, list) and v and all(isinstance(x, tuple) and len(x) == 2 for x in v):
        text = "; ".join(f"{k}={val}" for k, val in v)
        return html.escape(text if len(text) <= limit else text[: limit - 1] + "…")
    return html.escape(str(v))[:limit]


def table_html(table: pa.Table | ParquetTable, rows: int = PREVIEW_ROWS) -> str:
    first = table.head(rows) if isinstance(table, ParquetTable) else table.slice(0, rows)
    head = first.to_pylist()
    cols = first.column_names
    th = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    trs = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in cols) + "</tr>" for r in head)
    return (
        f"<table class='aerofs-table'><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"
        f"<div style='color:#666'>{table.num_rows:,} rows x {first.num_columns} columns</div>"
    )


def charts(result: Result) -> list[str]:
    """The pipeline's charts (inline SVG): the spec's own (:meth:`Pipeline.charts`), else the generic
    ones below."""
    try:
        from aerofs_kernel.pipelines import get_pipeline

        own = get_pipeline(result.pipeline).charts(result)
        if own:
            return [c for c in own if c]
    except Exception:  # a chart never breaks the display
        pass
    out = []
    try:
        if result.pipeline == "word-count" and result.table is not None and result.table.num_rows:
            tbl = result.table
            names = tbl.column_names
            if "word" in names and "count" in names:
                import pyarrow.compute as pc

                idx = pc.sort_indices(tbl["count"], sort_keys=[("", "descending")])[:15]
                top = tbl.take(idx).to_pylist()
                out.append(bar_chart_svg("Most frequent words", [(r["word"], r["count"]) for r in top]))
        elif result.pipeline == "csv-to-parquet" and result.parts.get("files"):
            files = sorted(result.parts["files"], key=lambda f: -f.get("rows", 0))[:15]
            out.append(
                bar_chart_svg(
                    "Rows per file", [(str(f["path"]).rsplit("/", 1)[-1], f.get("rows", 0)) for f in files]
                )
            )
        elif result.pipeline == "log-sessions":
            for key, title in (("top_pages", "Top pages"), ("status_codes", "Status codes")):
                v = result.summary.get(key) or result.parts.get(key)
                if isinstance(v, dict):
                    out.append(bar_chart_svg(title, sorted(v.items(), key=lambda kv: -kv[1])[:15]))
                elif isinstance(v, list) and v and isinstance(v[0], dict) and len(v[0]) >= 2:
                    k0, k1 = list(v[0])[:2]
                    out.append(bar_chart_svg(title, [(str(r[k0]), r[k1]) for r in v[:15]]))
    except Exception:  # a chart never breaks the display
        pass
    return [c for c in out if c]


def render_html(result: Result) -> str:
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th><td>{_fmt(v)}</td></tr>"
        for k, v in result.summary.items()
    )
    parts = [
        "<div class='aerofs-result'>",
        f"<h4>{html.escape(result.pipeline)}"
        + (f" — {result.seconds:.2f} s" if result.seconds is not None else "")
        + "</h4>",
        f"<table class='aerofs-summary'>{rows}</table>",
    ]
    if result.outputs:
        shown = "".join(f"<li><code>{html.escape(o)}</code></li>" for o in result.outputs[:10])
        more = f"<li>… {len(result.outputs) - 10} more</li>" if len(result.outputs) > 10 else ""
        parts.append(
            f"<details><summary>{len(result.outputs)} outputs</summary><ul>{shown}{more}</ul></details>"
        )
    if result.errors:
        errs = "".join(
            f"<li><code>{html.escape(str(e.get('path')))}</code>"
            + (f":{e['line']}" if e.get("line") else "")
            + (f" @ byte {e['offset']:,}" if isinstance(e.get("offset"), int) and not e.get("line") else "")
            + f" — {html.escape(str(e.get('kind', '')))}: {html.escape(str(e.get('message', '')))}</li>"
            for e in result.errors[:20]
        )
        parts.append(
            f"<details open><summary style='color:#b00'>{len(result.errors)} errors</summary><ul>{errs}</ul></details>"
        )
    for svg in charts(result):
        parts.append(f"<div class='aerofs-chart'>{svg}</div>")
    for name in result.tables:
        parts.append(
            f"<details{' open' if len(result.tables) == 1 else ''}><summary>{html.escape(name)}</summary>"
        )
        parts.append(table_html(peek(result.tables, name)) + "</details>")
    parts.append("</div>")
    return "".join(parts)

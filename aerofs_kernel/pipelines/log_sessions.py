"""``log-sessions``: visitor sessions and a traffic report from Apache/Nginx access logs (Rust engine).

Lines in Common or Combined format (auto-detected per line), or in a custom ``log_format`` (GoAccess
``%h %^[%d:%t %^] "%r" %s %b "%R" "%u"`` or nginx ``$remote_addr [$time_local] "$request" ...`` style),
.gz/.zst decompressed, are streamed through the engine in parallel blocks with memory bounded by the
sessions (never one record per request). A session is a maximal run of one key's requests (IP + user
agent, or IP) no more than ``timeout_minutes`` apart *in time order*, whatever order the lines come in:
rotated files in any order, out-of-order lines and the tasks of a job all give the result of one pass
over the lines sorted by time (ties in input order).

A job may cut a big uncompressed log, local or remote, into byte ranges (:meth:`LogSessions.plan`,
``path#bytes=S-E``: the lines starting in the range). A remote range is streamed from just before its
start, never from the object's start: the line numbers of its unparsed samples count from there in the
task and are made the object's at the merge (:mod:`~aerofs_kernel.pipelines.remote_ranges`). Each task also returns ``visitors`` (ip, user_agent, day) and
``counts`` (kind, value, hits) tables, so :meth:`LogSessions.merge` is exact: sessions cut by tasks are
joined, unique visitors are a distinct count of the union, top lists come from the summed counts. Outputs under ``dst``: ``sessions.parquet``,
``summary.json`` and ``report.html`` (self-contained, inline SVG charts). With ``dst`` the engine writes
``sessions.parquet`` as the run goes (memory bounded by the open sessions, not the finished ones) and the
result's ``sessions`` table is read from that file the first time it is used (a notebook's display only
peeks at its first rows), so a log of millions of sessions is not loaded into the kernel unasked. Summary keys: ``requests,
sessions, unique_visitors`` (GoAccess's definition: same IP, date and user agent), ``bytes,
unparsed_lines`` plus bounce rate, durations, pages per session, top pages/referrers/user agents,
status codes, traffic per hour and day, and samples of unparsed lines.
"""

from __future__ import annotations

import html
import json
import os
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from aerofs_kernel import _engine
from aerofs_kernel.pipelines import atomic, register, remote_ranges
from aerofs_kernel.pipelines.base import Pipeline, RunOutput, split_into_ranges, split_range
from aerofs_kernel.result import lazy

#: Uncompressed logs larger than this (and than their share of the tasks) are cut into byte ranges.
SPLIT_BYTES = 256 << 20

ASSETS = ["css", "js", "png", "jpg", "jpeg", "gif", "ico", "svg", "webp", "woff", "woff2", "ttf", "eot", "map",
          "mp4", "webm"]  # fmt: skip

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "log-sessions",
    "type": "object",
    "required": ["src"],
    "additionalProperties": False,
    "properties": {
        "src": {
            "description": "Access log file(s) (.gz/.zst too), folder or glob; rotated files are merged in "
            "time order. Local or fsspec URL.",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        },
        "dst": {
            "type": ["string", "null"],
            "default": None,
            "description": "Folder for sessions.parquet, summary.json and report.html. None: tables only.",
        },
        "log_format": {
            "type": "string",
            "minLength": 1,
            "default": "auto",
            "examples": [
                "auto",
                "combined",
                "common",
                '%h %^[%d:%t %^] "%r" %s %b "%R" "%u"',
                '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                '"$http_referer" "$http_user_agent"',
            ],
            "description": "auto/combined/common: the built-in parser (Common and Combined recognised per "
            "line). Otherwise a format string, GoAccess style (%h host, %e user, %x or %d:%t time, %r "
            "request, %m %U %q %H, %s status, %b bytes, %R referrer, %u user agent, %^ ignored) or nginx "
            "log_format style ($remote_addr, $remote_user, $time_local, $time_iso8601, $request, $status, "
            "$body_bytes_sent, $http_referer, $http_user_agent; other variables are read and ignored).",
        },
        "session_key": {
            "enum": ["ip_ua", "ip"],
            "default": "ip_ua",
            "description": "What identifies a visitor's session: IP address and user agent, or IP only.",
        },
        "timeout_minutes": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 30,
            "description": "Inactivity (minutes) after which the next request starts a new session.",
        },
        "asset_extensions": {
            "type": "array",
            "items": {"type": "string"},
            "default": ASSETS,
            "description": "File extensions of asset requests, which count as requests but not pages.",
        },
        "top": {"type": "integer", "minimum": 1, "default": 10, "description": "Length of the top lists."},
        "unparsed_samples": {
            "type": "integer",
            "minimum": 0,
            "default": 20,
            "description": "How many unparsed lines to keep (file, line number, text) in the summary.",
        },
        "threads": {
            "type": "integer",
            "minimum": 0,
            "default": 0,
            "description": "Worker threads; 0: one per core.",
        },
        "chunk_size": {
            "type": "integer",
            "minimum": 1,
            "default": 8388608,
            "description": "Bytes per parallel chunk (cut at newlines). Mostly for tests.",
        },
        "on_error": {
            "enum": ["skip", "fail"],
            "default": "skip",
            "description": "An unreadable file: record it in errors and go on (skip), or stop (fail). "
            "Malformed lines are never fatal: they are counted in unparsed_lines.",
        },
    },
}


def _bars(title: str, items: list[tuple[str, float]]) -> str:
    if not items:
        return f"<h2>{html.escape(title)}</h2><p>none</p>"
    w, bh = 640, 18
    top = max(v for _, v in items) or 1
    rows = []
    for i, (k, v) in enumerate(items):
        y = i * (bh + 4)
        rows.append(
            f'<rect x="200" y="{y}" width="{max(1, int(400 * v / top))}" height="{bh}" fill="#3b82f6"/>'
            f'<text x="195" y="{y + 13}" text-anchor="end" font-size="11">{html.escape(str(k)[:40])}</text>'
            f'<text x="{205 + int(400 * v / top)}" y="{y + 13}" font-size="11">{v:g}</text>'
        )
    h = len(items) * (bh + 4)
    return f'<h2>{html.escape(title)}</h2><svg width="{w}" height="{h}" role="img">{"".join(rows)}</svg>'


def render_report(summary: dict[str, Any]) -> str:
    """A self-contained HTML page (inline SVG, no scripts, no network) of ``summary``."""
    figures = [
        (k, summary.get(k))
        for k in ("requests", "unique_visitors", "sessions", "bytes", "bounce_rate", "mean_duration_s",
                  "median_duration_s", "pages_per_session", "bot_sessions", "unparsed_lines")
    ]  # fmt: skip
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in figures)
    parts = [
        _bars(
            "Requests per hour", [(f"{h:02d}:00", v) for h, v in enumerate(summary.get("hits_per_hour", []))]
        ),
        _bars("Requests per day", list(summary.get("hits_per_day", {}).items())),
        _bars("Status codes", list(summary.get("status_codes", {}).items())),
        _bars("Top pages", [(x["value"], x["hits"]) for x in summary.get("top_pages", [])]),
        _bars("Top referrers", [(x["value"], x["hits"]) for x in summary.get("top_referrers", [])]),
        _bars("Top user agents", [(x["value"], x["hits"]) for x in summary.get("top_user_agents", [])]),
    ]
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>AeroFS log sessions</title>'
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}</style></head>"
        f"<body><h1>Log sessions</h1><table>{table}</table>{''.join(parts)}</body></html>"
    )


def write_reports(dst: str, summary: dict[str, Any]) -> list[str]:
    """``summary.json`` and ``report.html`` under ``dst``."""
    return [
        atomic.write_text(os.path.join(dst, "summary.json"), json.dumps(summary, indent=2)),
        atomic.write_text(os.path.join(dst, "report.html"), render_report(summary)),
    ]


def write_outputs(dst: str, sessions: pa.Table, summary: dict[str, Any]) -> list[str]:
    """A job's merge: the sessions table it holds, then the reports."""
    return [atomic.write_table(sessions, os.path.join(dst, "sessions.parquet")), *write_reports(dst, summary)]


def _sessions_file(out: RunOutput, written: str) -> str:
    """Where ``sessions.parquet`` is when the table is first used: where the engine wrote it, or, for a
    remote ``dst`` (written in a local staging folder, uploaded, the folder removed), the URL the
    runner put in the outputs."""
    if os.path.exists(written):
        return written
    for o in out.outputs:
        if o.rstrip("/").rsplit("/", 1)[-1] == "sessions.parquet":
            return o
    return written


def _first(a: Any, b: Any, later: bool) -> bool:
    """Whether ``b`` (a time or None) should replace ``a``: earlier (``later``: later) wins; on a tie the
    one already kept (the earlier task) stays for entries, the later one wins for exits."""
    if b is None:
        return False
    if a is None:
        return True
    return b >= a if later else b < a


def merge_sessions(tables: list[pa.Table], timeout_s: float, by_ua: bool = True) -> pa.Table:
    """Join sessions of the same key that tasks cut apart: per key, sessions whose time spans overlap
    or lie within ``timeout_s`` of each other are one session, which is what one pass gives (see the
    engine's ``sessionize`` module). Entry/exit pages follow ``entry_time``/``exit_time``."""
    if not tables:
        return pa.table({})
    rows: list[dict[str, Any]] = []
    for part, t in enumerate(tables):
        for r in t.to_pylist():
            r["_part"] = part
            rows.append(r)
    key = (lambda r: (r["ip"], r["user_agent"])) if by_ua else (lambda r: (r["ip"], ""))
    rows.sort(key=lambda r: (key(r), r["start"], r["_part"]))
    out: list[dict[str, Any]] = []
    for r in rows:
        cur = out[-1] if out else None
        if cur is not None and key(cur) == key(r) and (r["start"] - cur["end"]).total_seconds() <= timeout_s:
            for k in ("requests", "pages", "bytes", "status_2xx", "status_3xx", "status_4xx", "status_5xx"):
                cur[k] += r[k]
            if _first(cur["entry_time"], r["entry_time"], later=False):
                cur["entry_time"], cur["entry_page"] = r["entry_time"], r["entry_page"]
            if _first(cur["exit_time"], r["exit_time"], later=True):
                cur["exit_time"], cur["exit_page"] = r["exit_time"], r["exit_page"]
            cur["end"] = max(cur["end"], r["end"])
            cur["duration_s"] = int((cur["end"] - cur["start"]).total_seconds())
        else:
            out.append(dict(r))
    out.sort(key=lambda r: (r["start"], r["ip"], r["user_agent"]))
    for i, r in enumerate(out):
        r["session_id"] = i
        del r["_part"]
    return pa.Table.from_pylist(out, schema=tables[0].schema)


def _median(values: list[int]) -> float:
    v = sorted(values)
    n = len(v)
    if not n:
        return 0.0
    return float(v[n // 2]) if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


class LogSessions(Pipeline):
    name: ClassVar[str] = "log-sessions"
    title: ClassVar[str] = "Log sessions"
    description: ClassVar[str] = (
        "Parse Apache/Nginx access logs (Common/Combined, gzip) into visitor sessions (IP + user agent, "
        "30-minute inactivity) and a traffic report: requests, unique visitors, bounce rate, durations, top "
        "pages, referrers, user agents, status codes, traffic per hour and day."
    )
    schema: ClassVar[dict[str, Any]] = SCHEMA
    input_suffixes: ClassVar[tuple[str, ...] | None] = None

    def run(
        self, inputs: list[str], dst: str | None, options: dict[str, Any], progress: _engine.Progress
    ) -> RunOutput:
        eng = {k: v for k, v in options.items() if k not in ("src", "dst")}
        paths, ranges = zip(*(split_range(i) for i in inputs), strict=True) if inputs else ((), ())
        if any(r is not None for r in ranges):
            eng["byte_ranges"] = list(ranges)
        if dst:
            # The engine writes sessions.parquet as the run goes and returns no sessions table.
            eng["output_dir"] = dst
        out = RunOutput.from_engine(_engine.log_sessions(list(paths), json.dumps(eng), progress))
        views = remote_ranges.views(list(paths))
        if views:
            # A range view starts at its range's start - 1, so the engine counts its lines from there
            # (it reads nothing before it); the merge makes them the object's.
            remote_ranges.locate(out.summary.get("unparsed_samples", []), "file", views)
            remote_ranges.locate(out.errors, "path", views)
            out.parts[remote_ranges.PARTS_KEY] = remote_ranges.parts(views)
        if dst:
            parquet = os.path.join(dst, "sessions.parquet")
            # summary.json again, as Python writes it (and after the samples' lines are located).
            out.outputs = [parquet, *write_reports(dst, out.summary)]
            # The engine's (empty) sessions table has the table's types, which the file cannot all keep.
            schema = out.tables["sessions"].schema
            out.tables = lazy(out.tables, "sessions", lambda: _sessions_file(out, parquet), schema)
        return out

    def plan(self, inputs: list[tuple[str, int]], options: dict[str, Any], max_tasks: int) -> list[list[str]]:
        """Whole files, except that an uncompressed log bigger than ``SPLIT_BYTES`` (and than its share of
        the tasks) is cut into byte ranges ``path#bytes=S-E``; a line belongs to the range it starts in."""
        return super().plan(split_into_ranges(inputs, max_tasks, SPLIT_BYTES), options, max_tasks)

    def merge(self, parts: list[RunOutput], dst: str | None, options: dict[str, Any]) -> RunOutput:
        """Exactly the result of one run over all the tasks' inputs: sessions cut by task boundaries are
        joined (:func:`merge_sessions`), unique visitors are the distinct (ip, user agent, day) of all
        tasks, top lists come from the summed per-value counts; request-level figures add up."""
        merged = super().merge(parts, None, options)
        timeout = float(options.get("timeout_minutes", 30)) * 60
        by_ua = options.get("session_key", "ip_ua") != "ip"
        sessions = merge_sessions(
            [p.tables["sessions"] for p in parts if "sessions" in p.tables], timeout, by_ua
        )
        visitors = [p.tables["visitors"] for p in parts if "visitors" in p.tables]
        counts = [p.tables["counts"] for p in parts if "counts" in p.tables]
        merged.tables = {"sessions": sessions}
        s = merged.summary
        # Files, not tasks: the byte ranges of one big log are one file (requests per file add up).
        per_file: dict[str, int] = {}
        for p in parts:
            for k, v in p.summary.get("per_file", {}).items():
                per_file[k] = per_file.get(k, 0) + v
        s["per_file"] = per_file
        s["files"] = len(per_file)
        n = sessions.num_rows
        s["sessions"] = n
        if n:
            s["bounce_rate"] = pc.sum(pc.less_equal(sessions.column("pages"), 1)).as_py() / n
            s["mean_duration_s"] = pc.mean(sessions.column("duration_s")).as_py()
            s["median_duration_s"] = _median(sessions.column("duration_s").to_pylist())
            s["pages_per_session"] = pc.sum(sessions.column("pages")).as_py() / n
            s["bot_sessions"] = pc.sum(sessions.column("is_bot")).as_py()
        if visitors:
            v = pa.concat_tables(visitors).group_by(["ip", "user_agent", "day"]).aggregate([])
            merged.tables["visitors"] = v
            s["unique_visitors"] = v.num_rows
        top = int(options.get("top", 10))
        if counts:
            c = pa.concat_tables(counts).group_by(["kind", "value"]).aggregate([("hits", "sum")])
            c = c.rename_columns(["kind", "value", "hits"])
            merged.tables["counts"] = c
            for kind, key in (
                ("page", "top_pages"),
                ("referrer", "top_referrers"),
                ("user_agent", "top_user_agents"),
            ):
                rows = c.filter(pc.equal(c.column("kind"), kind)).sort_by(
                    [("hits", "descending"), ("value", "ascending")]
                )
                s[key] = [{"value": r["value"], "hits": r["hits"]} for r in rows.slice(0, top).to_pylist()]
        hours = [0] * 24
        days: dict[str, int] = {}
        status: dict[str, int] = {}
        samples: list[Any] = []
        for p in parts:
            for i, h in enumerate(p.summary.get("hits_per_hour", [])):
                hours[i] += h
            for k, d in p.summary.get("hits_per_day", {}).items():
                days[k] = days.get(k, 0) + d
            for k, c2 in p.summary.get("status_codes", {}).items():
                status[k] = status.get(k, 0) + c2
            samples.extend(dict(x) for x in p.summary.get("unparsed_samples", []))
        ranges = [r for p in parts for r in p.parts.get(remote_ranges.PARTS_KEY, [])]
        merged.errors = [dict(e) for e in merged.errors]  # the parts' own dicts stay as they were
        remote_ranges.fix_lines(samples, "file", ranges)
        remote_ranges.fix_lines(merged.errors, "path", ranges)
        s.update(hits_per_hour=hours, hits_per_day=dict(sorted(days.items())),
                 status_codes=dict(sorted(status.items())),
                 unparsed_samples=samples[: int(options.get("unparsed_samples", 20))])  # fmt: skip
        if dst:
            merged.outputs = write_outputs(dst, sessions, s)
        return merged


register(LogSessions())

"""``log-sessions``: visitor sessions and a traffic report from Apache/Nginx access logs (Rust engine).

Lines in Common or Combined format (auto-detected per line; .gz/.zst decompressed) are parsed by hand
in parallel; each key's hits (IP + user agent, or IP) are sorted by time before sessionising, so rotated
files may come in any order and out-of-order lines land in the right session; an inactivity gap longer
than ``timeout_minutes`` starts a new session. Outputs under ``dst``: ``sessions.parquet``,
``summary.json`` and ``report.html`` (self-contained, inline SVG charts). Summary keys: ``requests,
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
import pyarrow.parquet as pq

from aerofs_kernel import _engine
from aerofs_kernel.pipelines import register
from aerofs_kernel.pipelines.base import Pipeline, RunOutput

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
            "enum": ["auto", "combined", "common"],
            "default": "auto",
            "description": "Log format; auto recognises Common and Combined per line.",
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


def _atomic_text(dest: str, text: str) -> str:
    tmp = os.path.join(
        os.path.dirname(os.path.abspath(dest)), f".{os.path.basename(dest)}.aerofs-tmp-{os.getpid()}"
    )
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


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


def write_outputs(dst: str, sessions: pa.Table, summary: dict[str, Any]) -> list[str]:
    os.makedirs(dst, exist_ok=True)
    pq_path = os.path.join(dst, "sessions.parquet")
    tmp = os.path.join(dst, f".sessions.parquet.aerofs-tmp-{os.getpid()}")
    try:
        pq.write_table(sessions, tmp, compression="zstd")
        os.replace(tmp, pq_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return [
        pq_path,
        _atomic_text(os.path.join(dst, "summary.json"), json.dumps(summary, indent=2)),
        _atomic_text(os.path.join(dst, "report.html"), render_report(summary)),
    ]


def merge_sessions(tables: list[pa.Table], timeout_s: float) -> pa.Table:
    """Join sessions of the same key that partial runs cut apart: per key, sessions whose time spans
    overlap or lie within ``timeout_s`` of each other are one session (what one pass gives)."""
    if not tables:
        return pa.table({})
    t = pa.concat_tables(tables).sort_by(
        [("ip", "ascending"), ("user_agent", "ascending"), ("start", "ascending")]
    )
    rows = t.to_pylist()
    out: list[dict[str, Any]] = []
    for r in rows:
        cur = out[-1] if out else None
        if (
            cur is not None
            and cur["ip"] == r["ip"]
            and cur["user_agent"] == r["user_agent"]
            and (r["start"] - cur["end"]).total_seconds() <= timeout_s
        ):
            for k in ("requests", "pages", "bytes", "status_2xx", "status_3xx", "status_4xx", "status_5xx"):
                cur[k] += r[k]
            if cur["entry_page"] is None:
                cur["entry_page"] = r["entry_page"]
            if r["end"] >= cur["end"]:
                cur["end"] = r["end"]
                cur["exit_page"] = r["exit_page"] or cur["exit_page"]
            cur["duration_s"] = int((cur["end"] - cur["start"]).total_seconds())
        else:
            out.append(dict(r))
    out.sort(key=lambda r: (r["start"], r["ip"], r["user_agent"]))
    for i, r in enumerate(out):
        r["session_id"] = i
    return pa.Table.from_pylist(out, schema=t.schema)


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
        out = RunOutput.from_engine(_engine.log_sessions(list(inputs), json.dumps(eng), progress))
        if dst:
            out.outputs = write_outputs(dst, out.tables["sessions"], out.summary)
        return out

    def merge(self, parts: list[RunOutput], dst: str | None, options: dict[str, Any]) -> RunOutput:
        """Sessions cut by task boundaries are joined (:func:`merge_sessions`); request-level figures add
        up. ``unique_visitors`` is the sum of the tasks' counts, exact only when a visitor's day does not
        span two tasks."""
        merged = super().merge(parts, None, options)
        timeout = float(options.get("timeout_minutes", 30)) * 60
        sessions = merge_sessions([p.tables["sessions"] for p in parts if "sessions" in p.tables], timeout)
        merged.tables = {"sessions": sessions}
        s = merged.summary
        n = sessions.num_rows
        s["sessions"] = n
        if n:
            dur = sessions.column("duration_s")
            s["bounce_rate"] = pc.sum(pc.less_equal(sessions.column("pages"), 1)).as_py() / n
            s["mean_duration_s"] = pc.mean(dur).as_py()
            s["median_duration_s"] = float(pc.approximate_median(dur).as_py())
            s["pages_per_session"] = pc.sum(sessions.column("pages")).as_py() / n
            s["bot_sessions"] = pc.sum(sessions.column("is_bot")).as_py()
        hours = [0] * 24
        days: dict[str, int] = {}
        status: dict[str, int] = {}
        samples: list[Any] = []
        for p in parts:
            for i, v in enumerate(p.summary.get("hits_per_hour", [])):
                hours[i] += v
            for k, v in p.summary.get("hits_per_day", {}).items():
                days[k] = days.get(k, 0) + v
            for k, v in p.summary.get("status_codes", {}).items():
                status[k] = status.get(k, 0) + v
            samples.extend(p.summary.get("unparsed_samples", []))
        s.update(hits_per_hour=hours, hits_per_day=dict(sorted(days.items())), status_codes=status,
                 unparsed_samples=samples[: int(options.get("unparsed_samples", 20))])  # fmt: skip
        for key in ("top_pages", "top_referrers", "top_user_agents"):
            acc: dict[str, int] = {}
            for p in parts:
                for x in p.summary.get(key, []):
                    acc[x["value"]] = acc.get(x["value"], 0) + x["hits"]
            s[key] = [
                {"value": k, "hits": v} for k, v in sorted(acc.items(), key=lambda kv: (-kv[1], kv[0]))
            ][: int(options.get("top", 10))]
        if dst:
            merged.outputs = write_outputs(dst, sessions, s)
        return merged


register(LogSessions())

"""Small charts as inline SVG for result displays: bars, a timeline histogram, a scatter of positions.

Self-contained markup (no scripts, no network, no plotting library), so a result renders the same in
JupyterLab, Notebook 7, VS Code, nbconvert HTML and the ResultWidget. Hover text uses SVG ``<title>``.
Each chart carries ``data-chart`` (its kind) so tests and stylesheets can find it.
"""

from __future__ import annotations

import datetime as dt
import html
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import pyarrow as pa

BAR = "#4c78a8"
POINT = "#e45756"


def _num(v: float) -> str:
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.3f}"
    return f"{int(v):,}"


def bar_chart_svg(title: str, items: Sequence[tuple[str, float]], width: int = 420, kind: str = "bar") -> str:
    """A horizontal bar chart: one labelled bar per ``(label, value)``, in the given order."""
    if not items:
        return ""
    top = max(v for _, v in items) or 1
    bar_h, label_w = 16, 160
    h = 24 + bar_h * len(items) + 4
    rows = []
    for n, (label, v) in enumerate(items):
        y = 20 + n * bar_h
        w = max(1, int((width - label_w - 60) * v / top))
        full = html.escape(str(label))
        short = html.escape(str(label) if len(str(label)) <= 26 else str(label)[:25] + "…")
        rows.append(
            f"<g><title>{full}: {_num(v)}</title>"
            f"<text x='{label_w - 4}' y='{y + 12}' text-anchor='end' font-size='11'>{short}</text>"
            f"<rect x='{label_w}' y='{y + 2}' width='{w}' height='{bar_h - 4}' fill='{BAR}'/>"
            f"<text x='{label_w + w + 4}' y='{y + 12}' font-size='11'>{_num(v)}</text></g>"
        )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{h}' role='img' data-chart='{kind}'>"
        f"<text x='0' y='13' font-size='12' font-weight='bold'>{html.escape(title)}</text>{''.join(rows)}</svg>"
    )


def top_counts(values: Iterable[str | None], limit: int = 15) -> tuple[list[tuple[str, int]], int]:
    """The ``limit`` most common non-empty values with their counts (most common first, ties by
    name), and how many values were empty."""
    counts: Counter[str | None] = Counter(values)
    return rank_counts(counts, limit)


def rank_counts(counts: Mapping[str | None, int], limit: int = 15) -> tuple[list[tuple[str, int]], int]:
    """:func:`top_counts` from counts already made (e.g. by Arrow's ``value_counts``): blank labels
    (None, whitespace) are counted as empty, labels are stripped, the tail beyond ``limit`` folded."""
    merged: Counter[str] = Counter()
    empty = 0
    for v, c in counts.items():
        if v is None or not str(v).strip():
            empty += c
        else:
            merged[str(v).strip()] += c
    ranked = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(ranked) > limit:
        rest = sum(c for _, c in ranked[limit - 1 :])
        ranked = [*ranked[: limit - 1], (f"{len(ranked) - limit + 1} others", rest)]
    return ranked, empty


# -- timeline ------------------------------------------------------------------------------------

#: The time units of a timeline, finest first, with the most columns each may draw (hours only for
#: up to two days of captures, days up to about a quarter, then months, then years).
_UNITS = (("hour", 48), ("day", 92), ("month", 120), ("year", 0))


def _floor(t: dt.datetime, unit: str) -> dt.datetime:
    if unit == "hour":
        return t.replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        return t.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "month":
        return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return t.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)


def _next(t: dt.datetime, unit: str) -> dt.datetime:
    if unit == "hour":
        return t + dt.timedelta(hours=1)
    if unit == "day":
        return t + dt.timedelta(days=1)
    if unit == "month":
        return t.replace(year=t.year + (t.month == 12), month=t.month % 12 + 1)
    return t.replace(year=t.year + 1)


def _label(t: dt.datetime, unit: str) -> str:
    return {
        "hour": t.strftime("%Y-%m-%d %H:00"),
        "day": t.strftime("%Y-%m-%d"),
        "month": t.strftime("%Y-%m"),
        "year": t.strftime("%Y"),
    }[unit]


def time_bins(
    times: Iterable[dt.datetime | None] | pa.Array | pa.ChunkedArray,
) -> tuple[str, list[tuple[str, int]]]:
    """Counts per hour, day, month or year (the finest unit within its column limit in ``_UNITS``),
    every bin from the first to the last time included (empty ones with 0). An Arrow timestamp
    array is counted by Arrow (a million capture times in a fraction of a second)."""
    if isinstance(times, (pa.Array, pa.ChunkedArray)):
        return _time_bins_arrow(times)
    ts = sorted(t.replace(tzinfo=None) for t in times if t is not None)
    if not ts:
        return "day", []
    unit = _unit(ts[0], ts[-1])
    counts = Counter(_floor(t, unit) for t in ts)
    return unit, _fill(ts[0], ts[-1], unit, counts)


def _time_bins_arrow(times: pa.Array | pa.ChunkedArray) -> tuple[str, list[tuple[str, int]]]:
    import pyarrow.compute as pc

    if times.null_count == len(times):
        return "day", []
    if pa.types.is_timestamp(times.type) and times.type.tz is not None:
        times = times.cast(pa.timestamp(times.type.unit))  # wall-clock bins, as the Python path does
    mm = pc.min_max(times)
    lo, hi = mm["min"].as_py(), mm["max"].as_py()
    unit = _unit(lo, hi)
    floored = pc.floor_temporal(times, unit=unit)
    counts = {row["values"]: row["counts"] for row in pc.value_counts(floored.drop_null()).to_pylist()}
    return unit, _fill(lo, hi, unit, counts)


def _unit(lo: dt.datetime, hi: dt.datetime) -> str:
    unit = "year"
    for unit, limit in _UNITS:
        n, b = 0, _floor(lo, unit)
        while b <= hi and n <= limit:
            b, n = _next(b, unit), n + 1
        if n <= limit:
            break
    return unit


def _fill(
    lo: dt.datetime, hi: dt.datetime, unit: str, counts: Mapping[dt.datetime, int]
) -> list[tuple[str, int]]:
    bins, b = [], _floor(lo, unit)
    while b <= hi:
        bins.append((_label(b, unit), counts.get(b, 0)))
        b = _next(b, unit)
    return bins


def timeline_svg(
    title: str,
    times: Iterable[dt.datetime | None] | pa.Array | pa.ChunkedArray,
    width: int = 560,
    height: int = 150,
) -> str:
    """A histogram of ``times`` over time (columns per hour/day/month/year, chosen by the span)."""
    unit, bins = time_bins(times)
    if not bins:
        return ""
    top = max(c for _, c in bins) or 1
    left, right, top_pad, bottom = 36, 8, 22, 30
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    col_w = plot_w / len(bins)
    cols = []
    for i, (label, c) in enumerate(bins):
        if not c:
            continue
        h = max(1.0, plot_h * c / top)
        x = left + i * col_w
        cols.append(
            f"<rect x='{x:.1f}' y='{top_pad + plot_h - h:.1f}' width='{max(1.0, col_w - 1):.1f}' "
            f"height='{h:.1f}' fill='{BAR}' data-bin='{html.escape(label)}' data-count='{c}'>"
            f"<title>{html.escape(label)}: {c:,}</title></rect>"
        )
    base = top_pad + plot_h
    axis = (
        f"<line x1='{left}' y1='{base}' x2='{width - right}' y2='{base}' stroke='#999'/>"
        f"<text x='{left - 4}' y='{top_pad + 9}' text-anchor='end' font-size='10'>{top:,}</text>"
        f"<text x='{left - 4}' y='{base}' text-anchor='end' font-size='10'>0</text>"
        f"<text x='{left}' y='{base + 14}' font-size='10'>{html.escape(bins[0][0])}</text>"
        f"<text x='{width - right}' y='{base + 14}' text-anchor='end' font-size='10'>"
        f"{html.escape(bins[-1][0])}</text>"
        f"<text x='{left + plot_w / 2:.0f}' y='{base + 26}' text-anchor='middle' font-size='10' fill='#666'>"
        f"per {unit}</text>"
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
        f"data-chart='timeline' data-unit='{unit}'>"
        f"<text x='0' y='13' font-size='12' font-weight='bold'>{html.escape(title)}</text>"
        f"{axis}{''.join(cols)}</svg>"
    )


# -- positions -----------------------------------------------------------------------------------


def scatter_svg(
    title: str,
    points: Sequence[tuple[float, float, str]],
    width: int = 420,
    height: int = 300,
    max_points: int = 2000,
) -> str:
    """A scatter of ``(longitude, latitude, label)`` in an equirectangular frame fitted to the points
    (north up), with the bounds written on the axes. Above ``max_points``, an even sample is drawn."""
    pts = [(x, y, s) for x, y, s in points if -180 <= x <= 180 and -90 <= y <= 90]
    if not pts:
        return ""
    shown = pts if len(pts) <= max_points else [pts[i * len(pts) // max_points] for i in range(max_points)]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    # Pad the frame (a single place still gets a visible neighbourhood) and keep degrees square-ish.
    pad_x, pad_y = max((x1 - x0) * 0.08, 0.005), max((y1 - y0) * 0.08, 0.005)
    x0, x1, y0, y1 = x0 - pad_x, x1 + pad_x, y0 - pad_y, y1 + pad_y
    left, right, top_pad, bottom = 8, 8, 22, 30
    plot_w, plot_h = width - left - right, height - top_pad - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return top_pad + (y1 - y) / (y1 - y0) * plot_h

    dots = "".join(
        f"<circle cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='3' fill='{POINT}' fill-opacity='0.7'>"
        f"<title>{html.escape(s)} ({y:.5f}, {x:.5f})</title></circle>"
        for x, y, s in shown
    )
    frame = (
        f"<rect x='{left}' y='{top_pad}' width='{plot_w}' height='{plot_h}' fill='none' stroke='#ccc'/>"
        f"<text x='{left}' y='{top_pad + plot_h + 14}' font-size='10'>{x0:.4f}°</text>"
        f"<text x='{left + plot_w}' y='{top_pad + plot_h + 14}' text-anchor='end' font-size='10'>{x1:.4f}°</text>"
        f"<text x='{left + plot_w / 2:.0f}' y='{top_pad + plot_h + 26}' text-anchor='middle' font-size='10' "
        f"fill='#666'>longitude · latitude {y0:.4f}° to {y1:.4f}°</text>"
    )
    note = f" ({len(shown):,} of {len(pts):,} drawn)" if len(shown) < len(pts) else ""
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
        f"data-chart='scatter' data-points='{len(pts)}'>"
        f"<text x='0' y='13' font-size='12' font-weight='bold'>{html.escape(title + note)}</text>"
        f"{frame}{dots}</svg>"
    )

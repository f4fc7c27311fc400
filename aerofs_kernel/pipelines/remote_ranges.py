"""Line numbers in byte ranges of remote objects, exact without reading an object from its start.

A job's task over the byte range ``[S, E)`` of a remote object reads it through a *range view*
(:meth:`aerofs_kernel.sources.StreamSet.register`): a stream that starts at byte ``W = max(S - 1, 0)``
of the object. What the engine reports in the view's terms is fixed here:

* byte offsets: ``+ W``, in the task (:func:`locate`);
* line numbers count from the view's start. The object's line is that plus the newlines before
  ``W``, which no task knows alone, so the task marks each located item with its range's start and
  returns, per range, the newlines from its ``W`` to the next range's (``E - 1``; counted by the view as
  the engine reads, see :meth:`aerofs_kernel.sources.RemoteStream.newlines`). The ranges of one object
  tile it, so the merge adds the counts of the ranges before an item's (:func:`fix_lines`).

The same numbers as a local file's ranges, whose lines the engine counts from the file's start (a
local read of the head; a remote one would fetch it, gigabytes for the last range of a big object).
"""

from __future__ import annotations

from typing import Any

#: The private key of a task's located item (error, sample) whose line the merge must fix: the start
#: of its byte range.
RANGE_START = "_range_start"
#: The key of the per-range newline counts in a task's ``parts``.
PARTS_KEY = "remote_ranges"


def views(paths: list[str], newlines: bool = True) -> dict[str, dict[str, int]]:
    """``{engine path: {"start", "end", "base", "newlines"}}`` for the paths that are range views
    (``newlines``: 0 when not asked for, so that none is fetched)."""
    from aerofs_kernel.sources import range_view

    out: dict[str, dict[str, int]] = {}
    for p in paths:
        v = range_view(p)
        if v is not None and v.origin is not None and p not in out:
            out[p] = {
                "start": v.origin[0],
                "end": v.origin[1],
                "base": v.base,
                "newlines": v.newlines() if newlines else 0,
            }
    return out


def locate(items: list[dict[str, Any]], key: str, found: dict[str, dict[str, int]]) -> None:
    """Items (errors, samples; ``key`` names their path field) read through a view: offsets become the
    object's; a line is marked for :func:`fix_lines`."""
    for item in items:
        v = found.get(item.get(key))  # type: ignore[arg-type]
        if v is None:
            continue
        if item.get("offset") is not None:
            item["offset"] += v["base"]
        if item.get("line") is not None:
            item[RANGE_START] = v["start"]


def parts(found: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """What a task returns for :func:`fix_lines` (engine paths become URLs in the runner)."""
    return [{"path": p, "start": v["start"], "newlines": v["newlines"]} for p, v in found.items()]


def fix_lines(items: list[dict[str, Any]], key: str, ranges: list[dict[str, Any]]) -> None:
    """Make the marked items' lines the object's: add the newlines of the ranges of the same object
    that start before theirs (every task's ``parts``, gathered)."""
    by_path: dict[str, dict[int, int]] = {}
    for r in ranges:
        by_path.setdefault(r["path"], {})[int(r["start"])] = int(r["newlines"])
    for item in items:
        start = item.pop(RANGE_START, None)
        if start is None:
            continue
        counts = by_path.get(item.get(key), {})  # type: ignore[arg-type]
        item["line"] += sum(n for s, n in counts.items() if s < start)


def relocated(e: BaseException, found: dict[str, dict[str, int]]) -> BaseException:
    """An engine InputError about a view (``on_error="fail"`` stops at it, with no merge to come): the
    same error naming the object's byte; its line, known only counted from the range's start, is
    given as such. Anything else comes back as it is."""
    from aerofs_kernel import _engine

    path = getattr(e, "path", None)
    v = found.get(path) if isinstance(e, _engine.InputError) and path else None
    if v is None:
        return e
    line, offset = getattr(e, "line", None), getattr(e, "offset", None)
    head = (
        f"{path}"
        + (f":{line}" if line is not None else "")
        + (f" (byte {offset})" if offset is not None else "")
    )
    message = str(e)[len(head) + 2 :] if str(e).startswith(head + ": ") else str(e)
    offset = None if offset is None else offset + v["base"]
    where = f" (byte {offset})" if offset is not None else ""
    if line is not None:
        where += f" (line {line} of the byte range starting at byte {v['start']})"
    new = _engine.InputError(f"{path}{where}: {message}")
    new.path, new.line, new.offset = path, None, offset  # type: ignore[attr-defined]
    return new

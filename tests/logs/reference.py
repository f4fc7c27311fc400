"""A straightforward Python regex implementation of log-sessions (the tests' reference, the bench's peer),
and a seeded generator of combined logs."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone

LINE = re.compile(r'^(\S+) (\S+) (\S+) \[([^\]]+)\] "(.*?)" (\d{3}) (\d+|-)(?: "(.*?)" "(.*)")?\r?$')
ASSETS = {"css", "js", "png", "jpg", "jpeg", "gif", "ico", "svg", "webp", "woff", "woff2", "ttf", "eot", "map",
          "mp4", "webm"}  # fmt: skip


def parse(line: str):
    m = LINE.match(line)
    if not m:
        return None
    try:
        t = datetime.strptime(m.group(4), "%d/%b/%Y:%H:%M:%S %z")
    except ValueError:
        return None
    req = m.group(5).split(" ")
    path = req[1] if len(req) >= 2 else m.group(5)
    path = path.split("?", 1)[0]
    return {
        "ip": m.group(1),
        "ts": int(t.timestamp()),
        "day": t.date(),
        "path": path,
        "status": int(m.group(6)),
        "bytes": 0 if m.group(7) == "-" else int(m.group(7)),
        "ua": m.group(9) or "",
    }


def analyse(paths: list[str], timeout_s: int = 1800) -> dict:
    hits, unparsed = [], 0
    for p in paths:
        with open(p, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                h = parse(line)
                if h is None:
                    unparsed += 1
                else:
                    hits.append(h)
    # GoAccess default: 4xx responses are not counted as visitors.
    visitors = {(h["ip"], h["ua"], h["day"]) for h in hits if not 400 <= h["status"] < 500}
    hits.sort(key=lambda h: (h["ip"], h["ua"], h["ts"]))
    sessions = []
    for h in hits:
        s = sessions[-1] if sessions else None
        if s and s["ip"] == h["ip"] and s["ua"] == h["ua"] and h["ts"] - s["end"] <= timeout_s:
            s["end"] = h["ts"]
        else:
            s = {
                "ip": h["ip"],
                "ua": h["ua"],
                "start": h["ts"],
                "end": h["ts"],
                "requests": 0,
                "pages": 0,
                "bytes": 0,
            }
            sessions.append(s)
        s["requests"] += 1
        s["bytes"] += h["bytes"]
        name = h["path"].rsplit("/", 1)[-1]
        if not ("." in name and name.rsplit(".", 1)[1].lower() in ASSETS):
            s["pages"] += 1
    sessions.sort(key=lambda s: (s["start"], s["ip"], s["ua"]))
    return {
        "requests": len(hits),
        "bytes": sum(h["bytes"] for h in hits),
        "unique_visitors": len(visitors),
        "unparsed_lines": unparsed,
        "sessions": sessions,
    }


UAS = [
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
    'Mozilla/5.0 (Macintosh) "quoted" Safari/605.1',
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
    "curl/8.4.0",
]
PAGES = [
    "/",
    "/index.html",
    "/about",
    "/blog/post-1",
    "/search?q=x",
    "/static/app.js",
    "/img/logo.png",
    "/style.css",
]


def generate(
    n: int,
    seed: int = 1,
    malformed: float = 0.01,
    shuffle: float = 0.02,
    zone: str = "+0100",
    start: datetime | None = None,
    clients: list[str] | None = None,
    steps: tuple[int, ...] = (1, 5, 30, 120, 600, 2400),
) -> list[str]:
    """Combined-format lines from ``start`` (default 2024-03-09 22:00, so they cross midnight),
    ``steps`` seconds apart at random: returning visitors (``clients``, default 30 IPv4 drawn from
    the seed), IPv6, bots, assets, a few malformed lines and some lines out of order."""
    rnd = random.Random(seed)
    ips = clients or [f"10.0.{rnd.randrange(4)}.{rnd.randrange(1, 40)}" for _ in range(30)]
    ips = [*ips, "2001:db8::1", "::1"]
    tz = timezone(timedelta(hours=int(zone[:3]), minutes=int(zone[0] + zone[3:])))
    t = start or datetime(2024, 3, 9, 22, 0, 0, tzinfo=tz)
    lines = []
    for _ in range(n):
        t += timedelta(seconds=rnd.choice(steps))
        if rnd.random() < malformed:
            lines.append(rnd.choice(["garbage line", '1.2.3.4 - - [bad time] "GET / HTTP/1.1" 200 1', ""]))
            continue
        ts = t.strftime("%d/%b/%Y:%H:%M:%S ") + zone
        b = rnd.choice(["-", str(rnd.randrange(100, 50000))])
        lines.append(
            f'{rnd.choice(ips)} - - [{ts}] "GET {rnd.choice(PAGES)} HTTP/1.1" {rnd.choice([200, 200, 304, 404, 500])} '
            f'{b} "{rnd.choice(["-", "http://ref.example/"])}" "{rnd.choice(UAS)}"'
        )
    for i in range(len(lines) - 1):
        if rnd.random() < shuffle:
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
    return lines


def _first(a, b, later: bool) -> bool:
    """Whether ``b`` (a (time or None, task)) should replace ``a``: the earlier time (``later``: the
    later) wins, on a tie the earlier task (``later``: the later task), as one pass over the lines in
    task order keeps them; a null time never wins."""
    if b[0] is None:
        return False
    if a[0] is None:
        return True
    return b > a if later else b < a


def merge_sessions(tables, timeout_s: float, by_ua: bool = True):
    """The row-by-row Python merge of tasks' sessions tables that log-sessions used before its merge
    was vectorized: the reference the pipeline's ``merge_sessions`` must equal, column for column.
    ``tables`` in task order, which is input order (the plan keeps it): a joined session's entry is
    the earliest (time, task), its exit the latest, as the engine's one pass keeps the least and the
    greatest (time, input, byte offset); its ip, user agent and is_bot are those of its piece that
    starts first, the earlier task on a tie."""
    import pyarrow as pa

    if not tables:
        return pa.table({})
    rows = []
    for part, t in enumerate(tables):
        for r in t.to_pylist():
            r["_part"] = part
            rows.append(r)
    key = (lambda r: (r["ip"], r["user_agent"])) if by_ua else (lambda r: (r["ip"], ""))
    rows.sort(key=lambda r: (key(r), r["start"], r["_part"]))
    out = []
    for r in rows:
        cur = out[-1] if out else None
        if cur is not None and key(cur) == key(r) and (r["start"] - cur["end"]).total_seconds() <= timeout_s:
            for k in ("requests", "pages", "bytes", "status_2xx", "status_3xx", "status_4xx", "status_5xx"):
                cur[k] += r[k]
            if _first((cur["entry_time"], cur["_entry_part"]), (r["entry_time"], r["_part"]), later=False):
                cur["entry_time"], cur["entry_page"], cur["_entry_part"] = (
                    r["entry_time"],
                    r["entry_page"],
                    r["_part"],
                )
            if _first((cur["exit_time"], cur["_exit_part"]), (r["exit_time"], r["_part"]), later=True):
                cur["exit_time"], cur["exit_page"], cur["_exit_part"] = (
                    r["exit_time"],
                    r["exit_page"],
                    r["_part"],
                )
            cur["end"] = max(cur["end"], r["end"])
            cur["duration_s"] = int((cur["end"] - cur["start"]).total_seconds())
        else:
            out.append(dict(r, _entry_part=r["_part"], _exit_part=r["_part"]))
    out.sort(key=lambda r: (r["start"], r["ip"], r["user_agent"]))
    for i, r in enumerate(out):
        r["session_id"] = i
        del r["_part"], r["_entry_part"], r["_exit_part"]
    return pa.Table.from_pylist(out, schema=tables[0].schema)


def median(values: list[int]) -> float:
    """The median the merge computed in Python before (the reference for its Arrow one)."""
    v = sorted(values)
    n = len(v)
    if not n:
        return 0.0
    return float(v[n // 2]) if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2

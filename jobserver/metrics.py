"""Prometheus metrics, computed from the store at scrape time (workers are other processes)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, float("inf"))


def _ts(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class _Collector:
    def __init__(self, js: Any) -> None:
        self.js = js

    def collect(self) -> Any:
        store = self.js.store
        rows = store._all("SELECT pipeline, state, COUNT(*) AS n FROM jobs GROUP BY pipeline, state")
        sub = CounterMetricFamily("aerofs_jobs_submitted", "jobs submitted", labels=["pipeline"])
        per_p: dict[str, int] = {}
        for r in rows:
            per_p[r["pipeline"]] = per_p.get(r["pipeline"], 0) + int(r["n"])
        for p, n in sorted(per_p.items()):
            sub.add_metric([p], n)
        yield sub
        fin = CounterMetricFamily("aerofs_jobs_finished", "jobs finished", labels=["pipeline", "state"])
        cur = GaugeMetricFamily("aerofs_jobs", "jobs by state", labels=["pipeline", "state"])
        for r in rows:
            cur.add_metric([r["pipeline"], r["state"]], int(r["n"]))
            if r["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                fin.add_metric([r["pipeline"], r["state"]], int(r["n"]))
        yield fin
        yield cur
        stats = self.js.stats()
        # Team mode: RQ's view (messages in rq:queue:aerofs, registered RQ workers); else the store's.
        yield GaugeMetricFamily(
            "aerofs_queue_length",
            "messages waiting in the RQ queue (team mode), else jobs pending plus tasks queued",
            value=stats["queue_length"],
        )
        if "queue_scheduled" in stats:
            yield GaugeMetricFamily(
                "aerofs_queue_scheduled",
                "RQ messages waiting for a retry backoff",
                value=stats["queue_scheduled"],
            )
        yield GaugeMetricFamily("aerofs_workers_busy", "workers running a task", value=stats["workers_busy"])
        yield GaugeMetricFamily("aerofs_workers_idle", "idle workers", value=stats["workers_idle"])
        hist = HistogramMetricFamily("aerofs_job_duration_seconds", "job run time", labels=["pipeline"])
        done = store._all(
            "SELECT pipeline, started_at, finished_at, progress FROM jobs WHERE finished_at IS NOT NULL "
            "AND started_at IS NOT NULL"
        )
        by: dict[str, list[float]] = {}
        bytes_total = rows_total = 0
        for r in done:
            by.setdefault(r["pipeline"], []).append(max(0.0, _ts(r["finished_at"]) - _ts(r["started_at"])))
            p = json.loads(r["progress"]) if r["progress"] else {}
            bytes_total += int(p.get("bytes_done") or 0)
            rows_total += int(p.get("rows") or 0)
        for p, ds in sorted(by.items()):
            buckets = [
                (str(b) if b != float("inf") else "+Inf", sum(1 for d in ds if d <= b)) for b in BUCKETS
            ]
            hist.add_metric([p], buckets, sum(ds))
        yield hist
        yield CounterMetricFamily("aerofs_bytes_processed", "input bytes of finished jobs", value=bytes_total)
        yield CounterMetricFamily("aerofs_rows_processed", "rows of finished jobs", value=rows_total)


def render(js: Any) -> tuple[bytes, str]:
    reg = CollectorRegistry()
    reg.register(_Collector(js))
    return generate_latest(reg), CONTENT_TYPE_LATEST

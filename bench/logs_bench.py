"""`just bench logs`: AeroFS log-sessions beside GoAccess (JSON output) and the Python regex reference.

Data: a combined log generated with a fixed seed (tests/logs/reference.py: returning visitors, bots,
assets, IPv6, a few malformed and out-of-order lines) under ``bench/data/logs/``: ~1 GB, ``--small``
~20 MB. Prints MB/s and peak RSS of each tool and checks requests/bytes/unique visitors equal GoAccess's.

    python bench/logs_bench.py [--small] [--all-clients] [--dst DIR] [--skip python,goaccess] [--engine SO]
    python bench/logs_bench.py --job 4,8 [--pairs 2] [--small] [--all-clients] [--before DIR] [--python-merge]
    python bench/logs_bench.py --job 2 --servers [--pairs 2] [--before DIR]

``--all-clients``: every request from any of the 5,000 clients (~9 times as many sessions, nearly one
per request: the memory case of a log with millions of sessions). ``--dst``: AeroFS also writes
sessions.parquet and summary.json there (the engine's ``output_dir``, what ``aero.log_sessions(src, dst)``
passes): the engine writes the sessions as the run goes and returns no sessions table, so the peak RSS is
that of a run with a destination (an engine before that change holds the table and writes it at the end). ``--engine``: run a saved copy of
``aerofs_kernel/_engine.abi3.so`` instead of the installed one, to compare engines before/after a change
interleaved on one machine (``cp aerofs_kernel/_engine.abi3.so /tmp/engine_before.so`` before building).

``--job N,...``: the log as a job of N byte-range tasks, what a worker does (``runner.plan_job``,
``run_task`` on each task one after the other, ``merge_job`` writing sessions.parquet, summary.json and
report.html to a dst). Interleaved ``--pairs`` times, each step in a fresh process: the tasks (into a
fresh work folder; the step's peak RSS is its largest task's), the merge (``merge_job`` alone: reading
the tasks' tables, the merge, writing the outputs); with ``--before DIR`` the same two steps by the code
of another checkout into its own work folder (``git worktree add DIR REV``, the built
``aerofs_kernel/_engine*.so`` copied into it: the step's process imports ``aerofs_kernel`` from there);
with ``--python-merge`` the merge of the new tasks with the earlier row-by-row Python ``merge_sessions``
and median (tests/logs/reference.py); and the interactive run of the whole log with a dst. Each prints
wall and CPU seconds of its own work (imports excluded) and its peak RSS (tasks: the largest task's, the
peak reset before each task; also each task's wall and peak, and the RSS the tasks left behind);
at the end the sessions.parquet and summary.json of each merge are compared with the interactive run's.

``--servers``: for ``--job N`` the log dealt line by line to N files (``<log>-servers<N>/web<i>.log``,
made once), as a round-robin load balancer deals requests to N servers: the files cover the same hours
and every visitor's requests are in all of them. Each file is a task (never cut into ranges), so
nearly every session is an edge of the merge; the interactive run reads the N files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "tests" / "logs"))


def make(size_mb: int, all_clients: bool = False) -> Path:
    """A busy site's log: blocks of 20,000 lines (~4.6 hours), each with its own seed, time running on
    from the last block (0-2 s between requests, so ~1 GB spans about two months), and 200 of 5,000
    returning IPv4 clients active per block, so a visitor comes back within the 30-minute timeout and
    sessions have several requests (about 6 a session). Not one block repeated: the same timestamps
    over and over would make every block go back in time, a worst case for the session merge that
    real logs do not have. ``all_clients``: all 5,000 clients active in every block."""
    from datetime import datetime, timedelta, timezone

    from reference import generate

    out = ROOT / "data" / "logs" / f"access-{size_mb}mb-{'all-v3' if all_clients else 'v3'}.log"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    clients = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255 or 1}" for i in range(1, 5001)]
    t = datetime(2024, 3, 9, 22, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    tmp = out.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        written, seed = 0, 42
        while written < size_mb * 1_000_000:
            active = clients if all_clients else random.Random(seed).sample(clients, 200)
            lines = generate(20000, seed, start=t, clients=active, steps=(0, 0, 1, 1, 1, 2))
            block = ("\n".join(lines) + "\n").encode()
            f.write(block)
            written += len(block)
            t += timedelta(seconds=20000)  # past the block's last line (~16,700 s on average, sd ~100 s)
            seed += 1
    tmp.rename(out)
    return out


def deal(path: Path, n: int) -> list[Path]:
    """``path``'s lines dealt round-robin to ``n`` files (made once, beside the log): line i to file
    i mod n."""
    folder = path.parent / f"{path.stem}-servers{n}"
    files = [folder / f"web{i + 1}.log" for i in range(n)]
    if all(f.exists() for f in files):
        return files
    folder.mkdir(parents=True, exist_ok=True)
    tmp = [f.with_suffix(".tmp") for f in files]
    with contextlib.ExitStack() as stack, open(path, "rb") as f:
        outs = [stack.enter_context(open(t, "wb")) for t in tmp]
        for i, line in enumerate(f):
            outs[i % n].write(line)
    for t, done in zip(tmp, files, strict=True):
        t.rename(done)
    return files


def _cpu() -> float:
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return c.ru_utime + c.ru_stime


def child(code: str) -> tuple[float, float, str, float]:
    """Run python code in a child; (seconds, peak RSS MB, stdout, CPU seconds)."""
    t, c = time.perf_counter(), _cpu()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dt = time.perf_counter() - t
    return dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, p.stdout, _cpu() - c


def job_child(what: str, path: str | list[str], work: str, tasks: int) -> None:
    """One measured step of ``--job``, in its own process: prints {wall, cpu, rss_mb} as JSON.
    ``tasks``: plan and run the tasks; ``merge``/``merge-old``: merge them; ``interactive``: one run.
    ``-before``: the same step, run with another checkout's code, in its own work folder. ``path``:
    the log (cut into ``tasks`` byte ranges), or a list of files (``--servers``: each file a task)."""
    import shutil

    from aerofs_kernel import _engine, runner
    from aerofs_kernel.pipelines import get_pipeline
    from aerofs_kernel.pipelines import log_sessions as ls

    dst = os.path.join(work, f"dst-{what}")
    params = {"src": path, "dst": dst}
    folder = os.path.join(work, "before" if what.endswith("-before") else "new")  # the tasks' work folder
    partials_file = os.path.join(folder, "partials.json")
    if what.startswith("tasks"):
        shutil.rmtree(folder, ignore_errors=True)  # a task finished before would not run again
    t, c = time.perf_counter(), time.process_time()
    if what.startswith("tasks"):
        # One log: cut into `tasks` ranges whatever the size (the plan's floor is 256 MiB); files of
        # servers: never cut (one a few bytes over its share of the tasks would be).
        ls.SPLIT_BYTES = 1 << 62 if isinstance(path, list) else 1
        plan = runner.plan_job("log-sessions", params, tasks)
        partials, walls, peaks = [], [], [_peak_rss_mb()]
        for x in plan:
            _reset_peak_rss()  # each task's own peak (what one task on a fresh worker would reach)
            t1 = time.perf_counter()
            partials.append(runner.run_task("log-sessions", params, x, _engine.Progress(), folder))
            walls.append(time.perf_counter() - t1)
            peaks.append(_peak_rss_mb())
        with open(partials_file, "w") as f:
            json.dump(partials, f)
        print(
            f"# per task {', '.join(f'{w:.2f}' for w in walls)} s, "
            f"{', '.join(f'{m:.0f}' for m in peaks[1:])} MB (RSS between: {_rss_mb():.0f} MB)",
            file=sys.stderr,
        )
    elif what.startswith("merge"):  # merge-before: the same, run with another checkout's code
        if what == "merge-old":
            from reference import merge_sessions

            ls.merge_sessions = merge_sessions  # type: ignore[assignment]
        with open(partials_file) as f:
            partials = json.load(f)
        summary = runner.merge_job("log-sessions", params, partials, folder)["summary"]
        print(f"# sessions {summary['sessions']} median {summary['median_duration_s']}", file=sys.stderr)
    else:
        spec = get_pipeline("log-sessions")
        paths = path if isinstance(path, list) else [path]
        spec.run(paths, dst, spec.options({"src": path}), _engine.Progress())
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    peak = max(peaks) if what.startswith("tasks") else _peak_rss_mb()
    print(json.dumps({"wall": dt, "cpu": cpu, "rss_mb": peak}))


def _status_mb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM, not ``ru_maxrss``, which Linux carries over from the parent
    through fork and exec (a step started after the bench read big tables reported the bench's peak)."""
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    return _status_mb("VmRSS") or 0.0


def _reset_peak_rss() -> None:
    """VmHWM back to the current RSS (Linux: ``5`` to ``/proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _compare(work: str, steps: list[str]) -> None:
    """Whether each step's sessions.parquet (rows, order, ids, types) and summary.json session
    figures equal the interactive run's (and each file the first step's)."""
    import pyarrow.parquet as pq

    keys = ("sessions", "unique_visitors", "bounce_rate", "mean_duration_s", "median_duration_s",
            "pages_per_session", "bot_sessions", "requests", "bytes")  # fmt: skip
    one = os.path.join(work, "dst-interactive")
    table = pq.read_table(os.path.join(one, "sessions.parquet"))
    with open(os.path.join(one, "summary.json")) as f:
        summary = json.load(f)
    first = pq.read_table(os.path.join(work, f"dst-{steps[0]}", "sessions.parquet"))
    for what in steps:
        dst = os.path.join(work, f"dst-{what}")
        mine = pq.read_table(os.path.join(dst, "sessions.parquet"))
        same = mine.equals(table)
        if what != steps[0]:
            print(f"  {what}: sessions.parquet equals {steps[0]}'s: {mine.equals(first)}")
        with open(os.path.join(dst, "summary.json")) as f:
            theirs = json.load(f)
        differ = [k for k in keys if theirs.get(k) != summary.get(k)]
        print(
            f"  {what}: sessions.parquet equals the interactive run's: {same}; summary differs in: {differ}"
        )


def job(
    path: Path,
    counts: list[int],
    pairs: int,
    before: str | None = None,
    python: bool = False,
    servers: bool = False,
) -> None:
    import tempfile

    tasks = ["tasks", *(["tasks-before"] if before else [])]
    merges = ["merge", *(["merge-before"] if before else []), *(["merge-old"] if python else [])]

    def step(what: str, work: str, n: int) -> dict[str, float]:
        src: str | list[str] = [str(f) for f in deal(path, n)] if servers else str(path)
        paths = [str(ROOT), str(ROOT.parent / "tests" / "logs")]
        if what.endswith("-before"):
            paths.insert(0, str(before))
        code = f"import sys; sys.path[:0] = {paths!r}; "
        code += f"from logs_bench import job_child; job_child({what!r}, {src!r}, {work!r}, {n})"
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if p.returncode:
            raise SystemExit(f"{what} failed ({p.returncode}):\n{p.stderr}")
        r = json.loads(p.stdout.strip().splitlines()[-1])
        print(f"  {what:12s} wall {r['wall']:7.2f}s  cpu {r['cpu']:7.2f}s  peak RSS {r['rss_mb']:6.0f} MB  "
              f"load {os.getloadavg()[0]:.2f}  {p.stderr.strip()}")  # fmt: skip
        return r

    for n in counts:
        with tempfile.TemporaryDirectory(prefix="logs-job-") as work:
            print(f"{n} tasks{f' (the log dealt to {n} files, each a task)' if servers else ''}:")
            for _ in range(pairs):
                for what in (*tasks, *merges, "interactive"):
                    step(what, work, n)
            _compare(work, merges)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--all-clients", action="store_true")
    ap.add_argument("--dst", default=None)
    ap.add_argument("--skip", default="")
    ap.add_argument("--engine", default=None, help="path of an _engine.abi3.so to run instead")
    ap.add_argument("--job", default="", help="task counts, e.g. 4,8: the job's steps (see above)")
    ap.add_argument("--pairs", type=int, default=2, help="--job: interleaved runs of each step")
    ap.add_argument("--before", default=None, help="--job: a checkout whose merge runs interleaved")
    ap.add_argument("--python-merge", action="store_true", help="--job: also the row-by-row Python merge")
    ap.add_argument("--servers", action="store_true", help="--job N: the log dealt to N files, each a task")
    args = ap.parse_args(argv)
    if args.job:
        job(
            make(20 if args.small else 1000, args.all_clients),
            [int(x) for x in args.job.split(",")],
            args.pairs,
            args.before,
            args.python_merge,
            args.servers,
        )
        return 0
    skip = set(filter(None, args.skip.split(",")))
    path = make(20 if args.small else 1000, args.all_clients)
    opts = json.dumps({"output_dir": args.dst} if args.dst else {})
    mb = path.stat().st_size / 1e6
    # Page cache warm, as for every tool after it: a cold first read measured the disk (95 MB/s
    # for 4 CPU-s here), not the parser.
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        while fh.read(1 << 22):
            pass
    print(f"log: {path} ({mb:.0f} MB); cat {mb / (time.perf_counter() - t0):.0f} MB/s (I/O floor)")
    # The engine maps a log no one wrote to in the last minute and reads a live one through buffers
    # (docs/log-sessions.md): a log generated just now is timed as a live one.
    age = time.time() - path.stat().st_mtime
    print(f"read: {'mapped blocks' if age >= 60 else f'buffered (written {age:.0f} s ago: a live log)'}")
    load = "from aerofs_kernel import _engine; "
    if args.engine:
        load = (
            "import importlib.machinery as m, importlib.util as u; "
            f"l=m.ExtensionFileLoader('_engine', {args.engine!r}); "
            f"_engine=u.module_from_spec(u.spec_from_file_location('_engine', {args.engine!r}, loader=l)); "
            "l.exec_module(_engine); "
        )
    # The call is timed apart too: in a notebook the interpreter and the imports are already there, so
    # the call is what a user waits for; the process (start, imports, call) is what the peers are timed by.
    code = (
        "import json, time; "
        + load
        + "t=time.perf_counter(); "
        + f"s=json.loads(_engine.log_sessions([{str(path)!r}], {opts!r}, _engine.Progress())[0])['summary']; "
        "d={k: s[k] for k in ('requests','bytes','unique_visitors','sessions')}; "
        "d['call_s']=time.perf_counter()-t; print(json.dumps(d))"
    )
    dt, rss, out, cpu = child(code)
    ours = json.loads(out)
    call = ours.pop("call_s")
    print(f"load {os.getloadavg()[0]:.2f}")
    print(f"{'aerofs':8s} {mb / dt:8.1f} MB/s  peak RSS {rss:7.0f} MB  cpu {cpu:6.1f}s  {ours}")
    print(f"{'':8s} the call alone (no interpreter start, no imports): {mb / call:.1f} MB/s, {call:.2f} s")
    same = True
    if "goaccess" not in skip:
        t, c = time.perf_counter(), _cpu()
        g = subprocess.run(["goaccess", str(path), "--log-format=COMBINED", "-o", "json", "--no-global-config"],
                           capture_output=True, text=True, check=True)  # fmt: skip
        gdt, gcpu = time.perf_counter() - t, _cpu() - c
        gen = json.loads(g.stdout)["general"]
        theirs = {
            "requests": gen["valid_requests"],
            "bytes": gen["bandwidth"],
            "unique_visitors": gen["unique_visitors"],
        }
        print(
            f"{'goaccess':8s} {mb / gdt:8.1f} MB/s  {gdt / dt:5.2f}x slower  cpu {gcpu:6.1f}s ({gcpu / cpu:.2f}x)  {theirs}"
        )
        same = all(ours[k] == v for k, v in theirs.items())
        print(f"requests/bytes/unique visitors equal GoAccess's: {same}")
    if "python" not in skip:
        code = f"from reference import analyse; r=analyse([{str(path)!r}]); print(r['requests'])"
        t, c = time.perf_counter(), _cpu()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                       cwd=ROOT.parent / "tests" / "logs")  # fmt: skip
        pdt, pcpu = time.perf_counter() - t, _cpu() - c
        print(
            f"{'python':8s} {mb / pdt:8.1f} MB/s  {pdt / dt:5.2f}x slower  cpu {pcpu:6.1f}s ({pcpu / cpu:.2f}x)"
        )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

"""`just bench csv`: AeroFS csv-to-parquet against DuckDB, Polars and pyarrow.

Two workloads, generated once with a fixed seed under bench/data/csv/ (DuckDB writes them, single
threaded so the bytes are the same every time):
  (a) big:    one ~1 GB CSV of mixed types (ints, floats, short and long strings, timestamps,
              booleans, quoted fields with commas, quotes and newlines, ~5% nulls);
  (b) folder: 200 CSVs of ~5 MB with the same schema.
Each tool runs in its own process under /usr/bin/time -v (peak RSS), page cache warm, zstd everywhere.
Printed: MB/s of CSV input, CPU seconds (user + system; steadier than wall time on a shared
machine), peak RSS, output size, and AeroFS against the best peer on each; `cat` is the I/O floor.
Then the time of a `preview` (schema, sample rows, estimates) of each workload, best of 3.

    python bench/run.py csv [--small] [--only big|folder] [--tools aerofs,duckdb,...] [--repeat N]

`--small` (or AEROFS_BENCH_SMALL=1) shrinks the data to ~50 MB and 20 x 1 MB for a quick check.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
TOOLS = ("aerofs", "duckdb", "polars", "pyarrow")

GEN_SQL = """
SET threads=1;
SELECT setseed(0.42);
COPY (
  SELECT
    i AS id,
    (random() * 1000000)::BIGINT AS user_id,
    CASE WHEN random() < 0.05 THEN NULL ELSE round(random() * 10000, 2) END AS amount,
    random() * 2 - 1 AS score,
    (['alpha','beta','gamma','delta','epsilon','zeta','eta','theta'])[1 + (random() * 7.99)::INT] AS category,
    'user_' || ((random() * 50000)::INT)::VARCHAR AS name,
    TIMESTAMP '2020-01-01 00:00:00' + to_seconds((random() * 126230400)::BIGINT) AS ts,
    random() < 0.5 AS flag,
    CASE
      WHEN random() < 0.05 THEN NULL
      WHEN random() < 0.08 THEN 'said "hello", then left' || chr(10) || 'second line ' || md5(i::VARCHAR)
      WHEN random() < 0.15 THEN 'a, b, and c: ' || md5(i::VARCHAR)
      ELSE 'lorem ipsum ' || substr(md5((i % 9973)::VARCHAR), 1, (random() * 32)::INT) || ' dolor sit amet ' || md5((i % 4999)::VARCHAR)
    END AS comment
  FROM range({start}, {stop}) t(i)
) TO '{path}' (HEADER, DELIMITER ',');
"""

PEERS = {
    "duckdb": """
import duckdb, sys, os
inputs, out = sys.argv[1:-1], sys.argv[-1]
con = duckdb.connect()
for i, p in enumerate(inputs):
    dst = out if len(inputs) == 1 else os.path.join(out, f"{i}.parquet")
    con.execute(f"COPY (SELECT * FROM read_csv('{p}')) TO '{dst}' (FORMAT parquet, COMPRESSION zstd)")
""",
    "polars": """
import polars as pl, sys, os
inputs, out = sys.argv[1:-1], sys.argv[-1]
for i, p in enumerate(inputs):
    dst = out if len(inputs) == 1 else os.path.join(out, f"{i}.parquet")
    pl.scan_csv(p).sink_parquet(dst, compression="zstd")
""",
    "pyarrow": """
import pyarrow.csv as pc, pyarrow.parquet as pq, sys, os
from concurrent.futures import ProcessPoolExecutor
def one(args):
    p, dst = args
    # quoted fields hold newlines: pyarrow must be told (it then parses each file on one thread)
    r = pc.open_csv(p, parse_options=pc.ParseOptions(newlines_in_values=True))
    with pq.ParquetWriter(dst, r.schema, compression="zstd") as w:
        for b in r:
            w.write_batch(b)
if __name__ == "__main__":
    inputs, out = sys.argv[1:-1], sys.argv[-1]
    if len(inputs) == 1:
        one((inputs[0], out))
    else:
        jobs = [(p, os.path.join(out, f"{i}.parquet")) for i, p in enumerate(inputs)]
        with ProcessPoolExecutor(2) as ex:
            list(ex.map(one, jobs, chunksize=4))
""",
    "aerofs": """
import sys, json, os
from aerofs_kernel import _engine
inputs, out = sys.argv[1:-1], sys.argv[-1]
# (the pipeline spec computes these paths too; importing it here would add its import time)
if len(inputs) == 1:
    outputs = [out]
else:
    outputs = [os.path.join(out, f"{i}.parquet") for i in range(len(inputs))]
res = json.loads(_engine.csv_to_parquet(inputs, json.dumps({"outputs": outputs}), _engine.Progress())[0])
if res["errors"]:
    print(res["errors"][:3], file=sys.stderr)
""",
}


def generate(path: Path, rows: int, start: int = 0) -> None:
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    con = duckdb.connect()
    for stmt in GEN_SQL.format(start=start, stop=start + rows, path=tmp).split(";"):
        if stmt.strip():
            con.execute(stmt)
    tmp.rename(path)


def ensure_data(small: bool) -> tuple[Path, list[Path]]:
    root = HERE / "data" / ("csv-small" if small else "csv")
    rows_per_mb = 6550  # ~153 bytes per row
    big = root / "big.csv"
    if not big.exists():
        print(f"generating {big} ...", flush=True)
        generate(big, (50 if small else 1000) * rows_per_mb)
    folder = root / "folder"
    n, mb = (20, 1) if small else (200, 5)
    files = [folder / f"part-{i:03d}.csv" for i in range(n)]
    missing = [f for f in files if not f.exists()]
    if missing:
        print(f"generating {len(missing)} files in {folder} ...", flush=True)
        for i, f in enumerate(files):
            if not f.exists():
                generate(f, mb * rows_per_mb, start=i * mb * rows_per_mb)
    return big, files


def run_timed(argv: list[str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS in bytes (largest process under /usr/bin/time) and CPU seconds
    (user + system, children included): on a shared machine the CPU time is the steadier figure."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True)
    secs = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    rss = int(m.group(1)) * 1024 if m else 0
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", p.stderr))
    if p.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed: {p.stderr[-2000:]}")
    return secs, rss, cpu


def out_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*.parquet"))


def warm(files: list[Path]) -> float:
    t0 = time.perf_counter()
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 22):
                pass
    return time.perf_counter() - t0


def bench_workload(
    name: str, files: list[Path], tools: list[str], repeat: int
) -> dict[str, tuple[float, int, int, float]]:
    size = sum(f.stat().st_size for f in files)
    warm(files)
    t0 = time.perf_counter()
    subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)
    cat_s = time.perf_counter() - t0
    print(
        f"\n== {name}: {len(files)} file(s), {size / 1e6:.0f} MB; cat {size / 1e6 / cat_s:.0f} MB/s (I/O floor)"
    )
    print(f"{'tool':<10}{'seconds':>9}{'MB/s':>9}{'CPU s':>8}{'peak RSS MB':>13}{'output MB':>11}")
    results: dict[str, tuple[float, int, int, float]] = {}
    for tool in tools:
        best = None
        for _ in range(repeat):
            with tempfile.TemporaryDirectory(dir=HERE / "data") as tmp:
                out = Path(tmp) / ("out.parquet" if len(files) == 1 else "out")
                if len(files) > 1:
                    out.mkdir()
                argv = ["nice", "-n", "5", PY, "-c", PEERS[tool], *map(str, files), str(out)]
                try:
                    secs, rss, cpu = run_timed(argv)
                except RuntimeError as e:
                    print(f"{tool:<10} failed: {str(e)[-300:]}", flush=True)
                    break
                size_out = out_size(out)
            if best is None or secs < best[0]:
                best = (secs, rss, size_out, cpu)
        if best is None:
            continue
        results[tool] = best
        secs, rss, size_out, cpu = best
        print(
            f"{tool:<10}{secs:>9.2f}{size / 1e6 / secs:>9.1f}{cpu:>8.1f}{rss / 1e6:>13.0f}{size_out / 1e6:>11.1f}",
            flush=True,
        )
    peers = {k: v for k, v in results.items() if k != "aerofs"}
    if "aerofs" in results and peers:
        fastest = min(peers, key=lambda k: peers[k][0])
        ratio = peers[fastest][0] / results["aerofs"][0]
        print(f"AeroFS / fastest peer ({fastest}): {ratio:.2f}x throughput")
        leanest = min(peers, key=lambda k: peers[k][3])
        if results["aerofs"][3] > 0:
            print(
                f"CPU time, leanest peer ({leanest}) / AeroFS: {peers[leanest][3] / results['aerofs'][3]:.2f}x"
            )
        low = min(peers, key=lambda k: peers[k][1])
        print(f"peak RSS AeroFS / lowest peer ({low}): {results['aerofs'][1] / peers[low][1]:.2f}")
        if "duckdb" in results:
            print(f"output size AeroFS / DuckDB: {results['aerofs'][2] / results['duckdb'][2]:.2f}")
    return results


PREVIEW = """
import sys, json, time
from aerofs_kernel import _engine
inputs = sys.argv[1:]
best = min(
    (lambda t0: (_engine.preview_csv(inputs, "{}", _engine.Progress()), time.perf_counter() - t0)[1])(
        time.perf_counter()
    )
    for _ in range(3)
)
print(f"{best:.3f}")
"""


def bench_preview(name: str, inputs: list[Path]) -> None:
    """``preview``: schema, sample rows and estimates before a long job (the issue: well under a
    second for a whole folder). Best of 3 calls in one process, page cache warm."""
    out = subprocess.run(
        [sys.executable, "-c", PREVIEW, *map(str, inputs)], check=True, capture_output=True, text=True
    )
    print(
        f"preview ({name}, {len(inputs)} file{'s' if len(inputs) > 1 else ''}): {float(out.stdout):.3f} s",
        flush=True,
    )


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench csv")
    ap.add_argument("--small", action="store_true", default=os.environ.get("AEROFS_BENCH_SMALL") == "1")
    ap.add_argument("--only", choices=["big", "folder"])
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    unknown = [t for t in tools if t not in PEERS]
    if unknown:
        print(f"unknown tool {unknown[0]!r}; choose from {', '.join(TOOLS)}", file=sys.stderr)
        return 2
    if shutil.which("nice") is None:
        print("nice not found", file=sys.stderr)
        return 2
    big, folder = ensure_data(args.small)
    if args.only in (None, "big"):
        bench_workload("big", [big], tools, args.repeat)
    if args.only in (None, "folder"):
        bench_workload("folder", folder, tools, args.repeat)
    if "aerofs" in tools:
        if args.only in (None, "big"):
            bench_preview("big", [big])
        if args.only in (None, "folder"):
            bench_preview("folder", folder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``python -m aerofs_kernel.demo``: sample data for every pipeline, then every pipeline through the job server.

1. Writes small sample data under ``sample-data/`` (CSVs with a malformed row, a web access log, text
   files, a few JPEGs with EXIF made with Pillow + piexif). ``--data-only`` stops here (``just lab``).
2. Starts a Jupyter server with the AeroFS job-server extension on its embedded default (SQLite + local
   worker pool) in a subprocess, on a free loopback port with a generated token.
3. Submits every pipeline through :mod:`aerofs_kernel.client`, waits, prints each job's state, summary
   and outputs, and stops the server. Exit code 0 only when every job SUCCEEDED.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "while",
    "data",
    "flows",
    "from",
    "files",
    "into",
    "tables",
    "and",
    "parquet",
    "engines",
    "count",
    "words",
    "sessions",
    "and",
    "photos",
    "in",
    "the",
    "notebook",
    "every",
    "morning",
]


def make_sample_data(root: Path, seed: int = 7) -> dict[str, Path]:
    """Small inputs for every pipeline under ``root``; returns the src of each pipeline."""
    rnd = random.Random(seed)
    csv_dir, text_dir, photo_dir, log_dir = root / "csv", root / "text", root / "photos", root / "logs"
    for d in (csv_dir / "2024", csv_dir / "2025", text_dir, photo_dir, log_dir):
        d.mkdir(parents=True, exist_ok=True)
    # CSV: two years of sales; one file with a malformed row (reported, the rest converted).
    for year in (2024, 2025):
        for month in (1, 2, 3):
            lines = ["order_id,day,region,amount,paid"]
            for i in range(200):
                day = dt.date(year, month, 1 + i % 28)
                region = rnd.choice(["north", "south", "east", "west"])
                lines.append(
                    f"{year * 10000 + month * 1000 + i},{day},{region},{rnd.uniform(1, 500):.2f},{rnd.random() < 0.9}"
                )
            if (year, month) == (2025, 3):
                lines.insert(50, '999,2025-03-01,"unterminated,1.0,true')
            (csv_dir / str(year) / f"sales-{year}-{month:02}.csv").write_text("\n".join(lines) + "\n")
    # Text.
    for n in range(5):
        words = [rnd.choice(WORDS) for _ in range(2000)]
        (text_dir / f"doc{n}.txt").write_text(
            "\n".join(" ".join(words[i : i + 12]).capitalize() + "." for i in range(0, len(words), 12))
        )
    # An Apache combined access log: a few visitors, pauses longer than 30 minutes start new sessions.
    agents = [
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
        "Mozilla/5.0 (Macintosh) Safari/605.1.15",
        "curl/8.4.0",
    ]
    pages = ["/", "/products", "/products/42", "/cart", "/checkout", "/about", "/static/app.js"]
    t0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
    events = []
    for visitor in range(12):
        ip, ua = f"10.0.{visitor // 4}.{visitor}", agents[visitor % 3]
        t = t0 + dt.timedelta(minutes=rnd.randint(0, 120))
        for _ in range(rnd.randint(3, 25)):
            t += dt.timedelta(seconds=rnd.choice([5, 30, 90, 600, 2400]))
            status = rnd.choice([200] * 8 + [304, 404])
            events.append((t, f'{ip} - - [{t.strftime("%d/%b/%Y:%H:%M:%S %z")}] "GET {rnd.choice(pages)} HTTP/1.1" '
                              f'{status} {rnd.randint(200, 50000)} "-" "{ua}"'))  # fmt: skip
    events.sort()
    lines = [e[1] for e in events]
    lines.insert(len(lines) // 2, "this line is not a log record")
    (log_dir / "access.log").write_text("\n".join(lines) + "\n")
    # Photos with EXIF.
    try:
        import piexif
        from PIL import Image

        for n, (make, model) in enumerate([("Canon", "EOS R5"), ("Nikon", "Z 6"), ("FUJIFILM", "X-T4")]):
            exif = piexif.dump(
                {
                    "0th": {piexif.ImageIFD.Make: make.encode(), piexif.ImageIFD.Model: model.encode()},
                    "Exif": {
                        piexif.ExifIFD.DateTimeOriginal: f"2025:03:0{n + 1} 10:1{n}:00".encode(),
                        piexif.ExifIFD.FNumber: (28 + n * 10, 10),
                        piexif.ExifIFD.ISOSpeedRatings: 100 * (n + 1),
                    },
                    "GPS": {
                        piexif.GPSIFD.GPSLatitudeRef: b"N",
                        piexif.GPSIFD.GPSLatitude: ((48, 1), (51, 1), (n * 600, 100)),
                        piexif.GPSIFD.GPSLongitudeRef: b"E",
                        piexif.GPSIFD.GPSLongitude: ((2, 1), (21, 1), (0, 1)),
                    },
                }
            )
            Image.new("RGB", (64, 48), (40 * n, 120, 200)).save(photo_dir / f"IMG_{n:04}.jpg", exif=exif)
    except ImportError:
        print("(Pillow/piexif missing: no sample photos)", file=sys.stderr)
    return {
        "csv-to-parquet": csv_dir,
        "word-count": text_dir,
        "log-sessions": log_dir / "access.log",
        "exif": photo_dir,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    workdir: Path, token: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """A Jupyter server with the job-server extension (embedded default) on a free loopback port;
    ``env`` adds to (or overrides) this process's environment."""
    try:
        import jobserver  # noqa: F401
    except ImportError as e:
        raise SystemExit(f"demo: the job server package is not available ({e})") from None
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    server_env = {**os.environ, "AEROFS_DATA_DIR": str(workdir / "jobserver"), **(env or {})}
    for k in ("AEROFS_DATABASE_URL", "AEROFS_REDIS_URL"):
        server_env.pop(k, None)  # the embedded default: SQLite + local worker pool
    cmd = [
        sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
        f"--ServerApp.token={token}", f"--ServerApp.root_dir={workdir}", "--ServerApp.port_retries=0",
        "--ServerApp.jpserver_extensions={'jobserver': True}",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    with open(workdir / "server.log", "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=server_env, start_new_session=True
        )
    return proc, url


def wait_ready(proc: subprocess.Popen[bytes], url: str, token: str, log: Path, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            r = httpx.get(
                url + "aerofs/api/pipelines", headers={"Authorization": f"token {token}"}, timeout=2
            )
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as e:
            last = str(e)
        time.sleep(0.3)
    raise SystemExit(
        f"demo: the job server did not answer on {url}aerofs/api/pipelines ({last}); is the jobserver "
        f"extension complete?\n{log.read_text()[-3000:]}"
    )


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m aerofs_kernel.demo", description=__doc__.split("\n")[0])
    ap.add_argument("--data-only", action="store_true", help="only write the sample data")
    ap.add_argument(
        "--data-dir", default="sample-data", help="where the sample data goes (default: sample-data)"
    )
    ap.add_argument("--timeout", type=float, default=300, help="seconds to wait for each job")
    args = ap.parse_args(argv)

    data = Path(args.data_dir).resolve()
    srcs = make_sample_data(data)
    print(f"sample data in {data}")
    if args.data_only:
        return 0

    from aerofs_kernel.client import Client
    from aerofs_kernel.pipelines import all_pipelines

    known = {p.name for p in all_pipelines()}
    workdir = Path(tempfile.mkdtemp(prefix="aerofs-demo-"))
    out = data.parent / "demo-output"
    if out.exists():
        shutil.rmtree(out)
    token = secrets.token_hex(16)
    proc, url = start_server(workdir, token)
    ok = True
    try:
        wait_ready(proc, url, token, workdir / "server.log")
        print(f"job server up at {url} (embedded: SQLite + local worker pool)")
        client = Client(url, token)
        dsts = {
            "csv-to-parquet": str(out / "parquet"),
            "word-count": str(out / "words.parquet"),
            "log-sessions": str(out / "sessions"),
            "exif": str(out / "exif.parquet"),
        }
        jobs = {}
        for name, src in srcs.items():
            if name not in known:
                print(f"{name}: skipped (pipeline not available in this build)")
                ok = False
                continue
            jobs[name] = client.submit(name, {"src": str(src), "dst": dsts[name]})
            print(f"{name}: submitted job {jobs[name].id}")
        for name, job in jobs.items():
            job.wait(timeout=args.timeout)
            doc = job._doc
            print(f"\n== {name} (job {job.id}): {doc.get('state')}")
            print("summary:", json.dumps(doc.get("summary"), default=str))
            for o in (doc.get("outputs") or [])[:10]:
                print("  output:", o)
            for e in (doc.get("errors") or [])[:5]:
                print("  error:", json.dumps(e, default=str))
            ok = ok and doc.get("state") == "SUCCEEDED"
    finally:
        stop_server(proc)
        shutil.rmtree(workdir, ignore_errors=True)
    print("\ndemo:", "every job succeeded" if ok else "some jobs did not succeed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

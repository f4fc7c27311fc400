"""`just bench exif`: AeroFS's EXIF extraction beside exiftool, exiv2, exifread and Pillow.

Data: 5,000 images (``--small``: 300) made with a fixed seed under ``bench/data/exif-<n>/``: JPEG,
TIFF, PNG, WebP and HEIC, 50 KB to 5 MB (log-uniform), each with its own EXIF block (camera, lens,
exposure, capture time with offset, GPS). Made once and reused. Every tool reads the same files from
a warm page cache; "MB read" is what the tool itself read from files (AeroFS: its own count;
others: the kernel's ``rchar`` of their processes, which also counts reading scripts/libraries).

    python bench/exif_bench.py [--small] [--files N] [--skip exiftool,...] [--threads N]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import struct
import subprocess
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
MIN_SIZE, MAX_SIZE = 50_000, 5_000_000
FORMATS = [("jpg", 0.70), ("tif", 0.08), ("png", 0.08), ("webp", 0.08), ("heic", 0.06)]
CAMERAS = [("Canon", "EOS R5"), ("NIKON CORPORATION", "NIKON Z 6"), ("SONY", "ILCE-7M3"), ("FUJIFILM", "X-T4"),
           ("Apple", "iPhone 14 Pro"), ("OLYMPUS", "E-M1MarkIII")]  # fmt: skip
LENSES = ["RF24-70mm F2.8 L IS USM", "NIKKOR Z 50mm f/1.8 S", "FE 35mm F1.8", "XF23mmF2 R WR", None]


# --------------------------------------------------------------------------------------------- data
def make_exif(rnd: random.Random) -> bytes:
    import piexif

    make, model = rnd.choice(CAMERAS)
    lens = rnd.choice(LENSES)
    lat, lon = rnd.uniform(-80, 80), rnd.uniform(-179, 179)

    def dms(v: float) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        v = abs(v)
        d = int(v)
        m = int((v - d) * 60)
        s = round(((v - d) * 60 - m) * 60 * 100)
        return ((d, 1), (m, 1), (s, 100))

    day = f"2024:{rnd.randint(1, 12):02d}:{rnd.randint(1, 28):02d}"
    clock = f"{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}"
    exif: dict[int, Any] = {
        piexif.ExifIFD.ExposureTime: (1, rnd.choice([30, 60, 125, 250, 500, 1000, 4000])),
        piexif.ExifIFD.FNumber: (rnd.choice([14, 18, 28, 40, 56, 80, 110]), 10),
        piexif.ExifIFD.ISOSpeedRatings: rnd.choice([100, 200, 400, 800, 1600, 3200]),
        piexif.ExifIFD.ExifVersion: b"0232",
        piexif.ExifIFD.DateTimeOriginal: f"{day} {clock}".encode(),
        piexif.ExifIFD.DateTimeDigitized: f"{day} {clock}".encode(),
        piexif.ExifIFD.OffsetTimeOriginal: rnd.choice([b"+00:00", b"+02:00", b"-05:00", b"+09:00"]),
        piexif.ExifIFD.ExposureBiasValue: (rnd.randint(-6, 6), 3),
        piexif.ExifIFD.Flash: rnd.choice([0, 16, 24, 25]),
        piexif.ExifIFD.FocalLength: (rnd.randint(140, 2000), 10),
        piexif.ExifIFD.FocalLengthIn35mmFilm: rnd.randint(14, 200),
        piexif.ExifIFD.ComponentsConfiguration: b"\x01\x02\x03\x00",
        piexif.ExifIFD.UserComment: b"ASCII\x00\x00\x00bench image",
        piexif.ExifIFD.BodySerialNumber: str(rnd.randint(10**6, 10**9)).encode(),
    }
    if lens:
        exif[piexif.ExifIFD.LensModel] = lens.encode()
    d = {
        "0th": {
            piexif.ImageIFD.Make: make.encode(),
            piexif.ImageIFD.Model: model.encode(),
            piexif.ImageIFD.Orientation: rnd.choice([1, 1, 1, 3, 6, 8]),
            piexif.ImageIFD.XResolution: (300, 1),
            piexif.ImageIFD.YResolution: (300, 1),
            piexif.ImageIFD.ResolutionUnit: 2,
            piexif.ImageIFD.Software: b"AeroFS bench 1.0",
            piexif.ImageIFD.DateTime: f"{day} {clock}".encode(),
            piexif.ImageIFD.Artist: b"Bench Photographer",
            piexif.ImageIFD.Copyright: b"CC0",
        },
        "Exif": exif,
        "GPS": {
            piexif.GPSIFD.GPSVersionID: (2, 3, 0, 0),
            piexif.GPSIFD.GPSLatitudeRef: b"N" if lat >= 0 else b"S",
            piexif.GPSIFD.GPSLatitude: dms(lat),
            piexif.GPSIFD.GPSLongitudeRef: b"E" if lon >= 0 else b"W",
            piexif.GPSIFD.GPSLongitude: dms(lon),
            piexif.GPSIFD.GPSAltitudeRef: 0,
            piexif.GPSIFD.GPSAltitude: (rnd.randint(0, 40000), 10),
            piexif.GPSIFD.GPSTimeStamp: (
                (rnd.randint(0, 23), 1),
                (rnd.randint(0, 59), 1),
                (rnd.randint(0, 59), 1),
            ),
            piexif.GPSIFD.GPSDateStamp: day.encode(),
        },
        "Interop": {piexif.InteropIFD.InteroperabilityIndex: b"R98"},
        "1st": {},
        "thumbnail": None,
    }
    return piexif.dump(d)[6:]  # the TIFF structure, without the "Exif\0\0" of the JPEG segment


def _chunk(typ: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + typ + data + struct.pack(">I", zlib.crc32(typ + data))


def _box(typ: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + typ + payload


def _full(typ: bytes, version: int, payload: bytes) -> bytes:
    return _box(typ, bytes([version, 0, 0, 0]) + payload)


def heic(tiff: bytes, image_data: bytes, width: int, height: int) -> bytes:
    """A HEIC reduced to what metadata readers need (ftyp, meta with iinf/iloc/ispe, mdat)."""
    item = struct.pack(">I", 6) + b"Exif\0\0" + tiff
    ftyp = _box(b"ftyp", b"heic\0\0\0\0mif1heic")
    hdlr = _full(b"hdlr", 0, b"\0\0\0\0pict" + b"\0" * 13)
    pitm = _full(b"pitm", 0, struct.pack(">H", 1))
    infe = _full(b"infe", 2, struct.pack(">HH", 1, 0) + b"hvc1\0") + _full(
        b"infe", 2, struct.pack(">HH", 2, 0) + b"Exif\0"
    )
    iinf = _full(b"iinf", 0, struct.pack(">H", 2) + infe)
    iprp = _box(b"iprp", _box(b"ipco", _full(b"ispe", 0, struct.pack(">II", width, height)))
                + _full(b"ipma", 0, struct.pack(">IHB", 1, 1, 1) + b"\x81"))  # fmt: skip

    def head(exif_at: int, image_at: int) -> bytes:
        iloc = _full(b"iloc", 1, b"\x44\x00" + struct.pack(">H", 2)
                     + struct.pack(">HHHHII", 2, 0, 0, 1, exif_at, len(item))
                     + struct.pack(">HHHHII", 1, 0, 0, 1, image_at, len(image_data)))  # fmt: skip
        return ftyp + _full(b"meta", 0, hdlr + pitm + iinf + iloc + iprp)

    start = len(head(0, 0)) + 8
    return head(start, start + len(item)) + _box(b"mdat", item + image_data)


def _riff_with_exif(webp: bytes, tiff: bytes) -> bytes:
    """Replace the EXIF chunk of a VP8X WebP (made with a placeholder EXIF) by ``tiff``."""
    chunks, pos = [], 12
    while pos + 8 <= len(webp):
        typ, size = webp[pos : pos + 4], struct.unpack("<I", webp[pos + 4 : pos + 8])[0]
        data = webp[pos + 8 : pos + 8 + size]
        chunks.append((typ, tiff if typ == b"EXIF" else data))
        pos += 8 + size + (size & 1)
    body = b"".join(t + struct.pack("<I", len(d)) + d + (b"\0" if len(d) & 1 else b"") for t, d in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def _base_images(rnd: random.Random) -> dict[str, list[tuple[int, bytes, Any]]]:
    """A few pixel payloads per format spanning the size range (noise compresses badly: big files)."""
    from PIL import Image

    bases: dict[str, list[tuple[int, bytes, Any]]] = {f: [] for f, _ in FORMATS}
    targets = [int(MIN_SIZE * (MAX_SIZE / MIN_SIZE) ** (i / 7)) for i in range(8)]
    for target in targets:
        side = max(64, int(math.sqrt(target / 3)))
        img = Image.frombytes("RGB", (side, side), rnd.randbytes(side * side * 3))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=95)
        bases["jpg"].append((target, buf.getvalue(), img.size))
        buf = io.BytesIO()
        img.save(buf, "PNG", compress_level=1)
        bases["png"].append((target, buf.getvalue(), img.size))
        buf = io.BytesIO()
        img.save(buf, "WEBP", quality=90, exif=b"Exif\0\0" + make_exif(rnd))
        bases["webp"].append((target, buf.getvalue(), img.size))
        bases["tif"].append((target, b"", img))
        bases["heic"].append((target, rnd.randbytes(target), img.size))
    return bases


def generate(folder: Path, n: int, seed: int = 5) -> None:
    import piexif

    rnd = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    print(f"generating {n} images in {folder} (seed {seed}) ...", flush=True)
    t0 = time.perf_counter()
    bases = _base_images(rnd)
    names, weights = zip(*FORMATS, strict=True)
    for i in range(n):
        fmt = rnd.choices(names, weights)[0]
        size = math.exp(rnd.uniform(math.log(MIN_SIZE), math.log(MAX_SIZE)))
        _target, data, extra = min(bases[fmt], key=lambda b: abs(math.log(b[0] / size)))
        tiff = make_exif(rnd)
        path = folder / f"img_{i:05d}.{fmt}"
        tmp = path.with_suffix(".tmp")
        if fmt == "jpg":
            out = io.BytesIO()
            piexif.insert(b"Exif\0\0" + tiff, data, out)
            tmp.write_bytes(out.getvalue())
        elif fmt == "png":
            tmp.write_bytes(data[:33] + _chunk(b"eXIf", tiff) + data[33:])
        elif fmt == "webp":
            tmp.write_bytes(_riff_with_exif(data, tiff))
        elif fmt == "heic":
            tmp.write_bytes(heic(tiff, data, *extra))
        else:
            extra.save(tmp, "TIFF", exif=b"Exif\0\0" + tiff)
        tmp.rename(path)
        if (i + 1) % 500 == 0:
            print(f"  {i + 1}/{n} ({time.perf_counter() - t0:.0f} s)", flush=True)
    (folder / ".complete").write_text(str(n))


# -------------------------------------------------------------------------------------------- tools
def _rchar(pid: int | str = "self") -> int:
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_processes(cmds: list[list[str]]) -> tuple[float, int]:
    """Run commands side by side (output discarded); wall time and bytes they read (polled rchar)."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in cmds]
    last = {p.pid: 0 for p in procs}
    while any(p.poll() is None for p in procs):
        for p in procs:
            r = _rchar(p.pid)
            last[p.pid] = max(last[p.pid], r)
        time.sleep(0.02)
    return time.perf_counter() - t0, sum(last.values())


def _exifread_chunk(paths: list[str]) -> tuple[int, int]:
    import exifread

    r0, ok = _rchar(), 0
    for p in paths:
        with open(p, "rb") as f:
            tags = exifread.process_file(f, details=False)
        ok += bool(tags)
    return ok, _rchar() - r0


def _pillow_chunk(paths: list[str]) -> tuple[int, int]:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    r0, ok = _rchar(), 0
    for p in paths:
        try:
            with Image.open(p) as im:
                ex = im.getexif()
                ex.get_ifd(0x8769)
                ex.get_ifd(0x8825)
                ok += bool(ex)
        except Exception:  # a peer's failure on a format is reported, not fatal
            pass
    return ok, _rchar() - r0


def run_pool(fn: Any, paths: list[str], workers: int) -> tuple[float, int, int]:
    chunks = [paths[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_noop, range(workers)))  # start the workers before timing
        t0 = time.perf_counter()
        results = list(pool.map(fn, chunks))
        dt = time.perf_counter() - t0
    return dt, sum(r[1] for r in results), sum(r[0] for r in results)


def _noop(_: int) -> None:
    import exifread  # noqa: F401
    from PIL import Image  # noqa: F401


# --------------------------------------------------------------------------------------------- main
def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="bench exif", description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="300 images instead of 5,000")
    ap.add_argument("--files", type=int, default=None)
    ap.add_argument("--skip", default="", help="comma-separated peers to leave out")
    ap.add_argument("--threads", type=int, default=0, help="AeroFS threads (0: one per core)")
    args = ap.parse_args(argv)
    n = args.files or (300 if args.small else 5000)
    folder = ROOT / "data" / f"exif-{n}"
    if not (folder / ".complete").exists():
        generate(folder, n)
    paths = sorted(str(p) for p in folder.iterdir() if not p.name.startswith("."))
    total = sum(os.path.getsize(p) for p in paths)
    workers = os.cpu_count() or 1
    print(f"{len(paths)} images, {total / 1e6:.0f} MB; {workers} cores", flush=True)
    t0 = time.perf_counter()
    for p in paths:  # warm the page cache so every tool reads from memory
        with open(p, "rb") as f:
            while f.read(1 << 22):
                pass
    print(f"page cache warmed in {time.perf_counter() - t0:.1f} s", flush=True)

    from aerofs_kernel import _engine

    results: list[tuple[str, float, float, str]] = []

    def report(name: str, seconds: float, read: int, note: str = "") -> None:
        results.append((name, len(paths) / seconds, read / 1e6, note))
        print(f"  {name:<26} {seconds:8.2f} s  {len(paths) / seconds:10.0f} files/s  {read / 1e6:9.1f} MB read {note}",
              flush=True)  # fmt: skip

    skip = set(filter(None, args.skip.split(",")))
    opts = json.dumps({"threads": args.threads})
    _engine.extract_exif(paths[:50], opts, _engine.Progress())
    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        doc, _tables = _engine.extract_exif(paths, opts, _engine.Progress())
        dt = time.perf_counter() - t0
        best = min(best or (dt, doc), (dt, doc), key=lambda x: x[0])
    assert best is not None
    summary = json.loads(best[1])["summary"]
    assert summary["with_exif"] == len(paths), summary
    report("AeroFS (best of 3)", best[0], summary["bytes_read"], f"[{summary['with_exif']} with EXIF]")

    half = [paths[i::workers] for i in range(workers)]
    if "exiv2" not in skip:
        dt, read = run_processes([["exiv2", "-q", "-pa", *h] for h in half])
        report("exiv2 -pa", dt, read, f"[{workers} processes]")
    if "exifread" not in skip:
        dt, read, ok = run_pool(_exifread_chunk, paths, workers)
        report("exifread (details=False)", dt, read, f"[{workers} processes, {ok} with tags]")
    if "pillow" not in skip:
        dt, read, ok = run_pool(_pillow_chunk, paths, workers)
        report("Pillow getexif()", dt, read, f"[{workers} processes, {ok} with EXIF]")
    if "exiftool" not in skip:
        dt, read = run_processes([["exiftool", "-n", "-j", "-r", str(folder)]])
        report("exiftool -n -j -r", dt, read, "[1 process, as usually run]")

    ours = results[0][1]
    print("\nratios (AeroFS files/s / peer files/s):")
    for name, rate, _, _ in results[1:]:
        print(f"  vs {name:<26} {ours / rate:8.1f}x")
    status = 0
    exiftool = [r for r in results if r[0].startswith("exiftool")]
    peers = [r for r in results[1:] if not r[0].startswith("exiftool")]
    if exiftool:
        ok = ours / exiftool[0][1] >= 30
        print(f"target >= 30x exiftool: {'met' if ok else 'MISSED'} ({ours / exiftool[0][1]:.1f}x)")
    if peers:
        fastest = max(peers, key=lambda r: r[1])
        ok = ours / fastest[1] >= 3
        print(
            f"target >= 3x the fastest peer ({fastest[0]}): {'met' if ok else 'MISSED'} ({ours / fastest[1]:.1f}x)"
        )
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Round trips against the loopback S3 server (moto): read from it, write to it, interrupted uploads."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import aerofs_kernel as aero
from aerofs_kernel import _engine, runner, sources

pytestmark = pytest.mark.integration


def test_csv_round_trip_s3_to_s3(csv_tree: Path, s3_bucket: tuple[Any, str]) -> None:
    fs, bucket = s3_bucket
    fs.put(str(csv_tree) + "/", f"{bucket}/in/", recursive=True)
    r = aero.csv_to_parquet(f"s3://{bucket}/in/", f"s3://{bucket}/out/", show_progress=False)
    assert sorted(r.outputs) == [
        f"s3://{bucket}/out/{n}" for n in ("one.parquet", "sub/bad.parquet", "sub/two.parquet")
    ]
    # Errors name the user's URL, not the engine's stream token.
    assert [e["path"] for e in r.errors] == [f"s3://{bucket}/in/sub/bad.csv"]
    fs.invalidate_cache()
    with fs.open(f"{bucket}/out/one.parquet", "rb") as f:
        assert pq.read_table(io.BytesIO(f.read())).column("name").to_pylist() == ["ada", "bob"]
    assert not [p for p in fs.find(bucket) if "/." in p]  # no temporaries uploaded


def test_s3_in_local_out_and_job_path(csv_tree: Path, s3_bucket: tuple[Any, str], tmp_path: Path) -> None:
    fs, bucket = s3_bucket
    fs.put(str(csv_tree) + "/", f"{bucket}/in/", recursive=True)
    params = {"src": f"s3://{bucket}/in/", "dst": str(tmp_path / "o")}
    tasks = runner.plan_job("csv-to-parquet", params, 2)
    assert all(i["local_path"] is None for t in tasks for i in t["inputs"])
    partials = [
        runner.run_task("csv-to-parquet", params, t, _engine.Progress(), str(tmp_path / "w")) for t in tasks
    ]
    merged = runner.merge_job("csv-to-parquet", params, partials, str(tmp_path / "w"))
    assert sorted(Path(p).relative_to(tmp_path / "o").as_posix() for p in merged["outputs"]) == [
        "one.parquet",
        "sub/bad.parquet",
        "sub/two.parquet",
    ]
    assert not list((tmp_path / "w").glob("stage-*"))  # nothing staged: remote inputs stream


def test_exif_table_written_to_s3(tmp_path: Path, s3_bucket: tuple[Any, str]) -> None:
    piexif = pytest.importorskip("piexif")
    from PIL import Image

    fs, bucket = s3_bucket
    img = tmp_path / "a.jpg"
    Image.new("RGB", (4, 4)).save(img, exif=piexif.dump({"0th": {piexif.ImageIFD.Make: b"Fuji"}}))
    fs.put_file(str(img), f"{bucket}/photos/a.jpg")
    r = aero.extract_exif(f"s3://{bucket}/photos/", f"s3://{bucket}/meta/exif.parquet", show_progress=False)
    assert r.outputs == [f"s3://{bucket}/meta/exif.parquet"]
    assert r.table.column("Make").to_pylist() == ["Fuji"]
    fs.invalidate_cache()
    assert fs.exists(f"{bucket}/meta/exif.parquet")


class _CancelAfter:
    """A stand-in progress whose ``cancelled`` turns true after ``n`` looks (i.e. mid-upload)."""

    def __init__(self, n: int) -> None:
        self.n = n

    @property
    def cancelled(self) -> bool:
        self.n -= 1
        return self.n < 0


def test_interrupted_multipart_upload_leaves_nothing(
    tmp_path: Path, s3_bucket: tuple[Any, str], monkeypatch: Any
) -> None:
    fs, bucket = s3_bucket
    monkeypatch.setattr(sources, "UPLOAD_CHUNKSIZE", 5 << 20)
    sink = sources.Sink(f"s3://{bucket}/out/")
    assert sink.local is not None
    big = Path(sink.local) / "big.bin"
    big.write_bytes(os.urandom(16 << 20))  # 4 parts of 5 MiB: a multipart upload
    with pytest.raises(_engine.Cancelled):
        sink.commit([str(big)], _CancelAfter(1))  # type: ignore[arg-type]
    fs.invalidate_cache()
    assert not fs.exists(f"{bucket}/out/big.bin")
    uploads = fs.call_s3("list_multipart_uploads", Bucket=bucket)
    assert not uploads.get("Uploads"), "the multipart upload was not aborted"
    # Uninterrupted, the same upload completes and is whole.
    (url,) = sink.commit([str(big)])
    fs.invalidate_cache()
    assert url == f"s3://{bucket}/out/big.bin" and fs.size(f"{bucket}/out/big.bin") == 16 << 20
    sink.cleanup()
    assert not Path(sink.local).exists()


def test_listing_is_one_paginated_call_not_a_stat_per_object(
    s3_bucket: tuple[Any, str], monkeypatch: Any
) -> None:
    fs, bucket = s3_bucket
    n = 1200  # more than one page (1000 keys)
    fs.pipe({f"{bucket}/many/{i:05}.csv": b"a\n1\n" for i in range(n)})
    import s3fs

    calls: list[str] = []
    orig = s3fs.S3FileSystem._call_s3

    async def counting(self: Any, method: str, *a: Any, **kw: Any) -> Any:
        calls.append(method)
        return await orig(self, method, *a, **kw)

    monkeypatch.setattr(s3fs.S3FileSystem, "_call_s3", counting)
    found = sources.list_inputs(f"s3://{bucket}/many/", suffixes=(".csv",))
    assert len(found) == n and all(i.size == 4 for i in found)
    assert calls.count("head_object") <= 1
    assert len(calls) <= 6, calls  # a couple of list pages (+ the root's info), not 1200 requests


def test_job_path_writes_to_s3(csv_tree: Path, tmp_path: Path, s3_bucket: tuple[Any, str]) -> None:
    piexif = pytest.importorskip("piexif")
    from PIL import Image

    fs, bucket = s3_bucket
    # csv-to-parquet: each task uploads its own outputs.
    params = {"src": str(csv_tree), "dst": f"s3://{bucket}/pq/"}
    tasks = runner.plan_job("csv-to-parquet", params, 2)
    partials = [
        runner.run_task("csv-to-parquet", params, t, _engine.Progress(), str(tmp_path / "w1")) for t in tasks
    ]
    merged = runner.merge_job("csv-to-parquet", params, partials, str(tmp_path / "w1"))
    assert sorted(merged["outputs"]) == [
        f"s3://{bucket}/pq/{n}" for n in ("one.parquet", "sub/bad.parquet", "sub/two.parquet")
    ]
    # exif: tasks keep tables in the workdir; the merge writes one object.
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.new("RGB", (4, 4)).save(
            photos / f"{i}.jpg", exif=piexif.dump({"0th": {piexif.ImageIFD.Make: b"M%d" % i}})
        )
    params = {"src": str(photos), "dst": f"s3://{bucket}/meta/exif.parquet"}
    tasks = runner.plan_job("exif", params, 3)
    assert len(tasks) == 3
    partials = [runner.run_task("exif", params, t, _engine.Progress(), str(tmp_path / "w2")) for t in tasks]
    assert all(p["outputs"] == [] for p in partials)
    merged = runner.merge_job("exif", params, partials, str(tmp_path / "w2"))
    assert merged["outputs"] == [f"s3://{bucket}/meta/exif.parquet"] and merged["summary"]["images"] == 3
    fs.invalidate_cache()
    with fs.open(f"{bucket}/meta/exif.parquet", "rb") as f:
        assert sorted(pq.read_table(io.BytesIO(f.read())).column("Make").to_pylist()) == ["M0", "M1", "M2"]


def test_exif_from_s3_names_urls_in_table_errors_and_exceptions(
    tmp_path: Path, s3_bucket: tuple[Any, str]
) -> None:
    """The table's path column, the per-file errors and a fail-fast InputError all name the user's
    s3:// URL, never the stream token the engine read."""
    piexif = pytest.importorskip("piexif")
    from PIL import Image

    fs, bucket = s3_bucket
    img = tmp_path / "a.jpg"
    Image.new("RGB", (4, 4)).save(img, exif=piexif.dump({"0th": {piexif.ImageIFD.Make: b"Fuji"}}))
    fs.put_file(str(img), f"{bucket}/photos/a.jpg")
    fs.pipe(f"{bucket}/photos/sub/bad.jpg", b"garbage!")
    dst = tmp_path / "exif.parquet"
    r = aero.extract_exif(f"s3://{bucket}/photos/", str(dst), show_progress=False)
    assert r.table.column("path").to_pylist() == [f"s3://{bucket}/photos/a.jpg"]
    assert pq.read_table(dst).column("path").to_pylist() == [f"s3://{bucket}/photos/a.jpg"]
    assert [(e["path"], e["offset"]) for e in r.errors] == [(f"s3://{bucket}/photos/sub/bad.jpg", 0)]
    with pytest.raises(aero.InputError) as e:
        aero.extract_exif(f"s3://{bucket}/photos/sub/", on_error="fail", show_progress=False)
    assert e.value.path == f"s3://{bucket}/photos/sub/bad.jpg" and e.value.offset == 0
    assert f"s3://{bucket}/photos/sub/bad.jpg" in str(e.value) and "aerofs-stream" not in str(e.value)
    # The job path (plan, task on a worker, merge) gives the same table.
    params = {"src": f"s3://{bucket}/photos/"}
    tasks = runner.plan_job("exif", params, 2)
    partials = [runner.run_task("exif", params, t, _engine.Progress(), str(tmp_path / "w")) for t in tasks]
    runner.merge_job("exif", params, partials, str(tmp_path / "w"))
    paths = [pq.read_table(p["tables"]["table"]).column("path").to_pylist() for p in partials]
    assert sorted(x for p in paths for x in p) == [f"s3://{bucket}/photos/a.jpg"]

"""Every column and every tag of the `exif` pipeline equals `exiftool -n -j` on a corpus made here."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from aerofs_kernel import _engine
from aerofs_kernel.pipelines import get_pipeline

EXIFTOOL = shutil.which("exiftool")
pytestmark = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool (libimage-exiftool-perl) is not installed")

# Groups whose tags land in our `tags` column; IFD1 only for the thumbnail's place.
TAG_GROUPS = {"IFD0", "ExifIFD", "GPS", "InteropIFD"}
COLUMN_TAGS = {
    "Make", "Model", "LensModel", "DateTimeOriginal", "OffsetTimeOriginal", "ExposureTime", "FNumber", "ISO",
    "FocalLength", "FocalLengthIn35mmFormat", "Flash", "Orientation", "GPSLatitude", "GPSLongitude",
    "GPSAltitude", "Software", "ImageDescription", "Artist", "Copyright",
}  # fmt: skip


def exiftool(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run([EXIFTOOL, "-n", "-j", *args], capture_output=True, text=True, check=False)
    return json.loads(out.stdout)


def same(ours: Any, theirs: Any) -> bool:
    """Equal as numbers (rationals within tolerance) or as text."""
    if ours is None or theirs is None:
        return ours is None and theirs is None
    try:
        a, b = float(ours), float(theirs)
    except (TypeError, ValueError):
        return str(ours).strip() == str(theirs).strip()
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def run(inputs: list[str], **options: Any) -> tuple[dict[str, Any], Any]:
    result, tables = _engine.extract_exif(inputs, json.dumps(options), _engine.Progress())
    return json.loads(result), tables["table"]


@pytest.fixture(scope="module")
def extracted(corpus: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    doc, table = run([str(corpus)])
    rows = {Path(r["path"]).name: r for r in table.to_pylist()}
    return doc, rows


def test_every_file_is_read(corpus: Path, extracted: Any) -> None:
    doc, rows = extracted
    files = sorted(p.name for p in corpus.iterdir())
    assert sorted(rows) == files
    s = doc["summary"]
    assert s["images"] == len(files) and s["files"] == len(files) and s["errors"] == 0
    assert s["with_exif"] == sum(1 for r in rows.values() if r["Make"] or r["tags"])
    assert doc["errors"] == []


def test_columns_equal_exiftool(corpus: Path, extracted: Any) -> None:
    _, rows = extracted
    checked = 0
    for ref in exiftool(str(corpus)):
        name = Path(ref["SourceFile"]).name
        row = rows[name]
        assert row["file_size"] == ref["FileSize"], name
        assert row["format"] == ref["FileType"].replace("Extended ", ""), name
        assert (row["width"], row["height"]) == (ref.get("ImageWidth"), ref.get("ImageHeight")), name
        for col in COLUMN_TAGS - {"DateTimeOriginal"}:
            assert same(row[col], ref.get(col)), (name, col, row[col], ref.get(col))
        dto = ref.get("DateTimeOriginal")
        if dto is None:
            assert row["DateTimeOriginal"] is None
        else:
            local = datetime.strptime(dto, "%Y:%m:%d %H:%M:%S")
            assert row["DateTimeOriginal"] == local, name
            off = ref.get("OffsetTimeOriginal")
            if off:
                sign = -1 if off[0] == "-" else 1
                delta = timedelta(hours=int(off[1:3]), minutes=int(off[4:6])) * sign
                assert row["DateTimeOriginalUTC"] == (local - delta).replace(tzinfo=UTC), name
            else:
                assert row["DateTimeOriginalUTC"] is None
        checked += 1
    assert checked == len(rows)
    # The corpus really exercises the columns: signed GPS, negative altitude, offsets, floats.
    values = list(rows.values())
    assert any(r["GPSLatitude"] and r["GPSLatitude"] < 0 for r in values)
    assert any(r["GPSAltitude"] and r["GPSAltitude"] < 0 for r in values)
    assert any(r["DateTimeOriginalUTC"] for r in values)
    assert {r["format"] for r in values} >= {"JPEG", "PNG", "WEBP", "TIFF", "HEIC", "DNG"}


def test_tags_equal_exiftool(corpus: Path, extracted: Any) -> None:
    _, rows = extracted
    compared = 0
    for ref in exiftool("-G1", "-a", str(corpus)):
        name = Path(ref["SourceFile"]).name
        ours = dict(rows[name]["tags"])
        theirs: dict[str, Any] = {}
        for key, value in ref.items():
            group, _, tag = key.partition(":")
            if (
                group in TAG_GROUPS or tag in ("ThumbnailOffset", "ThumbnailLength")
            ) and tag not in COLUMN_TAGS:
                theirs.setdefault(tag, value)
        assert set(ours) == set(theirs), (name, set(ours) ^ set(theirs))
        for tag, value in theirs.items():
            assert same(ours[tag], value), (name, tag, ours[tag], value)
            compared += 1
        assert "MakerNote" not in ours
    assert compared > 100


def test_every_tag_type_is_in_the_corpus(extracted: Any) -> None:
    _, rows = extracted
    tags = dict(rows["big_endian.jpg"]["tags"])
    assert tags["ExposureCompensation"] == "-0.6666666667"  # signed rational
    assert tags["BrightnessValue"] == "-12.345"
    assert tags["ExifVersion"] == "0232"  # undefined
    assert tags["UserComment"] == "A comment"  # undefined with a charset
    assert tags["GPSTimeStamp"] == "10:20:30.5"  # GPS rationals converted
    assert tags["InteropIndex"] == "R98"  # the Interop sub-IFD
    assert tags["XPTitle"] == "Titel \u00e9"  # BYTE, UCS-2
    assert tags["DigitalZoomRatio"] == "undef"  # 0/0


def test_thumbnails_and_tag_selection(corpus: Path) -> None:
    path = corpus / "with_thumb.jpg"
    _, table = run([str(path)], include_thumbnails=True, tags=["ExifVersion", "GPSTimeStamp"])
    row = table.to_pylist()[0]
    thumb = subprocess.run(
        [EXIFTOOL, "-b", "-ThumbnailImage", str(path)], capture_output=True, check=True
    ).stdout
    assert thumb and row["thumbnail"] == thumb
    assert dict(row["tags"]) == {"ExifVersion": "0232", "GPSTimeStamp": "10:20:30.5"}
    assert row["Make"] == "Canon"  # columns are always filled
    _, table = run([str(path)])
    assert "thumbnail" not in table.column_names


def test_reads_only_metadata(tmp_path: Path, corpus: Path) -> None:
    from PIL import Image

    big = tmp_path / "big.jpg"
    exif = Image.open(corpus / "big_endian.jpg").info["exif"]
    Image.effect_noise((1500, 1500), 64).convert("RGB").save(big, exif=exif, quality=95)
    doc, table = run([str(big)])
    assert table.num_rows == 1 and table.column("Make")[0].as_py() == "Canon"
    assert doc["summary"]["bytes_read"] < 64 * 1024 < big.stat().st_size


def test_bad_files_are_reported_per_file(corpus: Path, bad_files: dict[str, Path]) -> None:
    good = corpus / "big_endian.jpg"
    doc, table = run([str(good), *map(str, bad_files.values())])
    assert table.num_rows == 1
    errors = {Path(e["path"]).name: e for e in doc["errors"]}
    assert set(errors) == {p.name for p in bad_files.values()}
    assert "empty" in errors["empty.jpg"]["message"]
    assert "not a supported image" in errors["text.jpg"]["message"]
    assert "truncated" in errors["truncated_jpeg.jpg"]["message"]
    assert all(e["kind"] == "input" and e["message"] for e in doc["errors"])
    assert doc["summary"]["errors"] == len(bad_files)
    with pytest.raises(_engine.InputError):
        run([str(good), str(bad_files["text"])], on_error="fail")


def test_missing_file_and_unknown_option(tmp_path: Path) -> None:
    doc, table = run([str(tmp_path / "nope.jpg")])
    assert table.num_rows == 0 and doc["errors"][0]["kind"] == "not_found"
    with pytest.raises(_engine.OptionsError, match="colour"):
        run([str(tmp_path)], colour=True)


def test_symlinks(tmp_path: Path, corpus: Path) -> None:
    (tmp_path / "real").mkdir()
    shutil.copy(corpus / "big_endian.jpg", tmp_path / "real" / "a.jpg")
    os.symlink(corpus / "plain.png", tmp_path / "real" / "link.png")
    os.symlink(tmp_path / "real", tmp_path / "real" / "loop")
    doc, table = run([str(tmp_path / "real")], follow_symlinks=False)
    assert table.num_rows == 1 and doc["summary"]["symlinks_skipped"] == 2
    doc, table = run([str(tmp_path / "real")], follow_symlinks=True)
    assert table.num_rows == 2  # the loop is cut


def test_pipeline_spec_writes_parquet(tmp_path: Path, corpus: Path) -> None:
    pipe = get_pipeline("exif")
    assert pipe.defaults()["include_thumbnails"] is False
    assert ".heic" in pipe.input_suffixes and ".webp" in pipe.input_suffixes
    assert pipe.validate({"src": "x", "include_thumbnails": "yes"})
    opts = pipe.options({"src": str(corpus)})
    out = pipe.run([str(corpus)], str(tmp_path / "out"), opts, _engine.Progress())
    assert out.outputs == [str(tmp_path / "out" / "exif.parquet")]
    assert {"images", "with_exif"} <= set(out.summary)
    back = pq.read_table(out.outputs[0])
    assert back.num_rows == out.tables["table"].num_rows == out.summary["images"]
    assert back.column("Make").to_pylist() == out.tables["table"].column("Make").to_pylist()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["exif.parquet"]  # no temp file left
    merged = pipe.merge([out, out], str(tmp_path / "merged.parquet"), opts)
    assert merged.summary["images"] == 2 * out.summary["images"]
    assert pq.read_table(tmp_path / "merged.parquet").num_rows == 2 * back.num_rows


def test_cancel_stops_the_run(corpus: Path) -> None:
    p = _engine.Progress()
    p.cancel()
    with pytest.raises(_engine.Cancelled):
        _engine.extract_exif([str(corpus)], "{}", p)

"""The public API on small real data: outputs, values, errors, options, display."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

import aerofs_kernel as aero
from aerofs_kernel.result import Result


def test_csv_to_parquet_folder_mirrors_tree_and_reports_bad_input(csv_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = aero.csv_to_parquet(str(csv_tree), str(out), show_progress=False)
    assert isinstance(r, Result)
    assert sorted(Path(p).relative_to(out).as_posix() for p in r.outputs) == [
        "one.parquet",
        "sub/bad.parquet",
        "sub/two.parquet",
    ]
    assert r.summary["files"] == 3
    assert pq.read_table(out / "one.parquet").to_pydict() == {
        "id": [1, 2],
        "name": ["ada", "bob"],
        "score": [3.5, 4.0],
    }
    assert pq.read_table(out / "sub" / "two.parquet").column("name").to_pylist() == ["cy"]
    # The malformed row is reported with file and line; the good row of that file is kept.
    (err,) = r.errors
    assert err["path"].endswith("bad.csv") and err["line"] == 3
    assert pq.read_table(out / "sub" / "bad.parquet").column("id").to_pylist() == [4]
    # No temporaries left beside the outputs.
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]


def test_glob_file_url_and_include_exclude(csv_tree: Path, tmp_path: Path) -> None:
    r = aero.csv_to_parquet(f"{csv_tree}/sub/*.csv", str(tmp_path / "g"), show_progress=False)
    assert sorted(Path(p).name for p in r.outputs) == ["bad.parquet", "two.parquet"]
    r = aero.csv_to_parquet(f"file://{csv_tree}", str(tmp_path / "f"), exclude=["bad*"], show_progress=False)
    assert sorted(Path(p).name for p in r.outputs) == ["one.parquet", "two.parquet"]
    assert r.errors == []
    r = aero.csv_to_parquet(str(csv_tree), str(tmp_path / "i"), include=["sub/*"], show_progress=False)
    assert sorted(Path(p).name for p in r.outputs) == ["bad.parquet", "two.parquet"]


def test_list_of_sources_and_merged_layout(csv_tree: Path, tmp_path: Path) -> None:
    dst = tmp_path / "all.parquet"
    r = aero.csv_to_parquet(
        [str(csv_tree / "one.csv"), str(csv_tree / "sub" / "two.csv")],
        str(dst),
        layout="merged",
        show_progress=False,
    )
    assert r.outputs == [str(dst)]
    assert sorted(pq.read_table(dst).column("id").to_pylist()) == [1, 2, 3]


def test_bad_options_raise_options_error_with_path(csv_tree: Path, tmp_path: Path) -> None:
    with pytest.raises(aero.OptionsError, match=r"\$\.layout"):
        aero.csv_to_parquet(str(csv_tree), str(tmp_path / "o"), layout="sideways", show_progress=False)
    with pytest.raises(aero.OptionsError, match="no_such_option"):
        aero.csv_to_parquet(str(csv_tree), str(tmp_path / "o"), no_such_option=1, show_progress=False)
    with pytest.raises(ValueError, match="no such file or folder"):
        aero.csv_to_parquet(str(tmp_path / "missing"), str(tmp_path / "o"), show_progress=False)
    with pytest.raises(aero.OptionsError, match="unknown pipeline"):
        aero.run("nope", str(csv_tree), show_progress=False)
    assert not (tmp_path / "o").exists()


def test_result_display_is_self_contained(csv_tree: Path, tmp_path: Path) -> None:
    r = aero.csv_to_parquet(str(csv_tree), str(tmp_path / "o"), show_progress=False)
    bundle = r._repr_mimebundle_()
    html = bundle["text/html"]
    assert "csv-to-parquet" in html and "bad.csv" in html and "<svg" in html  # rows-per-file chart
    assert "<script" not in html and "http" not in html.replace("http://www.w3.org/2000/svg", "")
    # HTML is what the front end shows: JupyterLab's JSON viewer outranks it, so no JSON in the bundle.
    assert set(bundle) == {"text/plain", "text/html"}
    assert r.to_dict()["summary"]["files"] == 3
    assert r.to_dict().keys() >= {"pipeline", "summary", "outputs", "errors"}


def test_extract_exif_table(tmp_path: Path) -> None:
    piexif = pytest.importorskip("piexif")
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    for i, make in enumerate(["Canon", "Nikon"]):
        exif = piexif.dump(
            {"0th": {piexif.ImageIFD.Make: make.encode(), piexif.ImageIFD.Model: f"M{i}".encode()}}
        )
        Image.new("RGB", (8 + i, 6), (i * 50, 0, 0)).save(photos / f"p{i}.jpg", exif=exif)
    (photos / "readme.txt").write_text("not an image")
    r = aero.extract_exif(str(photos), str(tmp_path / "exif.parquet"), show_progress=False)
    t = r.table
    assert t is not None and t.num_rows == 2
    by_path = {
        Path(p).name: m
        for p, m in zip(t.column("path").to_pylist(), t.column("Make").to_pylist(), strict=True)
    }
    assert by_path == {"p0.jpg": "Canon", "p1.jpg": "Nikon"}
    assert pq.read_table(tmp_path / "exif.parquet").num_rows == 2
    assert r.summary["images"] == 2

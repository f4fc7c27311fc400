"""The rich display of an exif result: a table preview, camera and lens counts, a timeline of capture
dates and, where GPS exists, a scatter of positions (inline SVG, checked by what it draws)."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import piexif
import pytest
from PIL import Image

import aerofs_kernel as aero
from aerofs_kernel.charts import time_bins, top_counts
from aerofs_kernel.result import Result
from aerofs_kernel.widgets import ResultWidget

SVG_NS = "{http://www.w3.org/2000/svg}"

# name, make, model, lens, capture time, (lat, lon) or None
PHOTOS = [
    ("a.jpg", "Canon", "Canon EOS R5", "RF24-70mm F2.8 L IS USM", "2024:05:01 09:00:00", (48.8584, 2.2945)),
    ("b.jpg", "Canon", "Canon EOS R5", "RF24-70mm F2.8 L IS USM", "2024:05:01 18:30:00", (48.8606, 2.3376)),
    ("c.jpg", "Canon", "Canon EOS R5", None, "2024:05:03 07:15:00", None),
    ("d.jpg", "NIKON CORPORATION", "NIKON Z 6", "NIKKOR Z 50mm f/1.8 S", "2024:05:03 12:00:00", (-33.8568, 151.2153)),
    ("e.jpg", "NIKON CORPORATION", "NIKON Z 6", None, None, (40.6892, -74.0445)),
    ("f.jpg", "FUJIFILM", "X-T4", None, "2024:05:04 10:00:00", None),
]  # fmt: skip


def _dms(v: float) -> tuple[tuple[int, int], ...]:
    v = abs(v)
    d = int(v)
    m = int((v - d) * 60)
    s = round(((v - d) * 60 - m) * 60 * 10000)
    return ((d, 1), (m, 1), (s, 10000))


@pytest.fixture(scope="module")
def album(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("album")
    for name, make, model, lens, when, gps in PHOTOS:
        exif: dict[str, Any] = {
            "0th": {piexif.ImageIFD.Make: make.encode(), piexif.ImageIFD.Model: model.encode()},
            "Exif": {},
            "GPS": {},
        }
        if lens:
            exif["Exif"][piexif.ExifIFD.LensModel] = lens.encode()
        if when:
            exif["Exif"][piexif.ExifIFD.DateTimeOriginal] = when.encode()
        if gps:
            lat, lon = gps
            exif["GPS"] = {
                piexif.GPSIFD.GPSLatitudeRef: b"N" if lat >= 0 else b"S",
                piexif.GPSIFD.GPSLatitude: _dms(lat),
                piexif.GPSIFD.GPSLongitudeRef: b"E" if lon >= 0 else b"W",
                piexif.GPSIFD.GPSLongitude: _dms(lon),
            }
        Image.new("RGB", (16, 12), (200, 100, 50)).save(d / name, exif=piexif.dump(exif))
    (d / "g.jpg").write_bytes(b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00II*\x00")  # truncated
    return d


@pytest.fixture(scope="module")
def shown(album: Path) -> tuple[Result, str]:
    r = aero.extract_exif(str(album), show_progress=False)
    return r, r._repr_mimebundle_()["text/html"]


def charts(page: str) -> dict[str, ET.Element]:
    """Every chart of a display by its kind (``data-chart``), parsed as XML."""
    out = {}
    for svg in re.findall(r"<svg .*?</svg>", page, flags=re.S):
        el = ET.fromstring(svg)
        out[el.get("data-chart", "")] = el
    return out


def bars(svg: ET.Element) -> list[tuple[str, int]]:
    """(label, value) of each bar, from the hover titles "label: value"."""
    out = []
    for t in svg.iter(f"{SVG_NS}title"):
        label, _, value = (t.text or "").rpartition(": ")
        out.append((label, int(value.replace(",", ""))))
    return out


def test_camera_and_lens_counts(shown: tuple[Result, str]) -> None:
    _r, page = shown
    c = charts(page)
    # Most used first; the make is not repeated when the model already says it.
    assert bars(c["cameras"]) == [("Canon EOS R5", 3), ("NIKON Z 6", 2), ("FUJIFILM X-T4", 1)]
    assert bars(c["lenses"]) == [("RF24-70mm F2.8 L IS USM", 2), ("NIKKOR Z 50mm f/1.8 S", 1)]
    assert "3 of 6 images name no lens" in page
    assert bars(c["formats"]) == [("JPEG", 6)]


def test_capture_timeline_per_day(shown: tuple[Result, str]) -> None:
    _r, page = shown
    tl = charts(page)["timeline"]
    assert tl.get("data-unit") == "day"
    drawn = {r.get("data-bin"): int(r.get("data-count") or 0) for r in tl.iter(f"{SVG_NS}rect")}
    # Every day from the first capture to the last is a column; empty days draw nothing.
    assert drawn == {"2024-05-01": 2, "2024-05-03": 2, "2024-05-04": 1}
    labels = [t.text for t in tl.iter(f"{SVG_NS}text")]
    assert "2024-05-01" in labels and "2024-05-04" in labels and "per day" in labels
    assert "1 of 6 images have no capture date" in page


def test_gps_scatter(shown: tuple[Result, str]) -> None:
    _r, page = shown
    sc = charts(page)["scatter"]
    assert sc.get("data-points") == "4"
    dots = {
        (c.find(f"{SVG_NS}title").text or "").split(" ")[0]: (
            float(c.get("cx") or 0),
            float(c.get("cy") or 0),
        )  # type: ignore[union-attr]
        for c in sc.iter(f"{SVG_NS}circle")
    }
    assert sorted(dots) == ["a.jpg", "b.jpg", "d.jpg", "e.jpg"]
    # North is up, east is right: Sydney lowest and rightmost, New York leftmost, Paris highest.
    assert dots["d.jpg"][1] == max(y for _, y in dots.values())
    assert dots["d.jpg"][0] == max(x for x, _ in dots.values())
    assert dots["e.jpg"][0] == min(x for x, _ in dots.values())
    assert dots["b.jpg"][1] <= dots["e.jpg"][1] < dots["d.jpg"][1]
    assert "4 of 6 images have a GPS position" in page
    assert "(48.86060, 2.33760)" in page  # the hover text gives the position


def test_table_errors_and_self_contained(shown: tuple[Result, str]) -> None:
    r, page = shown
    assert "aerofs-table" in page and "Canon EOS R5" in page and "6 rows x" in page
    assert "GPSLatitudeRef=N" in page  # the tags map reads as key=value
    (err,) = r.errors
    assert err["path"].endswith("g.jpg")
    assert "g.jpg</code>" in page and "1 errors" in page
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")
    # The result widget shows the same view.
    assert ResultWidget(r).html == page


def test_no_gps_no_scatter_and_thumbnails_by_size(album: Path) -> None:
    r = aero.extract_exif(
        [str(album / "c.jpg"), str(album / "f.jpg")], include_thumbnails=True, show_progress=False
    )
    page = r._repr_html_()
    assert "scatter" not in charts(page)
    assert "GPS position" not in page
    assert set(charts(page)) >= {"cameras", "timeline", "formats"}
    assert "Lenses: none of the 2 images names its lens" in page


def test_job_result_without_table_shows_formats() -> None:
    # A submitted job's result whose table stayed remote: the summary still draws.
    r = Result(pipeline="exif", summary={"images": 5, "formats": {"JPEG": 3, "PNG": 2}})
    assert bars(charts(r._repr_html_())["formats"]) == [("JPEG", 3), ("PNG", 2)]


def test_time_bins_pick_the_unit_by_span() -> None:
    t0 = dt.datetime(2024, 1, 31, 22, 10)
    unit, bins = time_bins([t0, t0 + dt.timedelta(hours=3)])
    assert unit == "hour" and [c for _, c in bins] == [1, 0, 0, 1]
    unit, bins = time_bins([t0, dt.datetime(2025, 3, 2), None])
    assert unit == "month" and bins[0] == ("2024-01", 1) and bins[-1] == ("2025-03", 1) and len(bins) == 15
    unit, bins = time_bins([dt.datetime(1990, 6, 1), dt.datetime(2024, 1, 1)])
    assert unit == "year" and len(bins) == 35
    assert time_bins([None]) == ("day", [])


def test_top_counts_folds_the_tail() -> None:
    ranked, empty = top_counts(["a", "b", "b", None, " ", "c", "d"], limit=3)
    assert ranked == [("b", 2), ("a", 1), ("2 others", 2)] and empty == 2


def test_time_bins_arrow_equals_python() -> None:
    import pyarrow as pa

    t0 = dt.datetime(2023, 12, 30, 23, 59)
    for step in (
        dt.timedelta(minutes=37),
        dt.timedelta(hours=13),
        dt.timedelta(days=9),
        dt.timedelta(days=400),
    ):
        times = [t0 + k * step for k in range(40)] + [None]
        assert time_bins(pa.array(times, pa.timestamp("us"))) == time_bins(times)

"""``exif``: EXIF metadata of photos into a table, one row per image, on the Rust engine.

Reads only the metadata segments (JPEG APP1, PNG eXIf, WebP EXIF, HEIF/AVIF Exif item, TIFF and
TIFF-based raws in place) and gives exiftool's ``-n`` values. Columns: ``path, file_size, format,
width, height, Make, Model, LensModel, DateTimeOriginal`` (camera wall-clock time, no zone),
``OffsetTimeOriginal`` (its offset text, where the file has one), ``DateTimeOriginalUTC`` (the same
instant in UTC, only where the offset is known), ``ExposureTime, FNumber, ISO, FocalLength,
FocalLengthIn35mmFormat, Flash, Orientation, GPSLatitude, GPSLongitude, GPSAltitude`` (signed
degrees / metres), ``Software, ImageDescription, Artist, Copyright`` and ``tags`` (map of every other
tag, by exiftool's name, to its value as text); ``thumbnail`` (bytes) with ``include_thumbnails``.
Summary: ``files, images, with_exif, errors, symlinks_skipped, bytes_read, bytes_total, formats``.
"""

from __future__ import annotations

import html
import json
import os
from typing import Any, ClassVar

import pyarrow as pa

from aerofs_kernel import _engine
from aerofs_kernel.pipelines import atomic, register
from aerofs_kernel.pipelines.base import Pipeline, RunOutput

SUFFIXES = (
    ".jpg", ".jpeg", ".jpe", ".jfif", ".tif", ".tiff", ".png", ".webp", ".heic", ".heif", ".hif", ".avif",
    ".dng", ".nef", ".nrw", ".cr2", ".arw", ".sr2", ".orf", ".rw2", ".pef", ".srw", ".erf", ".3fr", ".iiq", ".mos",
)  # fmt: skip

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "exif",
    "type": "object",
    "required": ["src"],
    "additionalProperties": False,
    "properties": {
        "src": {
            "description": "Image file, folder (searched recursively), glob or list of them; local or fsspec URL.",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        },
        "dst": {
            "type": ["string", "null"],
            "default": None,
            "description": "Where to write the table as Parquet: a .parquet file, or a folder (exif.parquet "
            "inside). None: the table is only returned.",
        },
        "tags": {
            "type": ["array", "null"],
            "items": {"type": "string"},
            "default": None,
            "description": "exiftool tag names to keep in the `tags` column (e.g. ExifVersion, GPSTimeStamp); "
            "null keeps every tag. The fixed columns are always filled.",
        },
        "include_thumbnails": {
            "type": "boolean",
            "default": False,
            "description": "Add a `thumbnail` column with the embedded JPEG thumbnail's bytes (reads them).",
        },
        "follow_symlinks": {
            "type": "boolean",
            "default": True,
            "description": "Follow symbolic links to files and folders (loops are cut); off: links are skipped "
            "and counted in the summary's symlinks_skipped.",
        },
        "threads": {
            "type": "integer",
            "minimum": 0,
            "default": 0,
            "description": "Worker threads; 0 uses one per core.",
        },
        "on_error": {
            "enum": ["skip", "fail"],
            "default": "skip",
            "description": "A corrupt or unreadable file: record it in errors and go on (skip), or stop (fail).",
        },
    },
}


def output_path(dst: str) -> str:
    """The Parquet file for ``dst``: itself when it ends in .parquet, else ``dst/exif.parquet``."""
    return dst if dst.lower().endswith(".parquet") else os.path.join(dst, "exif.parquet")


class Exif(Pipeline):
    name: ClassVar[str] = "exif"
    title: ClassVar[str] = "EXIF metadata"
    description: ClassVar[str] = (
        "Extract EXIF metadata (camera, lens, exposure, capture time, GPS and every other tag) from photos "
        "- JPEG, TIFF, PNG, WebP, HEIC/AVIF and TIFF-based raws - into one table row per image, reading only "
        "the metadata segments. Values match exiftool -n."
    )
    schema: ClassVar[dict[str, Any]] = SCHEMA
    input_suffixes: ClassVar[tuple[str, ...] | None] = SUFFIXES

    def run(
        self, inputs: list[str], dst: str | None, options: dict[str, Any], progress: _engine.Progress
    ) -> RunOutput:
        eng = {k: v for k, v in options.items() if k not in ("src", "dst")}
        if dst:
            eng["output"] = output_path(dst)
        return RunOutput.from_engine(_engine.extract_exif(list(inputs), json.dumps(eng), progress))

    def merge(self, parts: list[RunOutput], dst: str | None, options: dict[str, Any]) -> RunOutput:
        merged = super().merge(parts, dst, options)
        formats: dict[str, int] = {}
        for part in parts:
            for k, v in part.summary.get("formats", {}).items():
                formats[k] = formats.get(k, 0) + v
        merged.summary["formats"] = formats
        # Tasks ran on slices of the inputs: the job's single output is the merged table.
        if dst and "table" in merged.tables:
            merged.outputs = [atomic.write_table(merged.tables["table"], output_path(dst))]
        return merged

    def charts(self, result: Any) -> list[str]:
        """Cameras and lenses by count, images by format, a timeline of capture dates and, where
        images carry GPS, a scatter of their positions."""
        return exif_charts(result.table, result.summary)


def camera_name(make: str | None, model: str | None) -> str | None:
    """ "Make Model" as people say it: the model alone when it already starts with the make
    (``Canon`` + ``Canon EOS R5``), either one when the other is missing."""
    make, model = (make or "").strip(), (model or "").strip()
    if not make and not model:
        return None
    if not make or model.lower().startswith(make.lower().split()[0]):
        return model or make
    return f"{make} {model}".strip()


def _caption(text: str) -> str:
    return f"<div class='aerofs-caption' style='color:#666;font-size:11px'>{html.escape(text)}</div>"


def exif_charts(table: pa.Table | None, summary: dict[str, Any]) -> list[str]:
    """The exif display's charts. Counting is done by Arrow, so a table of a million photos draws in
    about a second; the scatter draws an even sample of at most 2,000 positions."""
    import pyarrow.compute as pc

    from aerofs_kernel.charts import bar_chart_svg, rank_counts, scatter_svg, timeline_svg

    out: list[str] = []
    cols = set(table.column_names) if table is not None else set()
    n = table.num_rows if table is not None else 0
    if table is not None and n and {"Make", "Model"} <= cols:
        pairs = (
            table.select(["Make", "Model"])
            .group_by(["Make", "Model"], use_threads=False)
            .aggregate([([], "count_all")])
        )
        counts: dict[str | None, int] = {}
        for row in pairs.to_pylist():
            name = camera_name(row["Make"], row["Model"])
            counts[name] = counts.get(name, 0) + row["count_all"]
        cameras, none = rank_counts(counts)
        if cameras:
            out.append(
                bar_chart_svg("Cameras", cameras, kind="cameras")
                + (_caption(f"{none:,} of {n:,} images name no camera") if none else "")
            )
    if table is not None and n and "LensModel" in cols:
        lens_col = table["LensModel"]
        vc = {r["values"]: r["counts"] for r in pc.value_counts(lens_col.drop_null()).to_pylist()}
        lenses, blank = rank_counts(vc)
        none = blank + lens_col.null_count
        if lenses:
            out.append(
                bar_chart_svg("Lenses", lenses, kind="lenses")
                + (_caption(f"{none:,} of {n:,} images name no lens") if none else "")
            )
        else:
            out.append(_caption(f"Lenses: none of the {n:,} images names its lens (LensModel)"))
    formats = summary.get("formats") or {}
    if formats:
        out.append(
            bar_chart_svg(
                "Images by format", sorted(formats.items(), key=lambda kv: (-kv[1], kv[0])), kind="formats"
            )
        )
    if table is not None and n and "DateTimeOriginal" in cols:
        times = table["DateTimeOriginal"]
        dated = n - times.null_count
        if dated:
            out.append(
                timeline_svg("Capture dates (DateTimeOriginal, camera time)", times)
                + (_caption(f"{n - dated:,} of {n:,} images have no capture date") if dated < n else "")
            )
    if table is not None and n and {"GPSLatitude", "GPSLongitude"} <= cols:
        located = table.select(["path", "GPSLatitude", "GPSLongitude"]).filter(
            pc.and_(pc.is_valid(table["GPSLatitude"]), pc.is_valid(table["GPSLongitude"]))
        )
        m = located.num_rows
        if m:
            keep = 2000
            if m > keep:
                located = located.take(pa.array([k * m // keep for k in range(keep)], pa.int64()))
            points = [
                (r["GPSLongitude"], r["GPSLatitude"], os.path.basename(str(r["path"])))
                for r in located.to_pylist()
            ]
            svg = scatter_svg("GPS positions", points, max_points=keep)
            if m > keep:  # the sample's frame and count; say how many there are in all
                svg = svg.replace(f"data-points='{len(points)}'", f"data-points='{m}'", 1).replace(
                    "GPS positions</text>", f"GPS positions ({keep:,} of {m:,} drawn)</text>", 1
                )
            out.append(svg + _caption(f"{m:,} of {n:,} images have a GPS position"))
    return out


register(Exif())

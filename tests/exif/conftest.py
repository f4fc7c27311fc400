"""A corpus of images made here (Pillow + piexif, plus a hand-built HEIC), one per format and tag type."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import piexif
import pytest
from PIL import Image, features

R = piexif.ExifIFD
I0 = piexif.ImageIFD
G = piexif.GPSIFD


def full_exif(seed: int = 0, thumbnail: bytes | None = None) -> bytes:
    """An EXIF block with every kind of value: ASCII, SHORT, LONG, RATIONAL, SRATIONAL, UNDEFINED,
    BYTE, the ExifIFD, GPS and Interop sub-IFDs, and a maker note (which must be left alone)."""
    d = {
        "0th": {
            I0.Make: b"Canon",
            I0.Model: f"EOS R{seed}".encode(),
            I0.Orientation: 6,
            I0.XResolution: (300, 1),
            I0.YResolution: (300, 1),
            I0.ResolutionUnit: 2,
            I0.Software: b"Darktable 4.6",
            I0.ImageDescription: b"A test picture",
            I0.Artist: b"Ann Example",
            I0.Copyright: b"(c) 2024 Ann",
            I0.DateTime: b"2024:05:02 10:00:00",
            I0.YCbCrPositioning: 1,
            I0.XPTitle: "Titel \u00e9".encode("utf-16-le") + b"\0\0",
        },
        "Exif": {
            R.ExposureTime: (1, 250),
            R.FNumber: (28, 10),
            R.ExposureProgram: 3,
            R.ISOSpeedRatings: 800 + seed,
            R.ExifVersion: b"0232",
            R.DateTimeOriginal: b"2024:05:01 12:34:56",
            R.DateTimeDigitized: b"2024:05:01 12:34:56",
            R.OffsetTimeOriginal: b"-05:30",
            R.SubSecTimeOriginal: b"123",
            R.ComponentsConfiguration: b"\x01\x02\x03\x00",
            R.ShutterSpeedValue: (7965784, 1000000),
            R.ApertureValue: (2970854, 1000000),
            R.BrightnessValue: (-12345, 1000),
            R.ExposureBiasValue: (-2, 3),
            R.MaxApertureValue: (3, 1),
            R.MeteringMode: 5,
            R.Flash: 16,
            R.FocalLength: (507, 10),
            R.SubjectArea: (100, 200, 50, 60),
            R.MakerNote: b"Nikon\x00\x02\x10\x00\x00MM\x00*\x00\x00\x00\x08" + bytes(range(64)),
            R.UserComment: b"ASCII\x00\x00\x00A comment",
            R.FlashpixVersion: b"0100",
            R.ColorSpace: 1,
            R.PixelXDimension: 64,
            R.PixelYDimension: 48,
            R.FocalPlaneXResolution: (4000, 3),
            R.FocalPlaneResolutionUnit: 3,
            R.FileSource: b"\x03",
            R.SceneType: b"\x01",
            R.ExposureMode: 0,
            R.WhiteBalance: 1,
            R.DigitalZoomRatio: (0, 0),
            R.FocalLengthIn35mmFilm: 50,
            R.SceneCaptureType: 0,
            R.BodySerialNumber: b"0123456789",
            R.LensSpecification: ((24, 1), (70, 1), (28, 10), (28, 10)),
            R.LensMake: b"Canon",
            R.LensModel: b"RF24-70mm F2.8 L IS USM",
        },
        "GPS": {
            G.GPSVersionID: (2, 3, 0, 0),
            G.GPSLatitudeRef: b"N" if seed % 2 == 0 else b"S",
            G.GPSLatitude: ((48, 1), (51, 1), (2931, 100)),
            G.GPSLongitudeRef: b"W",
            G.GPSLongitude: ((2, 1), (17, 1), (4012, 100)),
            G.GPSAltitudeRef: 1 if seed % 3 == 1 else 0,
            G.GPSAltitude: (35, 1),
            G.GPSTimeStamp: ((10, 1), (20, 1), (305, 10)),
            G.GPSSpeedRef: b"K",
            G.GPSSpeed: (0, 1),
            G.GPSImgDirectionRef: b"T",
            G.GPSImgDirection: (12345, 100),
            G.GPSMapDatum: b"WGS-84",
            G.GPSProcessingMethod: b"ASCII\x00\x00\x00GPS",
            G.GPSDateStamp: b"2024:05:01",
        },
        "Interop": {piexif.InteropIFD.InteroperabilityIndex: b"R98"},
        "1st": {},
        "thumbnail": None,
    }
    if thumbnail is not None:
        d["1st"] = {I0.Compression: 6, I0.XResolution: (72, 1), I0.YResolution: (72, 1), I0.ResolutionUnit: 2}
        d["thumbnail"] = thumbnail
    return piexif.dump(d)


def _box(typ: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + typ + payload


def _full(typ: bytes, version: int, payload: bytes, flags: int = 0) -> bytes:
    return _box(typ, bytes([version]) + flags.to_bytes(3, "big") + payload)


def minimal_heic(exif: bytes, width: int = 640, height: int = 480) -> bytes:
    """A HEIC file reduced to what readers need for metadata: ftyp, meta (hdlr, pitm, iinf, iloc,
    iprp with ispe) and an mdat holding a placeholder image item and the Exif item."""
    tiff = exif[6:] if exif.startswith(b"Exif\0\0") else exif
    exif_item = struct.pack(">I", 6) + b"Exif\0\0" + tiff
    image_data = b"\0" * 32
    ftyp = _box(b"ftyp", b"heic" + b"\0\0\0\0" + b"mif1heic")
    hdlr = _full(b"hdlr", 0, b"\0\0\0\0pict" + b"\0" * 12 + b"\0")
    pitm = _full(b"pitm", 0, struct.pack(">H", 1))
    infe1 = _full(b"infe", 2, struct.pack(">HH", 1, 0) + b"hvc1" + b"\0")
    infe2 = _full(b"infe", 2, struct.pack(">HH", 2, 0) + b"Exif" + b"\0")
    iinf = _full(b"iinf", 0, struct.pack(">H", 2) + infe1 + infe2)
    ispe = _full(b"ispe", 0, struct.pack(">II", width, height))
    ipco = _box(b"ipco", ispe)
    ipma = _full(b"ipma", 0, struct.pack(">IHB", 1, 1, 1) + bytes([0x81]))
    iprp = _box(b"iprp", ipco + ipma)

    def build(off1: int, off2: int) -> bytes:
        iloc = _full(
            b"iloc",
            1,
            bytes([0x44, 0x00])
            + struct.pack(">H", 2)
            + struct.pack(">HHHHII", 1, 0, 0, 1, off1, len(image_data))
            + struct.pack(">HHHHII", 2, 0, 0, 1, off2, len(exif_item)),
        )
        meta = _full(b"meta", 0, hdlr + pitm + iinf + iloc + iprp)
        return ftyp + meta

    head = build(0, 0)
    mdat_start = len(head) + 8
    head = build(mdat_start, mdat_start + len(image_data))
    return head + _box(b"mdat", image_data + exif_item)


def _noise(w: int, h: int, seed: int) -> Image.Image:
    import random

    rnd = random.Random(seed)
    return Image.frombytes("RGB", (w, h), bytes(rnd.getrandbits(8) for _ in range(w * h * 3)))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("exif-corpus")
    img = _noise(64, 48, 1)
    thumb = io.BytesIO()
    _noise(16, 12, 2).save(thumb, "JPEG")
    img.save(d / "big_endian.jpg", exif=full_exif(0))
    img.save(d / "with_thumb.jpg", exif=full_exif(1, thumbnail=thumb.getvalue()))
    # Pillow's own EXIF writer is little-endian: the other byte order, with a float and a double.
    ex = Image.Exif()
    ex[0x010F] = "Nikon"
    ex[0x0110] = "Z 6"
    ex[0x0112] = 3
    sub = ex.get_ifd(0x8769)
    sub[0x829A] = 0.5
    sub[0x9003] = "2023:12:31 23:59:59"
    sub[0x920A] = 35.0
    gps = ex.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (1.0, 2.0, 3.0)
    img.save(d / "little_endian.jpg", exif=ex.tobytes())
    img.save(d / "plain.png", exif=full_exif(2))
    img.save(d / "lossy.webp", exif=full_exif(3), quality=80)
    img.save(d / "lossless.webp", exif=full_exif(4), lossless=True)
    img.save(d / "strips.tif", exif=full_exif(5))
    img.save(d / "raw.dng", format="TIFF", exif=full_exif(6), tiffinfo={50706: (1, 4, 0, 0)})
    if features.check("avif"):
        img.save(d / "photo.avif", exif=full_exif(7))
    (d / "camera.heic").write_bytes(minimal_heic(full_exif(8)))
    img.save(d / "no_exif.jpg")
    img.save(d / "no_exif.png")
    return d


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("exif-bad")
    good = (corpus / "big_endian.jpg").read_bytes()
    files = {
        "empty": b"",
        "text": b"just some text, not a picture\n",
        "truncated_jpeg": good[:200],
        "garbage_jpeg": b"\xff\xd8\xff\xe1\x00\x20Exif\x00\x00XX*\x00" + b"\x00" * 24 + b"\xff\xd9",
        "truncated_png": (corpus / "plain.png").read_bytes()[:30],
        "truncated_webp": (corpus / "lossy.webp").read_bytes()[:40],
        "truncated_heic": (corpus / "camera.heic").read_bytes()[:100],
        "truncated_tiff": (corpus / "strips.tif").read_bytes()[:12],
    }
    ext = {"empty": ".jpg", "text": ".jpg", "truncated_png": ".png", "truncated_webp": ".webp"}
    ext |= {"truncated_heic": ".heic", "truncated_tiff": ".tif"}
    out = {}
    for name, data in files.items():
        p = d / f"{name}{ext.get(name, '.jpg')}"
        p.write_bytes(data)
        out[name] = p
    return out

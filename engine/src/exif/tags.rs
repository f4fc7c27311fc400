//! Tag names (exiftool's) and value formatting (exiftool's `-n` output: ValueConv applied,
//! PrintConv not).
//!
//! Numbers follow exiftool's rounding: rationals to 10 significant digits, floats to 7, doubles and
//! converted values to 15 (Perl's default), several values joined by spaces. Tags exiftool does not
//! know by name (it hides them without `-u`) are left out, and so is the maker note.

use super::tiff::{Ifd, Value};

/// exiftool's name of a tag in an IFD, or None for tags it does not show by default.
pub fn name(ifd: Ifd, tag: u16) -> Option<&'static str> {
    match ifd {
        Ifd::Ifd0 => main_name(tag),
        // Only the thumbnail's location: the rest of IFD1 repeats IFD0 names (exiftool lets IFD0 win).
        Ifd::Ifd1 => match tag {
            0x0201 => Some("ThumbnailOffset"),
            0x0202 => Some("ThumbnailLength"),
            _ => None,
        },
        Ifd::Exif => exif_name(tag).or_else(|| main_name(tag)),
        Ifd::Gps => gps_name(tag),
        Ifd::Interop => interop_name(tag),
    }
}

fn main_name(tag: u16) -> Option<&'static str> {
    Some(match tag {
        0x00fe => "SubfileType",
        0x00ff => "OldSubfileType",
        0x0100 => "ImageWidth",
        0x0101 => "ImageHeight",
        0x0102 => "BitsPerSample",
        0x0103 => "Compression",
        0x0106 => "PhotometricInterpretation",
        0x0107 => "Thresholding",
        0x010a => "FillOrder",
        0x010d => "DocumentName",
        0x010e => "ImageDescription",
        0x010f => "Make",
        0x0110 => "Model",
        0x0111 => "StripOffsets",
        0x0112 => "Orientation",
        0x0115 => "SamplesPerPixel",
        0x0116 => "RowsPerStrip",
        0x0117 => "StripByteCounts",
        0x0118 => "MinSampleValue",
        0x0119 => "MaxSampleValue",
        0x011a => "XResolution",
        0x011b => "YResolution",
        0x011c => "PlanarConfiguration",
        0x011d => "PageName",
        0x011e => "XPosition",
        0x011f => "YPosition",
        0x0128 => "ResolutionUnit",
        0x0129 => "PageNumber",
        0x012d => "TransferFunction",
        0x0131 => "Software",
        0x0132 => "ModifyDate",
        0x013b => "Artist",
        0x013c => "HostComputer",
        0x013d => "Predictor",
        0x013e => "WhitePoint",
        0x013f => "PrimaryChromaticities",
        0x0142 => "TileWidth",
        0x0143 => "TileLength",
        0x0144 => "TileOffsets",
        0x0145 => "TileByteCounts",
        0x0152 => "ExtraSamples",
        0x0153 => "SampleFormat",
        0x0211 => "YCbCrCoefficients",
        0x0212 => "YCbCrSubSampling",
        0x0213 => "YCbCrPositioning",
        0x0214 => "ReferenceBlackWhite",
        0x4746 => "Rating",
        0x4749 => "RatingPercent",
        0x8298 => "Copyright",
        0x9c9b => "XPTitle",
        0x9c9c => "XPComment",
        0x9c9d => "XPAuthor",
        0x9c9e => "XPKeywords",
        0x9c9f => "XPSubject",
        0xc612 => "DNGVersion",
        0xc613 => "DNGBackwardVersion",
        0xc614 => "UniqueCameraModel",
        0xc615 => "LocalizedCameraModel",
        _ => return None,
    })
}

fn exif_name(tag: u16) -> Option<&'static str> {
    Some(match tag {
        0x829a => "ExposureTime",
        0x829d => "FNumber",
        0x8822 => "ExposureProgram",
        0x8824 => "SpectralSensitivity",
        0x8827 => "ISO",
        0x8830 => "SensitivityType",
        0x8831 => "StandardOutputSensitivity",
        0x8832 => "RecommendedExposureIndex",
        0x8833 => "ISOSpeed",
        0x8834 => "ISOSpeedLatitudeyyy",
        0x8835 => "ISOSpeedLatitudezzz",
        0x9000 => "ExifVersion",
        0x9003 => "DateTimeOriginal",
        0x9004 => "CreateDate",
        0x9010 => "OffsetTime",
        0x9011 => "OffsetTimeOriginal",
        0x9012 => "OffsetTimeDigitized",
        0x9101 => "ComponentsConfiguration",
        0x9102 => "CompressedBitsPerPixel",
        0x9201 => "ShutterSpeedValue",
        0x9202 => "ApertureValue",
        0x9203 => "BrightnessValue",
        0x9204 => "ExposureCompensation",
        0x9205 => "MaxApertureValue",
        0x9206 => "SubjectDistance",
        0x9207 => "MeteringMode",
        0x9208 => "LightSource",
        0x9209 => "Flash",
        0x920a => "FocalLength",
        0x9214 => "SubjectArea",
        0x9286 => "UserComment",
        0x9290 => "SubSecTime",
        0x9291 => "SubSecTimeOriginal",
        0x9292 => "SubSecTimeDigitized",
        0x9400 => "AmbientTemperature",
        0x9401 => "Humidity",
        0x9402 => "Pressure",
        0x9403 => "WaterDepth",
        0x9404 => "Acceleration",
        0x9405 => "CameraElevationAngle",
        0xa000 => "FlashpixVersion",
        0xa001 => "ColorSpace",
        0xa002 => "ExifImageWidth",
        0xa003 => "ExifImageHeight",
        0xa004 => "RelatedSoundFile",
        0xa20b => "FlashEnergy",
        0xa20e => "FocalPlaneXResolution",
        0xa20f => "FocalPlaneYResolution",
        0xa210 => "FocalPlaneResolutionUnit",
        0xa214 => "SubjectLocation",
        0xa215 => "ExposureIndex",
        0xa217 => "SensingMethod",
        0xa300 => "FileSource",
        0xa301 => "SceneType",
        0xa401 => "CustomRendered",
        0xa402 => "ExposureMode",
        0xa403 => "WhiteBalance",
        0xa404 => "DigitalZoomRatio",
        0xa405 => "FocalLengthIn35mmFormat",
        0xa406 => "SceneCaptureType",
        0xa407 => "GainControl",
        0xa408 => "Contrast",
        0xa409 => "Saturation",
        0xa40a => "Sharpness",
        0xa40c => "SubjectDistanceRange",
        0xa420 => "ImageUniqueID",
        0xa430 => "OwnerName",
        0xa431 => "SerialNumber",
        0xa432 => "LensInfo",
        0xa433 => "LensMake",
        0xa434 => "LensModel",
        0xa435 => "LensSerialNumber",
        0xa460 => "CompositeImage",
        0xa500 => "Gamma",
        _ => return None,
    })
}

fn gps_name(tag: u16) -> Option<&'static str> {
    Some(match tag {
        0x00 => "GPSVersionID",
        0x01 => "GPSLatitudeRef",
        0x02 => "GPSLatitude",
        0x03 => "GPSLongitudeRef",
        0x04 => "GPSLongitude",
        0x05 => "GPSAltitudeRef",
        0x06 => "GPSAltitude",
        0x07 => "GPSTimeStamp",
        0x08 => "GPSSatellites",
        0x09 => "GPSStatus",
        0x0a => "GPSMeasureMode",
        0x0b => "GPSDOP",
        0x0c => "GPSSpeedRef",
        0x0d => "GPSSpeed",
        0x0e => "GPSTrackRef",
        0x0f => "GPSTrack",
        0x10 => "GPSImgDirectionRef",
        0x11 => "GPSImgDirection",
        0x12 => "GPSMapDatum",
        0x13 => "GPSDestLatitudeRef",
        0x14 => "GPSDestLatitude",
        0x15 => "GPSDestLongitudeRef",
        0x16 => "GPSDestLongitude",
        0x17 => "GPSDestBearingRef",
        0x18 => "GPSDestBearing",
        0x19 => "GPSDestDistanceRef",
        0x1a => "GPSDestDistance",
        0x1b => "GPSProcessingMethod",
        0x1c => "GPSAreaInformation",
        0x1d => "GPSDateStamp",
        0x1e => "GPSDifferential",
        0x1f => "GPSHPositioningError",
        _ => return None,
    })
}

fn interop_name(tag: u16) -> Option<&'static str> {
    Some(match tag {
        0x0001 => "InteropIndex",
        0x0002 => "InteropVersion",
        0x1000 => "RelatedImageFileFormat",
        0x1001 => "RelatedImageWidth",
        0x1002 => "RelatedImageHeight",
        _ => return None,
    })
}

/// C's `%.{sig}g`, which is what Perl (and so exiftool) prints.
pub fn fmt_g(v: f64, sig: usize) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Inf".into() } else { "-Inf".into() };
    }
    if v == 0.0 {
        return "0".into();
    }
    let sig = sig.max(1);
    let sci = format!("{:.*e}", sig - 1, v);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= sig as i32 {
        let mant = trim_zeros(mant);
        format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let fixed = format!("{:.*}", (sig as i32 - 1 - exp).max(0) as usize, v);
        trim_zeros(&fixed).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A rational as exiftool reads it: 10 significant digits; `inf`/`undef` for a zero denominator.
fn rational(n: f64, d: f64) -> String {
    if d == 0.0 {
        return if n == 0.0 {
            "undef".into()
        } else {
            "inf".into()
        };
    }
    fmt_g(n / d, 10)
}

/// Numeric value(s) of an entry as f64 (rationals divided), for conversions and typed columns.
pub fn numbers(v: &Value) -> Vec<f64> {
    match v {
        Value::Unsigned(x) => x.iter().map(|&a| a as f64).collect(),
        Value::Signed(x) => x.iter().map(|&a| a as f64).collect(),
        Value::Rational(x) => x
            .iter()
            .map(|&(n, d)| {
                if d == 0 {
                    f64::NAN
                } else {
                    f64::from(n) / f64::from(d)
                }
            })
            .collect(),
        Value::SRational(x) => x
            .iter()
            .map(|&(n, d)| {
                if d == 0 {
                    f64::NAN
                } else {
                    f64::from(n) / f64::from(d)
                }
            })
            .collect(),
        Value::Float(x) => x.iter().map(|&a| f64::from(a)).collect(),
        Value::Double(x) => x.clone(),
        _ => Vec::new(),
    }
}

/// Text of an ASCII value: up to the first NUL.
pub fn ascii(b: &[u8]) -> String {
    let end = memchr::memchr(0, b).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn binary(n: usize) -> String {
    format!("(Binary data {n} bytes, use -b option to extract)")
}

/// An EXIF "comment" (UserComment, GPSProcessingMethod): an 8-byte charset code, then the text.
fn comment(b: &[u8], big_endian: bool) -> String {
    if b.len() < 8 {
        return ascii(b).trim_end().to_string();
    }
    let (code, text) = b.split_at(8);
    let s = if code.starts_with(b"UNICODE") {
        let units: Vec<u16> = text
            .chunks_exact(2)
            .map(|c| {
                if big_endian {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
            .take_while(|&u| u != 0)
            .collect();
        String::from_utf16_lossy(&units)
    } else if code.iter().all(|&c| c == 0) || code.starts_with(b"ASCII") || code.starts_with(b"JIS")
    {
        ascii(text)
    } else {
        ascii(b)
    };
    s.trim_end_matches([' ', '\0']).to_string()
}

/// UCS-2 little-endian text (Windows XP* tags).
fn ucs2(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// Degrees + minutes/60 + seconds/3600.
pub fn degrees(v: &Value) -> Option<f64> {
    let n = numbers(v);
    if n.is_empty() || n.iter().any(|x| x.is_nan()) {
        return None;
    }
    Some(n[0] + n.get(1).copied().unwrap_or(0.0) / 60.0 + n.get(2).copied().unwrap_or(0.0) / 3600.0)
}

fn join<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    items.iter().map(f).collect::<Vec<_>>().join(" ")
}

/// The value as exiftool -n prints it.
pub fn format(ifd: Ifd, tag: u16, v: &Value, big_endian: bool) -> String {
    // ValueConv that exiftool applies even with -n.
    match (ifd, tag) {
        (Ifd::Gps, 0x02 | 0x04 | 0x14 | 0x16) => {
            if let Some(d) = degrees(v) {
                return fmt_g(d, 15);
            }
        }
        (Ifd::Gps, 0x07) => {
            let n = numbers(v);
            if n.len() == 3 && n.iter().all(|x| x.is_finite()) {
                return gps_time(n[0], n[1], n[2]);
            }
        }
        (Ifd::Exif, 0x9201) => {
            if let Some(&x) = numbers(v).first() {
                return fmt_g(if x.abs() < 100.0 { 2f64.powf(-x) } else { 0.0 }, 15);
            }
        }
        (Ifd::Exif, 0x9202 | 0x9205) => {
            if let Some(&x) = numbers(v).first() {
                return fmt_g(2f64.powf(x / 2.0), 15);
            }
        }
        (Ifd::Exif, 0x9286) | (Ifd::Gps, 0x1b | 0x1c) => {
            match v {
                Value::Undefined(b) | Value::Ascii(b) => return comment(b, big_endian),
                // Some writers (Pillow in TIFF) store it as BYTE.
                Value::Unsigned(x) => {
                    return comment(&x.iter().map(|&a| a as u8).collect::<Vec<_>>(), big_endian)
                }
                _ => {}
            }
        }
        (Ifd::Ifd0, 0x9c9b..=0x9c9f) => {
            if let Value::Unsigned(x) = v {
                let b: Vec<u8> = x.iter().map(|&a| a as u8).collect();
                return ucs2(&b);
            }
        }
        (Ifd::Ifd1, 0x0201) => {
            // exiftool reports the thumbnail's position in the file, not inside the TIFF block.
            if let Some(&x) = numbers(v).first() {
                return fmt_g(x, 15);
            }
        }
        _ => {}
    }
    match v {
        Value::Ascii(b) => ascii(b),
        Value::Undefined(b) => match (ifd, tag) {
            (Ifd::Exif, 0x9101 | 0xa300 | 0xa301) => join(b, |x| x.to_string()),
            _ if b.iter().all(|&c| c == 0 || (0x20..0x7f).contains(&c)) => {
                ascii(b).trim_end().to_string()
            }
            _ => binary(b.len()),
        },
        Value::Unsigned(x) => join(x, |a| a.to_string()),
        Value::Signed(x) => join(x, |a| a.to_string()),
        Value::Rational(x) => join(x, |&(n, d)| rational(f64::from(n), f64::from(d))),
        Value::SRational(x) => join(x, |&(n, d)| rational(f64::from(n), f64::from(d))),
        Value::Float(x) => join(x, |&a| fmt_g(f64::from(a), 7)),
        Value::Double(x) => join(x, |&a| fmt_g(a, 15)),
        Value::Binary(n) => binary(*n as usize),
    }
}

fn gps_time(h: f64, m: f64, s: f64) -> String {
    let mut f = (h * 60.0 + m) * 60.0 + s;
    let hh = (f / 3600.0).trunc();
    f -= hh * 3600.0;
    let mm = (f / 60.0).trunc();
    f -= mm * 60.0;
    let ss = format!("{f:012.9}");
    let ss = trim_zeros(&ss);
    format!("{:02}:{:02}:{}", hh as i64, mm as i64, ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format_matches_c() {
        assert_eq!(fmt_g(1.0 / 125.0, 10), "0.008");
        assert_eq!(fmt_g(-2.0 / 3.0, 10), "-0.6666666667");
        assert_eq!(fmt_g(1e-5, 10), "1e-05");
        assert_eq!(fmt_g(123456789012.0, 10), "1.23456789e+11");
        assert_eq!(fmt_g(33.87009444444444, 15), "33.8700944444444");
        assert_eq!(fmt_g(400.0, 15), "400");
        assert_eq!(fmt_g(0.1f32 as f64, 7), "0.1");
    }

    #[test]
    fn exiftool_value_conversions() {
        let lat = Value::Rational(vec![(33, 1), (52, 1), (1234, 100)]);
        assert_eq!(format(Ifd::Gps, 0x02, &lat, true), "33.8700944444444");
        let t = Value::Rational(vec![(1, 1), (2, 1), (35, 10)]);
        assert_eq!(format(Ifd::Gps, 0x07, &t, true), "01:02:03.5");
        let ss = Value::SRational(vec![(6906891, 1000000)]);
        assert!(format(Ifd::Exif, 0x9201, &ss, true).starts_with("0.008333330997"));
        assert_eq!(
            format(Ifd::Exif, 0x9202, &Value::Rational(vec![(3, 1)]), true),
            "2.82842712474619"
        );
        assert_eq!(
            format(
                Ifd::Exif,
                0x9286,
                &Value::Undefined(b"ASCII\0\0\0hello  ".to_vec()),
                true
            ),
            "hello"
        );
        assert_eq!(
            format(Ifd::Exif, 0x9101, &Value::Undefined(vec![1, 2, 3, 0]), true),
            "1 2 3 0"
        );
        assert_eq!(
            format(Ifd::Exif, 0x9000, &Value::Undefined(b"0232".to_vec()), true),
            "0232"
        );
        assert_eq!(
            format(Ifd::Exif, 0x829a, &Value::Rational(vec![(0, 0)]), true),
            "undef"
        );
        assert_eq!(
            format(Ifd::Gps, 0x00, &Value::Unsigned(vec![2, 3, 0, 0]), true),
            "2 3 0 0"
        );
        assert_eq!(
            format(Ifd::Exif, 0xa000, &Value::Undefined(vec![0xff, 1]), true),
            binary(2)
        );
        assert_eq!(name(Ifd::Exif, 0x9204), Some("ExposureCompensation"));
        assert_eq!(name(Ifd::Interop, 1), Some("InteropIndex"));
        assert_eq!(name(Ifd::Ifd0, 0x1234), None);
    }
}

//! The result table: one row per image, as Arrow.
//!
//! `DateTimeOriginal` is the camera's wall-clock time exactly as written (a timestamp without time
//! zone, as exiftool prints it); `OffsetTimeOriginal` is its UTC offset text ("+02:00") when the file
//! has one, and `DateTimeOriginalUTC` is the same instant in UTC, filled only when the offset is known.

use arrow::array::{
    ArrayRef, BinaryBuilder, Float64Builder, Int64Builder, MapBuilder, MapFieldNames, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder, UInt32Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::Arc;

/// Everything extracted from one image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    pub path: String,
    pub file_size: u64,
    pub format: &'static str,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub lens_model: Option<String>,
    /// Microseconds since 1970-01-01 of the wall-clock time (no zone).
    pub date_time_original: Option<i64>,
    pub offset_time_original: Option<String>,
    pub date_time_original_utc: Option<i64>,
    pub exposure_time: Option<f64>,
    pub f_number: Option<f64>,
    pub iso: Option<i64>,
    pub focal_length: Option<f64>,
    pub focal_length_35mm: Option<i64>,
    pub flash: Option<i64>,
    pub orientation: Option<i64>,
    pub gps_latitude: Option<f64>,
    pub gps_longitude: Option<f64>,
    pub gps_altitude: Option<f64>,
    pub software: Option<String>,
    pub image_description: Option<String>,
    pub artist: Option<String>,
    pub copyright: Option<String>,
    /// Every other tag: exiftool name → value as text (exiftool -n).
    pub tags: Vec<(&'static str, String)>,
    pub has_exif: bool,
    pub thumbnail: Option<Vec<u8>>,
}

const MAP_NAMES: (&str, &str, &str) = ("entries", "key", "value");

pub fn schema(thumbnails: bool) -> SchemaRef {
    let s = |n: &str| Field::new(n, DataType::Utf8, true);
    let f = |n: &str| Field::new(n, DataType::Float64, true);
    let i = |n: &str| Field::new(n, DataType::Int64, true);
    let entries = Field::new(
        MAP_NAMES.0,
        DataType::Struct(
            vec![
                Field::new(MAP_NAMES.1, DataType::Utf8, false),
                Field::new(MAP_NAMES.2, DataType::Utf8, true),
            ]
            .into(),
        ),
        false,
    );
    let mut fields = vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("file_size", DataType::Int64, false),
        Field::new("format", DataType::Utf8, false),
        Field::new("width", DataType::UInt32, true),
        Field::new("height", DataType::UInt32, true),
        s("Make"),
        s("Model"),
        s("LensModel"),
        Field::new(
            "DateTimeOriginal",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        s("OffsetTimeOriginal"),
        Field::new(
            "DateTimeOriginalUTC",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        f("ExposureTime"),
        f("FNumber"),
        i("ISO"),
        f("FocalLength"),
        i("FocalLengthIn35mmFormat"),
        i("Flash"),
        i("Orientation"),
        f("GPSLatitude"),
        f("GPSLongitude"),
        f("GPSAltitude"),
        s("Software"),
        s("ImageDescription"),
        s("Artist"),
        s("Copyright"),
        Field::new("tags", DataType::Map(Arc::new(entries), false), false),
    ];
    if thumbnails {
        fields.push(Field::new("thumbnail", DataType::Binary, true));
    }
    Arc::new(Schema::new(fields))
}

/// One record batch of `records` in [`schema`]'s layout.
pub fn batch(
    schema: &SchemaRef,
    records: &[Record],
    thumbnails: bool,
) -> arrow::error::Result<RecordBatch> {
    let n = records.len();
    let strs = |get: &dyn Fn(&Record) -> Option<&str>| -> ArrayRef {
        let mut b = StringBuilder::with_capacity(n, n * 8);
        for r in records {
            b.append_option(get(r));
        }
        Arc::new(b.finish())
    };
    let f64s = |get: &dyn Fn(&Record) -> Option<f64>| -> ArrayRef {
        let mut b = Float64Builder::with_capacity(n);
        for r in records {
            b.append_option(get(r));
        }
        Arc::new(b.finish())
    };
    let i64s = |get: &dyn Fn(&Record) -> Option<i64>| -> ArrayRef {
        let mut b = Int64Builder::with_capacity(n);
        for r in records {
            b.append_option(get(r));
        }
        Arc::new(b.finish())
    };
    let u32s = |get: &dyn Fn(&Record) -> Option<u32>| -> ArrayRef {
        let mut b = UInt32Builder::with_capacity(n);
        for r in records {
            b.append_option(get(r));
        }
        Arc::new(b.finish())
    };
    let ts = |get: &dyn Fn(&Record) -> Option<i64>, tz: Option<&str>| -> ArrayRef {
        let mut b = TimestampMicrosecondBuilder::with_capacity(n);
        for r in records {
            b.append_option(get(r));
        }
        Arc::new(b.finish().with_timezone_opt(tz.map(Arc::<str>::from)))
    };
    let names = MapFieldNames {
        entry: MAP_NAMES.0.into(),
        key: MAP_NAMES.1.into(),
        value: MAP_NAMES.2.into(),
    };
    let mut tags = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
    for r in records {
        for (k, v) in &r.tags {
            tags.keys().append_value(k);
            tags.values().append_value(v);
        }
        tags.append(true)?;
    }
    let mut columns: Vec<ArrayRef> = vec![
        strs(&|r| Some(r.path.as_str())),
        i64s(&|r| Some(r.file_size as i64)),
        strs(&|r| Some(r.format)),
        u32s(&|r| r.width),
        u32s(&|r| r.height),
        strs(&|r| r.make.as_deref()),
        strs(&|r| r.model.as_deref()),
        strs(&|r| r.lens_model.as_deref()),
        ts(&|r| r.date_time_original, None),
        strs(&|r| r.offset_time_original.as_deref()),
        ts(&|r| r.date_time_original_utc, Some("UTC")),
        f64s(&|r| r.exposure_time),
        f64s(&|r| r.f_number),
        i64s(&|r| r.iso),
        f64s(&|r| r.focal_length),
        i64s(&|r| r.focal_length_35mm),
        i64s(&|r| r.flash),
        i64s(&|r| r.orientation),
        f64s(&|r| r.gps_latitude),
        f64s(&|r| r.gps_longitude),
        f64s(&|r| r.gps_altitude),
        strs(&|r| r.software.as_deref()),
        strs(&|r| r.image_description.as_deref()),
        strs(&|r| r.artist.as_deref()),
        strs(&|r| r.copyright.as_deref()),
    ];
    columns.push(Arc::new(tags.finish()));
    if thumbnails {
        let mut b = BinaryBuilder::new();
        for r in records {
            b.append_option(r.thumbnail.as_deref());
        }
        columns.push(Arc::new(b.finish()));
    }
    RecordBatch::try_new(schema.clone(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_batch_with_map_and_timestamps() {
        let r = Record {
            path: "a.jpg".into(),
            file_size: 10,
            format: "JPEG",
            make: Some("Canon".into()),
            date_time_original: Some(1_000_000),
            date_time_original_utc: Some(-6_199_000_000),
            tags: vec![("ExifVersion", "0232".into())],
            ..Record::default()
        };
        for thumbs in [false, true] {
            let s = schema(thumbs);
            let b = batch(
                &s,
                &[
                    r.clone(),
                    Record {
                        path: "b.png".into(),
                        format: "PNG",
                        ..Record::default()
                    },
                ],
                thumbs,
            )
            .unwrap();
            assert_eq!(b.num_rows(), 2);
            assert_eq!(b.num_columns(), s.fields().len());
        }
    }
}

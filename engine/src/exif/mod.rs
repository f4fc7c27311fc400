//! The `exif` pipeline: one table row of EXIF metadata per image, read from the metadata segments
//! only (JPEG APP1, PNG eXIf, WebP EXIF, HEIF/AVIF Exif item, TIFF and TIFF-based raws in place).
//!
//! A compact parser of our own rather than a crate: every format's locator reads just the bytes it
//! needs through `pread` (counted, see `bytes_read`), there is no cap on HEIF Exif items, WebP is
//! covered, and values are formatted the way exiftool `-n` prints them. Modules:
//! [`source`] (counted reads), [`container`] (locators per format), [`tiff`] (IFD walker),
//! [`tags`] (exiftool names and formatting), [`table`] (Arrow).

pub mod container;
pub mod source;
pub mod table;
pub mod tags;
pub mod tiff;

#[cfg(feature = "python")]
pub(crate) mod python;

use crate::error::{Error, ErrorKind, OnError, Problem, Result};
use crate::io::AtomicFile;
use crate::progress::Progress;
use container::{ExifBlock, Located};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use source::{FileSource, MemSource, ParseError, Source};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use table::Record;
use tiff::{Ifd, Tiff, Value};

/// File name suffixes taken when an input is a folder (the Python spec lists the same ones).
pub const IMAGE_SUFFIXES: &[&str] = &[
    "jpg", "jpeg", "jpe", "jfif", "tif", "tiff", "png", "webp", "heic", "heif", "hif", "avif",
    "dng", "nef", "nrw", "cr2", "arw", "sr2", "orf", "rw2", "pef", "srw", "erf", "3fr", "iiq",
    "mos",
];

/// The options of one run (unknown keys are an error).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Keep only these exiftool tag names in the `tags` column (None: every tag).
    pub tags: Option<Vec<String>>,
    /// Add a `thumbnail` column with the embedded JPEG thumbnail's bytes.
    pub include_thumbnails: bool,
    /// Follow symbolic links (inputs and links met while walking folders).
    pub follow_symlinks: bool,
    /// Worker threads (0: one per core).
    pub threads: usize,
    pub on_error: OnError,
    /// Write the table as Parquet to this path (atomically).
    pub output: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tags: None,
            include_thumbnails: false,
            follow_symlinks: true,
            threads: 0,
            on_error: OnError::Skip,
            output: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Files considered (after expanding folders).
    pub files: u64,
    /// Images read: one table row each.
    pub images: u64,
    /// Images that carried an EXIF block.
    pub with_exif: u64,
    pub errors: u64,
    pub symlinks_skipped: u64,
    /// Bytes actually read from the files, and their total size.
    pub bytes_read: u64,
    pub bytes_total: u64,
    pub formats: BTreeMap<String, u64>,
    pub seconds: f64,
}

pub struct RunResult {
    pub summary: Summary,
    pub outputs: Vec<String>,
    pub errors: Vec<Problem>,
    pub schema: arrow::datatypes::SchemaRef,
    pub batches: Vec<arrow::array::RecordBatch>,
}

/// Column tags: kept out of the `tags` map because they have their own column.
const COLUMN_TAGS: &[&str] = &[
    "Make",
    "Model",
    "LensModel",
    "OffsetTimeOriginal",
    "ExposureTime",
    "FNumber",
    "ISO",
    "FocalLength",
    "FocalLengthIn35mmFormat",
    "Flash",
    "Orientation",
    "GPSLatitude",
    "GPSLongitude",
    "GPSAltitude",
    "Software",
    "ImageDescription",
    "Artist",
    "Copyright",
];

fn input_error(path: &Path, e: ParseError) -> Error {
    Error::input(path, None, e.offset, e.message)
}

/// Read one image's metadata. Returns the record and the bytes read from the file.
pub fn extract(path: &Path, opts: &Options) -> Result<(Record, u64)> {
    // A local file or a streamed remote object: either way only the windows parsed are read.
    let (file, len) = crate::io::open_random(path)?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut src = FileSource::new(&*file, len);
    let result = extract_from(&mut src, &ext, opts);
    let bytes = src.bytes_read;
    let mut rec = result.map_err(|e| input_error(path, e))?;
    rec.path = path.display().to_string();
    rec.file_size = len;
    Ok((rec, bytes))
}

/// The parse proper, on any file source (also the fuzz target's entry point).
pub fn extract_from<S: Source>(
    src: &mut S,
    ext: &str,
    opts: &Options,
) -> Result<Record, ParseError> {
    let Located {
        format,
        width,
        height,
        exif,
    } = container::locate(src, ext)?;
    let mut rec = Record {
        format,
        width,
        height,
        ..Record::default()
    };
    let Some(block) = exif else {
        return Ok(rec);
    };
    let (tiff, base) = match &block {
        ExifBlock::File => (tiff::parse(src, 0, src.len())?, 0),
        ExifBlock::Bytes { data, base } => {
            let mut m = MemSource { data, base: *base };
            (tiff::parse(&mut m, 0, data.len() as u64)?, *base)
        }
    };
    if matches!(block, ExifBlock::File) {
        if tiff.get(Ifd::Ifd0, 0xc612).is_some() && format == "TIFF" {
            rec.format = "DNG";
        }
        rec.width = first_u32(tiff.get(Ifd::Ifd0, 0x0100));
        rec.height = first_u32(tiff.get(Ifd::Ifd0, 0x0101));
    }
    fill(&mut rec, &tiff, base, opts);
    if opts.include_thumbnails {
        rec.thumbnail = thumbnail(&tiff, &block, src);
    }
    Ok(rec)
}

fn first_u32(v: Option<&Value>) -> Option<u32> {
    v.map(tags::numbers)
        .and_then(|n| n.first().copied())
        .filter(|x| x.is_finite() && *x >= 0.0)
        .map(|x| x as u32)
}

fn thumbnail<S: Source>(t: &Tiff, block: &ExifBlock, src: &mut S) -> Option<Vec<u8>> {
    let off = tags::numbers(t.get(Ifd::Ifd1, 0x0201)?).first().copied()? as u64;
    let len = tags::numbers(t.get(Ifd::Ifd1, 0x0202)?).first().copied()? as usize;
    match block {
        ExifBlock::File => src.read(off, len).ok().map(<[u8]>::to_vec),
        ExifBlock::Bytes { data, .. } => {
            let s = usize::try_from(off).ok()?;
            data.get(s..s.checked_add(len)?).map(<[u8]>::to_vec)
        }
    }
}

/// "YYYY:MM:DD HH:MM:SS" → microseconds since the epoch (no zone).
fn parse_datetime(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    if b.len() < 19 || b[4] != b':' || b[7] != b':' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |a, &c| {
            c.is_ascii_digit().then(|| a * 10 + u32::from(c - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(n(0..4)? as i32, n(5..7)?, n(8..10)?)?;
    let time = chrono::NaiveTime::from_hms_opt(n(11..13)?, n(14..16)?, n(17..19)?)?;
    Some(date.and_time(time).and_utc().timestamp_micros())
}

/// "+HH:MM" / "-HH:MM" → seconds east of UTC.
fn parse_offset(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    if b.len() < 6 || b[3] != b':' {
        return None;
    }
    let sign = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h: i64 = s.trim().get(1..3)?.parse().ok()?;
    let m: i64 = s.trim().get(4..6)?.parse().ok()?;
    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

fn fill(rec: &mut Record, t: &Tiff, base: u64, opts: &Options) {
    rec.has_exif = true;
    let text = |ifd, tag| match t.get(ifd, tag) {
        Some(Value::Ascii(b)) => Some(tags::ascii(b)),
        _ => None,
    };
    let num = |ifd, tag| {
        t.get(ifd, tag)
            .and_then(|v| tags::numbers(v).first().copied())
            .filter(|x| x.is_finite())
    };
    rec.make = text(Ifd::Ifd0, 0x010f);
    rec.model = text(Ifd::Ifd0, 0x0110);
    rec.software = text(Ifd::Ifd0, 0x0131);
    rec.image_description = text(Ifd::Ifd0, 0x010e);
    rec.artist = text(Ifd::Ifd0, 0x013b);
    rec.copyright = text(Ifd::Ifd0, 0x8298);
    rec.lens_model = text(Ifd::Exif, 0xa434);
    rec.orientation = num(Ifd::Ifd0, 0x0112).map(|x| x as i64);
    rec.exposure_time = num(Ifd::Exif, 0x829a);
    rec.f_number = num(Ifd::Exif, 0x829d);
    rec.iso = num(Ifd::Exif, 0x8827).map(|x| x as i64);
    rec.focal_length = num(Ifd::Exif, 0x920a);
    rec.focal_length_35mm = num(Ifd::Exif, 0xa405).map(|x| x as i64);
    rec.flash = num(Ifd::Exif, 0x9209).map(|x| x as i64);
    let dto_text = text(Ifd::Exif, 0x9003);
    rec.date_time_original = dto_text.as_deref().and_then(parse_datetime);
    rec.offset_time_original = text(Ifd::Exif, 0x9011).filter(|s| !s.trim().is_empty());
    if let (Some(dt), Some(off)) = (
        rec.date_time_original,
        rec.offset_time_original.as_deref().and_then(parse_offset),
    ) {
        rec.date_time_original_utc = Some(dt - off * 1_000_000);
    }
    let sign_of = |tag, negative: &str| match t.get(Ifd::Gps, tag) {
        Some(Value::Ascii(b)) if tags::ascii(b).trim().eq_ignore_ascii_case(negative) => -1.0,
        _ => 1.0,
    };
    rec.gps_latitude = t
        .get(Ifd::Gps, 0x02)
        .and_then(tags::degrees)
        .map(|d| d * sign_of(0x01, "S"));
    rec.gps_longitude = t
        .get(Ifd::Gps, 0x04)
        .and_then(tags::degrees)
        .map(|d| d * sign_of(0x03, "W"));
    rec.gps_altitude = num(Ifd::Gps, 0x06).map(|a| {
        let below =
            matches!(t.get(Ifd::Gps, 0x05), Some(Value::Unsigned(v)) if v.first() == Some(&1));
        if below {
            -a
        } else {
            a
        }
    });

    for e in &t.entries {
        let Some(name) = tags::name(e.ifd, e.tag) else {
            continue;
        };
        let is_column = COLUMN_TAGS.contains(&name) && !(e.ifd == Ifd::Ifd1);
        // An unreadable DateTimeOriginal keeps its text here, so nothing is lost.
        let keep_dto = name == "DateTimeOriginal" && rec.date_time_original.is_none();
        if (is_column || name == "DateTimeOriginal") && !keep_dto {
            continue;
        }
        if let Some(only) = &opts.tags {
            if !only.iter().any(|n| n == name) {
                continue;
            }
        }
        if rec.tags.iter().any(|(k, _)| *k == name) {
            continue; // first one wins (IFD0 before the sub-IFDs, as exiftool shows it)
        }
        let value = if e.ifd == Ifd::Ifd1 && e.tag == 0x0201 {
            tags::numbers(&e.value)
                .first()
                .map(|&o| (o as u64 + base).to_string())
                .unwrap_or_default()
        } else {
            tags::format(e.ifd, e.tag, &e.value, t.big_endian)
        };
        rec.tags.push((name, value));
    }
}

/// Expand folders (recursively, image suffixes only) and apply the symlink policy.
fn expand(
    inputs: &[String],
    follow: bool,
    skipped: &mut u64,
    problems: &mut Vec<Problem>,
) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut seen_dirs: Vec<(u64, u64)> = Vec::new();
    fn walk(
        dir: &Path,
        follow: bool,
        out: &mut Vec<(PathBuf, u64)>,
        skipped: &mut u64,
        problems: &mut Vec<Problem>,
        seen: &mut Vec<(u64, u64)>,
    ) {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(dir) {
            Ok(m) if seen.contains(&(m.dev(), m.ino())) => return, // a symlink loop
            Ok(m) => seen.push((m.dev(), m.ino())),
            Err(e) => return problems.push(Error::io(dir, e).to_problem()),
        }
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => return problems.push(Error::io(dir, e).to_problem()),
        };
        entries.sort();
        for p in entries {
            let Ok(lm) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if lm.file_type().is_symlink() && !follow {
                *skipped += 1;
                continue;
            }
            let Ok(m) = std::fs::metadata(&p) else {
                continue;
            }; // dangling link
            if m.is_dir() {
                walk(&p, follow, out, skipped, problems, seen);
            } else if m.is_file() {
                let ext = p
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if IMAGE_SUFFIXES.contains(&ext.as_str()) {
                    out.push((p, m.len()));
                }
            }
        }
    }
    for input in inputs {
        let p = PathBuf::from(input);
        if crate::io::is_stream(&p) {
            // A remote object handed over by Python: a file, its size known without a stat.
            match crate::io::file_size(&p) {
                Ok(len) => out.push((p, len)),
                Err(e) => problems.push(e.to_problem()),
            }
            continue;
        }
        // Following links, one stat is enough; otherwise look at the link itself first.
        let link = if follow {
            Ok(false)
        } else {
            std::fs::symlink_metadata(&p).map(|m| m.file_type().is_symlink())
        };
        match link {
            Ok(true) => *skipped += 1,
            Ok(false) => match std::fs::metadata(&p) {
                Ok(m) if m.is_dir() => {
                    walk(&p, follow, &mut out, skipped, problems, &mut seen_dirs)
                }
                Ok(m) => out.push((p, m.len())),
                Err(e) => problems.push(Error::io(&p, e).to_problem()),
            },
            Err(e) => problems.push(Error::io(&p, e).to_problem()),
        }
    }
    out
}

const BATCH_ROWS: usize = 65_536;

/// Run the pipeline on `inputs` (files or folders).
pub fn run(inputs: &[String], opts: &Options, progress: &Progress) -> Result<RunResult> {
    let started = std::time::Instant::now();
    let mut summary = Summary::default();
    let mut errors = Vec::new();
    let files = expand(
        inputs,
        opts.follow_symlinks,
        &mut summary.symlinks_skipped,
        &mut errors,
    );
    if opts.on_error == OnError::Fail {
        if let Some(p) = errors.first() {
            return Err(Error {
                kind: p.kind,
                message: p.message.clone(),
                path: Some(p.path.clone()),
                line: None,
                offset: None,
            });
        }
    }
    summary.files = files.len() as u64;
    summary.bytes_total = files.iter().map(|f| f.1).sum();
    progress.set_totals(files.len() as u64, summary.bytes_total);
    let outcomes: Vec<(Result<Record>, u64)> = crate::parallel::with_pool(opts.threads, || {
        files
            .par_iter()
            .map(|(path, size)| {
                progress.check()?;
                let out = extract(path, opts);
                progress.add_bytes(*size);
                progress.input_done();
                match out {
                    Ok((rec, n)) => {
                        progress.add_rows(1);
                        Ok((Ok(rec), n))
                    }
                    Err(e) if opts.on_error == OnError::Fail || e.kind == ErrorKind::Cancelled => {
                        Err(e)
                    }
                    Err(e) => {
                        progress.add_error();
                        Ok((Err(e), 0))
                    }
                }
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let mut records = Vec::with_capacity(outcomes.len());
    for (r, n) in outcomes {
        summary.bytes_read += n;
        match r {
            Ok(rec) => {
                summary.images += 1;
                summary.with_exif += u64::from(rec.has_exif);
                *summary.formats.entry(rec.format.to_string()).or_default() += 1;
                records.push(rec);
            }
            Err(e) => errors.push(e.to_problem()),
        }
    }
    summary.errors = errors.len() as u64;
    let schema = table::schema(opts.include_thumbnails);
    let batches = records
        .chunks(BATCH_ROWS)
        .map(|c| table::batch(&schema, c, opts.include_thumbnails))
        .collect::<arrow::error::Result<Vec<_>>>()?;
    let mut outputs = Vec::new();
    if let Some(dest) = &opts.output {
        outputs.push(
            write_parquet(Path::new(dest), &schema, &batches)?
                .display()
                .to_string(),
        );
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(RunResult {
        summary,
        outputs,
        errors,
        schema,
        batches,
    })
}

fn write_parquet(
    dest: &Path,
    schema: &arrow::datatypes::SchemaRef,
    batches: &[arrow::array::RecordBatch],
) -> Result<PathBuf> {
    use parquet::arrow::ArrowWriter;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::WriterProperties;
    let mut file = AtomicFile::create(dest)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut w = ArrowWriter::try_new(&mut file, schema.clone(), Some(props))?;
    for b in batches {
        w.write(b)?;
    }
    w.close()?;
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg_with(tiff: &[u8]) -> Vec<u8> {
        let mut j = vec![0xff, 0xd8, 0xff, 0xe1];
        j.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
        j.extend_from_slice(b"Exif\0\0");
        j.extend_from_slice(tiff);
        // SOF0 8x4, then SOS
        j.extend_from_slice(&[0xff, 0xc0, 0, 11, 8, 0, 4, 0, 8, 1, 1, 0x11, 0]);
        j.extend_from_slice(&[0xff, 0xda, 0, 2, 0xff, 0xd9]);
        j
    }

    #[test]
    fn jpeg_end_to_end_with_columns_and_tags() {
        let r = |n: u32, d: u32| [n.to_le_bytes(), d.to_le_bytes()].concat();
        let t = tiff::tests::build(
            false,
            &[
                (0x010f, 2, 6, b"Canon\0".to_vec()),
                (0x0112, 3, 1, vec![6, 0]),
            ],
            &[
                (0x829a, 5, 1, r(1, 125)),
                (0x9003, 2, 20, b"2024:05:01 12:34:56\0".to_vec()),
                (0x9011, 2, 7, b"+02:00\0".to_vec()),
                (0x9000, 7, 4, b"0232".to_vec()),
            ],
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.jpg");
        std::fs::write(&p, jpeg_with(&t)).unwrap();
        let (rec, n) = extract(&p, &Options::default()).unwrap();
        assert_eq!(
            (rec.format, rec.width, rec.height),
            ("JPEG", Some(8), Some(4))
        );
        assert_eq!(rec.make.as_deref(), Some("Canon"));
        assert_eq!(rec.orientation, Some(6));
        assert_eq!(rec.exposure_time, Some(0.008));
        let local = parse_datetime("2024:05:01 12:34:56").unwrap();
        assert_eq!(rec.date_time_original, Some(local));
        assert_eq!(rec.date_time_original_utc, Some(local - 7200 * 1_000_000));
        assert_eq!(rec.tags, vec![("ExifVersion", "0232".to_string())]);
        assert!(n > 0);

        // Truncated anywhere: an error or a row, never a panic.
        let whole = std::fs::read(&p).unwrap();
        for cut in 0..whole.len() {
            std::fs::write(&p, &whole[..cut]).unwrap();
            let _ = extract(&p, &Options::default());
        }
        std::fs::write(&p, b"").unwrap();
        assert!(extract(&p, &Options::default())
            .unwrap_err()
            .message
            .contains("empty"));
    }

    #[test]
    fn run_reports_bad_files_and_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let t = tiff::tests::build(false, &[(0x0112, 3, 1, vec![1, 0])], &[]);
        std::fs::write(dir.path().join("good.jpg"), jpeg_with(&t)).unwrap();
        std::fs::write(dir.path().join("bad.jpg"), b"hello world, not an image").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"ignored by suffix").unwrap();
        let out = run(
            &[dir.path().display().to_string()],
            &Options::default(),
            &Progress::new(),
        )
        .unwrap();
        assert_eq!(
            (out.summary.files, out.summary.images, out.summary.errors),
            (2, 1, 1)
        );
        assert!(out.errors[0].path.ends_with("bad.jpg"));
        assert!(out.errors[0].message.contains("not a supported image"));
        let fail = Options {
            on_error: OnError::Fail,
            ..Options::default()
        };
        assert!(run(&[dir.path().display().to_string()], &fail, &Progress::new()).is_err());
    }

    #[test]
    fn offsets_parse() {
        assert_eq!(parse_offset("+02:00"), Some(7200));
        assert_eq!(parse_offset("-05:30"), Some(-19800));
        assert_eq!(parse_offset("   :  "), None);
        assert_eq!(parse_datetime("0000:00:00 00:00:00"), None);
    }
}

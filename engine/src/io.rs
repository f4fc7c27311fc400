//! Reading inputs and writing outputs, the same way for every pipeline.
//!
//! * [`open_input`] opens a file for streaming, decompressing `.gz` and `.zst` by extension.
//! * [`can_map`] tells a plain local file (mapped or read by position, split into byte ranges for
//!   rayon) from the rest (compressed or streamed: read in blocks through [`open_input`]).
//! * Streamed inputs: Python registers a [`Stream`] (a remote object it reads in prefetched chunks)
//!   with [`register_streams`] and hands the engine its token path, `aerofs-stream://<n>/<name>`.
//!   [`open_input`], [`open_at`], [`open_random`], [`file_size`] and [`can_map`] understand tokens, so
//!   a pipeline reads a remote object exactly as it reads a file, and never needs it on disk.
//! * [`AtomicFile`] writes an output under a temporary name beside the destination and renames it on
//!   [`AtomicFile::commit`]; dropped without a commit, it removes the temporary file. A reader never
//!   sees a half-written output, and a retried task simply overwrites its own output.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The prefix of a registered stream's token path.
pub const STREAM_SCHEME: &str = "aerofs-stream://";

/// Buffer of a streamed input's sequential reader. Each refill is one call into Python (one GIL
/// acquisition), so it is large: the per-call overhead is paid once per 4 MiB, not per line.
const STREAM_BUFFER: usize = 4 << 20;

/// An input whose bytes come from elsewhere than a local file (a remote object read by Python).
pub trait Stream: Send + Sync {
    /// The user's name for it (its URL): what error messages show.
    fn url(&self) -> &str;
    /// Its size in bytes (compressed size for compressed inputs).
    fn size(&self) -> u64;
    /// Its raw bytes from `offset` to the end, read sequentially.
    fn open(&self, offset: u64) -> std::io::Result<Box<dyn Read + Send>>;
    /// Up to `buf.len()` bytes at `offset` (random access; fewer only at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;
}

fn streams() -> &'static Mutex<HashMap<String, Arc<dyn Stream>>> {
    static STREAMS: OnceLock<Mutex<HashMap<String, Arc<dyn Stream>>>> = OnceLock::new();
    STREAMS.get_or_init(Default::default)
}

/// Register `items` (name, stream) and return their token paths, in order.
///
/// All tokens of one call share one number, `aerofs-stream://<n>/<name>`, so names that are paths
/// relative to one root (`sub/a.csv`) keep their tree: a pipeline mirroring its inputs' folders
/// below their common root lays the outputs out as it would for the local files. The name keeps the
/// original extension, so [`Compression::of`] sees `.gz`/`.zst` as usual.
pub fn register_streams(items: Vec<(String, Arc<dyn Stream>)>) -> Vec<String> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut map = streams().lock().unwrap_or_else(|p| p.into_inner());
    items
        .into_iter()
        .map(|(name, stream)| {
            let token = format!("{STREAM_SCHEME}{n}/{}", name.trim_start_matches('/'));
            map.insert(token.clone(), stream);
            token
        })
        .collect()
}

/// Forget the streams of `tokens` (when their run ends); unknown tokens are ignored.
pub fn unregister_streams(tokens: &[String]) {
    let mut map = streams().lock().unwrap_or_else(|p| p.into_inner());
    for t in tokens {
        map.remove(t);
    }
}

/// The registered stream behind a token path, if `path` is one.
pub fn stream_of(path: &Path) -> Option<Arc<dyn Stream>> {
    let s = path.to_str()?;
    if !s.starts_with(STREAM_SCHEME) {
        return None;
    }
    streams()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(s)
        .cloned()
}

/// Whether `path` is a stream token (registered or not): such a path is never a local file.
pub fn is_stream(path: &Path) -> bool {
    path.to_str().is_some_and(|s| s.starts_with(STREAM_SCHEME))
}

/// The name of an input that stays the same from run to run: a stream's URL (its token's number
/// changes with every registration), otherwise the path itself. For names derived from the inputs
/// that a retried or redone run must reproduce (csv's part file names).
pub fn lasting_name(path: &Path) -> PathBuf {
    stream_of(path).map_or_else(|| path.to_path_buf(), |s| PathBuf::from(s.url()))
}

fn stream(path: &Path) -> Result<Option<Arc<dyn Stream>>> {
    if !is_stream(path) {
        return Ok(None);
    }
    match stream_of(path) {
        Some(s) => Ok(Some(s)),
        None => Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "stream not registered (its run has ended)",
            ),
        )),
    }
}

/// Random access to an input's raw bytes (`pread` on a file, ranged reads on a stream).
pub trait ReadAt: Send + Sync {
    /// Up to `buf.len()` bytes at `offset`; 0 at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;
}

impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }
}

struct StreamAt(Arc<dyn Stream>);

impl ReadAt for StreamAt {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        if offset >= self.0.size() || buf.is_empty() {
            return Ok(0);
        }
        self.0.read_at(buf, offset)
    }
}

/// Open an input for random access (raw bytes, no decompression): its reader and its length.
/// A folder is an input error. Parsers that need only a file's header (EXIF) read just that, so a
/// remote photo is never fetched whole.
pub fn open_random(path: &Path) -> Result<(Box<dyn ReadAt>, u64)> {
    if let Some(s) = stream(path)? {
        let len = s.size();
        return Ok((Box::new(StreamAt(s)), len));
    }
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::input(path, None, None, "is a directory"));
    }
    Ok((Box::new(file), meta.len()))
}

/// Open an input's raw bytes (no decompression) from `offset` on: the reader of a byte range.
pub fn open_at(path: &Path, offset: u64) -> Result<Box<dyn Read + Send>> {
    Ok(Box::new(open_buffered(path, offset)?))
}

fn open_buffered(path: &Path, offset: u64) -> Result<Box<dyn BufRead + Send>> {
    if let Some(s) = stream(path)? {
        let r = s.open(offset).map_err(|e| Error::io(path, e))?;
        return Ok(Box::new(BufReader::with_capacity(STREAM_BUFFER, r)));
    }
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    if offset > 0 {
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io(path, e))?;
    }
    Ok(Box::new(BufReader::with_capacity(1 << 20, file)))
}

/// Newlines in an input's raw bytes `[0, offset)` (the line number of a byte, for inputs a pipeline
/// reads from elsewhere than their start). Read in ranged windows, so a stream fetches only those
/// bytes.
pub fn newlines_before(path: &Path, offset: u64) -> Result<u64> {
    let (r, len) = open_random(path)?;
    let end = offset.min(len);
    let mut buf = vec![0u8; (end as usize).min(1 << 20)];
    let (mut at, mut n) = (0u64, 0u64);
    while at < end {
        let want = ((end - at) as usize).min(buf.len());
        let k = r
            .read_at(&mut buf[..want], at)
            .map_err(|e| Error::io(path, e))?;
        if k == 0 {
            break;
        }
        n += memchr::memchr_iter(b'\n', &buf[..k]).count() as u64;
        at += k as u64;
    }
    Ok(n)
}

/// The compression of an input, decided by its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn of(path: &Path) -> Self {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref()
        {
            Some("gz") | Some("gzip") => Compression::Gzip,
            Some("zst") | Some("zstd") => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// Whether this input can be memory-mapped or read by position without reading it whole into
/// memory: a plain local file. Anything else (compressed inputs, streamed remote objects) is read through
/// [`open_input`] in blocks, so memory stays bounded by the block size, not the input size.
pub fn can_map(path: &Path) -> bool {
    Compression::of(path) == Compression::None && !is_stream(path)
}

/// Size of an input on disk (compressed size for compressed inputs).
pub fn file_size(path: &Path) -> Result<u64> {
    if let Some(s) = stream(path)? {
        return Ok(s.size());
    }
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| Error::io(path, e))
}

/// Open an input as a decompressed byte stream.
pub fn open_input(path: &Path) -> Result<Box<dyn Read + Send>> {
    decompress(path, open_buffered(path, 0)?)
}

/// [`open_input`], plus a counter of the raw (on-disk, still compressed) bytes consumed so far.
/// Progress totals are on-disk sizes ([`file_size`]); counting decompressed bytes against them
/// passes 100% on a compressed input, so a reader that reports progress counts these instead.
pub fn open_input_counted(path: &Path) -> Result<(Box<dyn Read + Send>, Arc<AtomicU64>)> {
    let raw = Arc::new(AtomicU64::new(0));
    let counted = Counted {
        inner: open_buffered(path, 0)?,
        raw: raw.clone(),
    };
    Ok((decompress(path, Box::new(counted))?, raw))
}

/// Counts the bytes read (or consumed, through `BufRead`) from the reader it wraps.
struct Counted {
    inner: Box<dyn BufRead + Send>,
    raw: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.raw.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl BufRead for Counted {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.raw.fetch_add(n as u64, Ordering::Relaxed);
        self.inner.consume(n)
    }
}

fn decompress(path: &Path, reader: Box<dyn BufRead + Send>) -> Result<Box<dyn Read + Send>> {
    Ok(match Compression::of(path) {
        Compression::None => Box::new(reader),
        // Multi-member gzip (as written by `cat a.gz b.gz` or pigz) is common for logs.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(reader).map_err(|e| Error::io(path, e))?,
        ),
    })
}

/// Read a whole (possibly compressed) input into memory. Only for inputs known to be small.
pub fn read_all(path: &Path) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    open_input(path)?
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    Ok(buf)
}

/// An output file written under a temporary name and renamed into place on commit.
pub struct AtomicFile {
    dest: PathBuf,
    tmp: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Create the parent folders and the temporary file `.<name>.aerofs-tmp-<pid>-<n>` beside `dest`.
    pub fn create(dest: impl AsRef<Path>) -> Result<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dest = dest.as_ref().to_path_buf();
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        let name = dest
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("output");
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = parent.join(format!(".{name}.aerofs-tmp-{}-{n}", std::process::id()));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(AtomicFile {
            dest,
            tmp,
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The underlying writer (e.g. for a Parquet `ArrowWriter`).
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        self.writer.as_mut().expect("AtomicFile used after commit")
    }

    /// Flush, sync and rename into place. Returns the final path.
    pub fn commit(mut self) -> Result<PathBuf> {
        let writer = self.writer.take().expect("AtomicFile committed twice");
        let file = writer
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
        Ok(self.dest.clone())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Write `bytes` to `dest` atomically.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(bytes).map_err(|e| Error::io(dest, e))?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn uncommitted_output_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/out.bin");
        {
            let mut f = AtomicFile::create(&dest).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert!(!dest.exists());
        assert_eq!(
            std::fs::read_dir(dir.path().join("sub")).unwrap().count(),
            0
        );
    }

    #[test]
    fn committed_output_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        write_atomic(&dest, b"whole").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"whole");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn reads_gzip_and_zstd() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("a.txt.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello gz").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read_all(&gz).unwrap(), b"hello gz");
        let zst = dir.path().join("a.txt.zst");
        std::fs::write(&zst, zstd::encode_all(&b"hello zst"[..], 1).unwrap()).unwrap();
        assert_eq!(read_all(&zst).unwrap(), b"hello zst");
    }

    /// An in-memory stream, as Python's remote reader looks to the engine.
    struct MemStream(Vec<u8>);

    impl Stream for MemStream {
        fn url(&self) -> &str {
            "mem://test"
        }
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn open(&self, offset: u64) -> std::io::Result<Box<dyn Read + Send>> {
            Ok(Box::new(std::io::Cursor::new(
                self.0[offset as usize..].to_vec(),
            )))
        }
        fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
            let rest = &self.0[offset as usize..];
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            Ok(n)
        }
    }

    #[test]
    fn streams_read_like_files_until_unregistered() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"line one\nline two\n").unwrap();
        let gz = enc.finish().unwrap();
        let gz_len = gz.len() as u64;
        let tokens = register_streams(vec![
            (
                "sub/a.log.gz".into(),
                Arc::new(MemStream(gz)) as Arc<dyn Stream>,
            ),
            ("b.txt".into(), Arc::new(MemStream(b"0123456789".to_vec()))),
        ]);
        let (a, b) = (Path::new(&tokens[0]), Path::new(&tokens[1]));
        // One number per registration: the names keep their tree and their extension.
        assert!(tokens[0].starts_with(STREAM_SCHEME) && tokens[0].ends_with("/sub/a.log.gz"));
        assert_eq!(a.parent().unwrap().parent(), b.parent());
        assert_eq!(Compression::of(a), Compression::Gzip);
        assert_eq!(read_all(a).unwrap(), b"line one\nline two\n");
        assert_eq!(file_size(a).unwrap(), gz_len);
        assert!(!can_map(b));
        let mut rest = String::new();
        open_at(b, 4).unwrap().read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "456789");
        let (r, len) = open_random(b).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!((r.read_at(&mut buf, 8).unwrap(), len), (2, 10));
        assert_eq!(&buf[..2], b"89");
        assert_eq!(read_all(b).unwrap(), b"0123456789");
        unregister_streams(&tokens);
        let e = open_input(b).err().unwrap();
        assert_eq!(e.kind, crate::error::ErrorKind::NotFound);
    }
}

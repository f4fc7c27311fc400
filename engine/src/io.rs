//! Reading inputs and writing outputs, the same way for every pipeline.
//!
//! * [`open_input`] opens a file for streaming, decompressing `.gz` and `.zst` by extension.
//! * [`map_input`] memory-maps an uncompressed file so it can be split into byte ranges for rayon.
//! * [`AtomicFile`] writes an output under a temporary name beside the destination and renames it on
//!   [`AtomicFile::commit`]; dropped without a commit, it removes the temporary file. A reader never
//!   sees a half-written output, and a retried task simply overwrites its own output.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

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

/// Whether [`map_input`] can memory-map this input without reading it whole into memory: a plain
/// local file. Anything else (compressed inputs, streamed remote objects) is read through
/// [`open_input`] in blocks, so memory stays bounded by the block size, not the input size.
pub fn can_map(path: &Path) -> bool {
    Compression::of(path) == Compression::None
}

/// Size of an input on disk (compressed size for compressed inputs).
pub fn file_size(path: &Path) -> Result<u64> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| Error::io(path, e))
}

/// Open an input as a decompressed byte stream.
pub fn open_input(path: &Path) -> Result<Box<dyn Read + Send>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = BufReader::with_capacity(1 << 20, file);
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

/// The bytes of an input: memory-mapped when uncompressed (so rayon can split it by range without
/// reading it all into RAM), decompressed into memory otherwise.
pub enum InputBytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for InputBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            InputBytes::Mapped(m) => m,
            InputBytes::Owned(v) => v,
        }
    }
}

/// Map an uncompressed input, or decompress a compressed one. Empty files are returned as empty.
pub fn map_input(path: &Path) -> Result<InputBytes> {
    if Compression::of(path) != Compression::None {
        return read_all(path).map(InputBytes::Owned);
    }
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Ok(InputBytes::Owned(Vec::new()));
    }
    // SAFETY: the map is read-only; a file truncated by another process while mapped is the
    // documented hazard of every mmap reader (ripgrep, polars) and is accepted here too.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    #[cfg(unix)]
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(InputBytes::Mapped(map))
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
        assert_eq!(&*map_input(&zst).unwrap(), b"hello zst");
    }
}

//! Byte sources for the parsers: a file (or a streamed remote object) read with `pread`-style
//! random access in small windows (counting every byte read, so a run can prove it read only the
//! metadata: a remote photo is fetched a window at a time, never whole), and an in-memory block (an EXIF payload
//! lifted out of a JPEG/PNG/WebP/HEIF container).
//!
//! Every read is bounds-checked: asking for bytes past the end is an error naming the offset, never
//! a panic. The parsers hold no slice across two reads (a read may replace the window).

use crate::io::ReadAt;

/// A parse failure: what went wrong and where (a byte offset inside the file, when known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: Option<u64>,
    pub message: String,
}

impl ParseError {
    pub fn at(offset: u64, message: impl Into<String>) -> Self {
        ParseError {
            offset: Some(offset),
            message: message.into(),
        }
    }
    pub fn new(message: impl Into<String>) -> Self {
        ParseError {
            offset: None,
            message: message.into(),
        }
    }
}

pub type PResult<T> = Result<T, ParseError>;

/// Random access to the bytes of one input.
pub trait Source {
    /// Total length in bytes.
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `len` bytes at `off`; an error when any of them lies past the end.
    fn read(&mut self, off: u64, len: usize) -> PResult<&[u8]>;
    /// Where byte 0 of this source sits in the file (for offsets reported to users).
    fn file_base(&self) -> u64 {
        0
    }
    /// Size of the next read from disk on a miss (a hint; in-memory sources ignore it).
    fn set_window(&mut self, _bytes: usize) {}
}

/// The smallest read issued to the file: one page, so neighbouring small structures (IFD entries
/// and their values) share one system call.
const MIN_WINDOW: usize = 4096;
/// No single structure read from a file may exceed this (a corrupt length must not allocate GBs).
pub const MAX_READ: usize = 64 << 20;
/// The windows kept per file; older ones are dropped first.
const MAX_WINDOWS: usize = 8;

/// A file read in windows with `pread` (or a stream, with one ranged read per window).
pub struct FileSource<'f> {
    file: &'f dyn ReadAt,
    len: u64,
    windows: Vec<(u64, Vec<u8>)>,
    /// Bytes actually read from the file so far.
    pub bytes_read: u64,
    /// Window size used for the next miss (containers lower it while hopping over big chunks).
    pub window: usize,
}

impl<'f> FileSource<'f> {
    pub fn new(file: &'f dyn ReadAt, len: u64) -> Self {
        FileSource {
            file,
            len,
            windows: Vec::new(),
            bytes_read: 0,
            window: MIN_WINDOW,
        }
    }
}

impl Source for FileSource<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read(&mut self, off: u64, len: usize) -> PResult<&[u8]> {
        let end = off
            .checked_add(len as u64)
            .ok_or_else(|| ParseError::at(off, "offset overflow"))?;
        if end > self.len {
            return Err(ParseError::at(
                off,
                format!(
                    "truncated: needs {len} bytes at offset {off}, file has {}",
                    self.len
                ),
            ));
        }
        if len > MAX_READ {
            return Err(ParseError::at(
                off,
                format!("metadata block of {len} bytes is too large"),
            ));
        }
        if let Some(i) = self
            .windows
            .iter()
            .position(|(w, b)| *w <= off && end <= *w + b.len() as u64)
        {
            let (w, b) = &self.windows[i];
            let start = (off - w) as usize;
            return Ok(&b[start..start + len]);
        }
        let want = (len.max(self.window) as u64).min(self.len - off) as usize;
        let mut buf = vec![0u8; want];
        let mut got = 0;
        while got < want {
            match self.file.read_at(&mut buf[got..], off + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ParseError::at(off + got as u64, format!("read error: {e}"))),
            }
        }
        self.bytes_read += got as u64;
        if got < len {
            return Err(ParseError::at(
                off,
                format!("truncated: file shrank while reading at offset {off}"),
            ));
        }
        buf.truncate(got);
        if self.windows.len() >= MAX_WINDOWS {
            self.windows.remove(0);
        }
        self.windows.push((off, buf));
        let b = &self.windows.last().expect("just pushed").1;
        Ok(&b[..len])
    }
    fn set_window(&mut self, bytes: usize) {
        self.window = bytes;
    }
}

/// An in-memory block, e.g. the TIFF structure inside a JPEG APP1 segment.
pub struct MemSource<'a> {
    pub data: &'a [u8],
    /// Offset of `data[0]` in the file.
    pub base: u64,
}

impl Source for MemSource<'_> {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn read(&mut self, off: u64, len: usize) -> PResult<&[u8]> {
        let start =
            usize::try_from(off).map_err(|_| ParseError::at(self.base, "offset overflow"))?;
        match start.checked_add(len) {
            Some(end) if end <= self.data.len() => Ok(&self.data[start..end]),
            _ => Err(ParseError::at(
                self.base.saturating_add(off),
                format!(
                    "truncated: needs {len} bytes at offset {off} of a {}-byte block",
                    self.data.len()
                ),
            )),
        }
    }
    fn file_base(&self) -> u64 {
        self.base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Write;

    #[test]
    fn file_source_counts_bytes_and_rejects_past_end() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&vec![7u8; 10_000]).unwrap();
        let file = File::open(f.path()).unwrap();
        let mut s = FileSource::new(&file, 10_000);
        assert_eq!(s.read(0, 4).unwrap(), &[7, 7, 7, 7]);
        assert_eq!(s.bytes_read, 4096);
        s.read(100, 10).unwrap(); // same window: no new read
        assert_eq!(s.bytes_read, 4096);
        s.read(9_000, 1000).unwrap();
        assert_eq!(s.bytes_read, 4096 + 1000);
        assert!(s.read(9_999, 2).is_err());
        assert!(s.read(u64::MAX - 1, 4).is_err());
    }

    #[test]
    fn mem_source_bounds() {
        let data = [1u8, 2, 3];
        let mut m = MemSource {
            data: &data,
            base: 10,
        };
        assert_eq!(m.read(1, 2).unwrap(), &[2, 3]);
        let e = m.read(2, 2).unwrap_err();
        assert_eq!(e.offset, Some(12));
        assert!(m.read(u64::MAX, 1).is_err());
    }
}

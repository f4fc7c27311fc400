//! Where the EXIF block sits in each file format, and the image's pixel size.
//!
//! Only headers and the metadata segments are read: JPEG markers up to the first scan, PNG chunk
//! headers, RIFF chunk headers, the ISOBMFF `meta` box. A TIFF-based file (TIFF, DNG and most raws)
//! *is* the EXIF structure, so it is walked in place.

use super::source::{PResult, ParseError, Source};

/// Where the TIFF structure with the EXIF lives.
#[derive(Debug)]
pub enum ExifBlock {
    /// The whole file is TIFF (header at offset 0).
    File,
    /// A block lifted out of the container; `base` is its offset in the file.
    Bytes { data: Vec<u8>, base: u64 },
}

#[derive(Debug)]
pub struct Located {
    /// exiftool's FileType (JPEG, TIFF, PNG, WEBP, HEIC, AVIF, DNG, CR2, NEF, ...).
    pub format: &'static str,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub exif: Option<ExifBlock>,
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Strip an optional "Exif\0\0" prefix (PNG and WebP writers differ on it).
fn tiff_payload(mut data: Vec<u8>, mut base: u64) -> ExifBlock {
    if data.starts_with(b"Exif\0\0") {
        data.drain(..6);
        base += 6;
    }
    ExifBlock::Bytes { data, base }
}

/// Recognise the format from the first bytes and locate its EXIF. `ext` (lower case) only picks
/// the name of a TIFF-based raw format, as exiftool does.
pub fn locate<S: Source>(src: &mut S, ext: &str) -> PResult<Located> {
    let len = src.len();
    if len == 0 {
        return Err(ParseError::at(0, "empty file"));
    }
    let head = src.read(0, len.min(16) as usize)?.to_vec();
    if head.starts_with(&[0xff, 0xd8]) {
        return jpeg(src);
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return png(src);
    }
    if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return webp(src);
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return isobmff(src, &head);
    }
    if head.len() >= 8 && (head.starts_with(b"II") || head.starts_with(b"MM")) {
        let format = match (&head[0..4], ext) {
            (b"IIRO" | b"IIRS" | b"MMOR", _) => "ORF",
            (b"IIU\0", _) => "RW2",
            _ if head.len() >= 10 && &head[8..10] == b"CR" => "CR2",
            (_, "dng") => "DNG",
            (_, "nef") => "NEF",
            (_, "nrw") => "NRW",
            (_, "arw") => "ARW",
            (_, "sr2") => "SR2",
            (_, "pef") => "PEF",
            (_, "srw") => "SRW",
            (_, "erf") => "ERF",
            (_, "3fr") => "3FR",
            (_, "iiq") => "IIQ",
            (_, "mos") => "MOS",
            (_, "raw") => "RAW",
            _ => "TIFF",
        };
        let magic = if head.starts_with(b"II") {
            u16::from_le_bytes([head[2], head[3]])
        } else {
            be16(&head[2..])
        };
        if matches!(magic, 42 | 0x4f52 | 0x5352 | 0x55) {
            return Ok(Located {
                format,
                width: None,
                height: None,
                exif: Some(ExifBlock::File),
            });
        }
    }
    Err(ParseError::at(
        0,
        format!(
            "not a supported image format (starts with {})",
            hex(&head[..head.len().min(8)])
        ),
    ))
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn jpeg<S: Source>(src: &mut S) -> PResult<Located> {
    let len = src.len();
    let mut out = Located {
        format: "JPEG",
        width: None,
        height: None,
        exif: None,
    };
    let mut pos = 2u64;
    loop {
        if pos + 4 > len {
            // Some writers end the file without SOS after a thumbnail-only stream: keep what we have.
            if out.exif.is_some() || out.width.is_some() {
                return Ok(out);
            }
            return Err(ParseError::at(pos, "truncated JPEG: no image data"));
        }
        let m = src.read(pos, 4)?;
        if m[0] != 0xff {
            return Err(ParseError::at(
                pos,
                format!("corrupt JPEG: expected a marker, found 0x{:02x}", m[0]),
            ));
        }
        let marker = m[1];
        if marker == 0xff {
            pos += 1; // fill byte
            continue;
        }
        if marker == 0xd8 || marker == 0x01 || (0xd0..=0xd7).contains(&marker) {
            pos += 2;
            continue;
        }
        if marker == 0xd9 || marker == 0xda {
            if out.width.is_none() {
                return Err(ParseError::at(
                    pos,
                    "corrupt JPEG: image data before a frame header",
                ));
            }
            return Ok(out);
        }
        let seg_len = u64::from(be16(&m[2..4]));
        if seg_len < 2 {
            return Err(ParseError::at(
                pos,
                format!("corrupt JPEG: segment length {seg_len}"),
            ));
        }
        let data_at = pos + 4;
        let data_len = seg_len - 2;
        if data_at + data_len > len {
            return Err(ParseError::at(
                pos,
                format!("truncated JPEG: segment 0xff{marker:02x} runs past the end"),
            ));
        }
        match marker {
            0xe1 if out.exif.is_none()
                && data_len >= 14
                && src.read(data_at, 6)? == b"Exif\0\0" =>
            {
                let data = src.read(data_at + 6, (data_len - 6) as usize)?.to_vec();
                out.exif = Some(ExifBlock::Bytes {
                    data,
                    base: data_at + 6,
                });
            }
            0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) && data_len >= 5 => {
                let f = src.read(data_at, 5)?;
                out.height = Some(u32::from(be16(&f[1..3])));
                out.width = Some(u32::from(be16(&f[3..5])));
            }
            _ => {}
        }
        pos = data_at + data_len;
    }
}

fn png<S: Source>(src: &mut S) -> PResult<Located> {
    let len = src.len();
    let mut out = Located {
        format: "PNG",
        width: None,
        height: None,
        exif: None,
    };
    let mut pos = 8u64;
    while pos + 8 <= len {
        let h = src.read(pos, 8)?;
        let clen = u64::from(be32(&h[0..4]));
        let typ = [h[4], h[5], h[6], h[7]];
        let data_at = pos + 8;
        if data_at + clen > len {
            return Err(ParseError::at(
                pos,
                format!(
                    "truncated PNG: chunk {} runs past the end",
                    String::from_utf8_lossy(&typ)
                ),
            ));
        }
        match &typ {
            b"IHDR" if clen >= 8 => {
                let d = src.read(data_at, 8)?;
                out.width = Some(be32(&d[0..4]));
                out.height = Some(be32(&d[4..8]));
            }
            b"eXIf" if out.exif.is_none() => {
                let data = src.read(data_at, clen as usize)?.to_vec();
                out.exif = Some(tiff_payload(data, data_at));
            }
            // After the pixels, hop over chunks with tiny reads (eXIf may legally follow IDAT).
            b"IDAT" => src.set_window(64),
            b"IEND" => {
                if out.width.is_none() {
                    return Err(ParseError::at(8, "corrupt PNG: no IHDR chunk"));
                }
                return Ok(out);
            }
            _ => {}
        }
        if pos == 8 && &typ != b"IHDR" {
            return Err(ParseError::at(pos, "corrupt PNG: first chunk is not IHDR"));
        }
        pos = data_at + clen + 4; // + CRC
    }
    Err(ParseError::at(
        pos.min(len),
        "truncated PNG: the file ends before its IEND chunk",
    ))
}

fn webp<S: Source>(src: &mut S) -> PResult<Located> {
    let riff_end = u64::from(le32(src.read(4, 4)?)) + 8;
    if riff_end > src.len() {
        return Err(ParseError::at(
            4,
            format!(
                "truncated WebP: RIFF size {riff_end} but the file has {} bytes",
                src.len()
            ),
        ));
    }
    let mut out = Located {
        format: "WEBP",
        width: None,
        height: None,
        exif: None,
    };
    let mut pos = 12u64;
    src.set_window(256); // chunk headers; the image chunk between them is never read
    while pos + 8 <= riff_end {
        let h = src.read(pos, 8)?.to_vec();
        let clen = u64::from(le32(&h[4..8]));
        let data_at = pos + 8;
        if data_at + clen > src.len() {
            return Err(ParseError::at(
                pos,
                format!(
                    "truncated WebP: chunk {} runs past the end",
                    String::from_utf8_lossy(&h[0..4])
                ),
            ));
        }
        match &h[0..4] {
            b"VP8X" if clen >= 10 => {
                let d = src.read(data_at, 10)?;
                out.width =
                    Some((u32::from(d[4]) | u32::from(d[5]) << 8 | u32::from(d[6]) << 16) + 1);
                out.height =
                    Some((u32::from(d[7]) | u32::from(d[8]) << 8 | u32::from(d[9]) << 16) + 1);
            }
            b"VP8 " if clen >= 10 && out.width.is_none() => {
                let d = src.read(data_at, 10)?;
                if d[3..6] == [0x9d, 0x01, 0x2a] {
                    out.width = Some(u32::from(u16::from_le_bytes([d[6], d[7]]) & 0x3fff));
                    out.height = Some(u32::from(u16::from_le_bytes([d[8], d[9]]) & 0x3fff));
                }
            }
            b"VP8L" if clen >= 5 && out.width.is_none() => {
                let d = src.read(data_at, 5)?;
                if d[0] == 0x2f {
                    let bits = le32(&d[1..5]);
                    out.width = Some((bits & 0x3fff) + 1);
                    out.height = Some(((bits >> 14) & 0x3fff) + 1);
                }
            }
            b"EXIF" if out.exif.is_none() => {
                let data = src.read(data_at, clen as usize)?.to_vec();
                out.exif = Some(tiff_payload(data, data_at));
            }
            _ => {}
        }
        pos = data_at + clen + (clen & 1);
    }
    if out.width.is_none() {
        return Err(ParseError::at(
            12,
            "truncated or corrupt WebP: no image chunk",
        ));
    }
    Ok(out)
}

/// ISOBMFF box header at `pos` (within `end`): (type, payload start, box end).
fn box_at<S: Source>(src: &mut S, pos: u64, end: u64) -> PResult<([u8; 4], u64, u64)> {
    let h = src.read(pos, 8)?;
    let size32 = u64::from(be32(&h[0..4]));
    let typ = [h[4], h[5], h[6], h[7]];
    let (size, hdr) = match size32 {
        0 => (end - pos, 8),
        1 => {
            let l = src.read(pos + 8, 8)?;
            (
                u64::from_be_bytes([l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7]]),
                16,
            )
        }
        s => (s, 8),
    };
    if size < hdr || pos.checked_add(size).map_or(true, |e| e > end) {
        return Err(ParseError::at(
            pos,
            format!(
                "corrupt box '{}' of size {size}",
                String::from_utf8_lossy(&typ)
            ),
        ));
    }
    Ok((typ, pos + hdr, pos + size))
}

struct Cursor<'a> {
    d: &'a [u8],
    p: usize,
    base: u64,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> PResult<&[u8]> {
        match self.p.checked_add(n) {
            Some(e) if e <= self.d.len() => {
                let s = &self.d[self.p..e];
                self.p = e;
                Ok(s)
            }
            _ => Err(ParseError::at(
                self.base + self.p as u64,
                "truncated meta box",
            )),
        }
    }
    fn uint(&mut self, n: usize) -> PResult<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |a, &b| a << 8 | u64::from(b)))
    }
}

fn isobmff<S: Source>(src: &mut S, head: &[u8]) -> PResult<Located> {
    let brand = &head[8..12];
    let format = match brand {
        b"avif" | b"avis" => "AVIF",
        b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"hevm" | b"hevs" | b"mif1"
        | b"msf1" => "HEIC",
        _ => {
            return Err(ParseError::at(
                8,
                format!(
                    "unsupported ISO media brand '{}'",
                    String::from_utf8_lossy(brand)
                ),
            ))
        }
    };
    let len = src.len();
    src.set_window(512);
    let mut pos = 0u64;
    let mut meta = None;
    while pos + 8 <= len {
        let (typ, body, end) = box_at(src, pos, len)?;
        if &typ == b"meta" {
            meta = Some((body, end));
            break;
        }
        pos = end;
    }
    let (body, end) =
        meta.ok_or_else(|| ParseError::at(0, format!("{format} without a meta box")))?;
    let data = src.read(body, (end - body) as usize)?.to_vec();
    let mut m = Cursor2 {
        d: &data,
        base: body,
    };
    let info = parse_meta(&mut m)?;
    let mut out = Located {
        format,
        width: info.size.map(|s| s.0),
        height: info.size.map(|s| s.1),
        exif: None,
    };
    if let Some(extents) = info.exif {
        let mut block = Vec::new();
        let mut first = None;
        for (off, l) in extents {
            let l = usize::try_from(l).map_err(|_| ParseError::at(body, "Exif item too large"))?;
            if block.len() + l > super::source::MAX_READ {
                return Err(ParseError::at(body, "Exif item too large"));
            }
            match off {
                Extent::File(o) => {
                    first.get_or_insert(o);
                    block.extend_from_slice(src.read(o, l)?);
                }
                Extent::Idat(o) => {
                    let (s, e) = info
                        .idat
                        .ok_or_else(|| ParseError::at(body, "Exif item in a missing idat box"))?;
                    let from = usize::try_from(o)
                        .ok()
                        .and_then(|o| s.checked_add(o))
                        .filter(|&f| f + l <= e);
                    let from =
                        from.ok_or_else(|| ParseError::at(body, "Exif item outside its idat box"))?;
                    first.get_or_insert(body + from as u64);
                    block.extend_from_slice(&data[from..from + l]);
                }
            }
        }
        // The item starts with a 4-byte offset to the TIFF header (usually past "Exif\0\0").
        if block.len() >= 4 {
            let skip = 4 + be32(&block[0..4]) as usize;
            if skip <= block.len() {
                let base = first.unwrap_or(0) + skip as u64;
                out.exif = Some(tiff_payload(block[skip..].to_vec(), base));
            }
        }
    }
    Ok(out)
}

struct Cursor2<'a> {
    d: &'a [u8],
    base: u64,
}

enum Extent {
    File(u64),
    Idat(u64),
}

struct MetaInfo {
    size: Option<(u32, u32)>,
    exif: Option<Vec<(Extent, u64)>>,
    /// The idat box's payload range inside the meta data.
    idat: Option<(usize, usize)>,
}

fn parse_meta(m: &mut Cursor2<'_>) -> PResult<MetaInfo> {
    let d = m.d;
    let at = |p: usize| m.base + p as u64;
    // meta is a FullBox: 4 bytes of version/flags, then boxes.
    let mut children: Vec<([u8; 4], usize, usize)> = Vec::new();
    let mut p = 4usize;
    while p + 8 <= d.len() {
        let size = be32(&d[p..p + 4]) as usize;
        let typ = [d[p + 4], d[p + 5], d[p + 6], d[p + 7]];
        let (size, hdr) = match size {
            0 => (d.len() - p, 8),
            1 if p + 16 <= d.len() => (
                usize::try_from(u64::from_be_bytes(
                    d[p + 8..p + 16].try_into().unwrap_or([0; 8]),
                ))
                .unwrap_or(0),
                16,
            ),
            s => (s, 8),
        };
        if size < hdr || p.checked_add(size).map_or(true, |e| e > d.len()) {
            return Err(ParseError::at(
                at(p),
                format!(
                    "corrupt box '{}' inside meta",
                    String::from_utf8_lossy(&typ)
                ),
            ));
        }
        children.push((typ, p + hdr, p + size));
        p += size;
    }
    let find = |t: &[u8; 4]| children.iter().find(|c| &c.0 == t).map(|c| (c.1, c.2));
    let cur = |s: usize, e: usize| Cursor {
        d: &d[s..e],
        p: 0,
        base: at(s),
    };

    let mut primary = None;
    if let Some((s, e)) = find(b"pitm") {
        let mut c = cur(s, e);
        let v = c.uint(1)?;
        c.take(3)?;
        primary = Some(c.uint(if v == 0 { 2 } else { 4 })?);
    }
    // iinf: which item is the Exif item.
    let mut exif_item = None;
    if let Some((s, e)) = find(b"iinf") {
        let mut c = cur(s, e);
        let v = c.uint(1)?;
        c.take(3)?;
        let n = c.uint(if v == 0 { 2 } else { 4 })?;
        for _ in 0..n {
            let bs = c.p;
            let size = c.uint(4)? as usize;
            let typ = c.take(4)?.to_vec();
            let end = bs
                .checked_add(size)
                .filter(|&e| e <= c.d.len() && size >= 8)
                .ok_or_else(|| ParseError::at(c.base + bs as u64, "corrupt infe box"))?;
            if typ == b"infe" {
                let iv = c.uint(1)?;
                c.take(3)?;
                if iv >= 2 {
                    let id = c.uint(if iv == 2 { 2 } else { 4 })?;
                    c.take(2)?;
                    if c.take(4)? == b"Exif" && exif_item.is_none() {
                        exif_item = Some(id);
                    }
                }
            }
            c.p = end;
        }
    }
    // iloc: where the Exif item's bytes are.
    let mut exif = None;
    if let (Some(item), Some((s, e))) = (exif_item, find(b"iloc")) {
        let mut c = cur(s, e);
        let v = c.uint(1)?;
        c.take(3)?;
        let a = c.uint(1)?;
        let b = c.uint(1)?;
        let (off_size, len_size, base_size) =
            ((a >> 4) as usize, (a & 15) as usize, (b >> 4) as usize);
        let idx_size = if v == 1 || v == 2 {
            (b & 15) as usize
        } else {
            0
        };
        if [off_size, len_size, base_size, idx_size]
            .iter()
            .any(|s| ![0, 4, 8].contains(s))
        {
            return Err(ParseError::at(c.base, "corrupt iloc box: bad field size"));
        }
        let n = c.uint(if v < 2 { 2 } else { 4 })?;
        for _ in 0..n {
            let id = c.uint(if v < 2 { 2 } else { 4 })?;
            let method = if v == 1 || v == 2 { c.uint(2)? & 15 } else { 0 };
            c.take(2)?; // data_reference_index
            let base = c.uint(base_size)?;
            let count = c.uint(2)?;
            let mut extents = Vec::new();
            for _ in 0..count {
                c.take(idx_size)?;
                let off = base
                    .checked_add(c.uint(off_size)?)
                    .ok_or_else(|| ParseError::at(c.base, "iloc offset overflow"))?;
                let l = c.uint(len_size)?;
                extents.push((
                    if method == 1 {
                        Extent::Idat(off)
                    } else {
                        Extent::File(off)
                    },
                    l,
                ));
            }
            if id == item {
                if method > 1 {
                    return Err(ParseError::at(
                        c.base,
                        "Exif item stored by reference (unsupported)",
                    ));
                }
                exif = Some(extents);
                break;
            }
        }
        if exif.is_none() {
            return Err(ParseError::at(c.base, "Exif item has no location"));
        }
    }
    // iprp/ipco + ipma: the primary item's spatial extent.
    let mut size = None;
    if let Some((s, e)) = find(b"iprp") {
        let mut props: Vec<(usize, usize, [u8; 4])> = Vec::new();
        let mut ipma = None;
        let mut p = s;
        while p + 8 <= e {
            let bsize = be32(&d[p..p + 4]) as usize;
            let t = [d[p + 4], d[p + 5], d[p + 6], d[p + 7]];
            if bsize < 8 || p + bsize > e {
                return Err(ParseError::at(at(p), "corrupt iprp box"));
            }
            if &t == b"ipco" {
                let mut q = p + 8;
                while q + 8 <= p + bsize {
                    let qs = be32(&d[q..q + 4]) as usize;
                    if qs < 8 || q + qs > p + bsize {
                        return Err(ParseError::at(at(q), "corrupt ipco box"));
                    }
                    props.push((q + 8, q + qs, [d[q + 4], d[q + 5], d[q + 6], d[q + 7]]));
                    q += qs;
                }
            } else if &t == b"ipma" {
                ipma = Some((p + 8, p + bsize));
            }
            p += bsize;
        }
        let ispe = |i: usize| -> Option<(u32, u32)> {
            let (s, e, t) = *props.get(i.checked_sub(1)?)?;
            (&t == b"ispe" && e - s >= 12)
                .then(|| (be32(&d[s + 4..s + 8]), be32(&d[s + 8..s + 12])))
        };
        if let (Some((s, e)), Some(primary)) = (ipma, primary) {
            let mut c = cur(s, e);
            let v = c.uint(1)?;
            let flags = c.uint(3)?;
            let n = c.uint(4)?;
            for _ in 0..n {
                let id = c.uint(if v < 1 { 2 } else { 4 })?;
                let k = c.uint(1)?;
                for _ in 0..k {
                    let idx = if flags & 1 == 1 {
                        c.uint(2)? & 0x7fff
                    } else {
                        c.uint(1)? & 0x7f
                    };
                    if id == primary && size.is_none() {
                        size = ispe(idx as usize);
                    }
                }
            }
        }
        if size.is_none() {
            size = (1..=props.len()).find_map(ispe);
        }
    }
    Ok(MetaInfo {
        size,
        exif,
        idat: find(b"idat"),
    })
}

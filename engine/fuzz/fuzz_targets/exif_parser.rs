//! Any bytes, under any image extension, through every EXIF locator and the IFD walker:
//! an error or a record, never a panic, a hang or an unbounded allocation.
#![no_main]

use aerofs_engine::exif::source::MemSource;
use aerofs_engine::exif::{extract_from, Options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = Options {
        include_thumbnails: true,
        ..Options::default()
    };
    for ext in ["jpg", "dng", "cr2"] {
        let mut src = MemSource { data, base: 0 };
        if let Ok(rec) = extract_from(&mut src, ext, &opts) {
            for (k, v) in &rec.tags {
                assert!(!k.is_empty());
                let _ = v.len();
            }
        }
    }
});

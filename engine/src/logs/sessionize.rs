//! Sessions: hits grouped by key (IP + user agent, or IP), sorted by time within a key, cut after
//! an inactivity gap longer than the timeout.

use super::parse::Hit;

/// One session (byte slices borrow the input).
#[derive(Debug, Clone)]
pub struct Session<'a> {
    pub ip: &'a [u8],
    pub user_agent: &'a [u8],
    pub start: i64,
    pub end: i64,
    pub requests: u64,
    pub pages: u64,
    pub bytes: u64,
    pub entry_page: Option<&'a [u8]>,
    pub exit_page: Option<&'a [u8]>,
    /// Counts of 1xx..5xx statuses (index status/100 - 1).
    pub status: [u64; 5],
    pub bot: bool,
}

pub fn is_bot(ua: &[u8]) -> bool {
    let lower: Vec<u8> = ua.to_ascii_lowercase();
    ["bot", "crawl", "spider", "slurp"]
        .iter()
        .any(|w| memchr::memmem::find(&lower, w.as_bytes()).is_some())
}

/// Whether `path` is an asset (its extension is in `assets`, lowercase, without dot).
pub fn is_asset(path: &[u8], assets: &[Vec<u8>]) -> bool {
    let name = match memchr::memrchr(b'/', path) {
        Some(i) => &path[i + 1..],
        None => path,
    };
    match memchr::memrchr(b'.', name) {
        Some(i) => {
            let ext = name[i + 1..].to_ascii_lowercase();
            assets.contains(&ext)
        }
        None => false,
    }
}

/// Sessions of `hits`, which must be sorted by (key, time). Returned ordered by (start, ip, ua).
pub fn sessions<'a>(
    hits: &[Hit<'a>],
    by_ua: bool,
    timeout: i64,
    assets: &[Vec<u8>],
) -> Vec<Session<'a>> {
    let mut out: Vec<Session<'a>> = Vec::new();
    let mut cur: Option<Session<'a>> = None;
    for h in hits {
        let same = match &cur {
            Some(s) => {
                s.ip == h.ip && (!by_ua || s.user_agent == h.user_agent) && h.ts - s.end <= timeout
            }
            None => false,
        };
        if !same {
            if let Some(s) = cur.take() {
                out.push(s);
            }
            cur = Some(Session {
                ip: h.ip,
                user_agent: h.user_agent,
                start: h.ts,
                end: h.ts,
                requests: 0,
                pages: 0,
                bytes: 0,
                entry_page: None,
                exit_page: None,
                status: [0; 5],
                bot: is_bot(h.user_agent),
            });
        }
        let s = cur.as_mut().expect("session");
        s.end = h.ts;
        s.requests += 1;
        s.bytes += h.bytes;
        if (100..600).contains(&h.status) {
            s.status[(h.status / 100 - 1) as usize] += 1;
        }
        if !is_asset(h.path, assets) {
            s.pages += 1;
            if s.entry_page.is_none() {
                s.entry_page = Some(h.path);
            }
            s.exit_page = Some(h.path);
        }
    }
    if let Some(s) = cur {
        out.push(s);
    }
    out.sort_by(|a, b| (a.start, a.ip, a.user_agent).cmp(&(b.start, b.ip, b.user_agent)));
    out
}

//! Sessions as mergeable clusters.
//!
//! A session is a maximal run of one key's requests (IP + user agent, or IP) in which consecutive
//! requests, in time order, are at most `timeout` seconds apart. Each block of the input is
//! sessionised on its own into [`Cluster`]s (a session's time span and its sums); clusters of the
//! same key from different blocks, files or tasks are then joined when their spans overlap or lie
//! within the timeout of each other. That join is exact: two clusters belong to one session of the
//! whole input exactly when they are so linked, whatever order the lines came in. Ties (equal
//! times) are broken by `seq`, the position of the line in the input (input index, byte offset), so
//! the result equals one stable pass over all lines sorted by time.

/// `Cluster::entry_page`/`exit_page` when the cluster has no page request (assets only).
pub const NO_PAGE: u32 = u32::MAX;

/// One session, or the part of one seen so far.
///
/// 128 bytes: finished sessions are held as these until the table is built (millions of them on a
/// log with many clients), so nothing is kept that the table or an exact join does not need. The
/// first request's time is `start`; "no page request" is [`NO_PAGE`] rather than an `Option` tag;
/// 1xx statuses are counted in `requests` only (the table has no 1xx column).
#[derive(Debug, Clone)]
pub struct Cluster {
    pub start: i64,
    pub end: i64,
    pub requests: u64,
    pub pages: u64,
    pub bytes: u64,
    /// Counts of 2xx..5xx statuses (index status/100 - 2).
    pub status: [u64; 4],
    /// First page request (time, seq); its page id is `entry_page`.
    pub entry_ts: i64,
    pub entry_seq: u64,
    /// Last page request (time, seq); its page id is `exit_page`.
    pub exit_ts: i64,
    pub exit_seq: u64,
    /// The first request's seq (its time is `start`): ties in the table's order and in `pair`.
    pub first_seq: u64,
    pub entry_page: u32,
    pub exit_page: u32,
    /// The first request's (ip, user agent) pair id: the session's user agent when keyed by IP only.
    pub pair: u32,
}

impl Cluster {
    pub fn new(ts: i64, seq: u64, pair: u32) -> Self {
        Cluster {
            start: ts,
            end: ts,
            requests: 0,
            pages: 0,
            bytes: 0,
            status: [0; 4],
            entry_ts: 0,
            entry_seq: 0,
            exit_ts: 0,
            exit_seq: 0,
            first_seq: seq,
            entry_page: NO_PAGE,
            exit_page: NO_PAGE,
            pair,
        }
    }

    /// First page request: (time, page id).
    pub fn entry(&self) -> Option<(i64, u32)> {
        (self.entry_page != NO_PAGE).then_some((self.entry_ts, self.entry_page))
    }

    /// Last page request: (time, page id).
    pub fn exit(&self) -> Option<(i64, u32)> {
        (self.exit_page != NO_PAGE).then_some((self.exit_ts, self.exit_page))
    }

    /// Add one request (in any order) of this cluster's pair.
    pub fn add(&mut self, ts: i64, seq: u64, status: u16, bytes: u64, page: Option<u32>) {
        if (ts, seq) < (self.start, self.first_seq) {
            self.first_seq = seq;
        }
        self.start = self.start.min(ts);
        self.end = self.end.max(ts);
        self.requests += 1;
        self.bytes += bytes;
        if (200..600).contains(&status) {
            self.status[(status / 100 - 2) as usize] += 1;
        }
        if let Some(p) = page {
            self.pages += 1;
            self.take_entry(ts, seq, p);
            self.take_exit(ts, seq, p);
        }
    }

    /// Make the page request at (ts, seq) the entry if it comes first.
    fn take_entry(&mut self, ts: i64, seq: u64, page: u32) {
        if self.entry_page == NO_PAGE || (ts, seq) < (self.entry_ts, self.entry_seq) {
            (self.entry_ts, self.entry_seq, self.entry_page) = (ts, seq, page);
        }
    }

    /// Make the page request at (ts, seq) the exit if it comes last.
    fn take_exit(&mut self, ts: i64, seq: u64, page: u32) {
        if self.exit_page == NO_PAGE || (ts, seq) > (self.exit_ts, self.exit_seq) {
            (self.exit_ts, self.exit_seq, self.exit_page) = (ts, seq, page);
        }
    }

    /// Join `o` (of the same session) into `self`.
    pub fn absorb(&mut self, o: Cluster) {
        if (o.start, o.first_seq) < (self.start, self.first_seq) {
            (self.first_seq, self.pair) = (o.first_seq, o.pair);
        }
        self.start = self.start.min(o.start);
        self.end = self.end.max(o.end);
        self.requests += o.requests;
        self.pages += o.pages;
        self.bytes += o.bytes;
        for (a, b) in self.status.iter_mut().zip(o.status) {
            *a += b;
        }
        if o.entry_page != NO_PAGE {
            self.take_entry(o.entry_ts, o.entry_seq, o.entry_page);
        }
        if o.exit_page != NO_PAGE {
            self.take_exit(o.exit_ts, o.exit_seq, o.exit_page);
        }
    }
}

/// Insert `c` into one key's clusters (sorted by start, pairwise more than `timeout` apart) and
/// join whatever it links.
pub fn insert(v: &mut Vec<Cluster>, c: Cluster, timeout: i64) {
    let pos = v.partition_point(|x| x.start <= c.start);
    v.insert(pos, c);
    let mut i = pos.saturating_sub(1);
    while i + 1 < v.len() && i <= pos {
        if v[i + 1].start - v[i].end <= timeout {
            let n = v.remove(i + 1);
            v[i].absorb(n);
        } else {
            i += 1;
        }
    }
}

/// Add `c` to one key's clusters (sorted by start, pairwise more than `timeout` apart): the same
/// as [`insert`], but a cluster that starts at or after the last one (lines in time order) only
/// meets the last one, so it is joined or pushed without a search.
pub fn add(v: &mut Vec<Cluster>, c: Cluster, timeout: i64) {
    match v.last_mut() {
        None => v.push(c),
        Some(l) if c.start >= l.start => {
            if c.start - l.end <= timeout {
                l.absorb(c);
            } else {
                v.push(c);
            }
        }
        Some(_) => insert(v, c, timeout),
    }
}

/// Add one key's new clusters (sorted by start, pairwise more than `timeout` apart: one block's
/// clusters of that key) to its list, with the result of [`insert`]ing them one by one. Those that
/// start at or after the list's last one take [`add`]'s append path; the others are merged with the
/// list's tail in one sweep, from the cluster before the first one they can touch: a block of a
/// log that goes back in time (a rotated file read after a newer one) costs one pass over that
/// tail, not one shift of it per cluster.
pub fn add_run(v: &mut Vec<Cluster>, run: impl IntoIterator<Item = Cluster>, timeout: i64) {
    let mut new = run.into_iter().peekable();
    while let Some(c) = new.next_if(|c| v.last().map_or(true, |l| c.start >= l.start)) {
        add(v, c, timeout);
    }
    let Some(first) = new.peek() else {
        return;
    };
    // Clusters before `from` end more than `timeout` before v[from] starts, so before anything
    // merged after them starts: the sweep continues from there as if it had run from the first.
    let from = v
        .partition_point(|x| x.start <= first.start)
        .saturating_sub(1);
    let mut old = v.split_off(from).into_iter().peekable();
    loop {
        let c = match (old.peek(), new.peek()) {
            (Some(a), Some(b)) if a.start <= b.start => old.next(),
            (_, Some(_)) => new.next(),
            (Some(_), None) => old.next(),
            (None, None) => break,
        };
        let c = c.expect("peeked");
        match v.last_mut() {
            Some(l) if c.start - l.end <= timeout => l.absorb(c),
            _ => v.push(c),
        }
    }
}

pub fn is_bot(ua: &[u8]) -> bool {
    ["bot", "crawl", "spider", "slurp"].iter().any(|w| {
        ua.windows(w.len())
            .any(|x| x.eq_ignore_ascii_case(w.as_bytes()))
    })
}

/// Whether `path` is an asset (its extension is in `assets`, lowercase, without dot).
pub fn is_asset(path: &[u8], assets: &[Vec<u8>]) -> bool {
    let name = match memchr::memrchr(b'/', path) {
        Some(i) => &path[i + 1..],
        None => path,
    };
    match memchr::memrchr(b'.', name) {
        Some(i) => {
            let ext = &name[i + 1..];
            assets.iter().any(|a| a.eq_ignore_ascii_case(ext))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: i64, e: i64) -> Cluster {
        let mut x = Cluster::new(s, 0, 0);
        x.add(s, 0, 200, 1, None);
        x.add(e, 1, 200, 1, None);
        x
    }

    #[test]
    fn record_is_128_bytes() {
        // What every finished session costs until the table is built.
        assert_eq!(std::mem::size_of::<Cluster>(), 128);
    }

    #[test]
    fn add_and_absorb_in_any_order_equal_time_order() {
        // (ts, seq, status, page): ties in time broken by seq; an asset (no page) among pages.
        let reqs: [(i64, u64, u16, Option<u32>); 6] = [
            (10, 5, 200, Some(1)),
            (10, 3, 101, None),
            (7, 9, 404, Some(2)),
            (12, 1, 302, Some(3)),
            (12, 2, 503, Some(4)),
            (7, 8, 200, None),
        ];
        let fields = |c: &Cluster| {
            (
                (c.start, c.end, c.first_seq, c.pair),
                (c.requests, c.pages, c.bytes, c.status),
                (c.entry(), c.entry_seq, c.exit(), c.exit_seq),
            )
        };
        let mut sorted = reqs;
        sorted.sort_by_key(|r| (r.0, r.1));
        let one = |rs: &[(i64, u64, u16, Option<u32>)]| {
            let mut c = Cluster::new(rs[0].0, rs[0].1, 4);
            for &(ts, seq, st, p) in rs {
                c.add(ts, seq, st, 1, p);
            }
            c
        };
        let want = one(&sorted);
        assert_eq!(
            fields(&want),
            (
                (7, 12, 8, 4),
                (6, 4, 6, [2, 1, 1, 1]),
                (Some((7, 2)), 9, Some((12, 4)), 2)
            )
        );
        assert_eq!(fields(&one(&reqs)), fields(&want));
        // Split in two parts of different pairs, joined either way: the first request's pair wins.
        let mut a = Cluster::new(10, 5, 4);
        let mut b = Cluster::new(10, 3, 6);
        for (i, &(ts, seq, st, p)) in reqs.iter().enumerate() {
            let c = if i % 2 == 0 { &mut a } else { &mut b };
            c.add(ts, seq, st, 1, p);
        }
        let (mut ab, mut ba) = (a.clone(), b.clone());
        ab.absorb(b);
        ba.absorb(a);
        for j in [ab, ba] {
            assert_eq!(fields(&j).1, fields(&want).1);
            assert_eq!(fields(&j).2, fields(&want).2);
            assert_eq!(fields(&j).0, (7, 12, 8, 6));
        }
    }

    #[test]
    fn insert_joins_what_it_links_in_any_order() {
        let mut v = Vec::new();
        insert(&mut v, c(0, 10), 5);
        insert(&mut v, c(30, 40), 5);
        insert(&mut v, c(100, 110), 5);
        assert_eq!(v.len(), 3);
        insert(&mut v, c(14, 26), 5); // bridges the first two
        assert_eq!(
            v.iter().map(|x| (x.start, x.end)).collect::<Vec<_>>(),
            [(0, 40), (100, 110)]
        );
        insert(&mut v, c(-100, 200), 5); // spans everything
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].start, v[0].end, v[0].requests), (-100, 200, 10));
    }

    #[test]
    fn add_equals_insert_in_any_order() {
        let mut rnd = 7u64;
        for _ in 0..200 {
            let mut gen = |n: usize| {
                let mut v: Vec<Cluster> = (0..n)
                    .map(|_| {
                        rnd = rnd.wrapping_mul(6364136223846793005).wrapping_add(1);
                        let s = (rnd >> 40) as i64 % 500;
                        c(s, s + (rnd >> 20) as i64 % 20)
                    })
                    .collect();
                v.sort_by_key(|x| x.start);
                v
            };
            let (a, b) = (gen(6), gen(6));
            let mut one = Vec::new();
            for x in a.iter().chain(&b) {
                insert(&mut one, x.clone(), 7);
            }
            // Two time-ordered runs, one after the other: appends, then out-of-order inserts.
            let mut two = Vec::new();
            for x in a.into_iter().chain(b) {
                add(&mut two, x, 7);
            }
            let span = |v: &[Cluster]| {
                v.iter()
                    .map(|x| (x.start, x.end, x.requests))
                    .collect::<Vec<_>>()
            };
            assert_eq!(span(&one), span(&two));
        }
    }

    #[test]
    fn add_run_equals_insert_one_by_one() {
        let mut rnd = 11u64;
        let mut next = move || {
            rnd = rnd.wrapping_mul(6364136223846793005).wrapping_add(1);
            rnd >> 33
        };
        for round in 0..500 {
            let timeout = 7;
            // A list and a run, each built the way the state and a block build them.
            let mut build = |n: usize, span: i64| {
                let mut v = Vec::new();
                for _ in 0..n {
                    let s = (next() % span as u64) as i64;
                    insert(&mut v, c(s, s + (next() % 12) as i64), timeout);
                }
                v
            };
            // Later rounds: runs that lie after the list, overlap its end, or go back in time.
            let base = build(round % 9, 300);
            let shift = [0, 150, 290, 400][round % 4];
            let run: Vec<Cluster> = build(round % 7, 200)
                .into_iter()
                .map(|mut x| {
                    (x.start, x.end) = (x.start + shift, x.end + shift);
                    x
                })
                .collect();
            let mut one = base.clone();
            for x in run.iter().cloned() {
                insert(&mut one, x, timeout);
            }
            let mut two = base;
            add_run(&mut two, run, timeout);
            let key = |v: &[Cluster]| {
                v.iter()
                    .map(|x| (x.start, x.end, x.requests, x.bytes))
                    .collect::<Vec<_>>()
            };
            assert_eq!(key(&one), key(&two), "round {round}");
            assert!(two.windows(2).all(|w| w[1].start - w[0].end > timeout));
        }
    }
}

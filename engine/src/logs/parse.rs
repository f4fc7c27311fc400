//! Hand-written parser of Apache/Nginx Common and Combined log lines (no regex, no allocation).

static QUOTE_SP: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\" "));
static QUOTE_SP_QUOTE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\" \""));

/// One parsed request line; every field borrows the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit<'a> {
    pub ip: &'a [u8],
    pub ident: &'a [u8],
    pub user: &'a [u8],
    /// Seconds since the epoch, UTC.
    pub ts: i64,
    /// Days since the epoch of the local date written in the line (GoAccess's visitor date).
    pub local_day: i32,
    /// Local hour of day written in the line.
    pub local_hour: u8,
    pub method: &'a [u8],
    pub path: &'a [u8],
    pub query: &'a [u8],
    pub protocol: &'a [u8],
    pub status: u16,
    pub bytes: u64,
    pub referrer: &'a [u8],
    pub user_agent: &'a [u8],
}

/// The text up to the next space, and the rest after it. The leading fields (IP, ident, user) are
/// a few bytes long, where a plain loop beats memchr's setup.
#[inline]
fn field(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == b' ')?;
    Some((&s[..i], &s[i + 1..]))
}

fn num(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 18 {
        return None;
    }
    let mut n = 0i64;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (b - b'0') as i64;
    }
    Some(n)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The two-digit number at `s[i..i + 2]`.
#[inline]
fn two(s: &[u8], i: usize) -> Option<i64> {
    let (a, b) = (s[i].wrapping_sub(b'0'), s[i + 1].wrapping_sub(b'0'));
    (a < 10 && b < 10).then_some((a * 10 + b) as i64)
}

/// The shape every timestamp must have: `dd/Mon/yyyy:HH:MM:SS +zzzz`.
#[inline]
fn time_shape(s: &[u8]) -> bool {
    s.len() == 26 && s[2] == b'/' && s[6] == b'/' && s[11] == b':' && s[20] == b' '
}

/// `10/Oct/2000` and ` -0700` (the first 11 and the last 6 bytes of a timestamp) -> (local day,
/// zone offset in seconds).
fn date_zone(s: &[u8]) -> Option<(i64, i64)> {
    let d = num(&s[0..2])?;
    let mon = match &s[3..6] {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    let y = num(&s[7..11])?;
    if !(1..=31).contains(&d) {
        return None;
    }
    let sign = match s[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let off = sign * (num(&s[22..24])? * 3600 + num(&s[24..26])? * 60);
    Some((days_from_civil(y, mon, d), off))
}

/// `13:55:36` at `s[12..20]` -> seconds into the day and the hour.
#[inline]
fn clock(s: &[u8]) -> Option<(i64, i64)> {
    let (hh, mm, ss) = (two(s, 12)?, two(s, 15)?, two(s, 18)?);
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    Some((hh * 3600 + mm * 60 + ss, hh))
}

/// `10/Oct/2000:13:55:36 -0700` -> (utc seconds, local day, local hour).
pub fn parse_time(s: &[u8]) -> Option<(i64, i32, u8)> {
    parse_time_with(s, &mut TimeCache::default())
}

/// The date and zone of the last timestamp parsed, with their value. A log writes the same
/// `dd/Mon/yyyy` and zone on every line of a day, so only the clock is read per line. The key is
/// the exact bytes, and the value a pure function of them: a hit gives what a full parse gives, and
/// a new day or zone (midnight, a zone change, lines of several servers) is simply a miss.
#[derive(Debug, Default, Clone)]
pub struct TimeCache {
    date: [u8; 11],
    zone: [u8; 6],
    day: i64,
    off: i64,
    valid: bool,
}

/// [`parse_time`] with a cache of the date and zone.
#[inline]
pub fn parse_time_with(s: &[u8], cache: &mut TimeCache) -> Option<(i64, i32, u8)> {
    if !time_shape(s) {
        return None;
    }
    let (secs, hh) = clock(s)?;
    if !(cache.valid && s[..11] == cache.date && s[20..] == cache.zone) {
        let (day, off) = date_zone(s)?;
        cache.date.copy_from_slice(&s[..11]);
        cache.zone.copy_from_slice(&s[20..]);
        (cache.day, cache.off, cache.valid) = (day, off, true);
    }
    Some((
        cache.day * 86400 + secs - cache.off,
        cache.day as i32,
        hh as u8,
    ))
}

/// Parse one Common or Combined line (the referrer and user agent are empty in Common).
pub fn parse_line(line: &[u8]) -> Option<Hit<'_>> {
    parse_line_with(line, &mut TimeCache::default())
}

/// [`parse_line`] with a cache of the timestamp's date and zone, kept from line to line.
pub fn parse_line_with<'a>(line: &'a [u8], cache: &mut TimeCache) -> Option<Hit<'a>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (ip, rest) = field(line)?;
    let (ident, rest) = field(rest)?;
    let (user, rest) = field(rest)?;
    let rest = rest.strip_prefix(b"[")?;
    let close = memchr::memchr(b']', rest)?;
    let (ts, local_day, local_hour) = parse_time_with(&rest[..close], cache)?;
    let rest = rest[close + 1..].strip_prefix(b" \"")?;
    // The request ends at the last `" ` before the status code (a path may hold a quote).
    let mut end = None;
    for i in QUOTE_SP.find_iter(rest) {
        let after = &rest[i + 2..];
        if after.len() >= 3
            && after[..3].iter().all(u8::is_ascii_digit)
            && (after.len() == 3 || after[3] == b' ')
        {
            end = Some(i);
            break;
        }
    }
    let end = end?;
    let request = &rest[..end];
    let rest = &rest[end + 2..];
    let (status, rest) = match memchr::memchr(b' ', rest) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let status = num(status)? as u16;
    let (bytes, rest) = match memchr::memchr(b' ', rest) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let bytes = if bytes == b"-" { 0 } else { num(bytes)? as u64 };
    let (mut referrer, mut user_agent) = (&b""[..], &b""[..]);
    if !rest.is_empty() {
        let r = rest.strip_prefix(b"\"")?;
        let k = QUOTE_SP_QUOTE.find(r)?;
        referrer = &r[..k];
        let ua = &r[k + 3..];
        let last = memchr::memrchr(b'"', ua)?;
        user_agent = &ua[..last];
    }
    let (method, path, query, protocol) = split_request(request);
    Some(Hit {
        ip,
        ident,
        user,
        ts,
        local_day,
        local_hour,
        method,
        path,
        query,
        protocol,
        status,
        bytes,
        referrer,
        user_agent,
    })
}

pub fn split_request(r: &[u8]) -> (&[u8], &[u8], &[u8], &[u8]) {
    let (method, rest) = match r.iter().position(|&b| b == b' ') {
        Some(i) => (&r[..i], &r[i + 1..]),
        None => return (b"", r, b"", b""),
    };
    let (target, protocol) = match memchr::memrchr(b' ', rest) {
        Some(i) if rest[i + 1..].starts_with(b"HTTP") => (&rest[..i], &rest[i + 1..]),
        _ => (rest, &b""[..]),
    };
    match memchr::memchr(b'?', target) {
        Some(q) => (method, &target[..q], &target[q + 1..], protocol),
        None => (method, target, b"", protocol),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_line_with_quotes_in_the_user_agent() {
        let l = br#"2001:db8::1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.html?x=1 HTTP/1.1" 200 2326 "http://r/" "Mozilla "quoted" 5.0""#;
        let h = parse_line(l).unwrap();
        assert_eq!(h.ip, b"2001:db8::1");
        assert_eq!(h.user, b"frank");
        assert_eq!(h.ts, 971211336);
        assert_eq!(
            (h.method, h.path, h.query, h.protocol),
            (&b"GET"[..], &b"/a.html"[..], &b"x=1"[..], &b"HTTP/1.1"[..])
        );
        assert_eq!((h.status, h.bytes), (200, 2326));
        assert_eq!(h.referrer, b"http://r/");
        assert_eq!(h.user_agent, br#"Mozilla "quoted" 5.0"#);
        assert_eq!(h.local_hour, 13);
    }

    #[test]
    fn common_line_and_dash_bytes() {
        let h = parse_line(b"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"GET / HTTP/1.0\" 304 -")
            .unwrap();
        assert_eq!((h.status, h.bytes, h.ts), (304, 0, 1704067200));
        assert!(h.user_agent.is_empty());
    }

    #[test]
    fn malformed_lines_are_rejected() {
        for l in [
            &b""[..],
            b"garbage",
            b"1.2.3.4 - - [99/Foo/2024:00:00:00 +0000] \"GET / HTTP/1.0\" 200 1",
            b"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] \"GET / HTTP/1.0\" abc 1",
        ] {
            assert!(parse_line(l).is_none(), "{:?}", String::from_utf8_lossy(l));
        }
    }
    #[test]
    fn cached_time_parse_equals_a_fresh_parse() {
        // One cache through days, midnight, a zone change without a date change, zones that
        // alternate line by line, bad times among good ones (a bad line must not poison the cache),
        // and the same date with a zone whose hours differ only in sign.
        let times: &[&[u8]] = &[
            b"31/Dec/2023:23:59:59 +0100",
            b"31/Dec/2023:23:59:60 +0100",
            b"01/Jan/2024:00:00:00 +0100",
            b"01/Jan/2024:00:00:01 +0100",
            b"01/Jan/2024:00:00:01 -0500",
            b"01/Jan/2024:00:00:02 +0100",
            b"01/Jan/2024:00:00:02 -0100",
            b"01/Jan/2024:00:00:02 +0530",
            b"01/Jan/2024:24:00:00 +0530",
            b"01/Jan/2024:00:0x:00 +0530",
            b"01/Jan/2024:00:00:03 *0530",
            b"32/Jan/2024:00:00:03 +0530",
            b"01/Jan/2024:00:00:04 +0530",
            b"29/Feb/2024:12:00:00 +0000",
            b"01/Mar/2024:12:00:00 +0000",
            b"01/Jan/2024:00:00:05 +0530",
            b"01/Jan/2024 00:00:05 +0530",
            b"01/Jan/2024:00:00:05 +053",
        ];
        let mut cache = TimeCache::default();
        for t in times {
            let fresh = parse_time(t);
            assert_eq!(
                parse_time_with(t, &mut cache),
                fresh,
                "{:?}",
                String::from_utf8_lossy(t)
            );
        }
        let mut cache = TimeCache::default();
        assert_eq!(
            parse_time_with(b"01/Jan/2024:00:00:00 +0100", &mut cache),
            Some((1704063600, 19723, 0))
        );
        assert_eq!(
            parse_time_with(b"01/Jan/2024:00:00:00 -0100", &mut cache),
            Some((1704070800, 19723, 0))
        );
        assert_eq!(
            parse_time_with(b"31/Dec/2023:23:30:00 -0100", &mut cache),
            Some((1704069000, 19722, 23))
        );
    }
}

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

/// `10/Oct/2000:13:55:36 -0700` -> (utc seconds, local day, local hour).
pub fn parse_time(s: &[u8]) -> Option<(i64, i32, u8)> {
    if s.len() != 26 || s[2] != b'/' || s[6] != b'/' || s[11] != b':' || s[20] != b' ' {
        return None;
    }
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
    let (hh, mm, ss) = (num(&s[12..14])?, num(&s[15..17])?, num(&s[18..20])?);
    if !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let sign = match s[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let off = sign * (num(&s[22..24])? * 3600 + num(&s[24..26])? * 60);
    let day = days_from_civil(y, mon, d);
    let local = day * 86400 + hh * 3600 + mm * 60 + ss;
    Some((local - off, day as i32, hh as u8))
}

/// Parse one Common or Combined line (the referrer and user agent are empty in Common).
pub fn parse_line(line: &[u8]) -> Option<Hit<'_>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (ip, rest) = field(line)?;
    let (ident, rest) = field(rest)?;
    let (user, rest) = field(rest)?;
    let rest = rest.strip_prefix(b"[")?;
    let close = memchr::memchr(b']', rest)?;
    let (ts, local_day, local_hour) = parse_time(&rest[..close])?;
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
}

//! Custom log formats, written GoAccess style (`%h %^[%d:%t %^] "%r" %s %b "%R" "%u"`) or nginx
//! `log_format` style (`$remote_addr - $remote_user [$time_local] "$request" $status ...`).
//!
//! A format compiles to literals and fields. A field's value runs up to the next literal (the first
//! occurrence; for the last field, up to a literal that ends the line), so quotes inside the last
//! quoted field (a user agent) are kept. Times are the Common Log Format's `10/Oct/2000:13:55:36
//! -0700` or ISO 8601 `2000-10-10T13:55:36-07:00`; GoAccess's split `%d:%t` (date `dd/Mon/yyyy`,
//! time `HH:MM:SS`, zone ignored as GoAccess does) is accepted too, read as UTC.

use super::parse::{days_from_civil, parse_time_with, Hit, TimeCache};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Host,
    User,
    /// A whole timestamp (CLF or ISO 8601, with zone).
    Time,
    /// `dd/Mon/yyyy` (GoAccess `%d`).
    Date,
    /// `HH:MM:SS` (GoAccess `%t`).
    Clock,
    Request,
    Method,
    /// Path and query (`%U`, `$request_uri`).
    Url,
    Query,
    Protocol,
    Status,
    Bytes,
    Referrer,
    UserAgent,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(Vec<u8>),
    Field(Field),
}

/// A compiled custom format.
#[derive(Debug, Clone)]
pub struct Format {
    toks: Vec<Tok>,
}

fn goaccess(c: char) -> Option<Field> {
    Some(match c {
        'h' => Field::Host,
        'e' => Field::User,
        'x' => Field::Time,
        'd' => Field::Date,
        't' => Field::Clock,
        'r' => Field::Request,
        'm' => Field::Method,
        'U' => Field::Url,
        'q' => Field::Query,
        'H' => Field::Protocol,
        's' => Field::Status,
        'b' => Field::Bytes,
        'R' => Field::Referrer,
        'u' => Field::UserAgent,
        // %^ ignore; %v vhost, %D %T %L %n response times, %k %K %M TLS/MIME: read and ignored.
        '^' | 'v' | 'D' | 'T' | 'L' | 'n' | 'k' | 'K' | 'M' | 'C' => Field::Skip,
        _ => return None,
    })
}

fn nginx(name: &str) -> Field {
    match name {
        "remote_addr" | "http_x_forwarded_for" | "binary_remote_addr" => Field::Host,
        "remote_user" => Field::User,
        "time_local" | "time_iso8601" => Field::Time,
        "request" => Field::Request,
        "request_method" => Field::Method,
        "request_uri" | "uri" | "document_uri" => Field::Url,
        "args" | "query_string" => Field::Query,
        "server_protocol" => Field::Protocol,
        "status" => Field::Status,
        "body_bytes_sent" | "bytes_sent" => Field::Bytes,
        "http_referer" => Field::Referrer,
        "http_user_agent" => Field::UserAgent,
        _ => Field::Skip,
    }
}

impl Format {
    /// Compile `spec`; `%x` specifiers and `$name` variables may not be mixed.
    pub fn compile(spec: &str) -> Result<Format> {
        let bad = |m: String| Error::options(format!("log-sessions: log_format {spec:?}: {m}"));
        let mut toks: Vec<Tok> = Vec::new();
        let mut lit = Vec::new();
        let push_field = |toks: &mut Vec<Tok>, lit: &mut Vec<u8>, f: Field| -> Result<()> {
            if !lit.is_empty() {
                toks.push(Tok::Lit(std::mem::take(lit)));
            }
            if let Some(Tok::Field(_)) = toks.last() {
                return Err(bad("two fields with nothing between them".into()));
            }
            toks.push(Tok::Field(f));
            Ok(())
        };
        let mut chars = spec.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '%' => match chars.next() {
                    Some('%') => lit.push(b'%'),
                    Some('~') => {} // GoAccess: skip spaces; fields already end at literals
                    Some(s) => match goaccess(s) {
                        Some(f) => push_field(&mut toks, &mut lit, f)?,
                        None => return Err(bad(format!("unknown specifier %{s}"))),
                    },
                    None => return Err(bad("ends with %".into())),
                },
                '$' if chars
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_') =>
                {
                    let mut name = String::new();
                    while let Some(&c) = chars.peek() {
                        if c.is_ascii_alphanumeric() || c == '_' {
                            name.push(c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    push_field(&mut toks, &mut lit, nginx(&name))?;
                }
                c => {
                    let mut b = [0u8; 4];
                    lit.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                }
            }
        }
        if !lit.is_empty() {
            toks.push(Tok::Lit(lit));
        }
        let has = |f: Field| toks.contains(&Tok::Field(f));
        if !has(Field::Host) {
            return Err(bad("no client address (%h or $remote_addr)".into()));
        }
        if !(has(Field::Time) || (has(Field::Date) && has(Field::Clock))) {
            return Err(bad(
                "no time (%x, %d and %t, $time_local or $time_iso8601)".into()
            ));
        }
        Ok(Format { toks })
    }

    /// Parse one line; `None` when it does not match.
    pub fn parse<'a>(&self, line: &'a [u8]) -> Option<Hit<'a>> {
        self.parse_with(line, &mut TimeCache::default())
    }

    /// [`Format::parse`] with a cache of the timestamp's date and zone, kept from line to line.
    pub fn parse_with<'a>(&self, line: &'a [u8], cache: &mut TimeCache) -> Option<Hit<'a>> {
        let mut rest = line.strip_suffix(b"\r").unwrap_or(line);
        let mut h = Hit {
            ip: b"",
            ident: b"-",
            user: b"-",
            ts: 0,
            local_day: 0,
            local_hour: 0,
            method: b"",
            path: b"",
            query: b"",
            protocol: b"",
            status: 0,
            bytes: 0,
            referrer: b"",
            user_agent: b"",
        };
        let mut date: Option<&[u8]> = None;
        let mut clock: Option<&[u8]> = None;
        let mut time: Option<&[u8]> = None;
        let mut i = 0;
        while i < self.toks.len() {
            match &self.toks[i] {
                Tok::Lit(l) => rest = rest.strip_prefix(l.as_slice())?,
                Tok::Field(f) => {
                    let v = match self.toks.get(i + 1) {
                        None => std::mem::take(&mut rest),
                        Some(Tok::Lit(l)) if i + 2 == self.toks.len() => {
                            // The last literal ends the line: the field may contain it.
                            let v = rest.strip_suffix(l.as_slice())?;
                            rest = &rest[v.len()..];
                            v
                        }
                        Some(Tok::Lit(l)) => {
                            let k = memchr::memmem::find(rest, l)?;
                            let v = &rest[..k];
                            rest = &rest[k..];
                            v
                        }
                        Some(Tok::Field(_)) => unreachable!("compile rejects adjacent fields"),
                    };
                    match f {
                        Field::Host => h.ip = v,
                        Field::User => h.user = v,
                        Field::Time => time = Some(v),
                        Field::Date => date = Some(v),
                        Field::Clock => clock = Some(v),
                        Field::Request => {
                            let (m, p, q, pr) = super::parse::split_request(v);
                            (h.method, h.path, h.query, h.protocol) = (m, p, q, pr);
                        }
                        Field::Method => h.method = v,
                        Field::Url => match memchr::memchr(b'?', v) {
                            Some(q) => (h.path, h.query) = (&v[..q], &v[q + 1..]),
                            None => h.path = v,
                        },
                        Field::Query => h.query = v,
                        Field::Protocol => h.protocol = v,
                        Field::Status => {
                            if v.len() != 3 || !v.iter().all(u8::is_ascii_digit) {
                                return None;
                            }
                            h.status = v.iter().fold(0u16, |n, &d| n * 10 + (d - b'0') as u16);
                        }
                        Field::Bytes => {
                            h.bytes = if v == b"-" {
                                0
                            } else {
                                if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit)
                                {
                                    return None;
                                }
                                v.iter().fold(0u64, |n, &d| n * 10 + (d - b'0') as u64)
                            }
                        }
                        Field::Referrer => h.referrer = v,
                        Field::UserAgent => h.user_agent = v,
                        Field::Skip => {}
                    }
                }
            }
            i += 1;
        }
        if !rest.is_empty() || h.ip.is_empty() {
            return None;
        }
        let (ts, day, hour) = match (time, date, clock) {
            (Some(t), _, _) => parse_time_with(t, cache).or_else(|| parse_iso(t))?,
            (None, Some(d), Some(c)) => {
                let mut t = Vec::with_capacity(26);
                t.extend_from_slice(d);
                t.push(b':');
                t.extend_from_slice(c);
                t.extend_from_slice(b" +0000");
                parse_time_with(&t, cache)?
            }
            _ => return None,
        };
        (h.ts, h.local_day, h.local_hour) = (ts, day, hour);
        Some(h)
    }
}

fn digits(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0i64, |n, &d| n * 10 + (d - b'0') as i64))
}

/// `2000-10-10T13:55:36-07:00` / `...+0000` / `...Z` (fractions of a second ignored).
pub fn parse_iso(s: &[u8]) -> Option<(i64, i32, u8)> {
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b'T' | b' ') {
        return None;
    }
    let (y, m, d) = (digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
    if s[13] != b':' || s[16] != b':' {
        return None;
    }
    let (hh, mm, ss) = (
        digits(&s[11..13])?,
        digits(&s[14..16])?,
        digits(&s[17..19])?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let mut z = &s[19..];
    if let Some(r) = z.strip_prefix(b".") {
        let n = r.iter().take_while(|b| b.is_ascii_digit()).count();
        z = &r[n..];
    }
    let off = match z {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let rest: Vec<u8> = rest.iter().copied().filter(|&b| b != b':').collect();
            if rest.len() != 4 {
                return None;
            }
            let v = digits(&rest[..2])? * 3600 + digits(&rest[2..])? * 60;
            if *sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let day = days_from_civil(y, m, d);
    let local = day * 86400 + hh * 3600 + mm * 60 + ss;
    Some((local - off, day as i32, hh as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goaccess_combined_equals_the_built_in_parser_but_for_the_zone() {
        let f = Format::compile(r#"%h %^[%d:%t %^] "%r" %s %b "%R" "%u""#).unwrap();
        let l = br#"2001:db8::1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.html?x=1 HTTP/1.1" 200 2326 "http://r/" "Mozilla "quoted" 5.0""#;
        let (a, b) = (
            f.parse(l).unwrap(),
            super::super::parse::parse_line(l).unwrap(),
        );
        assert_eq!(
            (a.ip, a.path, a.query, a.status, a.bytes),
            (b.ip, b.path, b.query, 200, 2326)
        );
        assert_eq!((a.referrer, a.user_agent), (b.referrer, b.user_agent));
        assert_eq!(
            (a.local_day, a.local_hour, a.ts),
            (b.local_day, 13, b.ts - 7 * 3600)
        );
    }

    #[test]
    fn nginx_style_with_iso_time_and_extra_fields() {
        let f = Format::compile(
            r#"$remote_addr [$time_iso8601] "$request_method $request_uri $server_protocol" $status $body_bytes_sent $request_time "$http_user_agent""#,
        )
        .unwrap();
        let h = f
            .parse(
                br#"::1 [2024-03-09T23:30:00+01:00] "POST /x?y=2 HTTP/2.0" 404 - 0.003 "curl/8""#,
            )
            .unwrap();
        assert_eq!(
            (h.ip, h.method, h.path, h.query),
            (&b"::1"[..], &b"POST"[..], &b"/x"[..], &b"y=2"[..])
        );
        assert_eq!((h.status, h.bytes, h.user_agent), (404, 0, &b"curl/8"[..]));
        assert_eq!(h.ts, 1710023400);
        assert!(f
            .parse(b"::1 [2024-03-09T23:30:00+01:00] \"GET / HTTP/1.1\" abc 1 0.1 \"x\"")
            .is_none());
    }

    #[test]
    fn bad_formats_are_options_errors() {
        for s in ["%h %h", "%s %b", "%h %Q", "%h [%x"] {
            let r = Format::compile(s);
            assert!(r.is_err() || s == "%h [%x", "{s}");
        }
        assert!(Format::compile("%h %s").is_err());
    }
}

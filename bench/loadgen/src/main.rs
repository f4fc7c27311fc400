//! The server bench's clients in Rust (`bench/server_bench.py --clients-impl rust`, the default).
//!
//! The bench's Python (aiohttp) clients took ~0.3 ms of CPU per request, as much as the server's own
//! status path, on the same two cores as the server they measure; real clients (browsers, kernels) run
//! elsewhere. This runs exactly the workload of `_client()` in server_bench.py on one thread (tokio's
//! current-thread runtime, hand-written HTTP/1.1 over keep-alive connections, responses parsed with
//! httparse), so the clients take a small share of the machine. It only generates load and records it:
//! every report (percentiles, first submits, tail, CPU) stays in server_bench.py, which reads the records.
//!
//! Per client: one connection; the cookies the server sets are sent back (as aiohttp's cookie jar does);
//! `POST {base}aerofs/api/jobs` with the bench's JSON (a new uuid dst per job), then
//! `GET {base}aerofs/api/jobs/{id}` every `--poll` s until a terminal state (at most 600 polls, and none
//! more than 30 s past the end), then the next job, until `--seconds` have passed since the start. All
//! clients start at once. A submit answered other than 202 or a status other than 200 stops the run
//! (exit 1, the answer on stderr). `--jitter`: each wait between polls is drawn from 0.5-1.5 times
//! `--poll` (as AeroFS's own clients wait: `aerofs_kernel.client.poll_pause`); without it every wait
//! is `--poll` exactly and the clients, started together, poll in lockstep. `--status-only`: after its first job each client polls that job's
//! status until the end. `--floor PATH`: no auth, no submits, each client GETs `{base}PATH` every
//! `--poll` s (the bench's `--floor` against a bare tornado app).
//!
//! Output. Stdout, one line per event, flushed at once (server_bench.py reads them as they come):
//! `start T` when the clients start, `burst CPU` when every client's first submit has been answered,
//! `end T CPU` when the run is over (records written). T is CLOCK_MONOTONIC in seconds, the clock of
//! Python's `time.monotonic()` and of the server's stall log; CPU is this process's user + system
//! seconds. `--out FILE`: one line per request, `submit AT LATENCY FIRST` (FIRST 1 for a client's first
//! submit), `status AT LATENCY`, and `done STATE` per finished job; AT on the same clock.

use std::cell::RefCell;
use std::io::Write as _;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const USAGE: &str =
    "usage: aerofs-loadgen --base http://HOST:PORT/PREFIX/ --out FILE [--token T] [--clients N] \
[--seconds S] [--poll S] [--jitter] [--src PATH --dst DIR] [--status-only] [--floor PATH]";

/// The headers aiohttp sends besides Host, auth and cookies (so the server parses as many): no response is
/// compressed (jupyter_server does not compress; a compressed answer is refused below).
const HEADERS: &str =
    "Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nUser-Agent: aerofs-loadgen\r\n";

struct Config {
    /// host:port to connect to, and the Host header.
    addr: String,
    /// The base URL's path, ending in '/'.
    prefix: String,
    token: Option<String>,
    clients: usize,
    seconds: f64,
    poll: f64,
    src: String,
    dst: String,
    status_only: bool,
    jitter: bool,
    floor: Option<String>,
    out: String,
}

fn parse_args() -> Result<Config, String> {
    let mut a = std::env::args().skip(1);
    let (mut base, mut out, mut token, mut floor) = (None, None, None, None);
    let (mut clients, mut seconds, mut poll) = (100usize, 30.0f64, 0.1f64);
    let (mut src, mut dst, mut status_only, mut jitter) =
        (String::new(), String::new(), false, false);
    while let Some(flag) = a.next() {
        if flag == "--status-only" {
            status_only = true;
            continue;
        }
        if flag == "--jitter" {
            jitter = true;
            continue;
        }
        let value = a
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| {
            v.parse::<f64>()
                .map_err(|_| format!("{flag}: not a number: {v:?}"))
        };
        match flag.as_str() {
            "--base" => base = Some(value),
            "--out" => out = Some(value),
            "--token" => token = Some(value),
            "--floor" => floor = Some(value),
            "--clients" => clients = num(&value)? as usize,
            "--seconds" => seconds = num(&value)?,
            "--poll" => poll = num(&value)?,
            "--src" => src = value,
            "--dst" => dst = value,
            _ => return Err(format!("unknown option {flag:?}\n{USAGE}")),
        }
    }
    let base = base.ok_or_else(|| format!("--base is required\n{USAGE}"))?;
    let rest = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("--base {base:?}: only http:// URLs"))?;
    let (addr, path) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = format!("/{}", path.trim_end_matches('/'))
        .trim_end_matches('/')
        .to_string()
        + "/";
    if floor.is_none() && (src.is_empty() || dst.is_empty()) {
        return Err(format!(
            "--src and --dst are required (or --floor PATH)\n{USAGE}"
        ));
    }
    Ok(Config {
        addr: addr.to_string(),
        prefix,
        token,
        clients,
        seconds,
        poll,
        src,
        dst,
        status_only,
        jitter,
        floor,
        out: out.ok_or_else(|| format!("--out is required\n{USAGE}"))?,
    })
}

/// CLOCK_MONOTONIC in seconds: the clock of Python's `time.monotonic()` on Linux, so the records line up
/// with the bench's warm-up cut and the server's stall log.
fn monotonic() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// This process's user + system CPU seconds (all threads).
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

struct Response {
    status: u16,
    body: Vec<u8>,
}

/// One client's keep-alive HTTP/1.1 connection, opened on its first request (inside that request's
/// timing, as aiohttp does) and again after the server closes it.
struct Conn {
    cfg: Rc<Config>,
    stream: Option<TcpStream>,
    /// Bytes read and not yet consumed.
    buf: Vec<u8>,
    req: Vec<u8>,
    /// The cookies the server set (name, value), sent back on every request.
    cookies: Vec<(String, String)>,
}

/// What the response head says about the body and the connection.
struct Head {
    status: u16,
    length: Option<usize>,
    chunked: bool,
    close: bool,
    consumed: usize,
}

impl Conn {
    fn new(cfg: Rc<Config>) -> Self {
        Conn {
            cfg,
            stream: None,
            buf: Vec::with_capacity(4096),
            req: Vec::with_capacity(1024),
            cookies: vec![],
        }
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Response, String> {
        let cfg = self.cfg.clone();
        self.req.clear();
        let r = &mut self.req;
        let _ = write!(
            r,
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\n{HEADERS}",
            cfg.prefix, cfg.addr
        );
        if let Some(t) = &cfg.token {
            let _ = write!(r, "Authorization: token {t}\r\n");
        }
        if !self.cookies.is_empty() {
            r.extend_from_slice(b"Cookie: ");
            for (i, (k, v)) in self.cookies.iter().enumerate() {
                let _ = write!(r, "{}{k}={v}", if i > 0 { "; " } else { "" });
            }
            r.extend_from_slice(b"\r\n");
        }
        if let Some(b) = body {
            let _ = write!(
                r,
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            );
        }
        r.extend_from_slice(b"\r\n");
        if let Some(b) = body {
            r.extend_from_slice(b);
        }
        if self.stream.is_none() {
            let s = TcpStream::connect(&cfg.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", cfg.addr))?;
            s.set_nodelay(true)
                .map_err(|e| format!("set_nodelay: {e}"))?;
            self.stream = Some(s);
            self.buf.clear();
        }
        let stream = self.stream.as_mut().expect("connected above");
        stream
            .write_all(&self.req)
            .await
            .map_err(|e| format!("{method} {path}: write: {e}"))?;

        let head = loop {
            if let Some(h) = self.parse_head(method, path)? {
                break h;
            }
            self.fill(method, path).await?;
        };
        self.buf.drain(..head.consumed);
        let body = if head.chunked {
            self.read_chunked(method, path).await?
        } else {
            let n = head.length.unwrap_or(0);
            while self.buf.len() < n {
                self.fill(method, path).await?;
            }
            self.buf.drain(..n).collect()
        };
        if head.close {
            self.stream = None;
        }
        Ok(Response {
            status: head.status,
            body,
        })
    }

    /// Parses the response head in `buf`, keeping the cookies it sets; None while it is incomplete.
    fn parse_head(&mut self, method: &str, path: &str) -> Result<Option<Head>, String> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        let consumed = match resp.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(format!("{method} {path}: bad response head: {e}")),
        };
        let mut head = Head {
            status: resp.code.unwrap_or(0),
            length: None,
            chunked: false,
            close: false,
            consumed,
        };
        for h in resp.headers.iter() {
            let value = std::str::from_utf8(h.value).unwrap_or("").trim();
            if h.name.eq_ignore_ascii_case("content-length") {
                head.length = Some(
                    value
                        .parse()
                        .map_err(|_| format!("{method} {path}: bad Content-Length"))?,
                );
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                head.chunked = value.to_ascii_lowercase().contains("chunked");
            } else if h.name.eq_ignore_ascii_case("connection") {
                head.close = value.eq_ignore_ascii_case("close");
            } else if h.name.eq_ignore_ascii_case("content-encoding") && value != "identity" {
                return Err(format!(
                    "{method} {path}: compressed answer ({value}), not handled"
                ));
            } else if h.name.eq_ignore_ascii_case("set-cookie") {
                set_cookie(&mut self.cookies, value);
            }
        }
        Ok(Some(head))
    }

    /// Reads more bytes into `buf`; the server closing the connection mid-response is an error.
    async fn fill(&mut self, method: &str, path: &str) -> Result<(), String> {
        let stream = self.stream.as_mut().expect("connected");
        self.buf.reserve(4096);
        match stream.read_buf(&mut self.buf).await {
            Ok(0) => Err(format!("{method} {path}: the server closed the connection")),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("{method} {path}: read: {e}")),
        }
    }

    async fn read_chunked(&mut self, method: &str, path: &str) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                self.fill(method, path).await?;
            };
            let size_text = String::from_utf8_lossy(&self.buf[..line_end]);
            let size_hex = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| format!("{method} {path}: bad chunk size {size_hex:?}"))?;
            // The chunk and its CRLF (the last, empty chunk: the CRLF that ends the trailers, none here).
            while self.buf.len() < line_end + 2 + size + 2 {
                self.fill(method, path).await?;
            }
            body.extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
            self.buf.drain(..line_end + 2 + size + 2);
            if size == 0 {
                return Ok(body);
            }
        }
    }
}

/// Keeps a Set-Cookie's name and value; one already expired (`Max-Age` <= 0, or `expires` in the past:
/// how tornado's `clear_cookie` deletes one) is dropped instead, as a cookie jar does. Domain and path
/// are not checked: every request goes to the one server, under the one base path.
fn set_cookie(jar: &mut Vec<(String, String)>, header: &str) {
    let mut parts = header.split(';');
    let Some((name, value)) = parts.next().and_then(|kv| kv.split_once('=')) else {
        return;
    };
    let (name, value) = (name.trim().to_string(), value.trim().to_string());
    jar.retain(|(k, _)| *k != name);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let expired = parts.filter_map(|p| p.split_once('=')).any(|(k, v)| {
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("max-age") {
            v.parse::<i64>().is_ok_and(|age| age <= 0)
        } else {
            k.eq_ignore_ascii_case("expires") && http_date(v).is_some_and(|t| t <= now)
        }
    });
    if !expired {
        jar.push((name, value));
    }
}

/// Seconds since the epoch of an HTTP date (`Sat, 29 Nov 2025 23:29:08 GMT`); None if it is not one.
fn http_date(s: &str) -> Option<i64> {
    let mut f = s.split_once(',')?.1.split_whitespace();
    let day: i64 = f.next()?.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let name = f.next()?;
    let month = MONTHS.iter().position(|m| *m == name)? as i64 + 1;
    let year: i64 = f.next()?.parse().ok()?;
    let hms: Vec<i64> = f
        .next()?
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms[..] else { return None };
    // Days from 1970-01-01 to the date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

#[derive(Default)]
struct Records {
    /// (at, latency, first submit of its client)
    submits: Vec<(f64, f64, bool)>,
    statuses: Vec<(f64, f64)>,
    done: Vec<String>,
    /// Clients whose first submit has been answered.
    first_answered: usize,
}

type Shared = Rc<RefCell<Records>>;

fn json(body: &[u8], what: &str) -> Result<serde_json::Value, String> {
    serde_json::from_slice(body).map_err(|e| {
        format!(
            "{what}: answer is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    })
}

async fn sleep(s: f64) {
    tokio::time::sleep(Duration::from_secs_f64(s)).await;
}

thread_local! {
    /// splitmix64's state, seeded from the OS (uuid's v4 bits) once: the clients share the one thread.
    static RNG: std::cell::Cell<u64> = std::cell::Cell::new(uuid::Uuid::new_v4().as_u64_pair().0);
}

/// A uniform draw from [0, 1) (splitmix64).
fn uniform() -> f64 {
    RNG.with(|r| {
        let s = r.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        r.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / (u64::MAX as f64 + 1.0)
    })
}

/// The wait before a client's next poll: `--poll`, or with `--jitter` 0.5-1.5 times it.
async fn pause(cfg: &Config) {
    sleep(if cfg.jitter {
        cfg.poll * (0.5 + uniform())
    } else {
        cfg.poll
    })
    .await;
}

/// `_client()` of server_bench.py, step for step.
async fn client(cfg: Rc<Config>, until: f64, rec: Shared) -> Result<(), String> {
    let mut c = Conn::new(cfg.clone());
    let mut first = true;
    while monotonic() < until {
        let at = monotonic();
        let dst = format!("{}/{}", cfg.dst, uuid::Uuid::new_v4().simple());
        let payload = serde_json::json!({"pipeline": "csv-to-parquet", "params": {"src": cfg.src, "dst": dst}});
        let r = c
            .request(
                "POST",
                "aerofs/api/jobs",
                Some(payload.to_string().as_bytes()),
            )
            .await?;
        let body = if r.status == 202 {
            Some(json(&r.body, "submit")?)
        } else {
            None
        };
        let latency = monotonic() - at;
        {
            let mut rec = rec.borrow_mut();
            rec.submits.push((at, latency, first));
            if first {
                rec.first_answered += 1;
                if rec.first_answered == cfg.clients {
                    say(&format!("burst {:.6}", cpu_seconds()));
                }
            }
        }
        first = false;
        let Some(body) = body else {
            return Err(format!(
                "submit failed: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
        };
        let id = body["id"]
            .as_str()
            .ok_or_else(|| format!("submit: no id in {body}"))?
            .to_string();
        let job = format!("aerofs/api/jobs/{id}");
        for _ in 0..600 {
            let at = monotonic();
            let state = status(&mut c, &job).await?;
            rec.borrow_mut().statuses.push((at, monotonic() - at));
            if matches!(state.as_str(), "SUCCEEDED" | "FAILED" | "CANCELLED") {
                rec.borrow_mut().done.push(state);
                break;
            }
            if monotonic() > until + 30.0 {
                break;
            }
            pause(&cfg).await;
        }
        while cfg.status_only && monotonic() < until {
            pause(&cfg).await;
            let at = monotonic();
            status(&mut c, &job).await?;
            rec.borrow_mut().statuses.push((at, monotonic() - at));
        }
    }
    Ok(())
}

/// One status poll: the job's state.
async fn status(c: &mut Conn, job: &str) -> Result<String, String> {
    let r = c.request("GET", job, None).await?;
    if r.status != 200 {
        return Err(format!(
            "status failed: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ));
    }
    Ok(json(&r.body, "status")?["state"]
        .as_str()
        .unwrap_or("")
        .to_string())
}

/// The `--floor` client: GET one path every poll, nothing else.
async fn floor_client(
    cfg: Rc<Config>,
    path: String,
    until: f64,
    rec: Shared,
) -> Result<(), String> {
    let mut c = Conn::new(cfg.clone());
    while monotonic() < until {
        let at = monotonic();
        let r = c.request("GET", &path, None).await?;
        if !(200..300).contains(&r.status) {
            return Err(format!(
                "GET {path} failed: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
        }
        json(&r.body, "floor")?;
        rec.borrow_mut().statuses.push((at, monotonic() - at));
        pause(&cfg).await;
    }
    Ok(())
}

fn write_records(path: &str, rec: &Records) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for (at, lat, first) in &rec.submits {
        writeln!(w, "submit {at:.6} {lat:.7} {}", u8::from(*first))?;
    }
    for (at, lat) in &rec.statuses {
        writeln!(w, "status {at:.6} {lat:.7}")?;
    }
    for state in &rec.done {
        writeln!(w, "done {state}")?;
    }
    w.flush()
}

fn run(cfg: Config) -> Result<(), String> {
    let cfg = Rc::new(cfg);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let rec: Shared = Rc::default();
    let local = tokio::task::LocalSet::new();
    let start = monotonic();
    let until = start + cfg.seconds;
    say(&format!("start {start:.6}"));
    local.block_on(&rt, async {
        let mut tasks = Vec::with_capacity(cfg.clients);
        for _ in 0..cfg.clients {
            let (cfg, rec) = (cfg.clone(), rec.clone());
            tasks.push(tokio::task::spawn_local(async move {
                let result = match cfg.floor.clone() {
                    Some(path) => floor_client(cfg, path, until, rec).await,
                    None => client(cfg, until, rec).await,
                };
                if let Err(e) = result {
                    fail(&e); // at once: the other clients' work is of no use once one request failed
                }
            }));
        }
        for t in tasks {
            t.await.map_err(|e| format!("client task: {e}"))?;
        }
        Ok::<(), String>(())
    })?;
    let (end, cpu) = (monotonic(), cpu_seconds());
    write_records(&cfg.out, &rec.borrow()).map_err(|e| format!("{}: {e}", cfg.out))?;
    say(&format!("end {end:.6} {cpu:.6}"));
    Ok(())
}

fn fail(e: &str) -> ! {
    eprintln!("aerofs-loadgen: {e}");
    std::process::exit(1);
}

fn main() {
    if let Err(e) = parse_args().and_then(run) {
        fail(&e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            http_date("Sat, 29 Nov 2025 23:29:08 GMT"),
            Some(1_764_458_948)
        );
        assert_eq!(
            http_date("Tue, 29 Feb 2028 12:00:00 GMT"),
            Some(1_835_438_400)
        );
        assert_eq!(http_date("yesterday"), None);
    }

    #[test]
    fn cookies_set_replaced_and_cleared() {
        let mut jar = vec![];
        set_cookie(&mut jar, "login=abc; Path=/; HttpOnly");
        set_cookie(
            &mut jar,
            "_xsrf=2|x|y; expires=Fri, 01 Jan 2100 00:00:00 GMT; Path=/",
        );
        set_cookie(&mut jar, "login=def; Path=/");
        let pairs = |j: &[(String, String)]| {
            j.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(pairs(&jar), ["_xsrf=2|x|y", "login=def"]);
        set_cookie(
            &mut jar,
            "_xsrf=\"\"; expires=Sat, 29 Nov 2025 23:29:08 GMT; Path=/",
        );
        set_cookie(&mut jar, "login=; Max-Age=0");
        assert!(jar.is_empty());
    }
}

//! The closed-loop HTTP/1.1 load client.
//!
//! Each connection is one tokio task over a raw `TcpStream` (keep-alive, TCP_NODELAY)
//! that writes a pre-built request, reads the response (status line, headers,
//! Content-Length body), checks it, and immediately sends the next one. No HTTP library
//! on the client side: the generator must cost far less CPU than the server it measures,
//! since both share the machine's cores.
//!
//! Timing: a run is `warmup` then the measured window of `duration`. A request counts
//! (throughput, latency, errors) when it was started at or after the window's start and
//! completed by its end. A request on a new connection includes the connect in its
//! latency (servers without keep-alive, such as `openssl ocsp`, pay it every time).

use crate::check::{CheckFailure, Expectation};
use crate::distribution::{self, Distribution, Picker};
use crate::histogram::Histogram;
pub use crate::http::Target;
use crate::prepare::LoadedRequest;
use base64::Engine;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpMethod {
    Post,
    Get,
}

/// Builds the exact bytes of one HTTP/1.1 request carrying `der`.
pub fn wire_request(target: &Target, method: HttpMethod, der: &[u8]) -> Vec<u8> {
    match method {
        HttpMethod::Post => {
            let mut out = format!(
                "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/ocsp-request\r\nContent-Length: {}\r\n\r\n",
                target.path,
                target.host_header,
                der.len()
            )
            .into_bytes();
            out.extend_from_slice(der);
            out
        }
        HttpMethod::Get => {
            // RFC 6960 Appendix A.1: {url}/{url-encoding of base-64 encoding of the DER}.
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(der)
                .replace('/', "%2F")
                .replace('+', "%2B")
                .replace('=', "%3D");
            let base = target.path.trim_end_matches('/');
            format!(
                "GET {base}/{encoded} HTTP/1.1\r\nHost: {}\r\n\r\n",
                target.host_header
            )
            .into_bytes()
        }
    }
}

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub target: Target,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// A request (including connect) slower than this counts as a timeout error and the
    /// connection is replaced.
    pub request_timeout: Duration,
    /// Process whose CPU time is measured over the window (the server).
    pub server_pid: Option<u32>,
    /// Which request each connection sends next.
    pub distribution: Distribution,
    /// Seed of the Zipf rank order and of the connections' random streams.
    pub seed: u64,
    /// Also count and time the responses of each 1-second slice of the window.
    pub timeline: bool,
    /// Prometheus series to sample at the start and the end of the window.
    pub metrics: Option<MetricsProbe>,
}

/// Prometheus series (exact names, labels included, e.g. `ocsp_edge_cache_hits_total`)
/// read from `target` when the window starts and when it ends: what a server counted
/// during exactly the measured window, warm-up excluded.
#[derive(Clone, Debug)]
pub struct MetricsProbe {
    pub target: Target,
    pub series: Vec<String>,
}

impl MetricsProbe {
    /// One scrape, off the runtime's threads (a blocking loopback GET). Series the page
    /// does not have are left out.
    async fn sample(&self) -> BTreeMap<String, f64> {
        let probe = self.clone();
        tokio::task::spawn_blocking(move || {
            let Ok((200, body)) = crate::http::get(&probe.target, Duration::from_secs(5)) else {
                return BTreeMap::new();
            };
            let text = String::from_utf8_lossy(&body);
            probe
                .series
                .iter()
                .filter_map(|name| crate::http::metric(&text, name).map(|v| (name.clone(), v)))
                .collect()
        })
        .await
        .unwrap_or_default()
    }
}

/// Error counts, by kind. Every kind is an error; `non_2xx` and the check failures are
/// counted when a whole response was received.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Errors {
    pub connect: u64,
    pub io: u64,
    pub timeout: u64,
    pub bad_http: u64,
    pub non_2xx: u64,
    pub not_ocsp: u64,
    pub ocsp_error_status: u64,
    pub wrong_cert_id: u64,
    pub wrong_status: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.connect
            + self.io
            + self.timeout
            + self.bad_http
            + self.non_2xx
            + self.not_ocsp
            + self.ocsp_error_status
            + self.wrong_cert_id
            + self.wrong_status
    }

    fn add(&mut self, o: &Errors) {
        self.connect += o.connect;
        self.io += o.io;
        self.timeout += o.timeout;
        self.bad_http += o.bad_http;
        self.non_2xx += o.non_2xx;
        self.not_ocsp += o.not_ocsp;
        self.ocsp_error_status += o.ocsp_error_status;
        self.wrong_cert_id += o.wrong_cert_id;
        self.wrong_status += o.wrong_status;
    }

    fn check_failure(&mut self, failure: CheckFailure) {
        match failure {
            CheckFailure::NotOcsp => self.not_ocsp += 1,
            CheckFailure::OcspErrorStatus => self.ocsp_error_status += 1,
            CheckFailure::WrongCertId => self.wrong_cert_id += 1,
            CheckFailure::WrongStatus => self.wrong_status += 1,
        }
    }
}

/// What one connection task measured.
#[derive(Default)]
struct ConnectionStats {
    latency: Histogram,
    /// Responses received in the window (any status, checked or not).
    completed: u64,
    ok: u64,
    errors: Errors,
    connects: u64,
    first_error: Option<String>,
}

/// The outcome of a whole run.
pub struct RunOutcome {
    pub latency: Histogram,
    pub completed: u64,
    pub ok: u64,
    pub errors: Errors,
    pub connects: u64,
    pub window: Duration,
    pub server_cpu_ticks: Option<u64>,
    pub client_cpu_ticks: Option<u64>,
    pub error_samples: Vec<String>,
    /// Unix time (ms) at which the measured window started.
    pub window_start_unix_ms: f64,
    /// With `RunConfig::timeline`: one slice per second of the window (the last one may
    /// be shorter), by completion time.
    pub timeline: Option<Vec<Slice>>,
    /// With `RunConfig::metrics`: each series' end-of-window value minus its
    /// start-of-window value (series missing from either scrape are left out).
    pub metrics: BTreeMap<String, f64>,
}

/// What completed in one second of the window.
#[derive(Clone, Default)]
pub struct Slice {
    pub latency: Histogram,
    pub completed: u64,
    pub ok: u64,
    pub errors: u64,
}

impl Slice {
    fn add(&mut self, other: &Slice) {
        self.latency.merge(&other.latency);
        self.completed += other.completed;
        self.ok += other.ok;
        self.errors += other.errors;
    }
}

/// A connection's slice for the current second, added to the shared one when the second
/// changes (one lock per connection per second).
struct SliceRecorder {
    second: usize,
    slice: Slice,
}

impl SliceRecorder {
    fn record(
        &mut self,
        shared: &[Mutex<Slice>],
        second: usize,
        latency_ns: Option<u64>,
        ok: u64,
        errors: u64,
    ) {
        let second = second.min(shared.len() - 1);
        if second != self.second {
            self.flush(shared);
            self.second = second;
        }
        if let Some(ns) = latency_ns {
            self.slice.latency.record(ns);
            self.slice.completed += 1;
        }
        self.slice.ok += ok;
        self.slice.errors += errors;
    }

    fn flush(&mut self, shared: &[Mutex<Slice>]) {
        if self.slice.completed + self.slice.errors > 0 {
            let mut slot = shared[self.second].lock().unwrap_or_else(|p| p.into_inner());
            slot.add(&self.slice);
            self.slice = Slice::default();
        }
    }
}

struct Shared {
    requests: Vec<Vec<u8>>,
    expect: Vec<Option<Expectation>>,
    /// Zipf rank → request index.
    order: Option<Arc<[u32]>>,
    measure_start: Instant,
    end: Instant,
    config: RunConfig,
    timeline: Option<Vec<Mutex<Slice>>>,
}

/// Runs the closed loop on the current tokio runtime.
pub async fn run(config: RunConfig, method: HttpMethod, requests: &[LoadedRequest]) -> RunOutcome {
    // Everything per request is built before the clock starts: with hundreds of
    // thousands of requests this takes longer than a short window.
    let wire: Vec<Vec<u8>> = requests
        .iter()
        .map(|r| wire_request(&config.target, method, &r.der))
        .collect();
    let expect = requests.iter().map(|r| r.expect.clone()).collect();
    let order = matches!(config.distribution, Distribution::Zipf { .. })
        .then(|| distribution::rank_order(requests.len(), config.seed));
    let start = Instant::now();
    let measure_start = start + config.warmup;
    let end = measure_start + config.duration;
    let shared = Arc::new(Shared {
        requests: wire,
        expect,
        order,
        measure_start,
        end,
        config: config.clone(),
        timeline: config.timeline.then(|| {
            let seconds = config.duration.as_secs_f64().ceil().max(1.0) as usize;
            (0..seconds).map(|_| Mutex::new(Slice::default())).collect()
        }),
    });
    let window_start_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0
        + config.warmup.as_secs_f64() * 1000.0
        - start.elapsed().as_secs_f64() * 1000.0;
    let tasks: Vec<_> = (0..config.connections)
        .map(|id| tokio::spawn(connection(id, shared.clone())))
        .collect();

    tokio::time::sleep_until(measure_start.into()).await;
    let server_before = config.server_pid.and_then(|pid| crate::cpu::cpu_ticks(Some(pid)));
    let client_before = crate::cpu::cpu_ticks(None);
    let metrics_before = match &config.metrics {
        Some(probe) => probe.sample().await,
        None => BTreeMap::new(),
    };
    tokio::time::sleep_until(end.into()).await;
    let server_after = config.server_pid.and_then(|pid| crate::cpu::cpu_ticks(Some(pid)));
    let client_after = crate::cpu::cpu_ticks(None);
    let metrics_after = match &config.metrics {
        Some(probe) => probe.sample().await,
        None => BTreeMap::new(),
    };
    let metrics = metrics_after
        .iter()
        .filter_map(|(name, after)| {
            metrics_before
                .get(name)
                .map(|before| (name.clone(), after - before))
        })
        .collect();

    let mut outcome = RunOutcome {
        latency: Histogram::new(),
        completed: 0,
        ok: 0,
        errors: Errors::default(),
        connects: 0,
        window: config.duration,
        server_cpu_ticks: server_before.zip(server_after).map(|(a, b)| b.saturating_sub(a)),
        client_cpu_ticks: client_before.zip(client_after).map(|(a, b)| b.saturating_sub(a)),
        error_samples: Vec::new(),
        window_start_unix_ms,
        timeline: None,
        metrics,
    };
    for task in tasks {
        let Ok(stats) = task.await else { continue };
        outcome.latency.merge(&stats.latency);
        outcome.completed += stats.completed;
        outcome.ok += stats.ok;
        outcome.errors.add(&stats.errors);
        outcome.connects += stats.connects;
        if let Some(e) = stats.first_error {
            if outcome.error_samples.len() < 5 && !outcome.error_samples.contains(&e) {
                outcome.error_samples.push(e);
            }
        }
    }
    outcome.timeline = shared.timeline.as_ref().map(|slices| {
        slices
            .iter()
            .map(|slice| slice.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect()
    });
    outcome
}

/// A parsed response: status code, where the body is in the buffer, and whether the
/// connection stays open.
struct Response {
    status: u16,
    body: std::ops::Range<usize>,
    keep_alive: bool,
}

enum Failure {
    Io(std::io::Error),
    BadHttp(&'static str),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Io(e)
    }
}

async fn connection(id: usize, shared: Arc<Shared>) -> ConnectionStats {
    let mut stats = ConnectionStats::default();
    let mut picker = Picker::new(
        shared.config.distribution,
        shared.requests.len(),
        id,
        shared.config.connections,
        shared.config.seed,
        shared.order.clone(),
    );
    let mut recorder = SliceRecorder {
        second: 0,
        slice: Slice::default(),
    };
    let mut stream: Option<TcpStream> = None;
    let mut buffer: Vec<u8> = Vec::with_capacity(16 * 1024);
    let timeout = shared.config.request_timeout;
    loop {
        let started = Instant::now();
        if started >= shared.end {
            break;
        }
        let counted = started >= shared.measure_start;
        let index = picker.next_index();
        let (ok_before, errors_before) = (stats.ok, stats.errors.total());

        let error = |stats: &mut ConnectionStats, what: &dyn Fn(&mut Errors), text: String| {
            if counted && Instant::now() <= shared.end {
                what(&mut stats.errors);
            }
            stats.first_error.get_or_insert(text);
        };

        let mut latency_ns = None;
        if stream.is_none() {
            match tokio::time::timeout(timeout, TcpStream::connect(shared.config.target.addr)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                    if counted {
                        stats.connects += 1;
                    }
                    buffer.clear();
                }
                Ok(Err(e)) => {
                    error(&mut stats, &|e| e.connect += 1, format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(_) => {
                    error(&mut stats, &|e| e.connect += 1, "connect: timed out".into());
                }
            }
        }
        if let Some(s) = stream.as_mut() {
            let result = tokio::time::timeout(
                timeout.saturating_sub(started.elapsed()),
                exchange(s, &shared.requests[index], &mut buffer),
            )
            .await;
            let finished = Instant::now();
            let in_window = counted && finished <= shared.end;
            match result {
                Ok(Ok(response)) => {
                    if in_window {
                        let ns = finished.duration_since(started).as_nanos() as u64;
                        stats.completed += 1;
                        stats.latency.record(ns);
                        latency_ns = Some(ns);
                        let body = &buffer[response.body.clone()];
                        if !(200..300).contains(&response.status) {
                            stats.errors.non_2xx += 1;
                            stats
                                .first_error
                                .get_or_insert(format!("HTTP {}", response.status));
                        } else if let Some(expect) = &shared.expect[index] {
                            match expect.check(body) {
                                Ok(()) => stats.ok += 1,
                                Err(failure) => {
                                    stats.errors.check_failure(failure);
                                    stats.first_error.get_or_insert(format!(
                                        "check failed ({}): {}",
                                        failure.label(),
                                        hex_prefix(body)
                                    ));
                                }
                            }
                        } else {
                            stats.ok += 1;
                        }
                    }
                    buffer.drain(..response.body.end);
                    if !response.keep_alive {
                        stream = None;
                    }
                }
                Ok(Err(Failure::Io(e))) => {
                    error(&mut stats, &|e| e.io += 1, format!("i/o: {e}"));
                    stream = None;
                }
                Ok(Err(Failure::BadHttp(what))) => {
                    error(
                        &mut stats,
                        &|e| e.bad_http += 1,
                        format!("bad HTTP response: {what}"),
                    );
                    stream = None;
                }
                Err(_) => {
                    error(&mut stats, &|e| e.timeout += 1, "request timed out".into());
                    stream = None;
                }
            }
        }
        if let Some(slices) = &shared.timeline {
            let errors = stats.errors.total() - errors_before;
            if latency_ns.is_some() || errors > 0 {
                let second = Instant::now()
                    .saturating_duration_since(shared.measure_start)
                    .as_secs() as usize;
                recorder.record(slices, second, latency_ns, stats.ok - ok_before, errors);
            }
        }
    }
    if let Some(slices) = &shared.timeline {
        recorder.flush(slices);
    }
    stats
}

fn hex_prefix(body: &[u8]) -> String {
    let shown = &body[..body.len().min(24)];
    format!("{} ({} bytes)", hex::encode(shown), body.len())
}

/// Writes one request and reads one whole response into `buffer` (which may already hold
/// bytes of it).
async fn exchange(stream: &mut TcpStream, request: &[u8], buffer: &mut Vec<u8>) -> Result<Response, Failure> {
    stream.write_all(request).await?;
    let head = loop {
        if let Some(head) = parse_head(buffer)? {
            break head;
        }
        if buffer.len() > 64 * 1024 {
            return Err(Failure::BadHttp("headers too long"));
        }
        if stream.read_buf(buffer).await? == 0 {
            return Err(Failure::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    };
    let body_start = head.len;
    match head.content_length {
        Some(len) => {
            let body_end = body_start + len;
            while buffer.len() < body_end {
                buffer.reserve(body_end - buffer.len());
                if stream.read_buf(buffer).await? == 0 {
                    return Err(Failure::Io(std::io::ErrorKind::UnexpectedEof.into()));
                }
            }
            Ok(Response {
                status: head.status,
                body: body_start..body_end,
                keep_alive: head.keep_alive,
            })
        }
        None => {
            // No Content-Length: the body runs to the end of the connection.
            while stream.read_buf(buffer).await? != 0 {
                if buffer.len() > 16 << 20 {
                    return Err(Failure::BadHttp("unbounded body"));
                }
            }
            Ok(Response {
                status: head.status,
                body: body_start..buffer.len(),
                keep_alive: false,
            })
        }
    }
}

/// A response head: status, body framing, and its own length in the buffer.
struct Head {
    status: u16,
    content_length: Option<usize>,
    keep_alive: bool,
    len: usize,
}

/// Parses the response head at the start of `buffer`, or `None` while it is incomplete.
///
/// `httparse` (hyper's own parser) rather than string splitting: the load generator shares
/// the machine with the server it measures, and a hand-written parser spent ~0.4 µs per
/// response on it, more for responses with more headers, which skewed the comparison
/// against the ceiling's bare responses.
fn parse_head(buffer: &[u8]) -> Result<Option<Head>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buffer) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Failure::BadHttp("too many headers")),
        Err(_) => return Err(Failure::BadHttp("not an HTTP/1.x response head")),
    };
    let status = response.code.ok_or(Failure::BadHttp("bad status code"))?;
    let mut content_length = None;
    let mut keep_alive = response.version == Some(1);
    for header in response.headers.iter() {
        let value = header.value.trim_ascii();
        if header.name.eq_ignore_ascii_case("content-length") {
            let parsed = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            content_length = Some(parsed.ok_or(Failure::BadHttp("bad Content-Length"))?);
        } else if header.name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case(b"close") {
                keep_alive = false;
            } else if value.eq_ignore_ascii_case(b"keep-alive") {
                keep_alive = true;
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Failure::BadHttp("Transfer-Encoding is not supported"));
        }
    }
    // 1xx, 204 and 304 have no body.
    if status / 100 == 1 || status == 204 || status == 304 {
        content_length = Some(0);
    }
    Ok(Some(Head {
        status,
        content_length,
        keep_alive,
        len,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &[u8]) -> Head {
        match parse_head(raw) {
            Ok(Some(head)) => head,
            Ok(None) => panic!("incomplete head"),
            Err(_) => panic!("refused head"),
        }
    }

    #[test]
    fn heads_parse() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\ncontent-type: x\r\n\r\nbody";
        let parsed = head(raw);
        assert_eq!(
            (
                parsed.status,
                parsed.content_length,
                parsed.keep_alive,
                parsed.len
            ),
            (200, Some(12), true, raw.len() - 4)
        );
        assert!(!head(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n").keep_alive);
        let parsed = head(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(parsed.status, 404);
        assert!(!parsed.keep_alive);
        assert_eq!(head(b"HTTP/1.1 304 Not Modified\r\n\r\n").content_length, Some(0));
    }

    #[test]
    fn incomplete_and_bad_heads_are_told_apart() {
        assert!(matches!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Len"), Ok(None)));
        assert!(matches!(parse_head(b""), Ok(None)));
        assert!(parse_head(b"SMTP 220 hi\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
    }

    #[test]
    fn get_requests_escape_base64() {
        let target = Target::parse("http://127.0.0.1:1/ocsp").unwrap();
        let wire = wire_request(&target, HttpMethod::Get, &[0xfb, 0xff, 0xbf, 0x3e]);
        let text = String::from_utf8(wire).unwrap();
        assert!(
            text.starts_with("GET /ocsp/%2B%2F%2B%2FPg%3D%3D HTTP/1.1\r\n"),
            "{text}"
        );
        assert!(Target::parse("http://10.0.0.1:80/").is_err());
        assert!(Target::parse("https://127.0.0.1/").is_err());
    }
}

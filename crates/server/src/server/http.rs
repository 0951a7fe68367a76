//! The OCSP HTTP endpoint (RFC 6960 Appendix A, RFC 5019/RFC 9919 §5–6): turns an HTTP
//! request into bytes for [`ocsp_edge_core::responder::answer`] and its outcome into an HTTP
//! response with caching headers a CDN can trust.
//!
//! Thin by design: no protocol decisions here beyond HTTP itself. OCSP-level refusals are
//! HTTP 200 with an OCSP error body (what RFC 6960 clients parse); only HTTP-level
//! mistakes (wrong method, a path that is neither a document nor an OCSP request) get 4xx.
//!
//! It also decides who answers a GET ([`InPath`]): a path holding an OCSP request is the
//! responder's alone and must never be answered by a snapshot document.

use super::metrics::{HttpMetrics, Method, Outcome};
use super::Responder;
use crate::config::Config;
use crate::served::State;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use ocsp_edge_core::ocsp::get::{from_get_path, ocsp_remainder, InPath};
use ocsp_edge_core::ocsp::response::ETAG_LEN;
use ocsp_edge_core::ocsp::{encode_error_response, Refusal};
use ocsp_edge_core::responder::{self, max_age};
use ocsp_edge_core::snapshot::format::{Found, StoredStatus};
use ocsp_edge_core::time::UnixTime;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

const OCSP_RESPONSE: HeaderValue = HeaderValue::from_static("application/ocsp-response");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

pub async fn handle(
    responder: Arc<Responder>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let method = Method::of(request.method());
    let (state, metrics) = (&*responder.state, &responder.metrics);
    let (mut response, outcome) = match state.cache() {
        Some(tier) => super::cache_mode::route(state, metrics, tier, request).await,
        None => route(state, metrics, request).await,
    };
    if state.is_draining() {
        // Keep-alive clients reconnect, and so reach the process taking over.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    // Full bodies always know their length.
    let body_bytes = response.body().size_hint().exact().unwrap_or(0);
    let seconds = started.elapsed().as_secs_f64();
    metrics.observe(method, outcome, seconds, body_bytes);
    Ok(response)
}

async fn route(
    state: &State,
    metrics: &HttpMetrics,
    request: Request<Incoming>,
) -> (Response<Full<Bytes>>, Outcome) {
    let (parts, body) = request.into_parts();
    // One consistent configuration and snapshot for the whole request, loaded once.
    let config = state.request_config();
    let guard = state.current();
    let head_only = parts.method == hyper::Method::HEAD;
    let is_get = head_only || parts.method == hyper::Method::GET;
    let rest = ocsp_remainder(parts.uri.path(), &config.ocsp.path);
    let now = UnixTime::now();
    let snapshot = guard.as_deref();
    let answer = if is_get {
        let in_path = rest.map(|rest| answer_get(&config, snapshot, rest, now));
        let document = || serve_document(metrics, &config, guard.as_ref(), &parts, head_only, now);
        match who_answers_get(in_path, document) {
            GetAnswer::Responder(answer) => answer,
            GetAnswer::Document(response) => return response,
            GetAnswer::NotFound => return (not_found(), Outcome::HttpError),
        }
    } else {
        if rest.is_none() {
            return (not_found(), Outcome::HttpError);
        }
        match parts.method {
            hyper::Method::POST => read_post(&config, body, content_length(&parts.headers))
                .await
                .and_then(|der| responder::answer(snapshot, &der, now, config.ocsp.nonce)),
            _ => return (method_not_allowed(), Outcome::HttpError),
        }
    };
    match answer {
        // RFC 9110 §13.1.2: a 304 answers only GET and HEAD; other methods ignore If-None-Match.
        Ok(found) => {
            let if_none_match = parts.headers.get(header::IF_NONE_MATCH).filter(|_| is_get);
            let mut answered = success(metrics, &config, &found, now, if_none_match, head_only);
            if parts.headers.contains_key(crate::cache::tier::SEQUENCE_HEADER) {
                insert_sequence(&mut answered.0, snapshot);
            }
            answered
        }
        Err(refusal) => (refused(refusal, head_only), Outcome::Refused(refusal)),
    }
}

/// Who answers a GET, given what its path holds below the OCSP prefix (`None`: it is
/// not below it) and the document at the path, which is looked for only when needed.
#[derive(Debug, PartialEq, Eq)]
enum GetAnswer<T, D> {
    Responder(Result<T, Refusal>),
    Document(D),
    NotFound,
}

/// The responder first: a path that holds an OCSP request is answered by it and never by
/// a document, whatever a snapshot put at that path (see [`InPath`]).
fn who_answers_get<T, D>(
    in_path: Option<InPath<T>>,
    document: impl FnOnce() -> Option<D>,
) -> GetAnswer<T, D> {
    if let Some(InPath::Request(answer)) = in_path {
        return GetAnswer::Responder(answer);
    }
    if let Some(document) = document() {
        return GetAnswer::Document(document);
    }
    match in_path {
        Some(InPath::NotARequest(refusal)) => GetAnswer::Responder(Err(refusal)),
        _ => GetAnswer::NotFound,
    }
}

/// A CRL or other snapshot document at this path, if there is one.
fn serve_document(
    metrics: &HttpMetrics,
    config: &Config,
    snapshot: Option<&Arc<ocsp_edge_core::snapshot::Snapshot>>,
    parts: &hyper::http::request::Parts,
    head_only: bool,
    now: UnixTime,
) -> Option<(Response<Full<Bytes>>, Outcome)> {
    let snapshot = snapshot?;
    let (document, bytes) = snapshot.document(parts.uri.path())?;
    let start = usize::try_from(document.offset).ok()?;
    let place = start..start.checked_add(bytes.len())?;
    let cap = config.crl.cache_max_age.as_secs();
    let answer = super::documents::respond(snapshot, document, place, &parts.headers, head_only, now, cap);
    if let Some(sent) = answer.0.body().size_hint().exact() {
        metrics.count_document_bytes(&document.path, sent);
    }
    Some(answer)
}

/// Answers a GET. Clients append the request to whatever path their AIA URL has (Java
/// GETs `/ocsp/<base64>`), so when the whole remainder is not a request, the text after
/// each of its first few '/' is tried too. Only malformed attempts fall through, and the
/// extra work happens only for requests that would otherwise fail.
fn answer_get<'a>(
    config: &Config,
    snapshot: Option<&'a ocsp_edge_core::snapshot::Snapshot>,
    rest: &str,
    now: UnixTime,
) -> InPath<Found<'a>> {
    let nonce = config.ocsp.nonce;
    from_get_path(rest, config.server.max_request_bytes, |der| {
        responder::answer(snapshot, der, now, nonce)
    })
}

pub(super) fn content_length(headers: &hyper::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

pub(super) async fn read_post(
    config: &Config,
    body: Incoming,
    declared: Option<u64>,
) -> Result<Bytes, Refusal> {
    let limit = config.server.max_request_bytes;
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(Refusal::TooLarge);
    }
    let read = Limited::new(body, limit).collect();
    match tokio::time::timeout(config.server.body_read_timeout, read).await {
        // A body that arrived in one piece (they all do, at this size) is not copied.
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(Refusal::TooLarge)
        }
        Ok(Err(_)) => Err(Refusal::Malformed("request body could not be read")),
        Err(_) => Err(Refusal::Malformed("request body timed out")),
    }
}

fn success(
    metrics: &HttpMetrics,
    config: &Config,
    found: &Found<'_>,
    now: UnixTime,
    if_none_match: Option<&HeaderValue>,
    head_only: bool,
) -> (Response<Full<Bytes>>, Outcome) {
    let answer = Answer {
        issuer: found.issuer,
        revoked: matches!(found.status, StoredStatus::Revoked { .. }),
        etag: found.etag(),
        len: found.response_len(),
        this_update: found.this_update,
        next_update: found.next_update,
        max_age: max_age(found, now, config.ocsp.cache_max_age.as_secs()),
    };
    answer.respond(metrics, if_none_match, head_only, || {
        Bytes::from(found.response())
    })
}

/// A successful OCSP answer, from a snapshot or a cache: the response is made only if
/// it is sent (not for a 304 or a HEAD).
pub(super) struct Answer<'a> {
    pub issuer: &'a str,
    pub revoked: bool,
    pub etag: [u8; ETAG_LEN],
    pub len: usize,
    pub this_update: UnixTime,
    pub next_update: UnixTime,
    pub max_age: u64,
}

impl Answer<'_> {
    /// The HTTP response: 304 on a matching If-None-Match, else 200 with the body (none
    /// for HEAD), and the RFC 5019 caching headers.
    pub(super) fn respond(
        &self,
        metrics: &HttpMetrics,
        if_none_match: Option<&HeaderValue>,
        head_only: bool,
        body: impl FnOnce() -> Bytes,
    ) -> (Response<Full<Bytes>>, Outcome) {
        let etag = quoted_hex(&self.etag);
        let not_modified = if_none_match.is_some_and(|v| etag_matches(v.as_bytes(), &etag));
        metrics.count_answer(self.issuer, self.revoked);
        let (status, body, outcome) = match (not_modified, head_only) {
            (true, _) => (StatusCode::NOT_MODIFIED, Bytes::new(), Outcome::NotModified),
            (false, head) => {
                let outcome = if self.revoked {
                    Outcome::Revoked
                } else {
                    Outcome::Good
                };
                (StatusCode::OK, if head { Bytes::new() } else { body() }, outcome)
            }
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, OCSP_RESPONSE);
        if head_only && !not_modified {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(self.len));
        }
        if let Ok(value) = HeaderValue::from_bytes(&etag) {
            headers.insert(header::ETAG, value);
        }
        caching_headers::insert(headers, self.this_update, self.next_update, self.max_age);
        (response, outcome)
    }
}

/// `"<hex digits>"` without allocating.
pub(super) fn quoted_hex(bytes: &[u8; ETAG_LEN]) -> [u8; 2 * ETAG_LEN + 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'"'; 2 * ETAG_LEN + 2];
    for (i, byte) in bytes.iter().enumerate() {
        out[1 + 2 * i] = DIGITS[usize::from(byte >> 4)];
        out[2 + 2 * i] = DIGITS[usize::from(byte & 0x0f)];
    }
    out
}

/// `Last-Modified`, `Expires` and `Cache-Control` are the same for every response of a
/// publish (and, for Cache-Control, within one second), so each worker thread keeps the
/// last values it encoded instead of formatting dates on every request.
mod caching_headers {
    use hyper::header::{self, HeaderMap, HeaderValue};
    use ocsp_edge_core::time::UnixTime;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Last {
        this_update: Option<(UnixTime, HeaderValue)>,
        next_update: Option<(UnixTime, HeaderValue)>,
        max_age: Option<(u64, HeaderValue)>,
    }

    thread_local! {
        static LAST: RefCell<Last> = RefCell::new(Last::default());
    }

    fn cached<K: PartialEq + Copy>(
        slot: &mut Option<(K, HeaderValue)>,
        key: K,
        make: impl FnOnce() -> String,
    ) -> Option<HeaderValue> {
        if let Some((k, value)) = slot {
            if *k == key {
                return Some(value.clone());
            }
        }
        let value = HeaderValue::from_str(&make()).ok()?;
        *slot = Some((key, value.clone()));
        Some(value)
    }

    pub(super) fn insert(
        headers: &mut HeaderMap,
        this_update: UnixTime,
        next_update: UnixTime,
        max_age: u64,
    ) {
        LAST.with_borrow_mut(|last| {
            if let Some(v) = cached(&mut last.this_update, this_update, || this_update.to_http_date()) {
                headers.insert(header::LAST_MODIFIED, v);
            }
            if let Some(v) = cached(&mut last.next_update, next_update, || next_update.to_http_date()) {
                headers.insert(header::EXPIRES, v);
            }
            let control = || format!("max-age={max_age}, public, no-transform, must-revalidate");
            if let Some(v) = cached(&mut last.max_age, max_age, control) {
                headers.insert(header::CACHE_CONTROL, v);
            }
        });
    }
}
/// `If-None-Match` is a list of entity tags, or `*` (RFC 9110 §13.1.2).
pub fn etag_matches(header: &[u8], etag: &[u8]) -> bool {
    header
        .split(|&b| b == b',')
        .map(|t| t.trim_ascii())
        .any(|t| t == b"*" || t == etag || t.strip_prefix(b"W/") == Some(etag))
}

/// An OCSP error response: unsigned, never cached (a later snapshot may answer it).
pub(super) fn refused(refusal: Refusal, head_only: bool) -> Response<Full<Bytes>> {
    let body = encode_error_response(refusal.response_status());
    let length = body.len();
    let mut response = Response::new(Full::new(if head_only {
        Bytes::new()
    } else {
        Bytes::from(body)
    }));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, OCSP_RESPONSE);
    headers.insert(header::CACHE_CONTROL, NO_STORE);
    if head_only {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    response
}

/// `OCSP-Edge-Sequence: N` on a successful answer: the sequence of the snapshot it came
/// from, so a cache tier in front knows whether it may keep it (see
/// [`crate::cache::entry::admit`]). Taken from the very snapshot that answered, never the
/// one served a moment later.
fn insert_sequence(
    response: &mut Response<Full<Bytes>>,
    snapshot: Option<&ocsp_edge_core::snapshot::Snapshot>,
) {
    if let Some(snapshot) = snapshot {
        response.headers_mut().insert(
            crate::cache::tier::SEQUENCE_HEADER,
            HeaderValue::from(snapshot.sequence()),
        );
    }
}

/// 405 for anything but GET, HEAD and POST on the OCSP path.
pub(super) fn method_not_allowed() -> Response<Full<Bytes>> {
    let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST\n");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
    response
}

/// 404 for a path that is neither a document nor an OCSP request. Never cached: the next
/// snapshot may put a document there (a new CRL partition or issuer, or the first
/// snapshot after a start), and a CDN that kept the 404 for its default TTL (RFC 9111
/// §4.2.2 lets it cache a 404 heuristically) would hide that document; answering a 404
/// costs this origin a hash lookup, less than a miss costs a client.
pub(super) fn not_found() -> Response<Full<Bytes>> {
    let mut response = plain(StatusCode::NOT_FOUND, "not found\n");
    response.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
    response
}

pub fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finding 2(b) at the routing level (the verifier now refuses such snapshots, so no
    /// running responder can hold one): a document at a path that holds an OCSP request
    /// is neither served nor even looked up.
    #[test]
    fn a_document_never_answers_at_an_ocsp_request_path() {
        use base64::Engine;
        let request = ocsp_edge_core::der::element(ocsp_edge_core::der::SEQUENCE, &[&[0x02, 0x01, 0x07]]);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&request);
        for refusal in [
            None,
            Some(Refusal::Malformed("two requests")),
            Some(Refusal::UnknownIssuer),
        ] {
            let answer = || refusal.map_or(Ok("signed answer"), Err);
            let in_path = from_get_path(&encoded, 1024, |_| answer());
            let looked_up = std::cell::Cell::new(false);
            let document = || {
                looked_up.set(true);
                Some("planted document")
            };
            assert_eq!(
                who_answers_get(Some(in_path), document),
                GetAnswer::Responder(answer())
            );
            assert!(!looked_up.get(), "{refusal:?}: the document was looked up");
        }
        // Elsewhere the document is served, and only without one do refusals and 404s come.
        let cases: [(Option<InPath<()>>, _); 3] = [
            (Some(InPath::NotBase64), GetAnswer::NotFound),
            (None, GetAnswer::NotFound),
            (
                Some(InPath::NotARequest(Refusal::TooLarge)),
                GetAnswer::Responder(Err(Refusal::TooLarge)),
            ),
        ];
        for (in_path, without_document) in cases {
            let with = who_answers_get(in_path.clone(), || Some("crl"));
            assert_eq!(with, GetAnswer::Document("crl"), "{in_path:?}");
            assert_eq!(who_answers_get(in_path, || None::<&str>), without_document);
        }
    }

    #[test]
    fn etags_are_quoted_lowercase_hex() {
        let mut bytes = [0u8; ETAG_LEN];
        bytes[0] = 0xab;
        bytes[ETAG_LEN - 1] = 0x0f;
        let quoted = quoted_hex(&bytes);
        assert_eq!(
            std::str::from_utf8(&quoted).unwrap(),
            format!("\"{}\"", hex::encode(bytes))
        );
    }

    #[test]
    fn cached_caching_headers_follow_their_inputs() {
        let mut headers = hyper::HeaderMap::new();
        caching_headers::insert(
            &mut headers,
            UnixTime(1_790_000_000),
            UnixTime(1_790_345_600),
            3600,
        );
        assert_eq!(
            headers[header::CACHE_CONTROL],
            "max-age=3600, public, no-transform, must-revalidate"
        );
        assert_eq!(
            headers[header::LAST_MODIFIED],
            UnixTime(1_790_000_000).to_http_date().as_str()
        );
        caching_headers::insert(&mut headers, UnixTime(1_790_000_001), UnixTime(1_790_345_601), 59);
        assert_eq!(
            headers[header::CACHE_CONTROL],
            "max-age=59, public, no-transform, must-revalidate"
        );
        assert_eq!(
            headers[header::LAST_MODIFIED],
            UnixTime(1_790_000_001).to_http_date().as_str()
        );
        assert_eq!(
            headers[header::EXPIRES],
            UnixTime(1_790_345_601).to_http_date().as_str()
        );
    }

    #[test]
    fn etags_match_lists_weak_tags_and_star() {
        assert!(etag_matches(b"\"a\"", b"\"a\""));
        assert!(etag_matches(b"\"x\", \"a\"", b"\"a\""));
        assert!(etag_matches(b"W/\"a\"", b"\"a\""));
        assert!(etag_matches(b"*", b"\"a\""));
        assert!(!etag_matches(b"\"b\"", b"\"a\""));
    }
}

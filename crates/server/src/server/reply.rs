//! The HTTP responses both OCSP endpoints ([`super::http`] for snapshots,
//! [`super::cache_mode`] for the cache tier) and the admin endpoints share: a successful
//! answer with its ETag and RFC 5019 caching headers, an OCSP refusal, 404 and 405, plain
//! text; and reading a POST body within its size and time limits.
//!
//! Owns the bytes of those responses and nothing else: it never routes a request or
//! decides an answer (that is the endpoints' and [`ocsp_edge_core::responder`]'s).

use super::metrics::{HttpMetrics, Outcome};
use crate::config::Config;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use ocsp_edge_core::ocsp::{encode_error_response, Refusal, ETAG_LEN};
use ocsp_edge_core::time::UnixTime;

const OCSP_RESPONSE: HeaderValue = HeaderValue::from_static("application/ocsp-response");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

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

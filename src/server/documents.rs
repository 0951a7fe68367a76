//! Serving snapshot documents (CRLs and the CCADB JSON array) by URL path, the way CDNs
//! and CRL crawlers expect: `Content-Length`, `Last-Modified` (thisUpdate), strong `ETag`
//! (SHA-256), `Expires` (nextUpdate), `Cache-Control: max-age` never past nextUpdate,
//! `Accept-Ranges: bytes` with single `Range` requests, `If-None-Match` /
//! `If-Modified-Since` → 304, and HEAD.
//!
//! Bodies are slices of the memory-mapped snapshot that keep the snapshot alive while they
//! are sent: nothing is copied or re-encoded per request, whatever the CRL's size.
//!
//! A document past its nextUpdate is answered `503 Service Unavailable` with
//! `Retry-After`, never served as fresh: a CDN that honours `stale-if-error` keeps its
//! copy (a relying party then makes its own call on an expired CRL, as with any cache),
//! but this origin never vouches for stale revocation data, and `/readyz` has already
//! turned false so load balancers prefer a fresher responder.

use super::metrics::Outcome;
use crate::snapshot::format::Document;
use crate::snapshot::Snapshot;
use crate::time::UnixTime;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use std::ops::Range;
use std::sync::Arc;

/// A document's bytes, borrowed from a snapshot that stays mapped while they are in use.
pub(crate) struct DocumentBytes {
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) range: Range<usize>,
}

impl AsRef<[u8]> for DocumentBytes {
    fn as_ref(&self) -> &[u8] {
        self.snapshot.bytes().get(self.range.clone()).unwrap_or_default()
    }
}

/// What a `Range` header asks of a body of `length` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable single range: send everything (RFC 9110 §14.2 lets a server ignore Range).
    Whole,
    Part(Range<usize>),
    Unsatisfiable,
}

/// Parses a single `bytes=` range (`a-b`, `a-`, `-n`). Several ranges are served whole.
pub fn parse_range(header: &str, length: usize) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let parse = |s: &str| s.trim().parse::<usize>().ok();
    let range = match (first.trim().is_empty(), parse(first), parse(last)) {
        (true, _, Some(suffix)) if suffix > 0 => length.saturating_sub(suffix)..length,
        (true, _, _) => return RangeRequest::Unsatisfiable,
        (false, Some(start), None) if last.trim().is_empty() => start..length,
        (false, Some(start), Some(end)) if end >= start => start..(end + 1).min(length),
        _ => return RangeRequest::Whole,
    };
    if range.start >= length {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part(range)
}

/// Answers a GET or HEAD for `document` of `snapshot`.
pub fn respond(
    snapshot: &Arc<Snapshot>,
    document: &Document,
    request_headers: &HeaderMap,
    head_only: bool,
    now: UnixTime,
    cache_cap_seconds: u64,
) -> (Response<Full<Bytes>>, Outcome) {
    let next_update = UnixTime(document.next_update);
    if now >= next_update {
        let mut response = Response::new(Full::new(Bytes::from_static(
            b"CRL expired; a newer one is on its way\n",
        )));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        let headers = response.headers_mut();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return (response, Outcome::DocumentStale);
    }
    let etag = format!("\"{}\"", document.sha256);
    let this_update = UnixTime(document.this_update);
    let max_age = (next_update.seconds() - now.seconds()).max(0) as u64;
    let mut headers = HeaderMap::new();
    insert(&mut headers, header::CONTENT_TYPE, &document.content_type);
    insert(&mut headers, header::ETAG, &etag);
    insert(&mut headers, header::LAST_MODIFIED, &this_update.to_http_date());
    insert(&mut headers, header::EXPIRES, &next_update.to_http_date());
    insert(
        &mut headers,
        header::CACHE_CONTROL,
        &format!(
            "max-age={}, public, no-transform, must-revalidate",
            max_age.min(cache_cap_seconds)
        ),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));

    if not_modified(request_headers, &etag, this_update) {
        return (
            with_headers(StatusCode::NOT_MODIFIED, Bytes::new(), headers),
            Outcome::NotModified,
        );
    }
    let length = document.length as usize;
    let start = document.offset as usize;
    let wanted = match request_headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(range) if if_range_allows(request_headers, &etag) => parse_range(range, length),
        _ => RangeRequest::Whole,
    };
    let (status, part) = match wanted {
        RangeRequest::Whole => (StatusCode::OK, 0..length),
        RangeRequest::Part(part) => {
            let content_range = format!("bytes {}-{}/{length}", part.start, part.end - 1);
            insert(&mut headers, header::CONTENT_RANGE, &content_range);
            (StatusCode::PARTIAL_CONTENT, part)
        }
        RangeRequest::Unsatisfiable => {
            insert(&mut headers, header::CONTENT_RANGE, &format!("bytes */{length}"));
            return (
                with_headers(StatusCode::RANGE_NOT_SATISFIABLE, Bytes::new(), headers),
                Outcome::HttpError,
            );
        }
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(part.len()));
    let body = if head_only {
        Bytes::new()
    } else {
        Bytes::from_owner(DocumentBytes {
            snapshot: snapshot.clone(),
            range: start + part.start..start + part.end,
        })
    };
    (with_headers(status, body, headers), Outcome::Document)
}

/// RFC 9110 §13.2.2: If-None-Match takes precedence; If-Modified-Since only without it.
fn not_modified(request: &HeaderMap, etag: &str, last_modified: UnixTime) -> bool {
    if let Some(tags) = request.get(header::IF_NONE_MATCH) {
        return super::http::etag_matches(tags.as_bytes(), etag.as_bytes());
    }
    request
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(UnixTime::parse_http_date)
        .is_some_and(|since| last_modified <= since)
}

/// `If-Range` with a strong ETag: the range applies only if the document is unchanged.
fn if_range_allows(request: &HeaderMap, etag: &str) -> bool {
    match request.get(header::IF_RANGE) {
        None => true,
        Some(value) => value.as_bytes() == etag.as_bytes(),
    }
}

fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

fn with_headers(status: StatusCode, body: Bytes, headers: HeaderMap) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_like_rfc_9110() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeRequest::Part(0..10));
        assert_eq!(parse_range("bytes=90-", 100), RangeRequest::Part(90..100));
        assert_eq!(parse_range("bytes=-10", 100), RangeRequest::Part(90..100));
        assert_eq!(parse_range("bytes=-500", 100), RangeRequest::Part(0..100));
        assert_eq!(parse_range("bytes=50-500", 100), RangeRequest::Part(50..100));
        assert_eq!(parse_range("bytes=100-", 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 100), RangeRequest::Whole);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeRequest::Whole);
        assert_eq!(parse_range("items=0-1", 100), RangeRequest::Whole);
        assert_eq!(parse_range("bytes=x-y", 100), RangeRequest::Whole);
    }

    #[test]
    fn if_none_match_wins_over_if_modified_since() {
        let mut request = HeaderMap::new();
        let modified = UnixTime(1_790_000_000);
        request.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_str(&modified.to_http_date()).unwrap(),
        );
        assert!(not_modified(&request, "\"a\"", modified));
        assert!(!not_modified(&request, "\"a\"", modified.plus_seconds(1)));
        request.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"b\""));
        assert!(!not_modified(&request, "\"a\"", modified));
    }
}

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
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use ocsp_edge_core::snapshot::{Document, Snapshot};
use ocsp_edge_core::time::UnixTime;
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
    /// A non-empty part that ends within the body: `start < end <= length`.
    Part(Range<usize>),
    Unsatisfiable,
}

/// Parses a single `bytes=` range (`a-b`, `a-`, `-n`) the way RFC 9110 §14.1.2 says, for a
/// body of `length` bytes. Several ranges are served whole; a malformed or invalid one
/// (`5-1`, `+1-2`, `-`) is ignored. A last-byte-pos past the end is clamped to the last
/// byte, a first-byte-pos at or past the end is unsatisfiable, and numerals of any size
/// (the RFC says to expect them) saturate instead of wrapping.
pub fn parse_range(header: &str, length: usize) -> RangeRequest {
    let Some((unit, spec)) = header.trim().split_once('=') else {
        return RangeRequest::Whole;
    };
    // Range units are case-insensitive (RFC 9110 §14.1).
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    match (position(first), position(last)) {
        (None, Some(suffix)) if first.is_empty() => suffix_range(suffix, length),
        (Some(first), None) if last.is_empty() => int_range(first, u64::MAX, length),
        (Some(first_pos), Some(last_pos)) if numeral_le(first, last) => {
            int_range(first_pos, last_pos, length)
        }
        _ => RangeRequest::Whole,
    }
}

/// A byte position (`1*DIGIT`), saturating at `u64::MAX`: no body is that long, so a
/// larger numeral means the same as `u64::MAX` to every comparison made with it.
fn position(numeral: &str) -> Option<u64> {
    if numeral.is_empty() || !numeral.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(numeral.bytes().fold(0u64, |value, digit| {
        value.saturating_mul(10).saturating_add(u64::from(digit - b'0'))
    }))
}

/// `a <= b` for two digit strings of any length, exactly (saturated values could not
/// tell `…99-…98` apart from a valid range).
fn numeral_le(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    (a.len(), a) <= (b.len(), b)
}

/// `first-last` (inclusive) of a body of `length` bytes.
fn int_range(first: u64, last: u64, length: usize) -> RangeRequest {
    let Ok(first) = usize::try_from(first) else {
        return RangeRequest::Unsatisfiable;
    };
    if first >= length {
        return RangeRequest::Unsatisfiable;
    }
    // first < length, so the body has a last byte; the part ends there at the latest.
    let last = usize::try_from(last).unwrap_or(usize::MAX).min(length - 1);
    RangeRequest::Part(first..last + 1)
}

/// The last `suffix` bytes (all of them if the body is shorter).
fn suffix_range(suffix: u64, length: usize) -> RangeRequest {
    if suffix == 0 || length == 0 {
        return RangeRequest::Unsatisfiable;
    }
    let suffix = usize::try_from(suffix).unwrap_or(usize::MAX).min(length);
    RangeRequest::Part(length - suffix..length)
}

/// Answers a GET or HEAD for `document` of `snapshot`, whose bytes are `place` in the
/// snapshot file (as [`Snapshot::document`] checked them).
pub fn respond(
    snapshot: &Arc<Snapshot>,
    document: &Document,
    place: Range<usize>,
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
    let max_age = u64::try_from(next_update.seconds().saturating_sub(now.seconds())).unwrap_or(0);
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
    let length = place.len();
    let wanted = match request_headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(range) if if_range_allows(request_headers, &etag) => parse_range(range, length),
        _ => RangeRequest::Whole,
    };
    let (status, part) = match wanted {
        RangeRequest::Whole => (StatusCode::OK, 0..length),
        RangeRequest::Part(part) => {
            // `parse_range` never returns an empty part, so `end - 1` is its last byte.
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
            // part.end <= length, so this stays within `place`.
            range: place.start + part.start..place.start + part.end,
        })
    };
    (with_headers(status, body, headers), Outcome::Document)
}

/// RFC 9110 §13.2.2: If-None-Match takes precedence; If-Modified-Since only without it.
fn not_modified(request: &HeaderMap, etag: &str, last_modified: UnixTime) -> bool {
    if let Some(tags) = request.get(header::IF_NONE_MATCH) {
        return super::reply::etag_matches(tags.as_bytes(), etag.as_bytes());
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
        assert_eq!(parse_range(" Bytes=0-9 ", 100), RangeRequest::Part(0..10));
    }

    /// The finding: `end + 1` wrapped, giving `bytes 0-18446744073709551615/782` and an
    /// empty body (a panic in a debug build).
    #[test]
    fn a_last_byte_at_u64_max_is_clamped_to_the_last_byte() {
        assert_eq!(
            parse_range("bytes=0-18446744073709551615", 782),
            RangeRequest::Part(0..782)
        );
        assert_eq!(
            parse_range("bytes=781-18446744073709551615", 782),
            RangeRequest::Part(781..782)
        );
    }

    /// What RFC 9110 §14.1.2 says a range means, computed in u128 (wide enough for every
    /// numeral below): the reference the parser must agree with.
    fn expected(first: Option<u128>, last: Option<u128>, length: u128) -> RangeRequest {
        let part = |start: u128, end: u128| RangeRequest::Part(start as usize..end as usize);
        match (first, last) {
            (None, Some(0)) => RangeRequest::Unsatisfiable,
            (None, Some(_)) if length == 0 => RangeRequest::Unsatisfiable,
            (None, Some(suffix)) => part(length - suffix.min(length), length),
            (Some(first), _) if last.is_some_and(|last| last < first) => RangeRequest::Whole,
            (Some(first), _) if first >= length => RangeRequest::Unsatisfiable,
            (Some(first), None) => part(first, length),
            (Some(first), Some(last)) => part(first, last.min(length - 1) + 1),
            (None, None) => RangeRequest::Whole,
        }
    }

    #[test]
    fn every_combination_of_edge_positions_agrees_with_rfc_9110() {
        let wide = 99_999_999_999_999_999_999_999u128; // past u64::MAX
        for length in [0usize, 1, 2, 782, 1 << 20] {
            let len = length as u128;
            let mut edges = vec![0, 1, len.saturating_sub(1), len, len + 1];
            edges.extend([u64::MAX as u128 - 1, u64::MAX as u128, u64::MAX as u128 + 1, wide]);
            let numerals: Vec<Option<u128>> =
                std::iter::once(None).chain(edges.into_iter().map(Some)).collect();
            for &first in &numerals {
                for &last in &numerals {
                    let text = |n: Option<u128>| n.map(|n| n.to_string()).unwrap_or_default();
                    let header = format!("bytes={}-{}", text(first), text(last));
                    let parsed = parse_range(&header, length);
                    assert_eq!(parsed, expected(first, last, len), "{header} of {length}");
                    if let RangeRequest::Part(part) = &parsed {
                        assert!(part.start < part.end && part.end <= length, "{header}: {part:?}");
                    }
                    // Leading zeros change nothing.
                    let padded = format!("bytes=00{}-00{}", text(first), text(last));
                    if first.is_some() && last.is_some() {
                        assert_eq!(parse_range(&padded, length), parsed, "{padded}");
                    }
                }
            }
        }
    }

    #[test]
    fn malformed_ranges_are_ignored() {
        for header in [
            "bytes=",
            "bytes=-",
            "bytes=--1",
            "bytes=1--2",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=1 -2",
            "bytes=0x1-2",
            "bytes=1-2-3",
            "bytes=\u{661}-2",
            "bytes 0-1",
            "bytes=0-1,",
            "=0-1",
            "bytes=-1-",
            "bytes=99999999999999999999999-1",
        ] {
            assert_eq!(parse_range(header, 100), RangeRequest::Whole, "{header:?}");
        }
    }

    /// Hostile validators: no panic, and only an exact match counts.
    #[test]
    fn conditional_headers_survive_hostile_values() {
        let modified = UnixTime(1_790_000_000);
        let etag = "\"abc\"";
        for since in [
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Sat, 01 Jan 10000 00:00:00 GMT",
            "Wed, 31 Dec 1969 23:59:59 GMT",
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Mon, 99 Foo 2026 99:99:99 GMT",
            "18446744073709551615",
            "",
        ] {
            let mut request = HeaderMap::new();
            request.insert(header::IF_MODIFIED_SINCE, HeaderValue::from_str(since).unwrap());
            let later_or_equal = UnixTime::parse_http_date(since).is_some_and(|t| modified <= t);
            assert_eq!(
                not_modified(&request, etag, modified),
                later_or_equal,
                "{since:?}"
            );
        }
        let mut request = HeaderMap::new();
        request.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert!(!not_modified(&request, etag, modified));
        for (tags, matches) in [
            ("\"abc\"", true),
            ("W/\"abc\"", true),
            (",,, ,\"abc\"", true),
            ("*", true),
            ("\"ab\"", false),
            ("\"abc", false),
            ("", false),
            (",,,", false),
        ] {
            let mut request = HeaderMap::new();
            request.insert(header::IF_NONE_MATCH, HeaderValue::from_str(tags).unwrap());
            assert_eq!(not_modified(&request, etag, modified), matches, "{tags:?}");
        }
        // If-Range compares strongly: a weak tag, a date or garbage serves the whole body.
        for (value, allows) in [
            (&b"\"abc\""[..], true),
            (b"W/\"abc\"", false),
            (b"Fri, 31 Dec 9999 23:59:59 GMT", false),
            (b"\xff", false),
            (b"", false),
        ] {
            let mut request = HeaderMap::new();
            request.insert(header::IF_RANGE, HeaderValue::from_bytes(value).unwrap());
            assert_eq!(if_range_allows(&request, etag), allows, "{value:?}");
        }
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

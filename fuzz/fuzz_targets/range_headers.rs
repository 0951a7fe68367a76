//! `Range`, `If-Range`, `If-None-Match` and `If-Modified-Since` on a served document (a
//! CRL of the demo snapshot), through the same `respond` the server calls.
//!
//! Properties: no panic; a 200 sends the whole document; a 206 sends exactly the slice
//! its Content-Range names, which is non-empty and inside the document, with a matching
//! Content-Length; a 416 and a 304 send nothing. And `parse_range` on its own never
//! returns an empty range or one past the end, whatever the length.
#![no_main]

use bytes::Bytes;
use http_body::Body;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use libfuzzer_sys::fuzz_target;
use ocsp_edge::server::documents::{parse_range, respond, RangeRequest};
use ocsp_edge_fuzz_common::{published, NOW};

fn body_of(response: Response<http_body_util::Full<Bytes>>) -> Vec<u8> {
    let mut body = response.into_body();
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let mut out = Vec::new();
    while let std::task::Poll::Ready(Some(frame)) = std::pin::Pin::new(&mut body).poll_frame(&mut context) {
        if let Ok(data) = frame.expect("a Full body cannot fail").into_data() {
            out.extend_from_slice(&data);
        }
    }
    out
}

fn header_text(response: &Response<http_body_util::Full<Bytes>>, name: header::HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("headers we write are ASCII").to_string())
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let snapshot = &published().snapshot;
    let documents = snapshot.documents();
    let document = &documents[usize::from(choice >> 1) % documents.len()];
    let (_, bytes) = snapshot
        .document(&document.path)
        .expect("every listed document is served");
    let head_only = choice & 1 == 1;

    let mut headers = HeaderMap::new();
    let names = [
        header::RANGE,
        header::IF_RANGE,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
    ];
    for (name, value) in names.into_iter().zip(rest.split(|&b| b == b'\n')) {
        if value.first() == Some(&b'!') {
            continue; // leave this header out
        }
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.insert(name, value);
        }
    }
    if let Some(Ok(range)) = headers.get(header::RANGE).map(|v| v.to_str()) {
        for length in [0, 1, bytes.len(), usize::MAX] {
            if let RangeRequest::Part(part) = parse_range(range, length) {
                assert!(
                    part.start < part.end && part.end <= length,
                    "{range:?} of {length}: {part:?}"
                );
            }
        }
    }

    let start = document.offset as usize;
    let place = start..start + bytes.len();
    let (response, _) = respond(snapshot, document, place, &headers, head_only, NOW, 3600);
    let status = response.status();
    let content_length = header_text(&response, header::CONTENT_LENGTH);
    let content_range = header_text(&response, header::CONTENT_RANGE);
    let body = body_of(response);
    match status {
        StatusCode::OK => {
            assert_eq!(content_length, Some(bytes.len().to_string()));
            assert!(head_only || body == bytes, "200 must send the whole document");
        }
        StatusCode::PARTIAL_CONTENT => {
            let content_range = content_range.expect("206 names its range");
            let (span, total) = content_range
                .strip_prefix("bytes ")
                .and_then(|r| r.split_once('/'))
                .expect("Content-Range: bytes a-b/len");
            assert_eq!(total, bytes.len().to_string());
            let (first, last) = span.split_once('-').expect("a-b");
            let (first, last): (usize, usize) = (first.parse().unwrap(), last.parse().unwrap());
            assert!(first <= last && last < bytes.len(), "{content_range}");
            assert_eq!(content_length, Some((last - first + 1).to_string()));
            assert!(
                head_only || body == bytes[first..=last],
                "206 must send the named slice"
            );
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            assert!(body.is_empty());
            assert_eq!(content_range, Some(format!("bytes */{}", bytes.len())));
        }
        StatusCode::NOT_MODIFIED => assert!(body.is_empty()),
        other => panic!("unexpected status {other} for a fresh document"),
    }
});

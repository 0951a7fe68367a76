//! Robustness of the running server against bad and unusual HTTP input, with a raw TCP
//! client. Every case checks the exact outcome and that a normal request still succeeds.

mod common;

use common::*;
use std::io::Write;
use std::time::{Duration, Instant};

/// xorshift64: reproducible "random" bytes without a dependency.
fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn assert_malformed(response: &HttpResponse, context: &str) {
    assert_eq!(response.status, 200, "{context}: {response:?}");
    assert_eq!(response.body, MALFORMED, "{context}");
    assert_eq!(
        response.header("content-type"),
        Some("application/ocsp-response"),
        "{context}"
    );
    assert_eq!(response.header("cache-control"), Some("no-store"), "{context}");
    assert_eq!(response.header("etag"), None, "{context}: errors carry no ETag");
}

#[test]
fn empty_post_body_is_malformed() {
    let server = start_demo_server(vec![]);
    let response = post(server.addr(), b"");
    assert_malformed(&response, "empty POST");
    assert_eq!(response.header("content-length"), Some("5"));
    assert_still_serves(server.addr());
}

#[test]
fn random_bytes_are_malformed() {
    let server = start_demo_server(vec![]);
    let mut conn = Conn::connect(server.addr());
    for (seed, len) in [(1, 1), (2, 5), (3, 64), (4, 512), (5, 4096), (6, 16384)] {
        let body = pseudo_random(0x9e37_79b9_7f4a_7c15 ^ seed, len);
        let response = conn.post(&body).unwrap();
        assert_malformed(&response, &format!("{len} random bytes"));
        // The same bytes as a GET path.
        let response = conn
            .request("GET", &get_path("/", &body[..len.min(600)]), &[], None)
            .unwrap();
        assert_malformed(&response, &format!("{len} random bytes by GET"));
    }
    // A DER SEQUENCE header announcing more than is there, and a truncated real request.
    let request = good_request();
    for body in [
        vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        request[..request.len() - 3].to_vec(),
    ] {
        assert_malformed(&conn.post(&body).unwrap(), "truncated DER");
    }
    assert_still_serves(server.addr());
}

/// Sends `head` then `body` from a second thread (the server may answer and close without
/// reading it all) and reads the response on this one.
fn send_large(server: &TestServer, head: Vec<u8>, body: Vec<Vec<u8>>) -> (HttpResponse, Duration) {
    let started = Instant::now();
    let mut conn = Conn::connect(server.addr());
    let mut writer = conn.stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        // Write errors are expected once the server has answered and closed.
        let _ = writer.write_all(&head);
        for chunk in body {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let response = conn
        .read_response(false)
        .expect("a response, not a hang or reset");
    let elapsed = started.elapsed();
    drop(conn);
    sending.join().unwrap();
    (response, elapsed)
}

#[test]
fn one_mebibyte_with_content_length_is_refused_without_hanging() {
    let server = start_demo_server(vec![]);
    let body = pseudo_random(42, 1 << 20);
    let head = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (response, elapsed) = send_large(&server, head.into_bytes(), vec![body]);
    assert_malformed(&response, "1 MiB with Content-Length");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert_still_serves(server.addr());
}

#[test]
fn one_mebibyte_chunked_is_refused_without_hanging() {
    let server = start_demo_server(vec![]);
    let head = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut chunks = Vec::new();
    for i in 0..16 {
        let data = pseudo_random(100 + i, 64 * 1024);
        let mut chunk = format!("{:x}\r\n", data.len()).into_bytes();
        chunk.extend_from_slice(&data);
        chunk.extend_from_slice(b"\r\n");
        chunks.push(chunk);
    }
    chunks.push(b"0\r\n\r\n".to_vec());
    let (response, elapsed) = send_large(&server, head.as_bytes().to_vec(), chunks);
    assert_malformed(&response, "1 MiB chunked");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert_still_serves(server.addr());
}

/// Base64 that holds no request is what a broken OCSP client sends: malformedRequest.
/// A path that is not base64 at all is no OCSP request (and no document): 404.
#[test]
fn invalid_base64_in_a_get_path_is_not_found_and_base64_garbage_is_malformed() {
    let server = start_demo_server(vec![]);
    for path in ["/!!!notbase64", "/", "/%%%", "/QUFB%ZZ"] {
        let response = get(server.addr(), path);
        assert_eq!(response.status, 404, "{path}: {response:?}");
        assert_eq!(response.header("cache-control"), Some("no-store"), "{path}");
    }
    for path in ["/QUFB", "/QUFBQQ", "/QUFBQQ%3D%3D"] {
        assert_malformed(&get(server.addr(), path), path);
    }
    assert_still_serves(server.addr());
}

#[test]
fn a_request_with_two_cert_ids_is_malformed() {
    let server = start_demo_server(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let reqout = dir.path().join("two.der").display().to_string();
    let ca = issuer_ca("ec").display().to_string();
    let out = openssl(&[
        "ocsp",
        "-issuer",
        &ca,
        "-serial",
        "0x1",
        "-serial",
        "0x2",
        "-reqout",
        &reqout,
        "-no_nonce",
    ]);
    assert!(out.success, "{out}");
    let request = std::fs::read(&reqout).unwrap();
    assert_malformed(&post(server.addr(), &request), "two CertIDs by POST");
    assert_malformed(
        &get(server.addr(), &get_path("/", &request)),
        "two CertIDs by GET",
    );
    assert_still_serves(server.addr());
}

#[test]
fn other_methods_get_405_with_allow() {
    let server = start_demo_server(vec![]);
    for method in ["PUT", "DELETE", "PATCH", "OPTIONS"] {
        let body: Option<&[u8]> = if method == "PUT" || method == "PATCH" {
            Some(&[0x30, 0x00])
        } else {
            None
        };
        let response = http(server.addr(), method, "/", &[], body);
        assert_eq!(response.status, 405, "{method}: {response:?}");
        assert_eq!(response.header("allow"), Some("GET, HEAD, POST"), "{method}");
    }
    assert_still_serves(server.addr());
}

#[test]
fn paths_outside_the_configured_prefix_are_404() {
    let server = start_demo_server(vec![("ocsp.path", "/ocsp/".into())]);
    let request = good_request();
    for path in ["/elsewhere", "/", "/ocs", &get_path("/other/", &request)] {
        assert_eq!(get(server.addr(), path).status, 404, "GET {path}");
    }
    let response = http(
        server.addr(),
        "POST",
        "/elsewhere",
        &[("Content-Type", "application/ocsp-request")],
        Some(&request),
    );
    assert_eq!(response.status, 404, "POST /elsewhere");
    // Inside the prefix both methods still work.
    let response = get(server.addr(), &get_path("/ocsp/", &request));
    assert!(is_successful(&response.body), "{response:?}");
    let response = http(
        server.addr(),
        "POST",
        "/ocsp/",
        &[("Content-Type", "application/ocsp-request")],
        Some(&request),
    );
    assert!(is_successful(&response.body), "{response:?}");
}

#[test]
fn idle_and_slow_connections_neither_block_others_nor_stay_forever() {
    let server = start_demo_server(vec![("server.header_read_timeout", "1s".into())]);
    let opened = Instant::now();
    let mut idle = Conn::connect(server.addr());
    let mut slow = Conn::connect(server.addr());
    slow.send(b"GET /MFEwTzBNMEswSTAJBgUrDgMCGgUABBQu").unwrap();

    // While both stay open, another connection is served promptly.
    let mut busy = Conn::connect(server.addr());
    let request = good_request();
    let started = Instant::now();
    for i in 0..20 {
        let response = busy.post(&request).unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert!(is_successful(&response.body), "request {i}");
    }
    let took = started.elapsed();
    assert!(took < Duration::from_millis(900), "20 requests took {took:?}");

    // The header-read timeout closes both, and the keep-alive connection once idle.
    for (name, conn) in [
        ("idle", &mut idle),
        ("slow", &mut slow),
        ("keep-alive", &mut busy),
    ] {
        assert!(
            conn.closed_by_server_within(Duration::from_secs(5)),
            "{name} connection still open after {:?}",
            opened.elapsed()
        );
    }
    let closed_after = opened.elapsed();
    assert!(
        closed_after >= Duration::from_millis(900),
        "closed too early: {closed_after:?}"
    );
    assert_still_serves(server.addr());
}

/// GETs `path` on `conn` and checks it is a successful, cacheable OCSP response.
fn checked_get(conn: &mut Conn, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let response = conn.request("GET", path, headers, None).unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    assert!(is_successful(&response.body));
    response
}

fn http_date(response: &HttpResponse, name: &str) -> i64 {
    let text = response.header(name).unwrap_or_else(|| panic!("{name} missing"));
    assert_eq!(response.header_count(name), 1, "{name} repeated");
    let time = httpdate::parse_http_date(text).unwrap_or_else(|e| panic!("{name}: {text:?}: {e}"));
    // Only IMF-fixdate formats back to the same text.
    assert_eq!(httpdate::fmt_http_date(time), text, "{name} is not IMF-fixdate");
    time.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The caching headers of a successful response; returns the ETag.
fn check_success_headers(response: &HttpResponse) -> String {
    assert_eq!(response.header("content-type"), Some("application/ocsp-response"));
    let date = http_date(response, "date");
    let last_modified = http_date(response, "last-modified");
    let expires = http_date(response, "expires");
    assert_eq!(expires - last_modified, 96 * 3600, "Expires − Last-Modified");
    assert!(last_modified <= date, "Last-Modified after Date");
    let cache_control = response.header("cache-control").expect("Cache-Control");
    let max_age: i64 = cache_control
        .strip_prefix("max-age=")
        .and_then(|rest| rest.strip_suffix(", public, no-transform, must-revalidate"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("Cache-Control {cache_control:?}"));
    assert!(0 < max_age && max_age <= 3600, "max-age {max_age}");
    assert!(
        max_age <= expires - date,
        "max-age {max_age} reaches past Expires"
    );
    let etag = response.header("etag").expect("ETag").to_string();
    let hex = etag
        .strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or_else(|| panic!("ETag {etag:?} is not quoted"));
    // Template tag (8 bytes) and the signature's last 16 bytes: strong, and free to compute.
    assert_eq!(hex.len(), 48, "{etag}");
    let signature_tail: Vec<u8> = (16..48)
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex ETag"))
        .collect();
    assert!(
        response.body.windows(16).any(|w| w == signature_tail),
        "the ETag's tail is not in the response: {etag}"
    );
    etag
}

#[test]
fn successful_responses_carry_consistent_caching_headers() {
    let server = start_demo_server(vec![]);
    let path = get_path("/", &good_request());
    let mut conn = Conn::connect(server.addr());
    let first = checked_get(&mut conn, &path, &[]);
    let etag = check_success_headers(&first);
    assert_eq!(
        first.header("content-length"),
        Some(first.body.len().to_string().as_str())
    );

    // The same answer by POST carries the same entity.
    let posted = conn.post(&good_request()).unwrap();
    assert_eq!(posted.body, first.body);
    assert_eq!(check_success_headers(&posted), etag);

    // Revalidation.
    for tag in [etag.clone(), format!("\"0000\", {etag}"), format!("W/{etag}")] {
        let response = conn
            .request("GET", &path, &[("If-None-Match", &tag)], None)
            .unwrap();
        assert_eq!(response.status, 304, "If-None-Match: {tag}");
        assert!(response.body.is_empty());
        assert!(
            response.header("content-length").is_none_or(|l| l == "0"),
            "{response:?}"
        );
        assert_eq!(response.header("etag"), Some(etag.as_str()));
    }
    let other = format!("\"{}\"", "0".repeat(64));
    let response = checked_get(&mut conn, &path, &[("If-None-Match", &other)]);
    assert_eq!(response.body, first.body);
    // The connection is still in sync after the 304s (no stray body bytes).
    assert_eq!(checked_get(&mut conn, &path, &[]).body, first.body);
}

#[test]
fn head_matches_get_without_a_body() {
    let server = start_demo_server(vec![]);
    let path = get_path("/", &good_request());
    let mut conn = Conn::connect(server.addr());
    let got = checked_get(&mut conn, &path, &[]);
    let head = conn.request("HEAD", &path, &[], None).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(got.body.len().to_string().as_str())
    );
    for name in [
        "content-type",
        "etag",
        "cache-control",
        "last-modified",
        "expires",
    ] {
        assert_eq!(head.header(name), got.header(name), "{name}");
    }
    assert!(head.header("date").is_some());
    // A HEAD of a refused request describes the error body.
    let refused = conn.request("HEAD", "/QUFB", &[], None).unwrap();
    assert_eq!(refused.status, 200);
    assert_eq!(refused.header("content-length"), Some("5"));
    assert_eq!(refused.header("cache-control"), Some("no-store"));
    // No body bytes were sent: the next response on this connection parses.
    assert_eq!(checked_get(&mut conn, &path, &[]).body, got.body);
}

#[test]
fn one_hundred_requests_over_one_keep_alive_connection() {
    let server = start_demo_server(vec![]);
    let request = good_request();
    let path = get_path("/", &request);
    let mut conn = Conn::connect(server.addr());
    let started = Instant::now();
    for i in 0..100 {
        let response = if i % 2 == 0 {
            conn.post(&request)
        } else {
            conn.request("GET", &path, &[], None)
        }
        .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(response.status, 200, "request {i}");
        assert!(is_successful(&response.body), "request {i}");
        assert_ne!(response.header("connection"), Some("close"), "request {i}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = metrics(server.admin());
    assert_eq!(
        metric(&text, r#"ocsp_edge_requests_total{method="POST",outcome="good"}"#),
        Some(50.0)
    );
    assert_eq!(
        metric(&text, r#"ocsp_edge_requests_total{method="GET",outcome="good"}"#),
        Some(50.0)
    );
}

#[test]
fn too_many_headers_get_431_and_a_very_long_url_is_malformed() {
    let server = start_demo_server(vec![]);
    let mut headers = String::new();
    for i in 0..200 {
        headers.push_str(&format!("X-Header-{i}: value\r\n"));
    }
    let mut conn = Conn::connect(server.addr());
    conn.send(format!("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n").as_bytes())
        .unwrap();
    let response = conn.read_response(false).unwrap();
    assert_eq!(response.status, 431, "{response:?}");
    // Twice the body limit of base64 characters is refused before decoding.
    let long = format!("/{}", "QUFB".repeat(10_000));
    assert_malformed(&get(server.addr(), &long), "40 000-character GET path");
    assert_still_serves(server.addr());
}

#[test]
fn get_accepts_unescaped_and_url_safe_base64() {
    use base64::Engine;
    let server = start_demo_server(vec![]);
    let request = good_request();
    let standard = base64::engine::general_purpose::STANDARD.encode(&request);
    assert!(
        standard.contains('/'),
        "the fixture request should exercise '/': {standard}"
    );
    let variants = [
        standard.clone(),
        standard.trim_end_matches('=').to_string(),
        standard.replace('+', "-").replace('/', "_"),
    ];
    let expected = post(server.addr(), &request).body;
    for variant in variants {
        let response = get(server.addr(), &format!("/{variant}"));
        assert_eq!(response.status, 200, "{variant}");
        assert_eq!(response.body, expected, "{variant}");
    }
}

#[test]
fn a_small_chunked_post_and_pipelined_requests_are_answered() {
    let server = start_demo_server(vec![]);
    let request = good_request();
    let expected = post(server.addr(), &request).body;
    assert!(is_successful(&expected));
    let (a, b) = request.split_at(request.len() / 2);
    let mut chunked = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in [a, b] {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let mut conn = Conn::connect(server.addr());
    conn.send(&chunked).unwrap();
    assert_eq!(conn.read_response(false).unwrap().body, expected, "chunked POST");

    // Ten requests in one write, answered in order.
    let path = get_path("/", &request);
    let mut batch = Vec::new();
    for i in 0..10 {
        batch.extend(if i % 3 == 0 {
            request_bytes("GET", "/QUFB", &[], None)
        } else {
            request_bytes("GET", &path, &[], None)
        });
    }
    conn.send(&batch).unwrap();
    for i in 0..10 {
        let response = conn.read_response(false).unwrap();
        let want: &[u8] = if i % 3 == 0 { MALFORMED } else { &expected };
        assert_eq!(response.body, want, "pipelined response {i}");
    }
}

#[test]
fn a_slowly_dribbled_request_and_a_stalled_body_are_cut_off() {
    let server = start_demo_server(vec![
        ("server.header_read_timeout", "1s".into()),
        ("server.body_read_timeout", "1s".into()),
    ]);
    // Slowloris: one byte of the head every 100 ms keeps the connection busy but never
    // finishes; the header deadline is total, not per byte.
    let started = Instant::now();
    let mut dribble = Conn::connect(server.addr());
    let mut writer = dribble.stream.try_clone().unwrap();
    let head = request_bytes("GET", &get_path("/", &good_request()), &[], None);
    let sender = std::thread::spawn(move || {
        for byte in head.iter().take(60) {
            if writer.write_all(&[*byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    assert!(
        dribble.closed_by_server_within(Duration::from_secs(5)),
        "dribbling connection still open"
    );
    let closed = started.elapsed();
    assert!(closed < Duration::from_secs(4), "closed after {closed:?}");
    sender.join().unwrap();

    // A body that stops halfway gets an answer once the body deadline passes.
    let request = good_request();
    let mut stalled = Conn::connect(server.addr());
    let started = Instant::now();
    let mut partial = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
        request.len()
    )
    .into_bytes();
    partial.extend_from_slice(&request[..10]);
    stalled.send(&partial).unwrap();
    let response = stalled.read_response(false).unwrap();
    let waited = started.elapsed();
    assert_malformed(&response, "stalled body");
    assert!(
        Duration::from_millis(900) <= waited && waited < Duration::from_secs(4),
        "answered after {waited:?}"
    );
    assert_still_serves(server.addr());
}

/// RFC 9110 §13.1.2: a matching If-None-Match on a method other than GET or HEAD must be
/// answered 412, not 304 (a 304 tells the client to reuse a cached POST response it may
/// not have).
#[test]
fn post_with_a_matching_if_none_match_is_not_a_304() {
    let server = start_demo_server(vec![]);
    let request = good_request();
    let etag = post(server.addr(), &request).header("etag").unwrap().to_string();
    let response = http(
        server.addr(),
        "POST",
        "/",
        &[
            ("Content-Type", "application/ocsp-request"),
            ("If-None-Match", &etag),
        ],
        Some(&request),
    );
    assert!(
        response.status == 412 || (response.status == 200 && is_successful(&response.body)),
        "{response:?}"
    );
}

#[test]
fn a_cert_id_hashed_with_sha384_is_unauthorized() {
    let server = start_demo_server(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let reqout = dir.path().join("sha384.der").display().to_string();
    let ca = issuer_ca("ec").display().to_string();
    let cert = first_with_status("ec", 'V').cert("ec").display().to_string();
    let out = openssl(&[
        "ocsp",
        "-issuer",
        &ca,
        "-sha384",
        "-cert",
        &cert,
        "-reqout",
        &reqout,
        "-no_nonce",
    ]);
    assert!(out.success, "{out}");
    let request = std::fs::read(&reqout).unwrap();
    let response = post(server.addr(), &request);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, UNAUTHORIZED);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_still_serves(server.addr());
}

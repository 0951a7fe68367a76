//! The HTTP surface under hostile requests and a hostile snapshot: Range arithmetic at
//! the edges of u64, paths that are neither a document nor an OCSP request, and a document
//! planted at an OCSP GET path.

use crate::common::*;
use ocsp_edge::server::Background;

const CRL: &str = "/crl/ec.crl";

/// One GET or HEAD on its own connection, so a connection the server drops (a panic in
/// the handler) fails only this request, with the header that caused it.
fn fetch(server: &TestServer, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    Conn::connect(server.addr())
        .request(method, path, headers, None)
        .unwrap_or_else(|e| panic!("{method} {path} {headers:?}: {e}"))
}

/// Finding 7: `bytes=0-18446744073709551615` gave `206`, `content-range: bytes
/// 0-18446744073709551615/782` and `content-length: 0` (`end + 1` wrapped). Every range
/// with a bound at or past u64::MAX now gets either the bytes it names, clamped to the
/// CRL, with a Content-Range and Content-Length that describe exactly the bytes sent, or
/// a 416 naming the length.
#[test]
fn ranges_at_the_edges_of_u64_get_true_headers_or_416() {
    let server = start_demo_server(vec![]);
    let crl = fetch(&server, "GET", CRL, &[]);
    assert_eq!(crl.status, 200, "{crl:?}");
    let length = crl.body.len();
    assert!(length > 1);
    let max = u64::MAX.to_string();
    let past_max = "99999999999999999999999";
    let satisfiable = [
        (format!("bytes=0-{max}"), 0..length),
        (format!("bytes=0-{past_max}"), 0..length),
        (format!("bytes=1-{max}"), 1..length),
        (format!("bytes={}-{max}", length - 1), length - 1..length),
        (format!("bytes=-{max}"), 0..length),
        (format!("bytes=-{past_max}"), 0..length),
        (format!("bytes=0-{}", length - 1), 0..length),
        (format!("bytes=0-{length}"), 0..length),
    ];
    for (range, part) in satisfiable {
        let response = fetch(&server, "GET", CRL, &[("Range", &range)]);
        assert_eq!(response.status, 206, "{range}: {response:?}");
        assert_eq!(
            response.header("content-range"),
            Some(format!("bytes {}-{}/{length}", part.start, part.end - 1).as_str()),
            "{range}"
        );
        assert_eq!(
            response.header("content-length"),
            Some(part.len().to_string().as_str()),
            "{range}"
        );
        assert_eq!(response.body, crl.body[part.clone()], "{range}");
        let head = fetch(&server, "HEAD", CRL, &[("Range", &range)]);
        assert_eq!(head.status, 206, "HEAD {range}");
        assert_eq!(
            head.header("content-length"),
            response.header("content-length"),
            "HEAD {range}"
        );
    }
    let unsatisfiable = [
        format!("bytes={max}-"),
        format!("bytes={max}-{max}"),
        format!("bytes={past_max}-"),
        format!("bytes={length}-"),
        format!("bytes={length}-{max}"),
        "bytes=-0".to_string(),
    ];
    for range in unsatisfiable {
        let response = fetch(&server, "GET", CRL, &[("Range", &range)]);
        assert_eq!(response.status, 416, "{range}: {response:?}");
        assert_eq!(
            response.header("content-range"),
            Some(format!("bytes */{length}").as_str()),
            "{range}"
        );
        assert!(response.body.is_empty(), "{range}");
    }
    // Malformed or invalid: ignored, the whole CRL.
    for range in [
        format!("bytes={max}-0"),
        "bytes=-".into(),
        "bytes=+0-1".into(),
        format!("bytes=0-{max}0x"),
    ] {
        let response = fetch(&server, "GET", CRL, &[("Range", &range)]);
        assert_eq!(response.status, 200, "{range}: {response:?}");
        assert_eq!(response.header("content-range"), None, "{range}");
        assert_eq!(response.body, crl.body, "{range}");
    }
    assert_still_serves(server.addr());
}

/// Finding 7: a missing CRL answered `200` with an OCSP malformedRequest body, which a CRL
/// fetcher reads as a download that failed to parse and a CDN may store as the CRL. A
/// path that is neither a document nor what an OCSP client sends is a 404 now, never
/// stored; base64 that is not a request is still an OCSP malformedRequest (RFC 6960 A.1).
#[test]
fn a_missing_crl_is_404_and_not_an_ocsp_answer() {
    let server = start_demo_server(vec![]);
    for path in [
        "/crl/missing.crl",
        "/crl/ec/99.crl",
        "/crl/ec.crl.bak",
        "/crl/rsa.json/",
        "/favicon.ico",
        "/",
    ] {
        for method in ["GET", "HEAD"] {
            let response = fetch(&server, method, path, &[]);
            assert_eq!(response.status, 404, "{method} {path}: {response:?}");
            assert_eq!(
                response.header("cache-control"),
                Some("no-store"),
                "{method} {path}"
            );
            assert_ne!(
                response.header("content-type"),
                Some("application/ocsp-response"),
                "{path}"
            );
        }
    }
    // What an OCSP client might have sent still gets an OCSP answer.
    let response = fetch(&server, "GET", "/QUFB", &[]);
    assert_eq!(
        (response.status, &response.body[..]),
        (200, MALFORMED),
        "{response:?}"
    );
    let response = fetch(&server, "GET", &get_path("/ocsp/", &good_request()), &[]);
    assert!(is_successful(&response.body), "{response:?}");
    assert_eq!(fetch(&server, "GET", CRL, &[]).status, 200);
}

/// Finding 2(b): a document at an OCSP GET path was served instead of the responder's
/// answer (holding one issuer's signer, an attacker planted a replayed `good` response
/// for a revoked certificate there). The publisher here puts the EC full CRL at the GET
/// path of a revoked EC certificate's request; that path must still get exactly the
/// answer a POST of the same request gets, never the document. The verifier now refuses
/// such a snapshot too (snapshot::documents::is_ocsp_request_path), so this checks the
/// two defences together end to end; the routing order alone is pinned by
/// `server::http::tests::a_document_never_answers_at_an_ocsp_request_path`.
#[test]
fn a_document_at_an_ocsp_get_path_never_answers_for_the_responder() {
    use base64::Engine;
    let row = first_with_status("ec", 'R');
    let request = openssl_request(&issuer_ca("ec"), &row.cert("ec"), false, false);
    // URL-safe base64 needs no escaping in the URL, so the document's path is exactly the
    // path the client sends (the server accepts that alphabet for GET).
    let planted = format!(
        "/{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&request)
    );
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    pki.publish(dir.path());
    let text = std::fs::read_to_string(pki.toml()).unwrap();
    let moved = text.replace(
        "\"http://127.0.0.1:8080/crl/ec.crl\"",
        &format!("\"http://127.0.0.1:8080{planted}\""),
    );
    assert_ne!(text, moved, "no EC full_url in publish.toml");
    std::fs::write(pki.toml(), moved).unwrap();
    let report = pki.publish(dir.path());
    let server = Background::start(config_for(dir.path(), &demo_trust(), vec![])).expect("server start");
    let posted = post(server.ocsp_addr, &request);
    assert!(is_successful(&posted.body), "{posted:?}");
    for method in ["GET", "HEAD"] {
        let response = Conn::connect(server.ocsp_addr)
            .request(method, &planted, &[], None)
            .unwrap_or_else(|e| panic!("{method} {planted}: {e}"));
        assert_eq!(response.status, 200, "{method}: {response:?}");
        assert_eq!(
            response.header("content-type"),
            Some("application/ocsp-response"),
            "{method} {planted} (snapshot {} served: {:?})",
            report.sequence,
            server.state.current_sequence()
        );
        if method == "GET" {
            assert_eq!(response.body, posted.body, "GET {planted}");
        }
    }
}

//! Real OCSP clients against a running responder: `openssl ocsp` for every combination of
//! issuer, certificate status, CertID hash, HTTP method and nonce; GnuTLS `ocsptool` and
//! Python `cryptography` when installed.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const VALIDITY_SECONDS: i64 = 96 * 3600;

/// What `openssl ocsp` printed for one certificate, or what a response says.
#[derive(Debug, Default)]
struct Reported {
    status: Option<String>,
    this_update: Option<DateTime>,
    next_update: Option<DateTime>,
    reason: Option<String>,
    revocation_time: Option<DateTime>,
    serial: Option<String>,
}

/// Runs `openssl ocsp` as a client (POST) for `cert` of `issuer`.
fn ask(url: &str, issuer: &Path, cert: &Path, sha256: bool, nonce: bool) -> Output {
    let issuer = issuer.display().to_string();
    let cert = cert.display().to_string();
    let root = root_ca().display().to_string();
    let mut args = vec!["ocsp", "-issuer", issuer.as_str()];
    if sha256 {
        args.push("-sha256");
    }
    args.extend(["-cert", cert.as_str(), "-url", url, "-CAfile", root.as_str()]);
    if !nonce {
        args.push("-no_nonce");
    }
    openssl(&args)
}

/// Parses openssl's summary block: `<cert>: good|revoked` then tab-indented lines.
fn parse_summary(stdout: &str, cert: &Path) -> Reported {
    let mut reported = Reported::default();
    let prefix = format!("{}: ", cert.display());
    let mut lines = stdout.lines().skip_while(|l| !l.starts_with(&prefix));
    let Some(first) = lines.next() else {
        return reported;
    };
    reported.status = Some(first[prefix.len()..].trim().to_string());
    for line in lines.take_while(|l| l.starts_with('\t')) {
        let Some((key, value)) = line.trim().split_once(": ") else {
            continue;
        };
        match key {
            "This Update" => reported.this_update = parse_openssl_time(value),
            "Next Update" => reported.next_update = parse_openssl_time(value),
            "Reason" => reported.reason = Some(value.trim().to_string()),
            "Revocation Time" => reported.revocation_time = parse_openssl_time(value),
            _ => {}
        }
    }
    reported
}

/// What the single response of a DER OCSPResponse says, decoded with rasn-ocsp (reason
/// names as openssl spells them, serial as upper-case hex without leading zeros).
fn decode_single_response(body: &[u8]) -> Reported {
    use chrono::{Datelike, Timelike};
    use rasn_pkix::CrlReason;
    let at = |t: &rasn::types::GeneralizedTime| {
        Some((t.year(), t.month(), t.day(), t.hour(), t.minute(), t.second()))
    };
    let basic = basic_ocsp_response(body);
    let [single] = basic.tbs_response_data.responses.as_slice() else {
        panic!("not one SingleResponse: {basic:?}");
    };
    let mut reported = Reported {
        this_update: at(&single.this_update),
        next_update: single.next_update.as_ref().and_then(at),
        serial: Some(serial_hex(&single.cert_id.serial_number)),
        ..Reported::default()
    };
    reported.status = Some(match &single.cert_status {
        rasn_ocsp::CertStatus::Good => "good".to_string(),
        rasn_ocsp::CertStatus::Unknown(_) => "unknown".to_string(),
        rasn_ocsp::CertStatus::Revoked(info) => {
            reported.revocation_time = at(&info.revocation_time);
            reported.reason = info.revocation_reason.map(|reason| {
                match reason {
                    CrlReason::Unspecified => "unspecified",
                    CrlReason::KeyCompromise => "keyCompromise",
                    CrlReason::CaCompromise => "cACompromise",
                    CrlReason::AffiliationChanged => "affiliationChanged",
                    CrlReason::Superseded => "superseded",
                    CrlReason::CessationOfOperation => "cessationOfOperation",
                    CrlReason::CertificateHold => "certificateHold",
                    CrlReason::RemoveFromCRL => "removeFromCRL",
                    CrlReason::PrivilegeWithdrawn => "privilegeWithdrawn",
                    CrlReason::AaCompromise => "aACompromise",
                }
                .to_string()
            });
            "revoked".to_string()
        }
    });
    reported
}

/// Asserts that `reported` is what the index row says, with a 96h validity window that
/// contains now.
fn check_reported(reported: &Reported, row: &IndexRow, context: &str) {
    let expected = if row.status == 'R' { "revoked" } else { "good" };
    assert_eq!(reported.status.as_deref(), Some(expected), "{context}");
    let this_update = unix_seconds(
        reported
            .this_update
            .unwrap_or_else(|| panic!("This Update: {context}")),
    );
    let next_update = unix_seconds(
        reported
            .next_update
            .unwrap_or_else(|| panic!("Next Update: {context}")),
    );
    assert_eq!(next_update - this_update, VALIDITY_SECONDS, "{context}");
    let now = now_seconds();
    assert!(this_update <= now + 1 && now < next_update, "{context}");
    if row.status == 'R' {
        assert_eq!(
            reported.reason.as_deref(),
            row.openssl_reason(),
            "reason: {context}"
        );
        assert_eq!(
            reported.revocation_time,
            row.revoked_at(),
            "revocation time: {context}"
        );
    } else {
        assert_eq!(reported.reason, None, "{context}");
        assert_eq!(reported.revocation_time, None, "{context}");
    }
}

/// Checks one `openssl ocsp` client run end to end.
fn check_client_answer(out: &Output, cert: &Path, row: &IndexRow, nonce: bool, context: &str) {
    assert!(out.success, "{context}\n{out}");
    assert!(out.stderr.contains("Response verify OK"), "{context}\n{out}");
    assert_eq!(
        out.text().contains("WARNING: no nonce in response"),
        nonce,
        "nonce warning: {context}\n{out}"
    );
    let reported = parse_summary(&out.stdout, cert);
    check_reported(&reported, row, &format!("{context}\n{out}"));
}

/// Every revoked entry and ten good ones of `issuer`, SHA-1 and SHA-256 CertIDs, POST.
fn sweep(issuer: &str) {
    let server = start_demo_server(vec![]);
    let rows = index_rows(issuer);
    let revoked: Vec<&IndexRow> = rows.iter().filter(|r| r.status == 'R').collect();
    let good: Vec<&IndexRow> = rows.iter().filter(|r| r.status == 'V').step_by(9).collect();
    assert_eq!(revoked.len(), 10, "fixture: revoked entries of {issuer}");
    assert!(good.len() >= 10, "fixture: good entries of {issuer}");
    assert!(
        revoked.iter().any(|r| r.revocation.split(',').nth(1).is_none()),
        "fixture: one revocation without a reason"
    );
    let ca = issuer_ca(issuer);
    let mut runs = 0;
    for row in revoked.iter().chain(&good) {
        for sha256 in [false, true] {
            let cert = row.cert(issuer);
            let out = ask(&server.url(), &ca, &cert, sha256, false);
            let context = format!("{issuer} {} sha256={sha256}", row.serial);
            check_client_answer(&out, &cert, row, false, &context);
            runs += 1;
        }
    }
    assert_eq!(runs, 2 * (revoked.len() + good.len()));
}

#[test]
fn ec_revoked_and_good_certificates_with_both_hashes() {
    sweep("ec");
}

#[test]
fn rsa_revoked_and_good_certificates_with_both_hashes() {
    sweep("rsa");
}

#[test]
fn nonce_is_ignored_with_a_warning_and_the_response_still_verifies() {
    let server = start_demo_server(vec![]);
    for issuer in ["ec", "rsa"] {
        for status in ['V', 'R'] {
            let row = first_with_status(issuer, status);
            let cert = row.cert(issuer);
            for nonce in [true, false] {
                let out = ask(&server.url(), &issuer_ca(issuer), &cert, true, nonce);
                let context = format!("{issuer} {} nonce={nonce}", row.serial);
                check_client_answer(&out, &cert, &row, nonce, &context);
            }
        }
    }
}

#[test]
fn with_the_refuse_nonce_policy_nonced_requests_are_unauthorized() {
    let server = start_demo_server(vec![("ocsp.nonce", "refuse".into())]);
    for issuer in ["ec", "rsa"] {
        let row = first_with_status(issuer, 'R');
        let cert = row.cert(issuer);
        let out = ask(&server.url(), &issuer_ca(issuer), &cert, false, true);
        assert!(!out.success, "{out}");
        assert!(out.text().contains("Responder Error: unauthorized (6)"), "{out}");
        let out = ask(&server.url(), &issuer_ca(issuer), &cert, false, false);
        check_client_answer(&out, &cert, &row, false, &format!("{issuer} without nonce"));
    }
}

#[test]
fn unassigned_expired_and_foreign_certificates_are_unauthorized() {
    let server = start_demo_server(vec![]);
    for issuer in ["ec", "rsa"] {
        let expired = first_with_status(issuer, 'E');
        let cases: [(PathBuf, PathBuf, &str); 3] = [
            (issuer_ca(issuer), unassigned(issuer), "unassigned.pem"),
            (
                issuer_ca(issuer),
                expired.cert(issuer),
                "E entry (left out of snapshots)",
            ),
            // The issuing CA itself, issued by the root: an issuer the server does not serve.
            (root_ca(), issuer_ca(issuer), "issuer not served"),
        ];
        for (ca, cert, what) in &cases {
            for sha256 in [false, true] {
                let out = ask(&server.url(), ca, cert, sha256, false);
                assert!(!out.success, "{issuer} {what}: {out}");
                assert!(
                    out.text().contains("Responder Error: unauthorized (6)"),
                    "{issuer} {what} sha256={sha256}: {out}"
                );
            }
        }
    }
}

/// Fetches `der` with GET at `prefix` and checks the HTTP envelope; returns the body.
fn fetch_get(server: &TestServer, prefix: &str, der: &[u8]) -> Vec<u8> {
    let response = get(server.addr(), &get_path(prefix, der));
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("content-type"), Some("application/ocsp-response"));
    response.body
}

/// Verifies a response fetched by GET with `openssl ocsp -respin -reqin` and returns what
/// the response says.
fn verify_with_openssl(
    issuer: &str,
    request: &[u8],
    response: &[u8],
    nonce: bool,
    context: &str,
) -> Reported {
    let dir = tempfile::tempdir().unwrap();
    let (req, resp) = (dir.path().join("req.der"), dir.path().join("resp.der"));
    std::fs::write(&req, request).unwrap();
    std::fs::write(&resp, response).unwrap();
    let (req, resp) = (req.display().to_string(), resp.display().to_string());
    let ca = issuer_ca(issuer).display().to_string();
    let root = root_ca().display().to_string();
    let out = openssl(&[
        "ocsp", "-respin", &resp, "-reqin", &req, "-issuer", &ca, "-CAfile", &root,
    ]);
    assert!(out.success, "{context}\n{out}");
    assert!(out.stderr.contains("Response verify OK"), "{context}\n{out}");
    assert_eq!(
        out.text().contains("WARNING: no nonce in response"),
        nonce,
        "{context}\n{out}"
    );
    assert!(is_successful(response), "{context}");
    decode_single_response(response)
}

#[test]
fn get_requests_verify_with_openssl() {
    let server = start_demo_server(vec![]);
    for issuer in ["ec", "rsa"] {
        let ca = issuer_ca(issuer);
        for status in ['V', 'R'] {
            let row = first_with_status(issuer, status);
            for sha256 in [false, true] {
                for nonce in [false, true] {
                    let context = format!("GET {issuer} {} sha256={sha256} nonce={nonce}", row.serial);
                    let request = openssl_request(&ca, &row.cert(issuer), sha256, nonce);
                    let body = fetch_get(&server, "/", &request);
                    let reported = verify_with_openssl(issuer, &request, &body, nonce, &context);
                    assert_eq!(reported.serial, Some(normalise_serial(&row.serial)), "{context}");
                    check_reported(&reported, &row, &context);
                }
            }
        }
    }
}

/// Java's PKIX checker GETs `<AIA URL>/<base64>`, so with an AIA URL below a prefix the
/// request arrives as `/ocsp/<base64>`. With the default `ocsp.path = "/"` the server
/// first tries `ocsp/<base64>` as a whole (`ocsp/` are base64 characters, so it decodes,
/// to garbage) and then what follows the '/', which is the request.
#[test]
fn get_below_an_unconfigured_prefix_works_with_the_default_path() {
    let server = start_demo_server(vec![]);
    let row = first_with_status("ec", 'V');
    let request = openssl_request(&issuer_ca("ec"), &row.cert("ec"), false, false);
    for prefix in ["/ocsp/", "/a/b/"] {
        let response = get(server.addr(), &get_path(prefix, &request));
        assert_eq!(response.status, 200, "{response:?}");
        assert!(is_successful(&response.body), "{prefix}");
        let reported = verify_with_openssl("ec", &request, &response.body, false, prefix);
        check_reported(&reported, &row, prefix);
    }
    // Base64 garbage below a prefix is still malformed; what is not base64 is not found.
    let response = get(server.addr(), "/ocsp/QUFB");
    assert_eq!(response.body, MALFORMED);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let response = get(server.addr(), "/ocsp/!!!");
    assert_eq!(response.status, 404, "{response:?}");
    assert_eq!(response.header("cache-control"), Some("no-store"));
}

#[test]
fn get_and_post_below_a_configured_prefix() {
    let server = start_demo_server(vec![("ocsp.path", "/ocsp/".into())]);
    for issuer in ["ec", "rsa"] {
        let row = first_with_status(issuer, 'R');
        let request = openssl_request(&issuer_ca(issuer), &row.cert(issuer), false, false);
        let body = fetch_get(&server, "/ocsp/", &request);
        let context = format!("GET /ocsp/ {issuer}");
        let reported = verify_with_openssl(issuer, &request, &body, false, &context);
        check_reported(&reported, &row, &context);
        // POST to the prefix, with the real client.
        let cert = row.cert(issuer);
        let url = format!("http://{}/ocsp/", server.addr());
        let out = ask(&url, &issuer_ca(issuer), &cert, false, false);
        check_client_answer(&out, &cert, &row, false, &format!("POST /ocsp/ {issuer}"));
    }
    // GET at the root is outside the prefix now.
    let request = good_request();
    assert_eq!(get(server.addr(), &get_path("/", &request)).status, 404);
}

/// openssl (and most clients) POST to the AIA URL exactly as written. An AIA URL
/// `http://host/ocsp` (no trailing slash) makes openssl POST to `/ocsp` and Java GET
/// `/ocsp/<base64>`; `ocsp.path` must end in '/', so no configuration serves both.
#[test]
fn post_to_the_prefix_without_trailing_slash() {
    let server = start_demo_server(vec![("ocsp.path", "/ocsp/".into())]);
    let row = first_with_status("ec", 'V');
    let cert = row.cert("ec");
    let url = format!("http://{}/ocsp", server.addr());
    let out = ask(&url, &issuer_ca("ec"), &cert, false, false);
    check_client_answer(&out, &cert, &row, false, "POST /ocsp");
}

#[test]
fn gnutls_ocsptool_reports_the_status() {
    if skip_without("gnutls_ocsptool_reports_the_status", not_on_path("ocsptool")) {
        return;
    }
    let server = start_demo_server(vec![]);
    let url = format!("--ask={}", server.url());
    for issuer in ["ec", "rsa"] {
        let ca = issuer_ca(issuer).display().to_string();
        for (cert, expected) in [
            (first_with_status(issuer, 'V').cert(issuer), "good"),
            (first_with_status(issuer, 'R').cert(issuer), "revoked"),
        ] {
            let cert = cert.display().to_string();
            let out = run("ocsptool", &[&url, "--load-issuer", &ca, "--load-cert", &cert]);
            let context = format!("{issuer} {cert}\n{out}");
            assert!(out.success, "{context}");
            assert!(
                out.stdout.contains(&format!("Certificate Status: {expected}\n")),
                "{context}"
            );
            assert!(
                out.text().contains("Verifying OCSP Response: Success."),
                "{context}"
            );
        }
        let cert = unassigned(issuer).display().to_string();
        let out = run(
            "ocsptool",
            &[&url, "--load-issuer", &ca, "--load-cert", &cert, "--no-nonce"],
        );
        assert!(!out.success, "{out}");
        assert!(out.stdout.contains("Response Status: unauthorized"), "{out}");
    }
}

const PYTHON_CHECK: &str = r#"
import json, sys
from cryptography.x509 import ocsp
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

def utc(obj, name):
    return getattr(obj, name + "_utc") if hasattr(obj, name + "_utc") else getattr(obj, name)

out = []
for path in sys.argv[1:]:
    r = ocsp.load_der_ocsp_response(open(path, "rb").read())
    item = {"response_status": r.response_status.name}
    if r.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL:
        this_update, next_update = utc(r, "this_update"), utc(r, "next_update")
        revocation_time = utc(r, "revocation_time")
        key = r.certificates[0].public_key()
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(r.signature, r.tbs_response_bytes, ec.ECDSA(r.signature_hash_algorithm))
        else:
            key.verify(r.signature, r.tbs_response_bytes, padding.PKCS1v15(), r.signature_hash_algorithm)
        item.update(
            certificate_status=r.certificate_status.name,
            serial="%X" % r.serial_number,
            hash=r.hash_algorithm.name,
            this_update_microsecond=this_update.microsecond,
            next_update_microsecond=next_update.microsecond,
            validity=int((next_update - this_update).total_seconds()),
            reason=r.revocation_reason.name if r.revocation_reason else None,
            revocation_time=revocation_time.strftime("%Y%m%d%H%M%S") if revocation_time else None,
        )
    out.append(item)
print(json.dumps(out))
"#;

#[test]
fn python_cryptography_loads_the_responses() {
    if !run("python3", &["-c", "import cryptography"]).success {
        println!("NOTE: python3 with `cryptography` is not available; skipping the Python client test");
        return;
    }
    let server = start_demo_server(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut expected = Vec::new();
    for issuer in ["ec", "rsa"] {
        for status in ['V', 'R'] {
            let row = first_with_status(issuer, status);
            for sha256 in [false, true] {
                let request = openssl_request(&issuer_ca(issuer), &row.cert(issuer), sha256, false);
                let body = fetch_get(&server, "/", &request);
                let file = dir.path().join(format!("{}.der", files.len()));
                std::fs::write(&file, body).unwrap();
                files.push(file.display().to_string());
                expected.push((row.clone(), sha256, true));
            }
        }
        // An error response must load too.
        let request = openssl_request(&issuer_ca(issuer), &unassigned(issuer), false, false);
        let file = dir.path().join(format!("{}.der", files.len()));
        std::fs::write(&file, fetch_get(&server, "/", &request)).unwrap();
        files.push(file.display().to_string());
        expected.push((first_with_status(issuer, 'V'), false, false));
    }
    let mut args = vec!["-c", PYTHON_CHECK];
    args.extend(files.iter().map(String::as_str));
    let out = run("python3", &args);
    assert!(out.success, "{out}");
    let parsed: Vec<serde_json::Value> = serde_json::from_str(out.stdout.trim()).expect("JSON from python");
    assert_eq!(parsed.len(), expected.len());
    for (item, (row, sha256, successful)) in parsed.iter().zip(&expected) {
        let context = format!("{} sha256={sha256}: {item}", row.serial);
        if !successful {
            assert_eq!(item["response_status"], "UNAUTHORIZED", "{context}");
            continue;
        }
        assert_eq!(item["response_status"], "SUCCESSFUL", "{context}");
        let status = if row.status == 'R' { "REVOKED" } else { "GOOD" };
        assert_eq!(item["certificate_status"], status, "{context}");
        let serial = u128::from_str_radix(item["serial"].as_str().unwrap(), 16).unwrap();
        assert_eq!(
            serial,
            u128::from_str_radix(&row.serial, 16).unwrap(),
            "{context}"
        );
        assert_eq!(item["hash"], if *sha256 { "sha256" } else { "sha1" }, "{context}");
        assert_eq!(item["this_update_microsecond"], 0, "{context}");
        assert_eq!(item["next_update_microsecond"], 0, "{context}");
        assert_eq!(item["validity"], VALIDITY_SECONDS, "{context}");
        if row.status == 'R' {
            let t = row.revoked_at().unwrap();
            let expected_time = format!("{:04}{:02}{:02}{:02}{:02}{:02}", t.0, t.1, t.2, t.3, t.4, t.5);
            assert_eq!(item["revocation_time"], expected_time.as_str(), "{context}");
            let reason = row.openssl_reason().map(python_reason);
            assert_eq!(item["reason"].as_str(), reason.as_deref(), "{context}");
        }
    }
}

/// `cessationOfOperation` → `cessation_of_operation` (Python's `ReasonFlags` names).
fn python_reason(openssl: &str) -> String {
    if openssl == "cACompromise" {
        return "ca_compromise".into();
    }
    let mut out = String::new();
    for c in openssl.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

//! Java's PKIX revocation checker (what a Java TLS client uses) against a running
//! responder: SHA-1 CertIDs, GET when the URL is at most 255 characters, POST otherwise,
//! delegated-signer validation and Java's own freshness checks.
//!
//! Needs `javac`/`java` (CI installs a JDK when missing); skips with a note otherwise.

mod common;

use common::*;
use ocsp_edge::server::Background;
use std::path::Path;
use std::process::Command;

/// Compiles OcspCheck.java once into a temporary directory; `None` when no JDK.
fn compile_checker(out: &Path) -> Option<()> {
    have("javac").then_some(())?;
    run_command(
        Command::new("javac")
            .arg("-d")
            .arg(out)
            .arg(repo().join("tests/java/OcspCheck.java")),
    )
    .assert_success();
    Some(())
}

fn java_check(classes: &Path, issuer: &str, leaf: &Path, url: &str) -> String {
    let output = run_command(
        Command::new("java")
            .arg("-cp")
            .arg(classes)
            .arg("OcspCheck")
            .arg(root_ca())
            .arg(issuer_ca(issuer))
            .arg(leaf)
            .arg(url),
    );
    output.assert_success();
    output.stdout.trim().to_string()
}

/// Java's CRLReason enum name for an OpenSSL reason field.
fn java_reason(field: &str) -> &'static str {
    match field.split(',').nth(1) {
        None => "UNSPECIFIED",
        Some("keyCompromise") | Some("keyTime") => "KEY_COMPROMISE",
        Some("CACompromise") => "CA_COMPROMISE",
        Some("affiliationChanged") => "AFFILIATION_CHANGED",
        Some("superseded") => "SUPERSEDED",
        Some("cessationOfOperation") => "CESSATION_OF_OPERATION",
        Some("unspecified") => "UNSPECIFIED",
        Some(other) => panic!("unexpected reason {other}"),
    }
}

fn revocation_epoch(field: &str) -> i64 {
    let date = field.split(',').next().unwrap();
    ocsp_edge::time::parse_asn1_time(date, true).unwrap().seconds()
}

#[test]
fn java_revocation_checker_agrees_over_get_and_post() {
    let classes = tempfile::tempdir().unwrap();
    let missing = compile_checker(classes.path())
        .is_none()
        .then(|| "javac is not installed or failed".to_string());
    if common::skip_without("java_revocation_checker_agrees_over_get_and_post", missing) {
        return;
    }
    let served = start_demo_server(vec![]);
    let short_url = format!("http://{}/", served.server.ocsp_addr);
    // Over 255 characters, Java switches from GET to POST; the OCSP path prefix is "/",
    // so the long path still reaches the responder.
    let long_url = format!("http://{}/{}/", served.server.ocsp_addr, "p".repeat(260));
    for issuer in ["ec", "rsa"] {
        let rows = index_rows(issuer);
        let good = rows.iter().find(|r| r.status == 'V').unwrap();
        let revoked: Vec<_> = rows.iter().filter(|r| r.status == 'R').take(4).collect();
        for url in [&short_url, &long_url] {
            let leaf = good.cert(issuer);
            assert_eq!(
                java_check(classes.path(), issuer, &leaf, url),
                "GOOD",
                "{issuer} {url}"
            );
            for row in &revoked {
                let leaf = row.cert(issuer);
                let expected = format!(
                    "REVOKED {} {}",
                    java_reason(&row.revocation),
                    revocation_epoch(&row.revocation)
                );
                assert_eq!(
                    java_check(classes.path(), issuer, &leaf, url),
                    expected,
                    "{issuer} {}",
                    row.serial
                );
            }
        }
        let unassigned = unassigned(issuer);
        let answer = java_check(classes.path(), issuer, &unassigned, &short_url);
        assert!(
            answer.starts_with("ERROR") && answer.to_uppercase().contains("UNAUTHORIZED"),
            "{answer}"
        );
    }
    let metrics = ocsp_edge_metrics(&served.server);
    assert!(
        metrics.contains(r#"method="GET",outcome="good"} 2"#),
        "Java used GET for short URLs:\n{metrics}"
    );
    assert!(
        metrics.contains(r#"method="POST",outcome="good"} 2"#),
        "and POST for long ones"
    );
}

fn ocsp_edge_metrics(server: &Background) -> String {
    String::from_utf8(server.render_metrics()).unwrap()
}

//! Java's PKIX revocation checker (what a Java TLS client uses) against a running
//! responder: SHA-1 CertIDs, GET when the URL is at most 255 characters, POST otherwise,
//! delegated-signer validation and Java's own freshness checks.
//!
//! Needs `javac`/`java` (CI installs a JDK when missing); skips with a note otherwise.

mod common;

use ocsp_edge::config::{Config, Sources};
use ocsp_edge::server::Background;
use ocsp_edge::time::UnixTime;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo")
}

struct Served {
    _dir: tempfile::TempDir,
    server: Background,
}

fn serve_demo() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let now = UnixTime::now();
    let plan = ocsp_edge::publish::PublishConfig::from_file(&fixtures().join("publish.toml"))
        .unwrap()
        .load(now)
        .unwrap();
    ocsp_edge::publish::publish(&plan, dir.path(), now, &mut |_| {}).unwrap();
    let trust: Vec<String> = ["ec/ca.pem", "rsa/ca.pem"]
        .iter()
        .map(|p| fixtures().join(p).display().to_string())
        .collect();
    let config = Config::load(Sources {
        overrides: vec![
            ("snapshots.dir", dir.path().display().to_string().into()),
            ("snapshots.trust", trust.into()),
            ("server.listen", "127.0.0.1:0".into()),
            ("server.admin_listen", "127.0.0.1:0".into()),
        ],
        ..Sources::default()
    })
    .unwrap();
    let server = Background::start(config).unwrap();
    Served { _dir: dir, server }
}

/// Compiles OcspCheck.java once into a temporary directory; `None` when no JDK.
fn compile_checker(out: &Path) -> Option<()> {
    let javac = Command::new("javac")
        .arg("-d")
        .arg(out)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java/OcspCheck.java"))
        .output()
        .ok()?;
    assert!(
        javac.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&javac.stderr)
    );
    Some(())
}

fn java_check(classes: &Path, issuer: &str, leaf: &Path, url: &str) -> String {
    let output = Command::new("java")
        .arg("-cp")
        .arg(classes)
        .arg("OcspCheck")
        .arg(fixtures().join("root/ca.pem"))
        .arg(fixtures().join(issuer).join("ca.pem"))
        .arg(leaf)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "java: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// (status letter, serial, revocation field) of every index line.
fn index(issuer: &str) -> Vec<(String, String, String)> {
    std::fs::read_to_string(fixtures().join(issuer).join("index.txt"))
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            (f[0].to_string(), f[3].to_string(), f[2].to_string())
        })
        .collect()
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
    let served = serve_demo();
    let short_url = format!("http://{}/", served.server.ocsp_addr);
    // Over 255 characters, Java switches from GET to POST; the OCSP path prefix is "/",
    // so the long path still reaches the responder.
    let long_url = format!("http://{}/{}/", served.server.ocsp_addr, "p".repeat(260));
    for issuer in ["ec", "rsa"] {
        let rows = index(issuer);
        let good = rows.iter().find(|r| r.0 == "V").unwrap();
        let revoked: Vec<_> = rows.iter().filter(|r| r.0 == "R").take(4).collect();
        let certs = fixtures().join(issuer).join("certs");
        for url in [&short_url, &long_url] {
            let leaf = certs.join(format!("{}.pem", good.1));
            assert_eq!(
                java_check(classes.path(), issuer, &leaf, url),
                "GOOD",
                "{issuer} {url}"
            );
            for row in &revoked {
                let leaf = certs.join(format!("{}.pem", row.1));
                let expected = format!("REVOKED {} {}", java_reason(&row.2), revocation_epoch(&row.2));
                assert_eq!(
                    java_check(classes.path(), issuer, &leaf, url),
                    expected,
                    "{issuer} {}",
                    row.1
                );
            }
        }
        let unassigned = fixtures().join(issuer).join("unassigned.pem");
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
    String::from_utf8(server.state.metrics.render()).unwrap()
}

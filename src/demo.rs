//! `ocsp-edge demo`: the zero-configuration tour. Publishes the bundled demo PKI (two
//! issuers, embedded in the binary) into a temporary directory and serves it, printing
//! `openssl ocsp` commands that query it.

use crate::publish::PublishConfig;
use crate::time::UnixTime;
use std::path::{Path, PathBuf};

/// The demo PKI files the publisher needs, embedded so the demo runs from anywhere.
const FILES: &[(&str, &str)] = &[
    ("publish.toml", include_str!("../fixtures/demo/publish.toml")),
    ("root/ca.pem", include_str!("../fixtures/demo/root/ca.pem")),
    ("ec/ca.pem", include_str!("../fixtures/demo/ec/ca.pem")),
    ("ec/ca.key", include_str!("../fixtures/demo/ec/ca.key")),
    ("ec/ocsp.pem", include_str!("../fixtures/demo/ec/ocsp.pem")),
    ("ec/ocsp.key", include_str!("../fixtures/demo/ec/ocsp.key")),
    ("ec/index.txt", include_str!("../fixtures/demo/ec/index.txt")),
    ("rsa/ca.pem", include_str!("../fixtures/demo/rsa/ca.pem")),
    ("rsa/ca.key", include_str!("../fixtures/demo/rsa/ca.key")),
    ("rsa/ocsp.pem", include_str!("../fixtures/demo/rsa/ocsp.pem")),
    ("rsa/ocsp.key", include_str!("../fixtures/demo/rsa/ocsp.key")),
    ("rsa/index.txt", include_str!("../fixtures/demo/rsa/index.txt")),
];

/// A prepared demo: the PKI written out and one snapshot published.
pub struct Demo {
    pub dir: tempfile::TempDir,
    pub snapshots: PathBuf,
    pub trust: Vec<PathBuf>,
}

/// Writes the embedded PKI to a temporary directory and publishes it at `now`.
pub fn prepare(now: UnixTime) -> Result<Demo, Box<dyn std::error::Error>> {
    let dir = tempfile::Builder::new().prefix("ocsp-edge-demo-").tempdir()?;
    for (name, content) in FILES {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, content)?;
    }
    let plan = PublishConfig::from_file(&dir.path().join("publish.toml"))?.load(now)?;
    let snapshots = dir.path().join("snapshots");
    let report = crate::publish::publish(&plan, &snapshots, now, &mut |_| {})?;
    tracing::info!(
        sequence = report.sequence,
        entries = report.entries,
        "demo snapshot published"
    );
    let trust = vec![dir.path().join("ec/ca.pem"), dir.path().join("rsa/ca.pem")];
    Ok(Demo {
        dir,
        snapshots,
        trust,
    })
}

/// The first serial in an embedded index with the given status letter.
fn first_serial(index: &str, status: &str) -> Option<String> {
    index
        .lines()
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&status))
        .and_then(|fields| fields.get(3).map(|s| s.to_string()))
}

/// The `openssl ocsp` commands to try against a demo served at `url`, run from the
/// repository root (they use the checked-in certificates under fixtures/demo).
pub fn instructions(url: &str) -> String {
    let index = FILES
        .iter()
        .find(|(n, _)| *n == "ec/index.txt")
        .map(|(_, c)| *c)
        .unwrap_or("");
    let demo = Path::new("fixtures/demo");
    let query = |cert: String| {
        format!(
            "openssl ocsp -issuer {issuer} -cert {cert} -url {url} -CAfile {root} -no_nonce -resp_text",
            issuer = demo.join("ec/ca.pem").display(),
            root = demo.join("root/ca.pem").display(),
        )
    };
    let cert = |serial: Option<String>| {
        demo.join(format!("ec/certs/{}.pem", serial.unwrap_or_default()))
            .display()
            .to_string()
    };
    format!(
        "ocsp-edge demo is serving the demo PKI on {url}\n\
         From the repository root, ask it about\n  a good certificate:\n    {good}\n  \
         a revoked one:\n    {revoked}\n  one the CA never recorded (answer: unauthorized):\n    {unassigned}\n",
        good = query(cert(first_serial(index, "V"))),
        revoked = query(cert(first_serial(index, "R"))),
        unassigned = query(demo.join("ec/unassigned.pem").display().to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_publishes_and_names_real_certificates() {
        let demo = prepare(UnixTime::now()).unwrap();
        assert_eq!(
            crate::snapshot::manifest_sequences(&demo.snapshots)
                .unwrap()
                .len(),
            1
        );
        let text = instructions("http://127.0.0.1:8080/");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for word in text.split_whitespace().filter(|w| w.starts_with("fixtures/")) {
            assert!(root.join(word).exists(), "{word} does not exist");
        }
        assert_eq!(text.matches("openssl ocsp").count(), 3);
    }
}

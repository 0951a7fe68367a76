//! What the fuzz targets share: the demo PKI from `fixtures/demo`, and one snapshot
//! published from it, built once per fuzzing process. Read only at start-up, never per
//! input, so the targets spend their time in the decoders.

use ocsp_edge::pki::{Certificate, SigningKey};
use ocsp_edge::publish::{publish, PublishConfig};
use ocsp_edge::snapshot::{Snapshot, SnapshotBytes, TrustAnchors};
use ocsp_edge::time::UnixTime;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub mod seeds;

/// The instant every target verifies at: inside the demo certificates' validity.
pub const NOW: UnixTime = UnixTime(1_790_000_000);

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo")
}

fn read(relative: &str) -> String {
    let path = fixtures().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

pub fn certificate(relative: &str) -> Certificate {
    Certificate::from_pem(&read(relative)).unwrap_or_else(|e| panic!("fixture {relative}: {e}"))
}

/// The demo issuers, EC then RSA.
pub fn issuers() -> &'static [Certificate; 2] {
    static ISSUERS: OnceLock<[Certificate; 2]> = OnceLock::new();
    ISSUERS.get_or_init(|| [certificate("ec/ca.pem"), certificate("rsa/ca.pem")])
}

pub fn trust() -> TrustAnchors {
    TrustAnchors::new(issuers().to_vec())
}

/// The EC issuer's delegated OCSP signer: certificate and key (ECDSA signs in
/// microseconds, so a target can sign a manifest per input).
pub fn ec_signer() -> &'static (Certificate, SigningKey) {
    static SIGNER: OnceLock<(Certificate, SigningKey)> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let certificate = certificate("ec/ocsp.pem");
        let kind = certificate.key_kind().expect("demo signer key kind");
        let key = SigningKey::from_pem(&read("ec/ocsp.key"), certificate.public_key(), kind)
            .expect("demo signer key");
        (certificate, key)
    })
}

/// A snapshot of the demo PKI as the publisher writes it, verified.
pub struct Published {
    pub manifest: Vec<u8>,
    pub bytes: Vec<u8>,
    pub snapshot: Arc<Snapshot>,
}

pub fn published() -> &'static Published {
    static PUBLISHED: OnceLock<Published> = OnceLock::new();
    PUBLISHED.get_or_init(|| publish_demo(&fixtures().join("publish.toml"), &trust()))
}

/// Publishes the configuration at `config` (the demo's, or one derived from it) into a
/// temporary directory and verifies the result against `trust`.
pub fn publish_demo(config: &Path, trust: &TrustAnchors) -> Published {
    let plan = PublishConfig::from_file(config)
        .and_then(|c| c.load(NOW))
        .expect("demo publish configuration");
    let dir = tempfile::tempdir().expect("temporary directory");
    let report = publish(&plan, dir.path(), NOW, &mut |_| {}).expect("demo publish");
    let manifest = std::fs::read(&report.manifest).expect("published manifest");
    let bytes = std::fs::read(&report.snapshot).expect("published snapshot");
    let snapshot = Snapshot::verify(&manifest, SnapshotBytes::Owned(bytes.clone()), trust, NOW)
        .expect("the demo snapshot verifies");
    Published {
        manifest,
        bytes,
        snapshot: Arc::new(snapshot),
    }
}

/// A publish configuration derived from the demo's, written into `dir`: only the issuers
/// named, each with only the first `records` lines of its index.txt when given (small
/// snapshots make fast fuzzing seeds). Paths point back into fixtures/demo.
pub fn derived_config(dir: &Path, issuers: &[&str], records: Option<usize>) -> PathBuf {
    let demo = fixtures();
    let text = read("publish.toml");
    let mut parts = text.split("[[issuer]]");
    let mut config = parts.next().unwrap_or_default().to_string();
    for block in parts {
        let Some(name) = issuers
            .iter()
            .find(|n| block.contains(&format!("name = \"{n}\"")))
        else {
            continue;
        };
        let mut block = block.replace(&format!("\"{name}/"), &format!("\"{}/{name}/", demo.display()));
        if let Some(records) = records {
            let index = read(&format!("{name}/index.txt"));
            let kept: String = index.lines().take(records).map(|l| format!("{l}\n")).collect();
            let path = dir.join(format!("{name}-index.txt"));
            std::fs::write(&path, kept).expect("derived index.txt");
            let original = format!("index = \"{}/{name}/index.txt\"", demo.display());
            block = block.replace(&original, &format!("index = \"{}\"", path.display()));
        }
        config.push_str("[[issuer]]");
        config.push_str(&block);
    }
    let path = dir.join(format!("publish-{}.toml", issuers.join("-")));
    std::fs::write(&path, config).expect("derived publish.toml");
    path
}

/// A small snapshot of the EC issuer alone (its first few certificates): what the
/// snapshot targets sign manifests for with [`ec_signer`].
pub fn published_ec() -> &'static Published {
    static PUBLISHED: OnceLock<Published> = OnceLock::new();
    PUBLISHED.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        publish_demo(&derived_config(dir.path(), &["ec"], Some(12)), &trust_ec())
    })
}

/// The trust anchors of [`published_ec`]: the EC issuer alone.
pub fn trust_ec() -> TrustAnchors {
    TrustAnchors::new(vec![issuers()[0].clone()])
}

//! Writes the seed corpus of every fuzz target into `<dir>/<target>/`, all of it derived
//! from fixtures/demo: requests for its certificates, snapshots, manifests and CRLs
//! published from it, its index.txt files and keys. The `seeds` target runs it (so it
//! shares the fuzz build); fuzz/run.sh runs that before fuzzing. The files are
//! regenerated, not committed (signatures are randomised, so exact bytes differ between
//! runs; what they cover does not).

use crate::{fixtures, issuers, published, published_ec};
use base64::Engine;
use ocsp_edge::cache::feed::{issuers_of, ChangeFeed, FeedChange, FeedStep, Gone};
use ocsp_edge::ocsp::{encode_request, RequestedCertId};
use ocsp_edge::pki::{CertIdHash, Certificate};
use ocsp_edge::snapshot::DocumentKind;
use std::path::{Path, PathBuf};

struct Corpus {
    root: PathBuf,
    written: usize,
}

impl Corpus {
    fn add(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed file");
        self.written += 1;
    }

    /// A seed for a target whose first input byte chooses a mode.
    fn add_with(&mut self, target: &str, name: &str, choice: u8, bytes: &[u8]) {
        let mut seed = vec![choice];
        seed.extend_from_slice(bytes);
        self.add(target, name, &seed);
    }
}

fn text(relative: &str) -> String {
    std::fs::read_to_string(fixtures().join(relative)).expect("fixture")
}

/// Writes every target's seeds under `root`; returns how many.
pub fn write_all(root: &Path) -> usize {
    let mut corpus = Corpus {
        root: root.to_path_buf(),
        written: 0,
    };
    requests(&mut corpus);
    snapshots(&mut corpus);
    inputs(&mut corpus);
    pki(&mut corpus);
    corpus.written
}

/// A few demo leaves of each issuer (the first is good, the seventh revoked).
fn leaves(issuer: &str) -> Vec<Certificate> {
    let index = text(&format!("{issuer}/index.txt"));
    index
        .lines()
        .take(7)
        .filter_map(|line| line.split('\t').nth(3))
        .map(|serial| crate::certificate(&format!("{issuer}/certs/{serial}.pem")))
        .collect()
}

fn requests(corpus: &mut Corpus) {
    let b64 = base64::engine::general_purpose::STANDARD;
    for (issuer, name) in issuers().iter().zip(["ec", "rsa"]) {
        for leaf in leaves(name).iter().step_by(3) {
            for hash in CertIdHash::ALL {
                let id = RequestedCertId {
                    hash,
                    issuer_name_hash: issuer.name_hash(hash),
                    issuer_key_hash: issuer.key_hash(hash),
                    serial: leaf.serial().clone(),
                };
                for nonce in [None, Some(&[0x42u8; 16][..])] {
                    let der = encode_request(&id, nonce);
                    let label = format!("{name}-{}-{}-{}", leaf.serial(), hash.name(), nonce.is_some());
                    corpus.add("request", &label, &der);
                    corpus.add("request_differential", &label, &der);
                    let plain = b64.encode(&der);
                    let escaped = plain.replace('/', "%2F").replace('+', "%2B").replace('=', "%3D");
                    let url_safe = plain
                        .replace('/', "_")
                        .replace('+', "-")
                        .trim_end_matches('=')
                        .to_string();
                    for (variant, path) in [
                        ("plain", plain.clone()),
                        ("escaped", escaped),
                        ("urlsafe", url_safe),
                    ] {
                        corpus.add_with("get_path", &format!("{label}-{variant}"), 0xff, path.as_bytes());
                    }
                    corpus.add_with(
                        "get_path",
                        &format!("{label}-prefixed"),
                        0xff,
                        format!("ocsp/{plain}").as_bytes(),
                    );
                }
            }
        }
    }
}

fn snapshots(corpus: &mut Corpus) {
    let full = published();
    let ec = published_ec();
    corpus.add("manifest", "demo", &full.manifest);
    corpus.add("manifest", "ec", &ec.manifest);
    corpus.add("snapshot_view", "demo", &full.bytes);
    corpus.add("snapshot_view", "ec", &ec.bytes);
    corpus.add("snapshot_verified", "ec", &ec.bytes);
    for document in full.snapshot.documents() {
        if document.kind == DocumentKind::CrlIndex {
            continue;
        }
        let (_, bytes) = full.snapshot.document(&document.path).expect("listed document");
        corpus.add("crl", &document.path.replace('/', "_"), bytes);
    }
    let etag = format!("\"{}\"", full.snapshot.documents()[0].sha256);
    let modified = ocsp_edge::time::UnixTime(full.snapshot.documents()[0].this_update).to_http_date();
    for (name, headers) in [
        ("range", "bytes=0-99".to_string()),
        ("suffix", "bytes=-10".into()),
        ("open", "bytes=5-".into()),
        ("multi", "bytes=0-1,4-5".into()),
        ("if-range", format!("bytes=10-20\n{etag}")),
        ("if-none-match", format!("!\n!\n{etag}, W/\"x\"")),
        ("if-modified-since", format!("!\n!\n!\n{modified}")),
    ] {
        corpus.add_with("range_headers", name, 0, headers.as_bytes());
    }

    let snapshot = &full.snapshot;
    let mut changes = Vec::new();
    for (position, name) in snapshot.issuer_names().enumerate() {
        for (serial, _) in snapshot.live_statuses(position).take(3) {
            changes.push(FeedChange {
                issuer: name.to_string(),
                serial: serial.to_hex(),
            });
        }
    }
    // Evidence is the signed manifest of the snapshot a step leads to (the demo one).
    let manifest = String::from_utf8_lossy(&full.manifest).into_owned();
    let sequence = snapshot.sequence();
    let issuers = issuers_of(snapshot);
    let count = changes.len() as u64;
    let feed = ChangeFeed {
        from: sequence - 1,
        to: sequence,
        issuers: issuers.clone(),
        changes,
        steps: vec![FeedStep {
            from: sequence - 1,
            to: sequence,
            manifest: manifest.clone(),
            first: 0,
            count,
        }],
    };
    corpus.add_with(
        "change_feed",
        "changes",
        2,
        &serde_json::to_vec(&feed).expect("json"),
    );
    let gone = Gone {
        to: sequence,
        issuers,
        manifest: Some(manifest),
    };
    corpus.add_with(
        "change_feed",
        "gone",
        1,
        &serde_json::to_vec(&gone).expect("json"),
    );
}

fn inputs(corpus: &mut Corpus) {
    for name in ["ec", "rsa"] {
        let index = text(&format!("{name}/index.txt"));
        corpus.add_with("publish_input", &format!("{name}-index"), 0, index.as_bytes());
        let head: String = index.lines().skip(5).take(6).map(|l| format!("{l}\n")).collect();
        corpus.add_with("publish_input", &format!("{name}-index-part"), 0, head.as_bytes());
    }
    let json_lines = concat!(
        "{\"serial\":\"418120203C617166D5C7CEB028FE3776\",\"status\":\"good\",\"not_after\":\"2036-01-01T00:00:00Z\"}\n",
        "{\"serial\":\"1E0960B0ADC3E0CB164197E49DDD009C\",\"status\":\"revoked\",\"revoked_at\":\"2026-02-01T00:00:00Z\",",
        "\"reason\":\"keyCompromise\",\"invalidity_date\":\"2026-01-15T00:00:00Z\"}\n",
        "\n",
        "{\"serial\":\"1269B6E8027FCBAA9EDAA8903C3AE2A6\",\"status\":\"expired\"}\r\n",
        "{\"serial\":\"0245B151B63F537660AB026171522CCA\",\"status\":\"valid\"}\n",
    );
    corpus.add_with("publish_input", "json-lines", 1, json_lines.as_bytes());
}

fn pki(corpus: &mut Corpus) {
    for file in [
        "root/ca.pem",
        "ec/ca.pem",
        "ec/ocsp.pem",
        "rsa/ca.pem",
        "rsa/ocsp.pem",
        "ec/unassigned.pem",
    ] {
        let pem = text(file);
        let name = file.replace('/', "_");
        corpus.add_with("pki", &format!("{name}-pem"), 1, pem.as_bytes());
        let der = Certificate::from_pem(&pem).expect("fixture certificate");
        corpus.add_with("pki", &format!("{name}-der"), 0, der.der());
    }
    // Keys: choice 2 checks against the EC signer, 0x82 against the RSA one (see pki.rs).
    for (file, choice) in [
        ("ec/ocsp.key", 2),
        ("ec/ca.key", 2),
        ("ec/leaf.key", 2),
        ("rsa/ocsp.key", 0x82),
        ("rsa/ca.key", 0x82),
        ("rsa/leaf.key", 0x82),
    ] {
        corpus.add_with("pki", &file.replace('/', "_"), choice, text(file).as_bytes());
    }
}

//! Test data: a synthetic CA feed (JSON Lines, plus the same certificates as an OpenSSL
//! index.txt for the `openssl ocsp` peer), the OCSP requests for it, and the statuses the
//! answers must carry.
//!
//! Files:
//! - requests file: one request per line, standard base64 of the DER OCSPRequest.
//! - check file: one line per certificate, `SERIALHEX good|revoked` (the serial as
//!   index.txt spells it: uppercase hex of the magnitude).

use crate::check::{Expectation, STATUS_GOOD, STATUS_REVOKED};
use base64::Engine;
use ocsp_edge::model::{CertRecord, CertStatus};
use ocsp_edge::ocsp::request::{decode_request, encode_request, RequestedCertId};
use ocsp_edge::pki::cert::{CertIdHash, Certificate};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// splitmix64: a small deterministic generator, so runs are repeatable.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// A generated feed: JSON Lines for `ocsp-edge publish --json-lines`, and index.txt.
pub struct Feed {
    pub json_lines: String,
    pub index_txt: String,
    pub revoked: usize,
}

/// `count` distinct 16-octet positive serials (as large CAs use), `revoked_percent` of
/// them revoked (keyCompromise on 2026-01-02), spread evenly.
pub fn generate_feed(count: usize, revoked_percent: u32, seed: u64) -> Feed {
    let mut rng = Rng::new(seed);
    let mut seen = std::collections::HashSet::with_capacity(count);
    let mut json_lines = String::with_capacity(count * 100);
    let mut index_txt = String::with_capacity(count * 80);
    let mut revoked = 0;
    let mut i = 0usize;
    while seen.len() < count {
        let mut serial = [0u8; 16];
        for chunk in serial.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_be_bytes());
        }
        // Positive, no leading zero octet: the hex below is then canonical everywhere.
        serial[0] = (serial[0] & 0x7f).max(0x01);
        let hex = hex::encode_upper(serial);
        if !seen.insert(hex.clone()) {
            continue;
        }
        let is_revoked = ((i + 1) * revoked_percent as usize) / 100 > (i * revoked_percent as usize) / 100;
        i += 1;
        if is_revoked {
            revoked += 1;
            let _ = writeln!(
                json_lines,
                r#"{{"serial":"{hex}","status":"revoked","revoked_at":"2026-01-02T00:00:00Z","reason":"keyCompromise"}}"#
            );
            let _ = writeln!(
                index_txt,
                "R\t360101000000Z\t260102000000Z,keyCompromise\t{hex}\tunknown\t/CN=load-{i}.test"
            );
        } else {
            let _ = writeln!(json_lines, r#"{{"serial":"{hex}","status":"good"}}"#);
            let _ = writeln!(index_txt, "V\t360101000000Z\t\t{hex}\tunknown\t/CN=load-{i}.test");
        }
    }
    Feed {
        json_lines,
        index_txt,
        revoked,
    }
}

/// Reads a feed with ocsp-edge's own parsers: JSON Lines, or index.txt when the file name
/// ends in `.txt`.
pub fn read_records(feed: &Path) -> Result<Vec<CertRecord>, Error> {
    let text = std::fs::read_to_string(feed).map_err(|e| format!("{}: {e}", feed.display()))?;
    let parsed = if feed.extension().is_some_and(|e| e == "txt") {
        ocsp_edge::publish::input::parse_openssl_index(feed, &text)?
    } else {
        ocsp_edge::publish::input::parse_json_lines(feed, &text)?
    };
    Ok(parsed.records)
}

/// The prepared files' contents.
pub struct Prepared {
    pub requests_b64: String,
    pub check: String,
    pub requests: usize,
}

/// One request per certificate and CertID hash (SHA-1 and SHA-256), shuffled, without a
/// nonce (pre-signed responses cannot echo one).
pub fn prepare(issuer: &Certificate, records: &[CertRecord], seed: u64) -> Prepared {
    let b64 = base64::engine::general_purpose::STANDARD;
    let hashes: Vec<_> = CertIdHash::ALL
        .into_iter()
        .map(|h| (h, issuer.name_hash(h), issuer.key_hash(h)))
        .collect();
    let mut lines = Vec::with_capacity(records.len() * hashes.len());
    let mut check = String::with_capacity(records.len() * 42);
    for record in records {
        for (hash, name_hash, key_hash) in &hashes {
            let id = RequestedCertId {
                hash: *hash,
                issuer_name_hash: name_hash.clone(),
                issuer_key_hash: key_hash.clone(),
                serial: record.serial.clone(),
            };
            lines.push(b64.encode(encode_request(&id, None)));
        }
        let status = match record.status {
            CertStatus::Good => "good",
            CertStatus::Revoked { .. } => "revoked",
        };
        let _ = writeln!(check, "{} {status}", record.serial.to_hex());
    }
    Rng::new(seed).shuffle(&mut lines);
    let requests = lines.len();
    let mut requests_b64 = lines.join("\n");
    requests_b64.push('\n');
    Prepared {
        requests_b64,
        check,
        requests,
    }
}

/// One request ready for the wire, with what its answer must say (if checking).
pub struct LoadedRequest {
    pub der: Vec<u8>,
    pub expect: Option<Expectation>,
}

/// Reads a requests file and, optionally, a check file (`SERIALHEX good|revoked`).
pub fn load_requests(requests: &Path, check: Option<&Path>) -> Result<Vec<LoadedRequest>, Error> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let text = std::fs::read_to_string(requests).map_err(|e| format!("{}: {e}", requests.display()))?;
    let statuses: Option<HashMap<String, u8>> = match check {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut map = HashMap::new();
            for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let mut words = line.split_whitespace();
                let (Some(serial), Some(status)) = (words.next(), words.next()) else {
                    return Err(
                        format!("{}:{}: expected `SERIALHEX good|revoked`", path.display(), n + 1).into(),
                    );
                };
                let tag = match status {
                    "good" => STATUS_GOOD,
                    "revoked" => STATUS_REVOKED,
                    other => {
                        return Err(format!("{}:{}: unknown status {other:?}", path.display(), n + 1).into())
                    }
                };
                map.insert(serial.to_ascii_uppercase(), tag);
            }
            Some(map)
        }
    };
    let mut loaded = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let where_ = || format!("{}:{}", requests.display(), n + 1);
        let der = b64
            .decode(line.trim())
            .map_err(|e| format!("{}: not base64: {e}", where_()))?;
        let expect = match &statuses {
            None => None,
            Some(map) => {
                let request = decode_request(&der).map_err(|e| format!("{}: {e}", where_()))?;
                let id = request.cert_id;
                let status_tag = *map
                    .get(&id.serial.to_hex())
                    .ok_or_else(|| format!("{}: serial {} is not in the check file", where_(), id.serial))?;
                Some(Expectation {
                    hash_oid: id.hash.oid().to_vec(),
                    issuer_name_hash: id.issuer_name_hash,
                    issuer_key_hash: id.issuer_key_hash,
                    serial: id.serial.as_der_content().to_vec(),
                    status_tag,
                })
            }
        };
        loaded.push(LoadedRequest { der, expect });
    }
    if loaded.is_empty() {
        return Err(format!("{}: no requests", requests.display()).into());
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::CheckFailure;
    use ocsp_edge::publish::{publish, PublishConfig};
    use ocsp_edge::snapshot::verify::{Snapshot, SnapshotBytes, TrustAnchors};
    use ocsp_edge::time::UnixTime;
    use std::path::PathBuf;

    fn demo(file: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/demo/ec")
            .join(file)
    }

    #[test]
    fn feed_is_distinct_and_ten_percent_revoked() {
        let feed = generate_feed(1000, 10, 1);
        assert_eq!(feed.revoked, 100);
        assert_eq!(feed.json_lines.lines().count(), 1000);
        assert_eq!(feed.index_txt.lines().count(), 1000);
        let path = Path::new("feed.txt");
        let parsed = ocsp_edge::publish::input::parse_openssl_index(path, &feed.index_txt).unwrap();
        assert_eq!(parsed.records.len(), 1000);
    }

    /// The whole chain the load test relies on: generate, publish, prepare, answer, check.
    #[test]
    fn prepared_requests_are_answered_and_checked() {
        let now = UnixTime::now();
        let dir = tempfile_dir();
        let feed = generate_feed(200, 10, 7);
        let feed_path = dir.join("feed.jsonl");
        std::fs::write(&feed_path, &feed.json_lines).unwrap();
        let config_path = dir.join("publish.toml");
        std::fs::write(&config_path, publish_toml(&feed_path)).unwrap();
        let config = PublishConfig::from_file(&config_path).unwrap();
        let plan = config.load(now).unwrap();
        let report = publish(&plan, &dir.join("snapshots"), now, &mut |_| {}).unwrap();
        let trust = TrustAnchors::new(vec![plan.issuers[0].certificate.clone()]);
        let snapshot = Snapshot::verify(
            &std::fs::read(&report.manifest).unwrap(),
            SnapshotBytes::Owned(std::fs::read(&report.snapshot).unwrap()),
            &trust,
            now,
        )
        .unwrap();

        let records = read_records(&feed_path).unwrap();
        let prepared = prepare(&plan.issuers[0].certificate, &records, 3);
        assert_eq!(prepared.requests, 400);
        std::fs::write(dir.join("requests.b64"), &prepared.requests_b64).unwrap();
        std::fs::write(dir.join("check.txt"), &prepared.check).unwrap();
        let loaded = load_requests(&dir.join("requests.b64"), Some(&dir.join("check.txt"))).unwrap();
        assert_eq!(loaded.len(), 400);
        let mut revoked = 0;
        for request in &loaded {
            let found =
                ocsp_edge::responder::answer(Some(&snapshot), &request.der, now, Default::default()).unwrap();
            let expect = request.expect.as_ref().unwrap();
            expect.check(found.response).unwrap();
            revoked += usize::from(expect.status_tag == STATUS_REVOKED);
            // A response for another certificate, or with the other status, fails.
            let mut wrong = expect.clone();
            wrong.status_tag ^= STATUS_GOOD ^ STATUS_REVOKED;
            assert_eq!(wrong.check(found.response), Err(CheckFailure::WrongStatus));
            let mut wrong = expect.clone();
            *wrong.serial.last_mut().unwrap() ^= 1;
            assert_eq!(wrong.check(found.response), Err(CheckFailure::WrongCertId));
            let mut truncated = found.response.to_vec();
            truncated.pop();
            assert_eq!(expect.check(&truncated), Err(CheckFailure::NotOcsp));
        }
        assert_eq!(revoked, 40);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A publisher configuration for the EC demo issuer (a file, so that new optional
    /// configuration fields need no change here).
    fn publish_toml(feed: &Path) -> String {
        format!(
            "validity = \"96h\"\nkeep = 1\n[[issuer]]\nname = \"ec\"\ncertificate = {:?}\njson_lines = {:?}\nsigner_certificate = {:?}\nsigner_key = {:?}\n",
            demo("ca.pem"),
            feed,
            demo("ocsp.pem"),
            demo("ocsp.key"),
        )
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "loadtest-prepare-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

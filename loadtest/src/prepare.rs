//! Test data: a synthetic CA feed (JSON Lines, plus the same certificates as an OpenSSL
//! index.txt for the `openssl ocsp` peer), the OCSP requests for it, and the statuses the
//! answers must carry.
//!
//! Files:
//! - requests file: one request per line, standard base64 of the DER OCSPRequest.
//! - check file: one line per certificate, `SERIALHEX good|revoked|any` (the serial as
//!   index.txt spells it: uppercase hex of the magnitude; `any`: good or revoked, for a
//!   certificate whose status changes between the snapshots served during the run).

use crate::check::{Expectation, STATUS_GOOD, STATUS_GOOD_OR_REVOKED, STATUS_REVOKED};
use base64::Engine;
use ocsp_edge::model::{CertRecord, CertStatus};
use ocsp_edge::ocsp::{decode_request, encode_request, RequestedCertId};
use ocsp_edge::pki::{CertIdHash, Certificate};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
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

/// What to generate: `count` distinct 16-octet positive serials (as large CAs use),
/// `revoked_percent` of them revoked (keyCompromise on 2026-01-02), spread evenly.
///
/// Variants model successive publishes of the same CA: every variant of one `seed` has the
/// same serials and the same base statuses, except that `changed_percent` of the good
/// certificates (the same ones in every variant) are revoked or not depending on the
/// variant (variant 0 is the base, with none of them revoked). Successive variants then
/// differ in about half of that set.
#[derive(Clone, Copy, Debug)]
pub struct FeedSpec {
    pub count: usize,
    pub revoked_percent: u32,
    pub seed: u64,
    pub changed_percent: u32,
    pub variant: u64,
}

impl FeedSpec {
    pub fn new(count: usize, revoked_percent: u32, seed: u64) -> FeedSpec {
        FeedSpec {
            count,
            revoked_percent,
            seed,
            changed_percent: 0,
            variant: 0,
        }
    }
}

/// The splitmix64 finaliser: a well-mixed hash of one word.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Counts of a written feed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FeedStats {
    pub written: usize,
    pub revoked: usize,
    /// Certificates whose status depends on the variant.
    pub changing: usize,
}

/// Writes a feed as JSON Lines for `ocsp-edge publish --json-lines` and, optionally, the
/// same certificates as an OpenSSL index.txt (streamed: memory does not grow with `count`
/// beyond a set of serials).
pub fn write_feed(
    spec: &FeedSpec,
    json: &mut dyn std::io::Write,
    mut index: Option<&mut dyn std::io::Write>,
) -> std::io::Result<FeedStats> {
    let mut rng = Rng::new(spec.seed);
    let mut seen = std::collections::HashSet::with_capacity(spec.count);
    let mut stats = FeedStats::default();
    let percent = spec.revoked_percent as usize;
    let mut i = 0usize;
    while seen.len() < spec.count {
        let high = rng.next_u64();
        let low = rng.next_u64();
        // Positive, no leading zero octet: the hex below is then canonical everywhere.
        let mut serial = ((high as u128) << 64) | low as u128;
        let top = ((serial >> 120) as u8 & 0x7f).max(0x01);
        serial = (serial & !(0xffu128 << 120)) | ((top as u128) << 120);
        if !seen.insert(serial) {
            continue;
        }
        let hex = format!("{serial:032X}");
        let mut is_revoked = ((i + 1) * percent) / 100 > (i * percent) / 100;
        let index_number = i;
        i += 1;
        if !is_revoked && mix(spec.seed ^ mix(index_number as u64)) % 100 < spec.changed_percent as u64 {
            stats.changing += 1;
            is_revoked = spec.variant > 0 && mix(mix(index_number as u64) ^ spec.variant) & 1 == 1;
        }
        let n = index_number + 1;
        if is_revoked {
            stats.revoked += 1;
            writeln!(
                json,
                r#"{{"serial":"{hex}","status":"revoked","revoked_at":"2026-01-02T00:00:00Z","reason":"keyCompromise"}}"#
            )?;
            if let Some(index) = index.as_mut() {
                writeln!(
                    index,
                    "R\t360101000000Z\t260102000000Z,keyCompromise\t{hex}\tunknown\t/CN=load-{n}.test"
                )?;
            }
        } else {
            writeln!(json, r#"{{"serial":"{hex}","status":"good"}}"#)?;
            if let Some(index) = index.as_mut() {
                writeln!(index, "V\t360101000000Z\t\t{hex}\tunknown\t/CN=load-{n}.test")?;
            }
        }
        stats.written += 1;
    }
    Ok(stats)
}

/// A generated feed held in memory: JSON Lines and index.txt.
pub struct Feed {
    pub json_lines: String,
    pub index_txt: String,
    pub revoked: usize,
}

/// [`write_feed`] into strings (for small feeds and tests).
pub fn generate_feed(count: usize, revoked_percent: u32, seed: u64) -> Feed {
    generate_variant(&FeedSpec::new(count, revoked_percent, seed))
}

pub fn generate_variant(spec: &FeedSpec) -> Feed {
    let (mut json, mut index) = (Vec::new(), Vec::new());
    let stats = write_feed(spec, &mut json, Some(&mut index)).expect("writing to memory");
    Feed {
        json_lines: String::from_utf8(json).expect("ASCII"),
        index_txt: String::from_utf8(index).expect("ASCII"),
        revoked: stats.revoked,
    }
}

/// Reads a feed with ocsp-edge's own parsers: JSON Lines, or index.txt when the file name
/// ends in `.txt`.
pub fn read_records(feed: &Path) -> Result<Vec<CertRecord>, Error> {
    let mut records = Vec::new();
    for_each_record(feed, &mut |record| records.push(record))?;
    Ok(records)
}

/// Lines parsed per call of ocsp-edge's parser when streaming a feed.
const CHUNK_LINES: usize = 65_536;

/// Streams a feed's records through ocsp-edge's own parsers (JSON Lines, or index.txt when
/// the file name ends in `.txt`), a chunk of lines at a time, so that a feed of ten
/// million certificates never has to be in memory at once. (Duplicate serials are caught
/// within a chunk only.) Returns the number of records.
pub fn for_each_record(feed: &Path, each: &mut dyn FnMut(CertRecord)) -> Result<usize, Error> {
    use std::io::BufRead;
    let where_ = |e: &dyn std::fmt::Display| format!("{}: {e}", feed.display());
    let file = std::fs::File::open(feed).map_err(|e| where_(&e))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let index = feed.extension().is_some_and(|e| e == "txt");
    let mut chunk = String::new();
    let mut total = 0;
    loop {
        chunk.clear();
        let mut lines = 0;
        while lines < CHUNK_LINES && reader.read_line(&mut chunk).map_err(|e| where_(&e))? > 0 {
            lines += 1;
        }
        if lines == 0 {
            return Ok(total);
        }
        let parsed = if index {
            ocsp_edge::publish::input::parse_openssl_index(feed, &chunk)?
        } else {
            ocsp_edge::publish::input::parse_json_lines(feed, &chunk)?
        };
        total += parsed.records.len();
        parsed.records.into_iter().for_each(&mut *each);
    }
}

/// A uniform random sample of `size` records of a feed (reservoir sampling: one pass,
/// memory for the sample only), in feed order; every record if the feed is smaller.
pub fn sample_records(feed: &Path, size: usize, seed: u64) -> Result<Vec<CertRecord>, Error> {
    let mut rng = Rng::new(seed);
    let mut reservoir: Vec<(usize, CertRecord)> = Vec::with_capacity(size.min(1 << 24));
    let mut seen = 0usize;
    for_each_record(feed, &mut |record| {
        if reservoir.len() < size {
            reservoir.push((seen, record));
        } else {
            let slot = rng.below(seen + 1);
            if slot < size {
                reservoir[slot] = (seen, record);
            }
        }
        seen += 1;
    })?;
    reservoir.sort_unstable_by_key(|(position, _)| *position);
    Ok(reservoir.into_iter().map(|(_, record)| record).collect())
}

/// Serials (as [`Serial::to_hex`](ocsp_edge::model::Serial::to_hex) spells them) of `records` whose status in any of
/// `others` (later feeds of the same CA) differs from theirs.
pub fn changing_serials(records: &[CertRecord], others: &[PathBuf]) -> Result<HashSet<String>, Error> {
    let base: HashMap<String, bool> = records
        .iter()
        .map(|r| (r.serial.to_hex(), is_revoked(r)))
        .collect();
    let mut changing = HashSet::new();
    for feed in others {
        for_each_record(feed, &mut |record| {
            let hex = record.serial.to_hex();
            if base
                .get(&hex)
                .is_some_and(|&revoked| revoked != is_revoked(&record))
            {
                changing.insert(hex);
            }
        })?;
    }
    Ok(changing)
}

fn is_revoked(record: &CertRecord) -> bool {
    matches!(record.status, CertStatus::Revoked { .. })
}

/// The prepared files' contents.
pub struct Prepared {
    pub requests_b64: String,
    pub check: String,
    pub requests: usize,
}

/// One request per certificate and CertID hash (SHA-1 and SHA-256), shuffled, without a
/// nonce (pre-signed responses cannot echo one). Serials in `changing` are expected to be
/// `good` or `revoked` (`any` in the check file).
pub fn prepare(
    issuer: &Certificate,
    records: &[CertRecord],
    changing: &HashSet<String>,
    seed: u64,
) -> Prepared {
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
        let hex = record.serial.to_hex();
        let status = if changing.contains(&hex) {
            "any"
        } else if is_revoked(record) {
            "revoked"
        } else {
            "good"
        };
        let _ = writeln!(check, "{hex} {status}");
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
                    "any" => STATUS_GOOD_OR_REVOKED,
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
    use ocsp_edge::snapshot::{Snapshot, SnapshotBytes, TrustAnchors};
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

    #[test]
    fn variants_change_only_the_changing_set() {
        let spec = |variant| FeedSpec {
            changed_percent: 5,
            variant,
            ..FeedSpec::new(2000, 10, 4)
        };
        let base = generate_variant(&spec(0));
        assert_eq!(
            base.json_lines,
            generate_feed(2000, 10, 4).json_lines,
            "variant 0 is the base"
        );
        let dir = tempfile_dir();
        let mut others = Vec::new();
        for variant in 1..=3 {
            let path = dir.join(format!("v{variant}.jsonl"));
            std::fs::write(&path, generate_variant(&spec(variant)).json_lines).unwrap();
            others.push(path);
        }
        let base_path = dir.join("v0.jsonl");
        std::fs::write(&base_path, &base.json_lines).unwrap();
        let records = read_records(&base_path).unwrap();
        let changing = changing_serials(&records, &others).unwrap();
        let (mut stats_json, mut sink) = (Vec::new(), Vec::new());
        let stats = write_feed(&spec(1), &mut stats_json, Some(&mut sink)).unwrap();
        // ~5% of the ~1800 good certificates may change; over three variants most do.
        assert!((60..=120).contains(&stats.changing), "{stats:?}");
        assert!(changing.len() > stats.changing / 2 && changing.len() <= stats.changing);
        let v1 = read_records(&others[0]).unwrap();
        let differs = records
            .iter()
            .zip(&v1)
            .filter(|(a, b)| is_revoked(a) != is_revoked(b))
            .count();
        assert!(differs > 0 && differs < stats.changing, "{differs}");
        assert!(records.iter().zip(&v1).all(|(a, b)| a.serial == b.serial));

        // Those serials are `any` in the check file, and load as such.
        let issuer = Certificate::from_pem(&std::fs::read_to_string(demo("ca.pem")).unwrap()).unwrap();
        let prepared = prepare(&issuer, &records, &changing, 1);
        let anys = prepared.check.lines().filter(|l| l.ends_with(" any")).count();
        assert_eq!(anys, changing.len());
        std::fs::write(dir.join("requests.b64"), &prepared.requests_b64).unwrap();
        std::fs::write(dir.join("check.txt"), &prepared.check).unwrap();
        let loaded = load_requests(&dir.join("requests.b64"), Some(&dir.join("check.txt"))).unwrap();
        let any_tags = loaded
            .iter()
            .filter(|r| r.expect.as_ref().unwrap().status_tag == STATUS_GOOD_OR_REVOKED)
            .count();
        assert_eq!(any_tags, 2 * changing.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn samples_are_uniform_distinct_and_streamed() {
        let dir = tempfile_dir();
        let path = dir.join("feed.jsonl");
        // More lines than one parser chunk, so the streaming crosses chunk boundaries.
        let count = CHUNK_LINES + 1000;
        std::fs::write(&path, generate_feed(count, 10, 5).json_lines).unwrap();
        let all = read_records(&path).unwrap();
        assert_eq!(all.len(), count);
        let sample = sample_records(&path, 5000, 1).unwrap();
        assert_eq!(sample.len(), 5000);
        let distinct: HashSet<String> = sample.iter().map(|r| r.serial.to_hex()).collect();
        assert_eq!(distinct.len(), 5000);
        // Drawn from the whole feed, not its start: about 1000/66536 of it from the tail.
        let tail: HashSet<String> = all[CHUNK_LINES..].iter().map(|r| r.serial.to_hex()).collect();
        let from_tail = sample
            .iter()
            .filter(|r| tail.contains(&r.serial.to_hex()))
            .count();
        assert!((40..=115).contains(&from_tail), "{from_tail}");
        // ~10% revoked, as in the feed.
        let revoked = sample.iter().filter(|r| is_revoked(r)).count();
        assert!((400..=600).contains(&revoked), "{revoked}");
        // A sample larger than the feed is the feed.
        let small = dir.join("small.jsonl");
        std::fs::write(&small, generate_feed(10, 10, 5).json_lines).unwrap();
        assert_eq!(sample_records(&small, 100, 1).unwrap().len(), 10);
        std::fs::remove_dir_all(&dir).unwrap();
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
        let prepared = prepare(&plan.issuers[0].certificate, &records, &HashSet::new(), 3);
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
            let response = found.response();
            expect.check(&response).unwrap();
            revoked += usize::from(expect.status_tag == STATUS_REVOKED);
            // A response for another certificate, or with the other status, fails.
            let mut wrong = expect.clone();
            wrong.status_tag ^= STATUS_GOOD ^ STATUS_REVOKED;
            assert_eq!(wrong.check(&response), Err(CheckFailure::WrongStatus));
            let mut wrong = expect.clone();
            *wrong.serial.last_mut().unwrap() ^= 1;
            assert_eq!(wrong.check(&response), Err(CheckFailure::WrongCertId));
            let mut truncated = response.clone();
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

//! Micro-benchmarks of the per-request path and of snapshot loading and signing.
//!
//! Setup (once, ~1 s): a JSON Lines feed of 10,000 certificates (10% revoked) for the EC
//! demo issuer is published with its delegated P-256 signer into a temporary directory,
//! then verified and loaded with `Snapshot::verify(.., SnapshotBytes::Owned(..))`.
//!
//! ```text
//! cargo bench --bench ocsp                 # full measurement
//! cargo bench --bench ocsp -- --quick      # fast estimates
//! cargo bench --bench ocsp -- --test       # run every bench once (CI smoke)
//! cargo bench --bench ocsp -- answer       # only benches whose name contains "answer"
//! ```
//!
//! Groups: `decode_request` (SHA-1 and SHA-256 CertIDs), `decode_get` (the GET path's
//! percent/base64 decoding, and what a CRL path costs to rule out as an OCSP request), `snapshot_lookup` (random serials of the set, and a miss),
//! `answer` (the whole `responder::answer`), `snapshot_verify_load` (hash + manifest
//! signatures + index of the 10k snapshot, from a Vec and from an mmap),
//! `assembly` (rebuilding a response around its stored signature), `delta` (verifying a
//! delta of 100 revocations on its held base, and lookups through the overlay: a record in
//! the delta, one falling through to the base), `publish_sign_one` (tbs + P-256 sign for
//! one certificate, and ring's bare signing for comparison).

use base64::Engine;
use criterion::{BatchSize, Criterion, Throughput};
use ocsp_edge::model::{CertRecord, CertStatus, Serial};
use ocsp_edge::ocsp::{decode_request, encode_request, RequestedCertId, ResponseTemplate, SingleFacts};
use ocsp_edge::pki::{CertIdHash, Certificate};
use ocsp_edge::publish::{publish, PublishConfig, PublishPlan, PublishReport};
use ocsp_edge::responder::{self, NoncePolicy};
use ocsp_edge::snapshot::{Snapshot, SnapshotBytes, TrustAnchors};
use ocsp_edge::time::UnixTime;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

const CERTIFICATES: usize = 10_000;

struct Fixture {
    _dir: tempfile::TempDir,
    snapshots: PathBuf,
    now: UnixTime,
    plan: PublishPlan,
    report: PublishReport,
    trust: TrustAnchors,
    manifest: Vec<u8>,
    bytes: Vec<u8>,
    snapshot: Snapshot,
    issuer: Certificate,
    records: Vec<CertRecord>,
}

/// splitmix64, for repeatable serials and orders.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn demo(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/demo/ec")
        .join(file)
}

impl Fixture {
    fn new() -> Fixture {
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut rng = Rng(42);
        let mut feed = String::with_capacity(CERTIFICATES * 100);
        for i in 0..CERTIFICATES {
            let mut serial = [0u8; 16];
            serial[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
            serial[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
            serial[0] = (serial[0] & 0x7f).max(1);
            let hex = hex::encode_upper(serial);
            if i % 10 == 0 {
                feed.push_str(&format!(
                    "{{\"serial\":\"{hex}\",\"status\":\"revoked\",\"revoked_at\":\"2026-01-02T00:00:00Z\",\"reason\":\"keyCompromise\"}}\n"
                ));
            } else {
                feed.push_str(&format!("{{\"serial\":\"{hex}\",\"status\":\"good\"}}\n"));
            }
        }
        let feed_path = dir.path().join("feed.jsonl");
        std::fs::write(&feed_path, feed).expect("write feed");
        // A configuration file rather than a struct literal, so that new optional
        // configuration fields need no change here.
        let config_path = dir.path().join("publish.toml");
        let toml = format!(
            "validity = \"96h\"\nkeep = 1\n[[issuer]]\nname = \"ec\"\ncertificate = {:?}\njson_lines = {:?}\nsigner_certificate = {:?}\nsigner_key = {:?}\n",
            demo("ca.pem"),
            feed_path,
            demo("ocsp.pem"),
            demo("ocsp.key"),
        );
        std::fs::write(&config_path, toml).expect("write publish.toml");
        let config = PublishConfig::from_file(&config_path).expect("publish.toml");
        let now = UnixTime::now();
        let plan = config.load(now).expect("publish plan");
        let snapshots = dir.path().join("snapshots");
        let report = publish(&plan, &snapshots, now, &mut |_| {}).expect("publish");
        let trust = TrustAnchors::new(vec![plan.issuers[0].certificate.clone()]);
        let manifest = std::fs::read(&report.manifest).expect("manifest");
        let bytes = std::fs::read(&report.snapshot).expect("snapshot");
        let snapshot =
            Snapshot::verify(&manifest, SnapshotBytes::Owned(bytes.clone()), &trust, now).expect("verify");
        assert_eq!(snapshot.entry_count(), CERTIFICATES as u64);
        let issuer = plan.issuers[0].certificate.clone();
        let records = plan.issuers[0].records.clone();
        eprintln!(
            "setup: published and loaded {} certificates ({} bytes) in {:.2}s",
            CERTIFICATES,
            bytes.len(),
            started.elapsed().as_secs_f64()
        );
        Fixture {
            _dir: dir,
            snapshots,
            now,
            plan,
            report,
            trust,
            manifest,
            bytes,
            snapshot,
            issuer,
            records,
        }
    }

    fn cert_id(&self, serial: &Serial, hash: CertIdHash) -> RequestedCertId {
        RequestedCertId {
            hash,
            issuer_name_hash: self.issuer.name_hash(hash),
            issuer_key_hash: self.issuer.key_hash(hash),
            serial: serial.clone(),
        }
    }

    /// Every certificate of the set under both CertID hashes (20,000 ids), shuffled: the
    /// access pattern of the load test, whose working set (the 320 KB entry table and
    /// 16 MB of records) does not stay in the CPU caches the way `random_ids` does.
    fn all_ids_shuffled(&self) -> Vec<RequestedCertId> {
        let mut ids: Vec<RequestedCertId> = self
            .records
            .iter()
            .flat_map(|r| CertIdHash::ALL.map(|h| self.cert_id(&r.serial, h)))
            .collect();
        let mut rng = Rng(11);
        for i in (1..ids.len()).rev() {
            ids.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        ids
    }

    /// 1,024 CertIDs of random certificates of the set, alternating SHA-1 and SHA-256.
    fn random_ids(&self) -> Vec<RequestedCertId> {
        let mut rng = Rng(7);
        (0..1024)
            .map(|i| {
                let record = &self.records[(rng.next_u64() % self.records.len() as u64) as usize];
                let hash = if i % 2 == 0 {
                    CertIdHash::Sha1
                } else {
                    CertIdHash::Sha256
                };
                self.cert_id(&record.serial, hash)
            })
            .collect()
    }
}

fn bench_decode_request(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("decode_request");
    group.throughput(Throughput::Elements(1));
    for hash in CertIdHash::ALL {
        let der = encode_request(&f.cert_id(&f.records[1].serial, hash), None);
        group.bench_function(hash.name(), |b| b.iter(|| decode_request(black_box(&der))));
    }
    group.finish();
}

fn bench_decode_get(c: &mut Criterion, f: &Fixture) {
    let der = encode_request(&f.cert_id(&f.records[1].serial, CertIdHash::Sha256), None);
    let path = base64::engine::general_purpose::STANDARD
        .encode(&der)
        .replace('/', "%2F")
        .replace('+', "%2B")
        .replace('=', "%3D");
    c.bench_function("decode_get/sha256", |b| {
        // As the server uses it: the request handed on, not copied out.
        b.iter(|| ocsp_edge::ocsp::decode_get(black_box(&path), 16384, |der| Ok(der.len())))
    });
    // What a CRL GET pays, with `ocsp.path = "/"`, to learn that its path holds no OCSP
    // request before the document lookup (every attempt fails at the '.').
    c.bench_function("decode_get/document_path", |b| {
        b.iter(|| ocsp_edge::ocsp::from_get_path(black_box("crl/ec/3.crl"), 16384, |der| Ok(der.len())))
    });
}

fn bench_lookup(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("snapshot_lookup");
    group.throughput(Throughput::Elements(1));
    let ids = f.random_ids();
    let mut i = 0;
    group.bench_function("hit_random", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            let found = f.snapshot.lookup(black_box(&ids[i]));
            debug_assert!(found.is_ok());
            found.map(|found| found.signature.len())
        })
    });
    let all = f.all_ids_shuffled();
    let mut j = 0;
    group.bench_function("hit_all_20k_shuffled", |b| {
        b.iter(|| {
            j = if j + 1 == all.len() { 0 } else { j + 1 };
            f.snapshot
                .lookup(black_box(&all[j]))
                .map(|found| found.signature.len())
        })
    });
    let miss = f.cert_id(
        &Serial::from_hex("7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFF1").unwrap(),
        CertIdHash::Sha256,
    );
    assert!(f.snapshot.lookup(&miss).is_err());
    group.bench_function("miss", |b| {
        b.iter(|| f.snapshot.lookup(black_box(&miss)).is_err())
    });
    group.finish();
}

fn bench_answer(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("answer");
    group.throughput(Throughput::Elements(1));
    for hash in CertIdHash::ALL {
        let der = encode_request(&f.cert_id(&f.records[1].serial, hash), None);
        assert!(responder::answer(Some(&f.snapshot), &der, f.now, NoncePolicy::Ignore).is_ok());
        group.bench_function(hash.name(), |b| {
            b.iter(|| {
                responder::answer(Some(&f.snapshot), black_box(&der), f.now, NoncePolicy::Ignore)
                    .map(|found| found.response().len())
            })
        });
    }
    // Random certificates: a cold-ish path through the table and records.
    let requests: Vec<Vec<u8>> = f.random_ids().iter().map(|id| encode_request(id, None)).collect();
    let mut i = 0;
    group.bench_function("random_1024", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            responder::answer(
                Some(&f.snapshot),
                black_box(&requests[i]),
                f.now,
                NoncePolicy::Ignore,
            )
            .map(|found| found.response().len())
        })
    });
    let all: Vec<Vec<u8>> = f
        .all_ids_shuffled()
        .iter()
        .map(|id| encode_request(id, None))
        .collect();
    let mut j = 0;
    group.bench_function("all_20k_shuffled", |b| {
        b.iter(|| {
            j = if j + 1 == all.len() { 0 } else { j + 1 };
            responder::answer(Some(&f.snapshot), black_box(&all[j]), f.now, NoncePolicy::Ignore)
                .map(|found| found.response().len())
        })
    });
    group.finish();
    bench_assembly(c, f);
}

/// Rebuilding the response bytes around a stored signature: what the compact format costs
/// per request in place of a copy of stored bytes.
fn bench_assembly(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("assembly");
    group.throughput(Throughput::Elements(1));
    let revoked = f
        .records
        .iter()
        .find(|r| r.status != CertStatus::Good)
        .expect("a revoked record");
    for (label, record) in [("good", &f.records[1]), ("revoked", revoked)] {
        let id = f.cert_id(&record.serial, CertIdHash::Sha256);
        let found = f.snapshot.lookup(&id).unwrap();
        let mut buffer = Vec::with_capacity(2048);
        group.bench_function(format!("write_reused_buffer/{label}"), |b| {
            b.iter(|| {
                buffer.clear();
                black_box(&found).write_response(&mut buffer);
                buffer.len()
            })
        });
        group.bench_function(format!("response_new_vec/{label}"), |b| {
            b.iter(|| black_box(&found).response().len())
        });
        group.bench_function(format!("etag/{label}"), |b| b.iter(|| black_box(&found).etag()));
    }
    group.finish();
}

fn bench_verify_load(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group("snapshot_verify_load");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(f.bytes.len() as u64));
    group.bench_function("owned_10k", |b| {
        b.iter_batched(
            || f.bytes.clone(),
            |bytes| Snapshot::verify(&f.manifest, SnapshotBytes::Owned(bytes), &f.trust, f.now).unwrap(),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("mmap_10k", |b| {
        b.iter(|| {
            ocsp_edge::snapshot::load_snapshot(&f.snapshots, f.report.sequence, &f.trust, f.now).unwrap()
        })
    });
    group.finish();
}

/// A delta of 100 revocations against the fixture's snapshot, loaded on it.
fn bench_delta(c: &mut Criterion, f: &Fixture) {
    use ocsp_edge::publish::plan::DeltaPolicy;
    let mut plan = PublishConfig::from_file(&f.snapshots.parent().expect("dir").join("publish.toml"))
        .expect("publish.toml")
        .load(f.now)
        .expect("plan");
    plan.delta = Some(DeltaPolicy {
        full_every: std::time::Duration::from_secs(86_400),
        refresh_after: std::time::Duration::from_secs(48 * 3600),
    });
    let later = f.now.plus_seconds(60);
    let mut changed = Vec::new();
    for record in plan.issuers[0]
        .records
        .iter_mut()
        .filter(|r| r.status == CertStatus::Good)
        .take(100)
    {
        record.status = CertStatus::Revoked {
            at: later,
            reason: None,
            invalidity: None,
        };
        changed.push(record.serial.clone());
    }
    let report = publish(&plan, &f.snapshots, later, &mut |_| {}).expect("delta publish");
    assert_eq!(report.base, Some(f.report.sequence), "a delta");
    let manifest = std::fs::read(&report.manifest).expect("manifest");
    let bytes = std::fs::read(&report.snapshot).expect("delta");
    let base = std::sync::Arc::new(
        Snapshot::verify(
            &f.manifest,
            SnapshotBytes::Owned(f.bytes.clone()),
            &f.trust,
            later,
        )
        .expect("base"),
    );
    let mut group = c.benchmark_group("delta");
    group.bench_function("verify_100_changes_on_held_10k_base", |b| {
        b.iter_batched(
            || bytes.clone(),
            |bytes| {
                Snapshot::verify_on(
                    &manifest,
                    SnapshotBytes::Owned(bytes),
                    &f.trust,
                    later,
                    Some(base.clone()),
                )
                .expect("delta verifies")
            },
            BatchSize::SmallInput,
        )
    });
    let layered = Snapshot::verify_on(
        &manifest,
        SnapshotBytes::Owned(bytes),
        &f.trust,
        later,
        Some(base.clone()),
    )
    .expect("delta");
    let in_delta = f.cert_id(&changed[7], CertIdHash::Sha256);
    let in_base = f.cert_id(
        &f.records
            .iter()
            .rev()
            .find(|r| !changed.contains(&r.serial))
            .expect("unchanged")
            .serial,
        CertIdHash::Sha256,
    );
    group.throughput(Throughput::Elements(1));
    group.bench_function("lookup_hit_in_delta", |b| {
        b.iter(|| layered.lookup(black_box(&in_delta)).map(|f| f.signature.len()))
    });
    group.bench_function("lookup_through_to_base", |b| {
        b.iter(|| layered.lookup(black_box(&in_base)).map(|f| f.signature.len()))
    });
    group.finish();
}

fn bench_sign_one(c: &mut Criterion, f: &Fixture) {
    let issuer = &f.plan.issuers[0];
    let template = ResponseTemplate::new(
        &issuer.certificate,
        &issuer.signer,
        issuer.key.algorithm().algorithm_identifier_der(),
    );
    let good = issuer
        .records
        .iter()
        .find(|r| r.status == CertStatus::Good)
        .expect("a good record");
    let facts = SingleFacts {
        serial: good.serial.as_der_content(),
        status: &good.status,
        produced_at: f.now,
        this_update: f.now,
        next_update: f.now.plus_seconds(96 * 3600),
    };
    let mut group = c.benchmark_group("publish_sign_one");
    group.throughput(Throughput::Elements(1));
    group.bench_function("tbs_only", |b| {
        b.iter(|| template.tbs_response_data(CertIdHash::Sha256, black_box(&facts)))
    });
    group.bench_function("tbs_and_sign_p256", |b| {
        b.iter(|| {
            let tbs = template.tbs_response_data(CertIdHash::Sha256, black_box(&facts));
            issuer.key.sign(&tbs).unwrap()
        })
    });
    // The floor the publisher is measured against: ring signing a fixed message.
    let message = template.tbs_response_data(CertIdHash::Sha256, &facts);
    group.bench_function("ring_sign_only_p256", |b| {
        b.iter(|| issuer.key.sign(black_box(&message)).unwrap())
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let fixture = Fixture::new();
    bench_decode_request(&mut criterion, &fixture);
    bench_decode_get(&mut criterion, &fixture);
    bench_lookup(&mut criterion, &fixture);
    bench_answer(&mut criterion, &fixture);
    bench_verify_load(&mut criterion, &fixture);
    bench_delta(&mut criterion, &fixture);
    bench_sign_one(&mut criterion, &fixture);
    criterion.final_summary();
}

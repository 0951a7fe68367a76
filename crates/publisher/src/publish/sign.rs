//! Pre-signing on all cores and writing the snapshot and its manifest.
//!
//! Records are signed in chunks in parallel (rayon) and written in serial order as each
//! chunk completes, so memory stays bounded by one chunk however large the CA is. The
//! file is hashed while it is written; the manifest (with that hash) is written last.

use super::delta::{self, DeltaItem, Layer};
use super::error::PublishError;
use super::plan::{DeltaPolicy, IssuerPlan, PublishPlan};
use super::sequence::next_sequence;
use ocsp_edge_core::model::{CertRecord, Serial};
use ocsp_edge_core::ocsp::{ResponseTemplate, SingleFacts};
use ocsp_edge_core::pki::CertIdHash;
use ocsp_edge_core::snapshot::{
    self, BaseReference, ContentHash, Manifest, ManifestBody, ManifestIssuer, NewFile, RecordInput,
    ResponseTimes, SectionTemplate, Snapshot, SnapshotWriter, TrustAnchors, DEFAULT_CHUNK_SIZE,
};
use ocsp_edge_core::time::UnixTime;
use rayon::prelude::*;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records signed per chunk. Every chunk ends at a barrier where one core may wait for
/// the other's last signatures; 65,536 (two chunks in memory: ~20 MB of signatures) makes
/// those waits rare enough not to show (8,192 cost ~2% of the signing rate).
const CHUNK: usize = 65536;

/// What a publish produced.
#[derive(Debug)]
pub struct PublishReport {
    pub sequence: u64,
    pub snapshot: PathBuf,
    pub manifest: PathBuf,
    pub entries: u64,
    pub size: u64,
    pub signatures: u64,
    pub elapsed: Duration,
    pub earliest_next_update: UnixTime,
    pub removed_old: usize,
    /// For a delta: the sequence of the full snapshot it applies to.
    pub base: Option<u64>,
}

/// Progress of a publish, reported every couple of seconds on large inputs.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub signed: u64,
    pub total: u64,
    pub elapsed: Duration,
}

impl Progress {
    pub fn per_second(&self) -> f64 {
        self.signed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn eta(&self) -> Duration {
        let rate = self.per_second();
        if rate <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((self.total - self.signed) as f64 / rate)
    }
}

/// Signs every record of `plan` and writes a new snapshot and manifest into `out_dir`.
pub fn publish(
    plan: &PublishPlan,
    out_dir: &Path,
    now: UnixTime,
    progress: &mut dyn FnMut(Progress),
) -> Result<PublishReport, PublishError> {
    // The rails come first: a refused publish writes nothing, not even a temporary file.
    let newest = newest_snapshot(plan, out_dir, now);
    let checked = super::rails::check(plan, newest.as_deref(), now)?;
    write_snapshot_past_rails(plan, out_dir, now, newest, checked, progress)
}

/// [`publish`] past the rails: `newest` is the store's newest snapshot and `checked` what
/// the rails let through. Public only with the `test-support` feature (a dev-dependency
/// feature: no binary is built with it), for tests that need a snapshot the rails refuse
/// to make (an empty one, as earlier versions published).
#[cfg(feature = "test-support")]
pub fn write_snapshot(
    plan: &PublishPlan,
    out_dir: &Path,
    now: UnixTime,
    newest: Option<Arc<Snapshot>>,
    checked: super::rails::Checked,
    progress: &mut dyn FnMut(Progress),
) -> Result<PublishReport, PublishError> {
    write_snapshot_past_rails(plan, out_dir, now, newest, checked, progress)
}

/// [`publish`] past the rails (see [`publish`], which runs them first).
fn write_snapshot_past_rails(
    plan: &PublishPlan,
    out_dir: &Path,
    now: UnixTime,
    newest: Option<Arc<Snapshot>>,
    checked: super::rails::Checked,
    progress: &mut dyn FnMut(Progress),
) -> Result<PublishReport, PublishError> {
    let started = Instant::now();
    std::fs::create_dir_all(out_dir)?;
    snapshot::remove_stale_temporaries(out_dir)?;
    let sequence = next_sequence(snapshot::highest_sequence(out_dir)?, now, plan.sequence_floor)?;
    let next_update = now.plus_seconds(plan.validity.as_secs() as i64);
    let total: u64 = plan.issuers.iter().map(|i| i.records.len() as u64).sum();

    let delta = match plan.delta {
        Some(policy) => newest.and_then(|newest| delta_start(plan, newest, now, policy)),
        None => None,
    };
    let base_reference = delta.as_ref().map(|d| BaseReference {
        sequence: d.base.sequence(),
        sha256_tree: d.base.manifest().body.sha256_tree.clone(),
    });

    let snapshot_name = snapshot::snapshot_name(sequence);
    let mut file = NewFile::create(out_dir, &snapshot_name)?;
    let hashing = HashingWriter::new(BufWriter::with_capacity(1 << 20, file.file()));
    let mut writer = SnapshotWriter::with_base(hashing, sequence, now, base_reference.clone())?;
    let mut ticker = Ticker::new(total, started);
    let mut signed = 0u64;
    let fence = || check_fence(plan);
    for (position, issuer) in plan.issuers.iter().enumerate() {
        let mut advance = |n| ticker.advance(n, progress);
        signed += match &delta {
            None => sign_issuer(issuer, &mut writer, now, next_update, &mut advance, &fence)?,
            Some(start) => sign_issuer_delta(
                issuer,
                position,
                start,
                &mut writer,
                (now, next_update),
                &mut advance,
                &fence,
            )?,
        };
    }
    for issuer in &plan.issuers {
        if let Some(crl) = &issuer.crl {
            let context = super::crls::CrlContext {
                issuer_name: &issuer.name,
                issuer: &issuer.certificate,
                records: &issuer.records,
                expired_revoked: checked
                    .expired_revoked
                    .get(&issuer.name)
                    .map_or(&[][..], Vec::as_slice),
                now,
                number: sequence,
                out_dir,
            };
            let started = Instant::now();
            let documents = crl.write(&context, &mut writer)?;
            tracing::info!(issuer = %issuer.name, documents, seconds = started.elapsed().as_secs_f64(), "CRLs written");
        }
    }
    let (hashing, metadata) = writer.finish()?;
    let earliest_next_update = metadata
        .issuers
        .iter()
        .map(|s| s.earliest_next_update)
        .chain(metadata.documents.iter().map(|d| d.next_update))
        // An empty section has no nextUpdate (i64::MAX), which RFC 3339 cannot spell.
        .filter(|seconds| *seconds != i64::MAX)
        .min()
        .map(UnixTime)
        .unwrap_or(next_update);
    let (buffered, root, size) = hashing.finish();
    buffered.into_inner().map_err(|e| e.into_error())?;
    check_fence(plan)?;
    let snapshot = file.commit()?;

    let mut body = ManifestBody {
        format_version: metadata.format_version,
        sequence,
        created_at: now.to_rfc3339(),
        snapshot: snapshot_name,
        size,
        chunk_size: DEFAULT_CHUNK_SIZE,
        sha256_tree: hex::encode(root),
        earliest_next_update: earliest_next_update.to_rfc3339(),
        base: base_reference,
        issuers: plan
            .issuers
            .iter()
            .zip(&metadata.issuers)
            .map(|(i, section)| ManifestIssuer {
                name: i.name.clone(),
                subject: i.certificate.display_name(),
                entries: section.entry_count,
            })
            .collect(),
        changes: None,
        unrevoked: checked.unrevoked,
    };
    let signers: Vec<_> = plan
        .issuers
        .iter()
        .map(|i| (i.name.as_str(), &i.signer, &i.key))
        .collect();
    let trust = TrustAnchors::new(plan.issuers.iter().map(|i| i.certificate.clone()).collect());
    let base = delta.as_ref().map(|d| d.base.clone());
    body.changes = super::changes::digest_since_previous(out_dir, &body, &signers, &trust, now, base);
    let manifest = Manifest::sign_or(body, &signers, PublishError::signing)?;
    // The manifest is what makes the snapshot visible: the last moment to stop.
    check_fence(plan)?;
    let manifest_path =
        snapshot::write_new(out_dir, &snapshot::manifest_name(sequence), &manifest.to_json())?;
    write_latest_pointer(out_dir, &manifest)?;
    let removed_old = prune(out_dir, plan.keep)?;
    Ok(PublishReport {
        sequence,
        snapshot,
        manifest: manifest_path,
        entries: total,
        size,
        signatures: signed * 2,
        elapsed: started.elapsed(),
        earliest_next_update,
        base: delta.map(|d| d.base.sequence()),
        removed_old,
    })
}

/// Asks the plan's [`super::fence::Fence`], if it has one.
fn check_fence(plan: &PublishPlan) -> Result<(), PublishError> {
    match &plan.fence {
        Some(fence) => Ok(fence.check()?),
        None => Ok(()),
    }
}

/// Where a delta starts from: the full snapshot it applies to, and the previous delta on
/// that base (whose still-fresh records it carries forward).
struct DeltaStart {
    base: Arc<Snapshot>,
    previous_delta: Option<Arc<Snapshot>>,
    refresh_after: Duration,
}

/// The newest snapshot in `out_dir`, verified against this plan's issuers: what the rails
/// compare with and a delta starts from. `None` for an empty store, or when it does not
/// verify (a new CA certificate, say), which is logged: then the rails have nothing to
/// compare with and the publish is full.
fn newest_snapshot(plan: &PublishPlan, out_dir: &Path, now: UnixTime) -> Option<Arc<Snapshot>> {
    let newest = snapshot::newest_manifest(out_dir).ok()??;
    let trust = TrustAnchors::new(plan.issuers.iter().map(|i| i.certificate.clone()).collect());
    match snapshot::load_snapshot(out_dir, newest, &trust, now) {
        Ok(snapshot) => Some(Arc::new(snapshot)),
        Err(e) => {
            tracing::warn!(sequence = newest, error = %e, "the newest snapshot does not verify against these issuers: \
                the safety rails cannot compare with it, and the publish is full");
            None
        }
    }
}

/// Whether this publish can be a delta, and against what: the newest snapshot (or its
/// base) must be younger than `full_every`, and have been signed for exactly these
/// issuers with these signers. Anything else means a full snapshot, which is always
/// correct, so problems here are logged, not fatal.
fn delta_start(
    plan: &PublishPlan,
    previous: Arc<Snapshot>,
    now: UnixTime,
    policy: DeltaPolicy,
) -> Option<DeltaStart> {
    let (base, previous_delta) = match previous.base() {
        Some(base) => (base.clone(), Some(previous.clone())),
        None => (previous, None),
    };
    let age = now.seconds() - base.created_at().seconds();
    if age < 0 || age as u64 >= policy.full_every.as_secs() {
        return None;
    }
    let same_signers = plan.issuers.len() == base.issuer_names().count()
        && plan.issuers.iter().enumerate().all(|(position, issuer)| {
            base.section(position).is_some_and(|section| {
                section.section.name == issuer.name
                    && section.issuer.der() == issuer.certificate.der()
                    && section.signer.der() == issuer.signer.der()
                    && section.template.embeds_signer() != issuer.signer.same_entity(&issuer.certificate)
            })
        });
    same_signers.then_some(DeltaStart {
        base,
        previous_delta,
        refresh_after: policy.refresh_after,
    })
}

/// Writes issuer `position`'s delta section: only what differs from the base (see
/// [`super::delta`]). Returns the number of certificates signed.
fn sign_issuer_delta<W: Write + Send>(
    issuer: &IssuerPlan,
    position: usize,
    start: &DeltaStart,
    writer: &mut SnapshotWriter<W>,
    (now, next_update): (UnixTime, UnixTime),
    advance: &mut dyn FnMut(u64),
    fence: &(dyn Fn() -> Result<(), PublishError> + Sync),
) -> Result<u64, PublishError> {
    let (template, records) = begin_section(issuer, writer);
    fn layer(snapshot: &Snapshot, position: usize) -> Option<Layer<'_>> {
        snapshot.section(position).map(|section| Layer {
            bytes: snapshot.bytes(),
            section,
        })
    }
    let base = layer(&start.base, position).ok_or(PublishError::Base("lost an issuer"))?;
    let previous = start.previous_delta.as_deref().and_then(|d| layer(d, position));
    let plan = delta::plan_section(&records, base, previous, now, start.refresh_after);
    writer.set_merged_totals(plan.live, plan.base_earliest_next_update);
    let times = response_times(now, next_update);
    let signed_count = plan
        .items
        .iter()
        .filter(|i| matches!(i, DeltaItem::Sign(_)))
        .count() as u64;
    pipelined(
        &plan.items,
        |item| match item {
            DeltaItem::Sign(record) => sign_record(issuer, &template, record, now, next_update).map(Some),
            _ => Ok(None),
        },
        |chunk, signed| {
            for (item, signatures) in chunk.iter().zip(signed) {
                match (item, signatures) {
                    (DeltaItem::Sign(record), Some([sha1, sha256])) => writer.push_record(&RecordInput {
                        serial: &record.serial,
                        status: Some(delta::stored_status(&record.status)),
                        times,
                        signatures: [&sha1, &sha256],
                    })?,
                    (DeltaItem::Keep { record, times }, _) => {
                        let serial = Serial::from_der_content(record.serial)
                            .ok_or(PublishError::Base("has a bad serial in the previous delta"))?;
                        writer.push_record(&RecordInput {
                            serial: &serial,
                            status: record.status,
                            times: *times,
                            signatures: record.signatures,
                        })?
                    }
                    (DeltaItem::Remove(serial), _) => writer.push_record(&RecordInput {
                        serial,
                        status: None,
                        times,
                        signatures: [&[], &[]],
                    })?,
                    (DeltaItem::Sign(_), None) => {}
                }
            }
            Ok(())
        },
        &mut |_| {},
        fence,
    )?;
    advance(records.len() as u64);
    writer.end_issuer()?;
    Ok(signed_count)
}

fn response_times(now: UnixTime, next_update: UnixTime) -> ResponseTimes {
    ResponseTimes {
        produced_at: now.seconds(),
        this_update: now.seconds(),
        next_update: next_update.seconds(),
    }
}

/// Starts `issuer`'s section: its response template, and its records sorted by serial.
fn begin_section<'a, W: Write>(
    issuer: &'a IssuerPlan,
    writer: &mut SnapshotWriter<W>,
) -> (ResponseTemplate, Vec<&'a CertRecord>) {
    let template = ResponseTemplate::new(
        &issuer.certificate,
        &issuer.signer,
        issuer.key.algorithm().algorithm_identifier_der(),
    );
    let mut records: Vec<&CertRecord> = issuer.records.iter().collect();
    // Sorted by the snapshot's inline key (the order of its tables), computed once per
    // record: comparing `Serial`s would chase two heap pointers per comparison.
    records.par_sort_by_cached_key(|record| {
        ocsp_edge_core::snapshot::serial_key(record.serial.as_der_content())
    });
    writer.begin_issuer(&SectionTemplate {
        name: &issuer.name,
        issuer: &issuer.certificate,
        signer: &issuer.signer,
        signature_algorithm: issuer.key.algorithm().algorithm_identifier_der(),
        embeds_signer: template.embeds_signer(),
    });
    (template, records)
}

/// Writes issuer's full section, signing every record. Returns the number signed.
fn sign_issuer<W: Write + Send>(
    issuer: &IssuerPlan,
    writer: &mut SnapshotWriter<W>,
    now: UnixTime,
    next_update: UnixTime,
    advance: &mut dyn FnMut(u64),
    fence: &(dyn Fn() -> Result<(), PublishError> + Sync),
) -> Result<u64, PublishError> {
    let (template, records) = begin_section(issuer, writer);
    let times = response_times(now, next_update);
    pipelined(
        &records,
        |record| sign_record(issuer, &template, record, now, next_update),
        |chunk, signed| {
            for (record, [sha1, sha256]) in chunk.iter().zip(signed) {
                writer.push_record(&RecordInput {
                    serial: &record.serial,
                    status: Some(stored_status(&record.status)),
                    times,
                    signatures: [&sha1, &sha256],
                })?;
            }
            Ok(())
        },
        advance,
        fence,
    )?;
    writer.end_issuer()?;
    Ok(records.len() as u64)
}

/// Signs `items` in chunks on every core while the previous chunk is written: the writer
/// (one thread: record encoding, hashing, buffered I/O) overlaps the signing of the next
/// chunk instead of leaving the cores idle between chunks. Memory stays bounded by two
/// chunks. Order is preserved. `fence` is asked before each chunk, so an abandoned
/// publish stops within one chunk's signing time.
fn pipelined<T: Sync, R: Send>(
    items: &[T],
    sign: impl Fn(&T) -> Result<R, PublishError> + Sync,
    mut write: impl FnMut(&[T], Vec<R>) -> Result<(), PublishError> + Send,
    advance: &mut dyn FnMut(u64),
    fence: &(dyn Fn() -> Result<(), PublishError> + Sync),
) -> Result<(), PublishError> {
    let mut pending: Option<(&[T], Vec<R>)> = None;
    for chunk in items.chunks(CHUNK) {
        fence()?;
        let previous = pending.take();
        let (signed, written) = rayon::join(
            || chunk.par_iter().map(&sign).collect::<Result<Vec<R>, _>>(),
            || match previous {
                Some((done, results)) => write(done, results).map(|()| done.len()),
                None => Ok(0),
            },
        );
        advance(written? as u64);
        pending = Some((chunk, signed?));
    }
    if let Some((done, results)) = pending {
        write(done, results)?;
        advance(done.len() as u64);
    }
    Ok(())
}

/// The signatures of both CertID variants for one certificate (the snapshot stores
/// signatures; responders rebuild the responses around them). Two single-SingleResponse responses rather
/// than one response with two SingleResponses: see docs/architecture.md ("Why two
/// pre-signed variants").
fn sign_record(
    issuer: &IssuerPlan,
    template: &ResponseTemplate,
    record: &CertRecord,
    now: UnixTime,
    next_update: UnixTime,
) -> Result<[Vec<u8>; 2], PublishError> {
    let facts = SingleFacts {
        serial: record.serial.as_der_content(),
        status: &record.status,
        produced_at: now,
        this_update: now,
        next_update,
    };
    let sign = |hash: CertIdHash| -> Result<Vec<u8>, PublishError> {
        let tbs = template.tbs_response_data(hash, &facts);
        issuer.key.sign(&tbs).map_err(PublishError::signing)
    };
    Ok([sign(CertIdHash::Sha1)?, sign(CertIdHash::Sha256)?])
}

use super::delta::stored_status;

/// Replaces `latest.manifest.json`, a copy of the newest manifest, so that any static web
/// server, CDN or bucket in front of this directory is a replication source (readers find
/// the newest snapshot with one conditional GET). The only file a publish replaces, and
/// atomically: write, fsync, rename. Written after the snapshot and its manifest.
fn write_latest_pointer(dir: &Path, manifest: &Manifest) -> io::Result<()> {
    let latest = dir.join(snapshot::LATEST_MANIFEST);
    // Static servers derive validators from the modification time in whole seconds: keep
    // it strictly increasing, so two publishes in one second still look different.
    let previous = std::fs::metadata(&latest).and_then(|m| m.modified()).ok();
    let now = std::time::SystemTime::now();
    let modified = match previous {
        Some(previous) if previous + Duration::from_secs(1) > now => previous + Duration::from_secs(1),
        _ => now,
    };
    snapshot::replace_file(
        dir,
        snapshot::LATEST_MANIFEST,
        &manifest.to_json(),
        Some(modified),
    )
}

/// Removes all but the newest `keep` older manifests and their snapshots. Manifest first,
/// so a reader never finds a manifest whose snapshot is gone.
fn prune(dir: &Path, keep: usize) -> io::Result<usize> {
    let Some(newest) = snapshot::newest_manifest(dir)? else {
        return Ok(0);
    };
    // The newest snapshot's base (when it is a delta) stays, whatever its age.
    let base = std::fs::read(dir.join(snapshot::manifest_name(newest)))
        .ok()
        .and_then(|bytes| Manifest::parse(&bytes).ok())
        .and_then(|manifest| manifest.body.base.map(|b| b.sequence));
    snapshot::prune_snapshots(dir, newest, keep, base)
}

/// Calls the progress callback at most every two seconds, and once at the end.
struct Ticker {
    total: u64,
    signed: u64,
    started: Instant,
    last: Instant,
}

impl Ticker {
    fn new(total: u64, started: Instant) -> Self {
        Ticker {
            total,
            signed: 0,
            started,
            last: started,
        }
    }

    fn advance(&mut self, n: u64, progress: &mut dyn FnMut(Progress)) {
        self.signed += n;
        if self.last.elapsed() >= Duration::from_secs(2) || self.signed == self.total {
            self.last = Instant::now();
            progress(Progress {
                signed: self.signed,
                total: self.total,
                elapsed: self.started.elapsed(),
            });
        }
    }
}

/// Passes writes through while computing their [`ContentHash`] and length.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hash: ContentHash,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hash: ContentHash::new(DEFAULT_CHUNK_SIZE),
        }
    }

    pub(crate) fn finish(self) -> (W, Vec<u8>, u64) {
        let (root, written) = self.hash.finish();
        (self.inner, root, written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::PublishConfig;
    use ocsp_edge_core::snapshot::{Snapshot, SnapshotBytes, TrustAnchors};

    const NOW: UnixTime = UnixTime(1_790_000_000);

    fn demo_plan() -> PublishPlan {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/publish.toml");
        PublishConfig::from_file(&path).unwrap().load(NOW).unwrap()
    }

    fn trust(plan: &PublishPlan) -> TrustAnchors {
        TrustAnchors::new(plan.issuers.iter().map(|i| i.certificate.clone()).collect())
    }

    fn load(
        report: &PublishReport,
        trust: &TrustAnchors,
    ) -> Result<Snapshot, ocsp_edge_core::snapshot::VerifyError> {
        let manifest = std::fs::read(&report.manifest).unwrap();
        let bytes = std::fs::read(&report.snapshot).unwrap();
        Snapshot::verify(&manifest, SnapshotBytes::Owned(bytes), trust, NOW)
    }

    #[test]
    fn publishes_a_snapshot_that_verifies_and_answers_every_record() {
        let plan = demo_plan();
        let dir = tempfile::tempdir().unwrap();
        let mut calls = 0;
        let report = publish(&plan, dir.path(), NOW, &mut |_| calls += 1).unwrap();
        assert!(calls >= 1);
        assert_eq!(report.sequence, NOW.seconds() as u64);
        let snapshot = load(&report, &trust(&plan)).unwrap();
        assert_eq!(snapshot.entry_count(), report.entries);
        for issuer in &plan.issuers {
            for record in &issuer.records {
                for hash in CertIdHash::ALL {
                    let id = ocsp_edge_core::ocsp::RequestedCertId {
                        hash,
                        issuer_name_hash: issuer.certificate.name_hash(hash),
                        issuer_key_hash: issuer.certificate.key_hash(hash),
                        serial: record.serial.clone(),
                    };
                    let found = snapshot.lookup(&id).unwrap();
                    assert_eq!(found.status, stored_status(&record.status));
                    assert_eq!(found.next_update, NOW.plus_seconds(96 * 3600));
                    assert!(found.response_len() > 200);
                }
            }
        }
    }

    #[test]
    fn sequences_strictly_increase_and_nothing_is_overwritten() {
        let plan = demo_plan();
        let dir = tempfile::tempdir().unwrap();
        let first = publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap();
        let second = publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap();
        let earlier_clock = publish(&plan, dir.path(), NOW.plus_seconds(-3600), &mut |_| {}).unwrap();
        assert!(first.sequence < second.sequence && second.sequence < earlier_clock.sequence);
        assert!(first.manifest.exists() && second.manifest.exists());
        // A clock more than the responders' skew behind what the directory holds would
        // number snapshots that responders refuse: refused here instead, nothing written.
        let far_behind = publish(&plan, dir.path(), NOW.plus_seconds(-2 * 86_400), &mut |_| {});
        assert!(matches!(far_behind, Err(PublishError::Sequence(_))));
        assert_eq!(
            snapshot::highest_sequence(dir.path()).unwrap(),
            earlier_clock.sequence
        );
    }

    fn delta_plan() -> PublishPlan {
        let mut plan = demo_plan();
        plan.delta = Some(DeltaPolicy {
            full_every: Duration::from_secs(86_400),
            refresh_after: Duration::from_secs(48 * 3600),
        });
        plan.keep = 1;
        plan
    }

    fn load_newest(dir: &Path, plan: &PublishPlan, now: UnixTime) -> Snapshot {
        let newest = snapshot::manifest_sequences(dir).unwrap()[0];
        snapshot::load_snapshot(dir, newest, &trust(plan), now).unwrap()
    }

    fn revoke(
        plan: &mut PublishPlan,
        issuer: usize,
        index: usize,
        at: UnixTime,
    ) -> ocsp_edge_core::model::Serial {
        let record = &mut plan.issuers[issuer].records[index];
        record.status = ocsp_edge_core::model::CertStatus::Revoked {
            at,
            reason: Some(ocsp_edge_core::model::RevocationReason::KeyCompromise),
            invalidity: None,
        };
        record.serial.clone()
    }

    /// Every certificate either snapshot knows, with the status and issuer each serves.
    fn served(
        snapshot: &Snapshot,
        plan: &PublishPlan,
        extra: &[ocsp_edge_core::model::Serial],
    ) -> Vec<String> {
        let mut out = Vec::new();
        for issuer in &plan.issuers {
            let serials = issuer
                .records
                .iter()
                .map(|r| r.serial.clone())
                .chain(extra.iter().cloned());
            for serial in serials {
                for hash in CertIdHash::ALL {
                    let id = ocsp_edge_core::ocsp::RequestedCertId {
                        hash,
                        issuer_name_hash: issuer.certificate.name_hash(hash),
                        issuer_key_hash: issuer.certificate.key_hash(hash),
                        serial: serial.clone(),
                    };
                    out.push(match snapshot.lookup(&id) {
                        Ok(found) => format!("{} {} {:?}", found.issuer, serial.to_hex(), found.status),
                        Err(refusal) => format!("{} {} {refusal:?}", issuer.name, serial.to_hex()),
                    });
                }
            }
        }
        out
    }

    #[test]
    fn a_delta_serves_exactly_what_a_full_snapshot_of_the_same_state_would() {
        let mut plan = delta_plan();
        let dir = tempfile::tempdir().unwrap();
        let full = publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap();
        assert_eq!(full.base, None, "the first publish is full");

        let later = NOW.plus_seconds(3600);
        let revoked = revoke(&mut plan, 0, 0, later);
        let removed = plan.issuers[1].records.remove(3).serial;
        let delta = publish(&plan, dir.path(), later, &mut |_| {}).unwrap();
        assert_eq!(delta.base, Some(full.sequence));
        assert_eq!(delta.signatures, 2, "only the revoked certificate is re-signed");
        assert!(
            delta.size * 4 < full.size,
            "delta {} vs full {}",
            delta.size,
            full.size
        );

        let via_delta = load_newest(dir.path(), &plan, later);
        assert_eq!(via_delta.base().map(|b| b.sequence()), Some(full.sequence));
        assert_eq!(via_delta.entry_count(), full.entries - 1);
        let reference_dir = tempfile::tempdir().unwrap();
        let mut full_plan = demo_plan();
        full_plan.issuers = std::mem::take(&mut plan.issuers);
        publish(&full_plan, reference_dir.path(), later, &mut |_| {}).unwrap();
        let reference = load_newest(reference_dir.path(), &full_plan, later);
        let extra = [removed.clone()];
        assert_eq!(
            served(&via_delta, &full_plan, &extra),
            served(&reference, &full_plan, &extra)
        );
        assert!(served(&via_delta, &full_plan, &extra)
            .iter()
            .any(|line| line.ends_with(&format!("{} UnassignedSerial", removed.to_hex()))));

        let base = snapshot::load_snapshot(dir.path(), full.sequence, &trust(&full_plan), later).unwrap();
        let changes = via_delta.status_changes_since(&base);
        let changed: Vec<_> = changes.iter().map(|c| c.serial.clone()).collect();
        assert_eq!(changed.len(), 2, "{changes:?}");
        assert!(changed.contains(&revoked) && changed.contains(&removed));
    }

    #[test]
    fn deltas_are_cumulative_refresh_old_responses_and_give_way_to_a_full_snapshot() {
        let mut plan = delta_plan();
        let dir = tempfile::tempdir().unwrap();
        let full = publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap();
        let first_revoked = revoke(&mut plan, 0, 1, NOW.plus_seconds(60));
        let first = publish(&plan, dir.path(), NOW.plus_seconds(3600), &mut |_| {}).unwrap();
        let second_revoked = revoke(&mut plan, 0, 2, NOW.plus_seconds(4000));
        let second = publish(&plan, dir.path(), NOW.plus_seconds(7200), &mut |_| {}).unwrap();
        assert_eq!(
            (first.base, second.base),
            (Some(full.sequence), Some(full.sequence))
        );
        assert_eq!(
            second.signatures, 2,
            "the first delta's record is carried, not re-signed"
        );
        let newest = load_newest(dir.path(), &plan, NOW.plus_seconds(7200));
        // Between two deltas on one base only the second revocation is a change, whether
        // found through the deltas (held on the same base) or a walk of everything.
        let base = newest.base().expect("a delta").clone();
        let first_delta =
            snapshot::load_snapshot_with(dir.path(), first.sequence, &trust(&plan), NOW, Some(&base))
                .unwrap();
        let via_deltas = newest.status_changes_since(&first_delta);
        assert_eq!(
            via_deltas.iter().map(|c| &c.serial).collect::<Vec<_>>(),
            vec![&second_revoked]
        );
        let separate_base = snapshot::load_snapshot(dir.path(), first.sequence, &trust(&plan), NOW).unwrap();
        assert_eq!(
            newest.status_changes_since(&separate_base),
            via_deltas,
            "full walk agrees"
        );
        for serial in [&first_revoked, &second_revoked] {
            let id = ocsp_edge_core::ocsp::RequestedCertId {
                hash: CertIdHash::Sha1,
                issuer_name_hash: plan.issuers[0].certificate.name_hash(CertIdHash::Sha1),
                issuer_key_hash: plan.issuers[0].certificate.key_hash(CertIdHash::Sha1),
                serial: serial.clone(),
            };
            assert!(matches!(
                newest.lookup(&id).unwrap().status,
                ocsp_edge_core::snapshot::StoredStatus::Revoked { .. }
            ));
        }
        // keep = 1, yet the base survives pruning while a delta needs it.
        assert!(full.manifest.exists() && full.snapshot.exists());

        // Past full_every (24h) a full snapshot replaces the base.
        let refreshed = publish(&plan, dir.path(), NOW.plus_seconds(25 * 3600), &mut |_| {}).unwrap();
        assert_eq!(refreshed.base, None);
        assert_eq!(refreshed.signatures, 2 * refreshed.entries);
    }

    #[test]
    fn responses_reaching_refresh_after_are_re_signed_in_the_delta() {
        let mut plan = delta_plan();
        plan.delta = Some(DeltaPolicy {
            full_every: Duration::from_secs(7 * 86_400),
            refresh_after: Duration::from_secs(2 * 3600),
        });
        let dir = tempfile::tempdir().unwrap();
        let full = publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap();
        let quiet = publish(&plan, dir.path(), NOW.plus_seconds(3600), &mut |_| {}).unwrap();
        assert_eq!((quiet.base, quiet.signatures), (Some(full.sequence), 0));
        let stale = publish(&plan, dir.path(), NOW.plus_seconds(3 * 3600), &mut |_| {}).unwrap();
        assert_eq!(stale.base, Some(full.sequence));
        assert_eq!(stale.signatures, 2 * full.entries);
        let snapshot = load_newest(dir.path(), &plan, NOW.plus_seconds(3 * 3600));
        // Every response, base ones included, now comes from the re-signed delta records.
        assert!(snapshot.earliest_next_update() > NOW.plus_seconds(96 * 3600));
    }

    /// Opens for the first `open` checks, then closes; counts the checks.
    struct CountingFence {
        open: usize,
        asked: std::sync::atomic::AtomicUsize,
    }

    impl crate::publish::fence::Fence for CountingFence {
        fn check(&self) -> Result<(), crate::publish::fence::Fenced> {
            let asked = self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if asked < self.open {
                Ok(())
            } else {
                Err(crate::publish::fence::Fenced::LeaseLost("test".into()))
            }
        }
    }

    #[test]
    fn a_fence_closing_at_any_step_leaves_nothing_visible_nor_temporary() {
        let mut plan = demo_plan();
        let counting = Arc::new(CountingFence {
            open: usize::MAX,
            asked: 0.into(),
        });
        plan.fence = Some(counting.clone());
        let dir = tempfile::tempdir().unwrap();
        let first = publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap();
        let steps = counting.asked.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            steps >= 4,
            "asked per issuer chunk and before both renames: {steps}"
        );
        for open in 0..steps {
            plan.fence = Some(Arc::new(CountingFence {
                open,
                asked: 0.into(),
            }));
            let stopped = publish(&plan, dir.path(), NOW, &mut |_| {});
            assert!(
                matches!(stopped, Err(PublishError::Fenced(_))),
                "closing at step {open}"
            );
            assert_eq!(
                snapshot::manifest_sequences(dir.path()).unwrap(),
                vec![first.sequence]
            );
            let names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert!(
                !names.iter().any(|n| n.starts_with(snapshot::TEMP_PREFIX)),
                "{names:?}"
            );
        }
        // A snapshot file left without its manifest still counts: the next sequence is above it.
        plan.fence = None;
        let next = publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap();
        assert!(next.sequence > first.sequence);
        assert_eq!(next.sequence, snapshot::highest_sequence(dir.path()).unwrap());
    }

    #[test]
    fn old_snapshots_beyond_keep_are_pruned() {
        let mut plan = demo_plan();
        plan.keep = 1;
        let dir = tempfile::tempdir().unwrap();
        let reports: Vec<_> = (0..3)
            .map(|_| publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap())
            .collect();
        assert!(!reports[0].manifest.exists() && !reports[0].snapshot.exists());
        assert!(reports[1].manifest.exists() && reports[2].manifest.exists());
        assert_eq!(reports[2].removed_old, 1);
    }

    #[test]
    fn a_poisoned_snapshot_directory_is_refused_with_an_explanation() {
        let plan = demo_plan();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(snapshot::manifest_name(u64::MAX)), b"{}").unwrap();
        let refused = publish(&plan, dir.path(), NOW, &mut |_| {}).err().unwrap();
        let message = refused.to_string();
        assert!(matches!(refused, PublishError::Sequence(_)), "{message}");
        assert!(
            message.contains("18446744073709551615") && message.contains("clock"),
            "{message}"
        );
        assert_eq!(
            snapshot::manifest_sequences(dir.path()).unwrap(),
            vec![u64::MAX],
            "nothing written"
        );
    }

    #[test]
    fn tampering_and_foreign_trust_are_refused() {
        let plan = demo_plan();
        let dir = tempfile::tempdir().unwrap();
        let report = publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap();
        let manifest = std::fs::read(&report.manifest).unwrap();
        let mut bytes = std::fs::read(&report.snapshot).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        let err = Snapshot::verify(&manifest, SnapshotBytes::Owned(bytes), &trust(&plan), NOW)
            .err()
            .unwrap();
        assert_eq!(err.label(), "hash_mismatch");

        let only_rsa = TrustAnchors::new(vec![plan.issuers[1].certificate.clone()]);
        assert_eq!(
            load(&report, &only_rsa).err().unwrap().label(),
            "untrusted_signer"
        );

        let text = String::from_utf8(manifest).unwrap();
        let bumped = text.replacen(
            &format!("\"sequence\": {}", report.sequence),
            &format!("\"sequence\": {}", report.sequence + 1),
            1,
        );
        assert_ne!(bumped, text);
        let snapshot = std::fs::read(&report.snapshot).unwrap();
        let err = Snapshot::verify(
            bumped.as_bytes(),
            SnapshotBytes::Owned(snapshot),
            &trust(&plan),
            NOW,
        )
        .err()
        .unwrap();
        assert_eq!(err.label(), "bad_signature");
    }
}

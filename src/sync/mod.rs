//! Replication: keeps the local snapshot directory (`snapshots.dir`, the responder's
//! cache) fed from its sources, and swaps in each newer snapshot once it is verified.
//!
//! One task per source, and nothing shared across a download, so a slow or dead source
//! never delays the others: the first source whose download verifies wins. Each round:
//! ask for a newer manifest → verify the manifest ([`verify_manifest`]) before anything
//! it says is believed (no file is deleted, created or sized, and no sequence persisted,
//! before it passes) → stream the snapshot into a uniquely named temporary file in the
//! cache, never past the signed size and within a deadline (`snapshots.download_deadline`
//! plus the size at `snapshots.min_download_rate`) → verify it completely → link it and
//! its manifest into the cache and swap, under a short lock (a second source that fetched
//! the same sequence discards its copy) → only then is the highest sequence persisted.
//!
//! A failed round is counted (`ocsp_edge_snapshots_refused_total{reason}` when the
//! snapshot itself was refused) and the source backs off exponentially (jittered, capped
//! by `snapshots.max_backoff`), so transient refusals (a short download, a deadline, a
//! missing base, I/O) are retried. A refusal about the signed content (bad signature,
//! untrusted, hash mismatch of a complete file) is remembered for that source only: one
//! lying source cannot make a sequence refused for the honest ones.

pub mod source;

use crate::server::state::State;
use crate::snapshot::manifest::Manifest;
use crate::snapshot::store::{held_base, load_snapshot_file_on};
use crate::snapshot::Snapshot;
use crate::snapshot::{store, verify_manifest, VerifyError};
use crate::time::UnixTime;
use source::{SnapshotSource, Source, SourceError};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("refused: {0}")]
    Refused(#[from] VerifyError),
}

impl SyncError {
    /// The `ocsp_edge_snapshots_refused_total` reason when the offered snapshot itself was
    /// refused; `None` for a source that could not be reached or read.
    pub fn refusal_label(&self) -> Option<&'static str> {
        match self {
            SyncError::Refused(e) => Some(e.label()),
            SyncError::Source(SourceError::Truncated { .. }) => Some("incomplete"),
            SyncError::Source(SourceError::Deadline { .. }) => Some("deadline"),
            SyncError::Source(SourceError::TooLarge { .. }) => Some("hash_mismatch"),
            SyncError::Source(SourceError::Io(_) | SourceError::Http(_)) => None,
        }
    }

    /// A refusal about the signed content, which asking this source again cannot change.
    fn is_permanent(&self) -> bool {
        matches!(self, SyncError::Refused(e) if !e.is_transient())
    }
}

fn blocking_failed(e: tokio::task::JoinError) -> SyncError {
    SyncError::Source(SourceError::Io(std::io::Error::other(e)))
}

/// What one round with a source did.
#[derive(Debug, PartialEq, Eq)]
pub enum Round {
    Unchanged,
    Updated(u64),
}

/// Starts one replication task per configured source; they stop when `stop` flips.
pub fn spawn(state: &Arc<State>, stop: &watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
    let long_poll = state.config().snapshots.long_poll;
    state
        .config()
        .snapshots
        .sources
        .iter()
        .filter_map(|config| match Source::from_config(config, long_poll) {
            Ok(source) => Some(source),
            Err(e) => {
                tracing::error!(error = %e, "replication source unusable");
                None
            }
        })
        .map(|source| tokio::spawn(source_loop(state.clone(), source, stop.clone())))
        .collect()
}

/// Runs replication until `stop` flips, restarting it whenever a reload changes the
/// sources.
pub async fn supervise(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    // With sources, the directory is this responder's own cache, and temporary files in it
    // are downloads a previous process never finished. Without sources it belongs to a
    // publisher, whose in-flight files must never be touched.
    if !state.config().snapshots.sources.is_empty() {
        match store::remove_stale_temporaries(&state.config().snapshots.dir) {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed unfinished downloads from the snapshot cache"),
            Err(e) => tracing::warn!(error = %e, "cannot clean the snapshot cache"),
        }
    }
    let mut generation = state.subscribe_sources();
    loop {
        let tasks = spawn(&state, &stop);
        let stopping = tokio::select! {
            _ = generation.changed() => false,
            _ = stop.changed() => true,
        };
        for task in tasks {
            task.abort();
        }
        if stopping {
            return;
        }
        tracing::info!("replication sources changed; restarting replication");
    }
}

async fn source_loop<S: SnapshotSource>(state: Arc<State>, mut source: S, mut stop: watch::Receiver<bool>) {
    let label = source.label();
    // Create the per-source series at 0 (see Metrics::new).
    state.metrics.sync_failures.with_label_values(&[&label]);
    state.metrics.sync_last_success.with_label_values(&[&label]);
    let mut failures = 0u32;
    let mut refused_here = RefusedHere::default();
    loop {
        state.metrics.sync_attempts.with_label_values(&[&label]).inc();
        let round = tokio::select! {
            round = sync_once(&state, &mut source, &mut refused_here) => round,
            _ = stop.changed() => return,
        };
        match round {
            Ok(outcome) => {
                failures = 0;
                let now = UnixTime::now();
                state.record_sync_success(now);
                state
                    .metrics
                    .sync_last_success
                    .with_label_values(&[&label])
                    .set(now.seconds());
                tracing::debug!(source = %label, ?outcome, "replication round");
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                state.metrics.sync_failures.with_label_values(&[&label]).inc();
                tracing::warn!(source = %label, error = %e, failures, "replication round failed");
            }
        }
        let config = state.config();
        let delay = next_delay(
            config.snapshots.poll_interval,
            config.snapshots.max_backoff,
            source.long_polls(),
            failures,
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
    }
}

/// After a success: the poll interval (a long-polling source only a moment, since the
/// peer itself waited). After failures: exponential backoff. Both jittered by ±20% so a
/// fleet does not poll an origin in lockstep.
fn next_delay(poll_interval: Duration, max_backoff: Duration, long_polls: bool, failures: u32) -> Duration {
    let base = match (failures, long_polls) {
        (0, true) => Duration::from_millis(100),
        (0, false) => poll_interval,
        (n, _) => crate::server::state::backoff(poll_interval, max_backoff, n.saturating_add(1)),
    };
    base.mul_f64(rand::random_range(0.8..1.2))
}

/// Sequences one source offered whose signed content was refused (see the module docs);
/// never consulted for another source.
#[derive(Debug, Default)]
pub struct RefusedHere {
    sequences: HashSet<u64>,
}

impl RefusedHere {
    /// Forgets what is at or below `floor`: it can never be offered usefully again.
    fn forget_below(&mut self, floor: u64) {
        self.sequences.retain(|s| *s > floor);
    }
}

/// One round with one source.
pub async fn sync_once<S: SnapshotSource>(
    state: &Arc<State>,
    source: &mut S,
    refused_here: &mut RefusedHere,
) -> Result<Round, SyncError> {
    let retry = state.clone();
    tokio::task::spawn_blocking(move || retry.retry_persisting())
        .await
        .map_err(blocking_failed)?;
    let round = fetch_and_install(state, source, refused_here).await;
    if round.is_ok() {
        source.round_succeeded();
    }
    round
}

fn floor(state: &State) -> u64 {
    state
        .current_sequence()
        .unwrap_or(0)
        .max(state.highest_sequence())
}

/// Counts and logs a refusal of what `source` offered, if it was one.
fn count_refusal(state: &State, source: &str, error: &SyncError) {
    if let Some(reason) = error.refusal_label() {
        tracing::warn!(source, reason, %error, "snapshot refused; still serving the current one");
        state.metrics.snapshots_refused.with_label_values(&[reason]).inc();
    }
}

async fn fetch_and_install<S: SnapshotSource>(
    state: &Arc<State>,
    source: &mut S,
    refused_here: &mut RefusedHere,
) -> Result<Round, SyncError> {
    refused_here.forget_below(floor(state));
    let Some(manifest_bytes) = source.newer_manifest(floor(state)).await? else {
        return Ok(Round::Unchanged);
    };
    let now = UnixTime::now();
    let started = std::time::Instant::now();
    // First, before anything the manifest says is believed.
    let (manifest, _) = verify_manifest(&manifest_bytes, &state.trust, now).inspect_err(|e| {
        state.refuse_offer(&source.label(), e);
    })?;
    let sequence = manifest.body.sequence;
    let floor = floor(state);
    if sequence <= floor {
        if sequence < floor {
            // An older snapshot offered as the newest: a lagging or malicious mirror.
            let error = VerifyError::NotNewer {
                offered: sequence,
                current: floor,
            };
            state.refuse_offer(&source.label(), &error);
        }
        return Ok(Round::Unchanged);
    }
    if refused_here.sequences.contains(&sequence) {
        return Ok(Round::Unchanged);
    }
    let installed = async {
        let base = match &manifest.body.base {
            None => None,
            Some(wanted) => Some(ensure_base(state, source, wanted.sequence, now).await?),
        };
        let download = download_and_verify(state, source, &manifest_bytes, &manifest, now, base).await?;
        let installing = state.clone();
        tokio::task::spawn_blocking(move || keep_and_swap(&installing, download, now, started))
            .await
            .map_err(blocking_failed)?
    }
    .await;
    installed.inspect_err(|e| {
        count_refusal(state, &source.label(), e);
        if e.is_permanent() {
            refused_here.sequences.insert(sequence);
        }
    })
}

/// The full snapshot `sequence` that a delta applies to: the one held (served, or under
/// the served delta), else the one in the cache directory, else downloaded from `source`
/// the same careful way as any snapshot (manifest verified first, size bounded, fully
/// verified before it is kept). A base is never served on its own, so it may be older
/// than what anti-rollback would accept as the newest.
async fn ensure_base<S: SnapshotSource>(
    state: &Arc<State>,
    source: &S,
    sequence: u64,
    now: UnixTime,
) -> Result<Arc<Snapshot>, SyncError> {
    if let Some(base) = held_base(state.current().as_ref(), sequence) {
        return Ok(base);
    }
    let dir = state.config().snapshots.dir.clone();
    let trust = state.trust.clone();
    let cached = tokio::task::spawn_blocking(move || {
        dir.join(store::manifest_name(sequence))
            .exists()
            .then(|| store::load_snapshot(&dir, sequence, &trust, now).ok())
            .flatten()
    })
    .await
    .map_err(blocking_failed)?;
    if let Some(base) = cached {
        return Ok(Arc::new(base));
    }
    let manifest_name = store::manifest_name(sequence);
    let manifest_bytes = source.fetch_manifest(&manifest_name).await?;
    let (manifest, _) = verify_manifest(&manifest_bytes, &state.trust, now)?;
    if manifest.body.sequence != sequence || manifest.body.base.is_some() {
        return Err(VerifyError::Inconsistent(format!(
            "{manifest_name} is not the full snapshot {sequence}"
        ))
        .into());
    }
    let download = download_and_verify(state, source, &manifest_bytes, &manifest, now, None).await?;
    let keeping = state.clone();
    let base = tokio::task::spawn_blocking(move || {
        let _one_at_a_time = keeping.install_lock();
        keep(&keeping.config().snapshots.dir, download).map(|(snapshot, _)| snapshot)
    })
    .await
    .map_err(blocking_failed)??;
    tracing::info!(sequence, source = %source.label(), "fetched the base of a delta");
    Ok(Arc::new(base))
}

/// A snapshot downloaded into a temporary file and verified, not yet in the cache.
struct Verified {
    file: store::NewFile,
    snapshot: Snapshot,
    manifest_bytes: Vec<u8>,
}

/// How long a download of `size` bytes may take in all.
fn download_deadline(state: &State, size: u64) -> Duration {
    let config = state.config();
    let at_min_rate = Duration::from_secs(size / config.snapshots.min_download_rate.max(1));
    config.snapshots.download_deadline.saturating_add(at_min_rate)
}

/// Downloads the snapshot the (verified) `manifest` names into a new, uniquely named
/// temporary file in the cache, within the download deadline, and verifies it (on `base`
/// for a delta). Nothing in the cache is touched; a failure leaves nothing behind.
async fn download_and_verify<S: SnapshotSource>(
    state: &Arc<State>,
    source: &S,
    manifest_bytes: &[u8],
    manifest: &Manifest,
    now: UnixTime,
    base: Option<Arc<Snapshot>>,
) -> Result<Verified, SyncError> {
    let dir = state.config().snapshots.dir.clone();
    let size = manifest.body.size;
    let (file, out) = tokio::task::spawn_blocking(move || {
        // Named for what it is until it verifies, not for what the manifest says.
        let mut file = store::NewFile::start(&dir, "download")?;
        let out = file.file().try_clone()?;
        Ok::<_, std::io::Error>((file, out))
    })
    .await
    .map_err(blocking_failed)?
    .map_err(SourceError::Io)?;
    let deadline = download_deadline(state, size);
    tokio::time::timeout(deadline, source.download(&manifest.body.snapshot, size, out))
        .await
        .map_err(|_| SourceError::Deadline { size, deadline })??;
    let temp = file.path().to_path_buf();
    let trust = state.trust.clone();
    let checked = manifest_bytes.to_vec();
    let snapshot =
        tokio::task::spawn_blocking(move || load_snapshot_file_on(&checked, &temp, &trust, now, base))
            .await
            .map_err(blocking_failed)??;
    Ok(Verified {
        file,
        snapshot,
        manifest_bytes: manifest_bytes.to_vec(),
    })
}

/// Links a verified snapshot and its manifest into the cache (under the install lock).
/// Returns the snapshot and whether its files were new: `false` when the cache already
/// holds that sequence (this copy's files are then discarded). Blocking.
fn keep(dir: &std::path::Path, verified: Verified) -> Result<(Snapshot, bool), SyncError> {
    let Verified {
        file,
        snapshot,
        manifest_bytes,
    } = verified;
    let sequence = snapshot.sequence();
    let manifest_name = store::manifest_name(sequence);
    if dir.join(&manifest_name).exists() {
        return Ok((snapshot, false));
    }
    // A snapshot file without its manifest is what a crash between the two writes leaves;
    // it was never served, and the verified download replaces it.
    let name = &snapshot.manifest().body.snapshot;
    if *name == store::snapshot_name(sequence) {
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(SourceError::Io(e).into()),
            _ => {}
        }
    }
    file.commit_as(name).map_err(SourceError::Io)?;
    store::write_new(dir, &manifest_name, &manifest_bytes).map_err(SourceError::Io)?;
    Ok((snapshot, true))
}

/// Keeps a verified snapshot in the cache and swaps it in, unless another source got the
/// same or a newer one in first (then this copy is discarded). Blocking.
fn keep_and_swap(
    state: &State,
    verified: Verified,
    now: UnixTime,
    started: std::time::Instant,
) -> Result<Round, SyncError> {
    let _one_at_a_time = state.install_lock();
    let sequence = verified.snapshot.sequence();
    if sequence <= floor(state) {
        // Another source delivered this or a newer one while this copy downloaded.
        return Ok(Round::Unchanged);
    }
    // Already in the cache but not served (kept as a delta's base, or by a process that
    // stopped before its swap): this verified copy is served, the cached files stay.
    let (snapshot, _) = keep(&state.config().snapshots.dir, verified)?;
    // The source answered; recorded before the swap so that whoever sees the new sequence
    // also sees the sync time.
    state.record_sync_success(UnixTime::now());
    state.swap_in(snapshot, now, started)?;
    Ok(Round::Updated(sequence))
}

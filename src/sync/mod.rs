//! Replication: keeps the local snapshot directory (`snapshots.dir`, the responder's
//! cache) fed from its sources, and swaps in each newer snapshot once it is verified.
//!
//! One task per source, so a slow or dead source never delays the others, and the first
//! source to offer a newer snapshot wins. Each round: ask for a newer manifest → verify
//! the manifest's signatures and trust before downloading anything → stream the snapshot
//! into a temporary file in the cache (never larger than the signed size) → verify it
//! completely → link it and its manifest into the cache → swap. A download that fails any
//! check is deleted and counted; the served snapshot is untouched. Failing sources back
//! off exponentially (jittered, capped by `snapshots.max_backoff`).

pub mod source;

use crate::server::state::State;
use crate::snapshot::manifest::Manifest;
use crate::snapshot::store::{held_base, load_snapshot_file_on};
use crate::snapshot::Snapshot;
use crate::snapshot::{store, verify_manifest, VerifyError};
use crate::time::UnixTime;
use source::{Source, SourceError};
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

async fn source_loop(state: Arc<State>, mut source: Source, mut stop: watch::Receiver<bool>) {
    let label = source.label();
    // Create the per-source series at 0 (see Metrics::new).
    state.metrics.sync_failures.with_label_values(&[&label]);
    state.metrics.sync_last_success.with_label_values(&[&label]);
    let mut failures = 0u32;
    loop {
        state.metrics.sync_attempts.with_label_values(&[&label]).inc();
        let round = tokio::select! {
            round = sync_once(&state, &mut source) => round,
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
        let delay = next_delay(&state, &source, failures);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
    }
}

/// After a success: the poll interval (a long-polling source only a moment, since the
/// peer itself waited). After failures: exponential backoff. Both jittered by ±20% so a
/// fleet does not poll an origin in lockstep.
fn next_delay(state: &State, source: &Source, failures: u32) -> Duration {
    let base = match (failures, source.long_polls()) {
        (0, true) => Duration::from_millis(100),
        (0, false) => state.config().snapshots.poll_interval,
        (n, _) => {
            let interval = state.config().snapshots.poll_interval;
            interval
                .saturating_mul(1u32 << n.min(16))
                .min(state.config().snapshots.max_backoff)
        }
    };
    base.mul_f64(rand::random_range(0.8..1.2))
}

/// One round with one source.
pub async fn sync_once(state: &Arc<State>, source: &mut Source) -> Result<Round, SyncError> {
    let round = fetch_and_install(state, source).await;
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

async fn fetch_and_install(state: &Arc<State>, source: &mut Source) -> Result<Round, SyncError> {
    let Some(manifest_bytes) = source.newer_manifest(floor(state)).await? else {
        return Ok(Round::Unchanged);
    };
    let now = UnixTime::now();
    let started = std::time::Instant::now();
    let (manifest, _) = verify_manifest(&manifest_bytes, &state.trust, now).inspect_err(|e| {
        state.refuse_offer(&source.label(), e);
    })?;
    let sequence = manifest.body.sequence;
    // One download at a time: two sources offering the same snapshot fetch it once.
    let _downloading = state.download_lock().lock().await;
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
    let base = match &manifest.body.base {
        None => None,
        Some(wanted) => Some(
            ensure_base(state, source, wanted.sequence, now)
                .await
                .inspect_err(|e| {
                    if let SyncError::Refused(e) = e {
                        state.refuse_offer(&source.label(), e)
                    }
                })?,
        ),
    };
    let snapshot = download_and_keep(state, source, &manifest_bytes, &manifest, now, base)
        .await
        .inspect_err(|e| {
            if let SyncError::Refused(e) = e {
                state.refuse_offer(&source.label(), e)
            }
        })?;
    state.swap_in(snapshot, now, started)?;
    Ok(Round::Updated(sequence))
}

/// The full snapshot `sequence` that a delta applies to: the one held (served, or under
/// the served delta), else the one in the cache directory, else downloaded from `source`
/// the same careful way as any snapshot (manifest verified first, size bounded, fully
/// verified before it is kept). A base is never served on its own, so it may be older
/// than what anti-rollback would accept as the newest.
async fn ensure_base(
    state: &Arc<State>,
    source: &Source,
    sequence: u64,
    now: UnixTime,
) -> Result<Arc<Snapshot>, SyncError> {
    if let Some(base) = held_base(state.current().as_ref(), sequence) {
        return Ok(base);
    }
    let dir = state.config().snapshots.dir.clone();
    let trust = state.trust.clone();
    let blocking_io = |e: tokio::task::JoinError| SourceError::Io(std::io::Error::other(e));
    if dir.join(store::manifest_name(sequence)).exists() {
        let (dir, trust) = (dir.clone(), trust.clone());
        let cached = tokio::task::spawn_blocking(move || store::load_snapshot(&dir, sequence, &trust, now))
            .await
            .map_err(blocking_io)?;
        if let Ok(base) = cached {
            return Ok(Arc::new(base));
        }
    }
    let manifest_name = store::manifest_name(sequence);
    let manifest_bytes = source.fetch_manifest(&manifest_name).await?;
    let (manifest, _) = verify_manifest(&manifest_bytes, &trust, now)?;
    if manifest.body.sequence != sequence || manifest.body.base.is_some() {
        return Err(VerifyError::Inconsistent(format!(
            "{manifest_name} is not the full snapshot {sequence}"
        ))
        .into());
    }
    let base = download_and_keep(state, source, &manifest_bytes, &manifest, now, None).await?;
    tracing::info!(sequence, source = %source.label(), "fetched the base of a delta");
    Ok(Arc::new(base))
}

/// Downloads the snapshot `manifest` names into the cache directory, verifies it (on
/// `base` for a delta) and only then keeps it and its manifest. The manifest has been
/// verified already; a failed download or verification leaves nothing behind.
async fn download_and_keep(
    state: &Arc<State>,
    source: &Source,
    manifest_bytes: &[u8],
    manifest: &Manifest,
    now: UnixTime,
    base: Option<Arc<Snapshot>>,
) -> Result<Snapshot, SyncError> {
    let dir = state.config().snapshots.dir.clone();
    let name = &manifest.body.snapshot;
    // A snapshot file without its manifest is what a crash between the two writes leaves;
    // it was never served, and is replaced.
    match std::fs::remove_file(dir.join(name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(SourceError::Io(e).into()),
        _ => {}
    }
    let mut download = store::NewFile::create(&dir, name).map_err(SourceError::Io)?;
    source.download(name, manifest.body.size, download.file()).await?;
    let temp = download.path().to_path_buf();
    let trust = state.trust.clone();
    let checked = manifest_bytes.to_vec();
    let snapshot =
        tokio::task::spawn_blocking(move || load_snapshot_file_on(&checked, &temp, &trust, now, base))
            .await
            .map_err(|e| SourceError::Io(std::io::Error::other(e)))??;
    download.commit().map_err(SourceError::Io)?;
    match store::write_new(
        &dir,
        &store::manifest_name(manifest.body.sequence),
        manifest_bytes,
    ) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(SourceError::Io(e).into()),
        _ => Ok(snapshot),
    }
}

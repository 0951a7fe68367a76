//! What a running responder holds: the served snapshot behind `arc-swap` (readers never
//! lock; a swap is one atomic pointer store), the metrics, and readiness. Also the
//! directory poller that finds, verifies and swaps in newer snapshots.
//!
//! A snapshot is swapped in only after [`Snapshot::verify`] has passed completely; a
//! refused one is logged, counted, remembered (so it is not re-verified every poll) and
//! the current one keeps serving.

use super::metrics::Metrics;
use crate::config::Config;
use crate::snapshot::store;
use crate::snapshot::verify::SnapshotBytes;
use crate::snapshot::{Snapshot, TrustAnchors, VerifyError};
use crate::time::UnixTime;
use arc_swap::{ArcSwapOption, Guard};
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct State {
    pub config: Config,
    pub trust: TrustAnchors,
    pub metrics: Metrics,
    snapshot: ArcSwapOption<Snapshot>,
    draining: AtomicBool,
    refused: Mutex<HashSet<u64>>,
}

/// What one poll of the snapshot directory did.
#[derive(Debug, PartialEq, Eq)]
pub enum PollOutcome {
    Unchanged,
    Swapped {
        from: Option<u64>,
        to: u64,
    },
    /// Newer snapshots exist but every one was refused; the current one keeps serving.
    Refused,
}

impl State {
    pub fn new(config: Config, trust: TrustAnchors, metrics: Metrics) -> State {
        State {
            config,
            trust,
            metrics,
            snapshot: ArcSwapOption::empty(),
            draining: AtomicBool::new(false),
            refused: Mutex::new(HashSet::new()),
        }
    }

    /// The snapshot being served; cheap (no lock, no reference-count traffic).
    pub fn current(&self) -> Guard<Option<Arc<Snapshot>>> {
        self.snapshot.load()
    }

    pub fn current_sequence(&self) -> Option<u64> {
        self.snapshot.load().as_ref().map(|s| s.sequence())
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Ready when a snapshot is loaded, it is not about to expire, and we are not draining.
    pub fn readiness(&self, now: UnixTime) -> Result<(), &'static str> {
        if self.draining.load(Ordering::SeqCst) {
            return Err("draining");
        }
        let guard = self.current();
        let snapshot = guard.as_ref().ok_or("no snapshot loaded")?;
        let margin = self.config.snapshots.not_ready_before_expiry.as_secs() as i64;
        if now.plus_seconds(margin) >= snapshot.earliest_next_update() {
            return Err("snapshot expires soon; waiting for a newer one");
        }
        Ok(())
    }

    /// Brings the time-dependent gauges up to date (called before each scrape).
    pub fn refresh_gauges(&self, now: UnixTime) {
        let m = &self.metrics;
        if let Some(snapshot) = self.current().as_ref() {
            m.snapshot_sequence.set(snapshot.sequence() as i64);
            m.snapshot_created.set(snapshot.created_at().seconds());
            m.snapshot_entries.set(snapshot.entry_count() as i64);
            m.snapshot_age
                .set(now.seconds() - snapshot.created_at().seconds());
            m.seconds_until_next_update
                .set((snapshot.earliest_next_update().seconds() - now.seconds()).max(0));
            // Rebuilt on every scrape so paths of a replaced snapshot disappear.
            m.crl_number.reset();
            m.crl_this_update.reset();
            m.crl_seconds_until_next_update.reset();
            for document in snapshot.documents() {
                let Some(number) = document.crl_number else {
                    continue;
                };
                let path = [document.path.as_str()];
                m.crl_number.with_label_values(&path).set(number as i64);
                m.crl_this_update
                    .with_label_values(&path)
                    .set(document.this_update);
                m.crl_seconds_until_next_update
                    .with_label_values(&path)
                    .set((document.next_update - now.seconds()).max(0));
            }
        }
        m.ready.set(i64::from(self.readiness(now).is_ok()));
    }

    /// Looks for snapshots newer than the current one, newest first, and swaps in the
    /// first that verifies. Blocking (it maps and hashes files): run off the async threads.
    pub fn poll_directory(&self, now: UnixTime) -> PollOutcome {
        let dir = &self.config.snapshots.dir;
        let current = self.current_sequence();
        let sequences = match store::manifest_sequences(dir) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot list snapshot directory");
                return PollOutcome::Unchanged;
            }
        };
        let candidates: Vec<u64> = {
            let refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
            sequences
                .into_iter()
                .filter(|s| current.is_none_or(|c| *s > c) && !refused.contains(s))
                .collect()
        };
        if candidates.is_empty() {
            return PollOutcome::Unchanged;
        }
        for sequence in candidates {
            match self.load_and_swap(dir, sequence, now) {
                Ok(()) => {
                    return PollOutcome::Swapped {
                        from: current,
                        to: sequence,
                    }
                }
                Err(e) => self.refuse(sequence, &e),
            }
        }
        PollOutcome::Refused
    }

    fn load_and_swap(&self, dir: &Path, sequence: u64, now: UnixTime) -> Result<(), VerifyError> {
        let started = std::time::Instant::now();
        let snapshot = load_snapshot(dir, sequence, &self.trust, now)?;
        // The manifest's own sequence counts, not its file name: a renamed old manifest is a
        // rollback attempt.
        let current = self.current_sequence().unwrap_or(0);
        if snapshot.sequence() != sequence || snapshot.sequence() <= current {
            return Err(VerifyError::NotNewer {
                offered: snapshot.sequence(),
                current,
            });
        }
        let (entries, earliest) = (snapshot.entry_count(), snapshot.earliest_next_update());
        self.snapshot.store(Some(Arc::new(snapshot)));
        self.metrics.snapshot_loads.inc();
        self.metrics
            .snapshot_load_seconds
            .observe(started.elapsed().as_secs_f64());
        self.refresh_gauges(now);
        tracing::info!(sequence, entries, earliest_next_update = %earliest,
            load_ms = started.elapsed().as_millis() as u64, "snapshot swapped in");
        Ok(())
    }

    fn refuse(&self, sequence: u64, error: &VerifyError) {
        tracing::warn!(sequence, reason = error.label(), error = %error, "snapshot refused; still serving the current one");
        self.metrics
            .snapshots_refused
            .with_label_values(&[error.label()])
            .inc();
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sequence);
    }
}

/// Reads the manifest and memory-maps the snapshot of `sequence` in `dir`, then verifies.
pub fn load_snapshot(
    dir: &Path,
    sequence: u64,
    trust: &TrustAnchors,
    now: UnixTime,
) -> Result<Snapshot, VerifyError> {
    let io = |e: std::io::Error| VerifyError::Io(e.to_string());
    let manifest = std::fs::read(dir.join(store::manifest_name(sequence))).map_err(io)?;
    let parsed = crate::snapshot::manifest::Manifest::parse(&manifest)?;
    // The manifest names its snapshot; refuse names that could leave the directory.
    let name = &parsed.body.snapshot;
    if name.contains('/') || name.contains('\\') || name.starts_with('.') {
        return Err(VerifyError::Inconsistent(format!(
            "snapshot name {name:?} is not a plain file name"
        )));
    }
    let file = std::fs::File::open(dir.join(name)).map_err(io)?;
    // SAFETY: snapshot files are immutable once committed (written to a temporary name,
    // fsynced, linked; the publisher never rewrites or truncates them), and we map them
    // read-only. Deleting the file while mapped is safe on Unix.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
    Snapshot::verify(&manifest, SnapshotBytes::Mapped { map, file }, trust, now)
}

//! What a running responder holds: the served snapshot behind `arc-swap` (readers never
//! lock; a swap is one atomic pointer store) and readiness. Also the directory poller
//! that finds, verifies and swaps in newer snapshots, the anti-rollback floor
//! ([`rollback`]), the hub's change history ([`changes`]), and the metrics of all these
//! ([`metrics`], registered into the registry [`State::new`] is given). Below `server`
//! and `sync`, which both drive it; must never import either, nor hold the HTTP
//! adapter's metrics (those are `server`'s).
//!
//! A snapshot is swapped in only after [`Snapshot::verify`] has passed completely; a
//! refused one is logged, counted and the current one keeps serving. A refusal about the
//! signed content is remembered (so it is not re-verified every poll); one that may go
//! away by itself (a snapshot still being copied, after its manifest, as rsync does) is
//! retried with backoff.
//!
//! Anti-rollback fails closed: an unreadable `highest-sequence` file (see
//! [`rollback`]) makes the newest snapshot that verifies locally the floor, and is
//! left for an operator; a failed write of it is an error, counted and retried.

use crate::config::Config;
use arc_swap::{ArcSwapOption, Guard};
use ocsp_edge_core::snapshot::{self, Snapshot, TrustAnchors, VerifyError};
use ocsp_edge_core::time::UnixTime;
use prometheus::Registry;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub mod changes;
pub mod metrics;
pub mod replication;
pub mod rollback;

pub use rollback::HIGHEST_SEQUENCE_FILE;

pub struct State {
    /// The configuration in force; replaced whole by a reload (see [`State::reload`]).
    config: arc_swap::ArcSwap<Config>,
    pub trust: TrustAnchors,
    metrics: metrics::ServedMetrics,
    snapshot: ArcSwapOption<Snapshot>,
    draining: AtomicBool,
    /// Sequences of the polled directory that were refused, and when to look again.
    refused: Mutex<HashMap<u64, Refused>>,
    /// The highest sequence ever accepted, and its persistence (see [`rollback::Floor`]).
    floor: rollback::Floor,
    /// What replication coordinates on (see [`replication::Coordination`]).
    replication: replication::Coordination,
    /// The served sequence, for long-polling peers.
    sequence: watch::Sender<u64>,
    /// Serialises swaps, so two sources delivering at once cannot interleave.
    swapping: Mutex<()>,
    /// The status changes of recent swaps, for caches' change feed (see [`changes`]).
    changes: changes::ChangeLog,
    /// Set on a cache-mode responder, which then serves no snapshot.
    cache: Option<Arc<crate::cache::CacheTier>>,
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

/// A refused sequence of the polled directory.
#[derive(Clone, Copy, Debug)]
enum Refused {
    /// The signed content is wrong: never tried again.
    Permanently,
    /// Perhaps still being copied: tried again at `retry_at`.
    Transiently {
        attempts: u32,
        retry_at: std::time::Instant,
    },
}

impl State {
    /// `cache`: the tier of a cache-mode responder, which then serves no snapshot. The
    /// served state's metrics, the floor's and replication's are registered into
    /// `registry` (the responder's one registry; created by `server::build`).
    pub fn new(
        config: Config,
        trust: TrustAnchors,
        registry: &Registry,
        cache: Option<Arc<crate::cache::CacheTier>>,
    ) -> Result<State, prometheus::Error> {
        let floor = rollback::Floor::open(
            &config.snapshots.dir,
            config.snapshots.danger_allow_rollback,
            registry,
        )?;
        Ok(State {
            config: arc_swap::ArcSwap::from_pointee(config),
            trust,
            metrics: metrics::ServedMetrics::register(registry)?,
            snapshot: ArcSwapOption::empty(),
            draining: AtomicBool::new(false),
            refused: Mutex::new(HashMap::new()),
            floor,
            sequence: watch::channel(0).0,
            swapping: Mutex::new(()),
            replication: replication::Coordination::new(registry)?,
            changes: changes::ChangeLog::default(),
            cache,
        })
    }

    /// The served state's metrics (refusals are counted here by replication too).
    pub fn metrics(&self) -> &metrics::ServedMetrics {
        &self.metrics
    }

    /// What replication coordinates on, and its metrics.
    pub fn replication(&self) -> &replication::Coordination {
        &self.replication
    }

    /// The cache tier, on a cache-mode responder.
    pub fn cache(&self) -> Option<&Arc<crate::cache::CacheTier>> {
        self.cache.as_ref()
    }

    /// The status changes of recent swaps (the change feed's source).
    pub fn changes(&self) -> &changes::ChangeLog {
        &self.changes
    }

    /// The configuration in force (a cheap, consistent snapshot of it).
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// The configuration for one request: a guard rather than an `Arc`, so that serving
    /// does not bump a reference count every worker thread shares.
    pub fn request_config(&self) -> Guard<Arc<Config>> {
        self.config.load()
    }

    /// Applies a reloaded configuration: everything that can change on a running process
    /// does; settings that need a restart keep their running values and are returned, so
    /// the caller can say what it could not apply.
    pub fn reload(&self, mut new: Config) -> Vec<&'static str> {
        let old = self.config();
        let mut kept = Vec::new();
        let mut keep = |name: &'static str, differs: bool| {
            if differs {
                kept.push(name);
            }
        };
        keep("server.listen", new.server.listen != old.server.listen);
        keep(
            "server.admin_listen",
            new.server.admin_listen != old.server.admin_listen,
        );
        keep(
            "server.max_connections",
            new.server.max_connections != old.server.max_connections,
        );
        keep("snapshots.dir", new.snapshots.dir != old.snapshots.dir);
        keep("snapshots.trust", new.snapshots.trust != old.snapshots.trust);
        keep("log.format", new.log.format != old.log.format);
        match (&mut new.cache, &old.cache) {
            (Some(new_cache), Some(old_cache)) => {
                keep("cache.hubs", new_cache.hubs != old_cache.hubs);
                keep("cache.capacity", new_cache.capacity != old_cache.capacity);
                new_cache.hubs = old_cache.hubs.clone();
                new_cache.capacity = old_cache.capacity;
            }
            (None, None) => {}
            // Switching between cache mode and snapshot mode.
            (new_cache, old_cache) => {
                keep("cache", true);
                new_cache.clone_from(old_cache);
            }
        }
        new.server.listen = old.server.listen;
        new.server.admin_listen = old.server.admin_listen;
        new.server.max_connections = old.server.max_connections;
        new.snapshots.dir = old.snapshots.dir.clone();
        new.snapshots.trust = old.snapshots.trust.clone();
        new.log.format = old.log.format;
        let sources_changed = new.snapshots.sources != old.snapshots.sources;
        self.config.store(Arc::new(new));
        if sources_changed {
            self.replication.sources_changed();
        }
        kept
    }

    /// The highest sequence ever accepted; nothing below it is served again.
    pub fn highest_sequence(&self) -> u64 {
        self.floor.get()
    }

    /// Notified with the served sequence after every swap (for long-polling peers).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.sequence.subscribe()
    }

    /// Swaps `snapshot` (fully verified) in if `State::admissible` allows it; persists
    /// the new highest, wakes long-polling peers and prunes the local cache. The one place
    /// a snapshot becomes the served one. Blocking (fsyncs): off the async threads.
    pub fn swap_in(
        &self,
        snapshot: Snapshot,
        now: UnixTime,
        load_started: std::time::Instant,
    ) -> Result<(), VerifyError> {
        let _one_at_a_time = self.swapping.lock().unwrap_or_else(|p| p.into_inner());
        self.admissible(&snapshot)?;
        let offered = snapshot.sequence();
        // Under the swap lock, so the snapshot compared with is the one replaced. Callers
        // log and count a refusal (reason "unrevoke").
        if let Some(served) = self.current().as_ref() {
            ocsp_edge_core::snapshot::check_unrevocations(served, &snapshot, now)?;
        }
        let (entries, earliest) = (snapshot.entry_count(), snapshot.earliest_next_update());
        // Persisted before it is served: once anyone can see the new sequence, a restart
        // cannot go back below it (a crash between the two can only leave the floor
        // ahead of what was served, never behind).
        self.floor.raise(&self.config().snapshots.dir, offered);
        let snapshot = Arc::new(snapshot);
        let previous = self.snapshot.swap(Some(snapshot.clone()));
        // Still under the swap lock, so the change history sees swaps in order.
        self.changes.record(previous, snapshot);
        self.sequence.send_replace(offered);
        self.metrics.count_load(load_started.elapsed().as_secs_f64());
        self.refresh_gauges(now);
        tracing::info!(sequence = offered, entries, earliest_next_update = %earliest,
            load_ms = load_started.elapsed().as_millis() as u64, "snapshot swapped in");
        if !self.config().snapshots.sources.is_empty() {
            self.prune_cache(offered);
        }
        Ok(())
    }

    /// Whether a verified snapshot may replace the served one (called under the swap
    /// lock, so every check here sees the served state it decides on): it must be newer
    /// than the one served and not below the highest ever accepted. Further checks of a
    /// candidate against the served snapshot belong here.
    fn admissible(&self, snapshot: &Snapshot) -> Result<(), VerifyError> {
        let current = self.current_sequence().unwrap_or(0).max(self.highest_sequence());
        let offered = snapshot.sequence();
        let first_load = self.current_sequence().is_none();
        // At start-up the snapshot that set `highest` may be served again; after that only
        // newer ones.
        if offered < current || (!first_load && offered == current) {
            return Err(VerifyError::NotNewer { offered, current });
        }
        Ok(())
    }

    /// Writes the highest sequence again if the last write failed. Blocking.
    pub fn retry_persisting(&self) {
        if self.floor.unpersisted() {
            let _one_at_a_time = self.swapping.lock().unwrap_or_else(|p| p.into_inner());
            self.floor.persist(&self.config().snapshots.dir);
        }
    }

    /// Keeps the newest `snapshots.keep` snapshots in the local cache (manifest removed
    /// first, so a reader never finds a manifest without its snapshot).
    fn prune_cache(&self, served: u64) {
        let config = self.config();
        // The base of the delta being served stays, whatever its age.
        let base = self
            .current()
            .as_ref()
            .and_then(|s| s.base().map(|b| b.sequence()));
        let older_to_keep = config.snapshots.keep.saturating_sub(1);
        if let Err(e) = snapshot::prune_snapshots(&config.snapshots.dir, served, older_to_keep, base) {
            tracing::warn!(error = %e, "cannot prune the snapshot cache");
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

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Ready when a snapshot is loaded, it is not about to expire, and we are not draining;
    /// in cache mode, see [`crate::cache::CacheTier::readiness`].
    pub fn readiness(&self, now: UnixTime) -> Result<(), &'static str> {
        if self.draining.load(Ordering::SeqCst) {
            return Err("draining");
        }
        if let (Some(tier), Some(config)) = (self.cache(), self.config().cache.as_ref()) {
            return tier.readiness(now, config);
        }
        let guard = self.current();
        let snapshot = guard.as_ref().ok_or("no snapshot loaded")?;
        let margin = self.config().snapshots.not_ready_before_expiry.as_secs() as i64;
        if now.plus_seconds(margin) >= snapshot.earliest_next_update() {
            return Err("snapshot expires soon; waiting for a newer one");
        }
        Ok(())
    }

    /// Brings the time-dependent gauges up to date (called before each scrape).
    pub fn refresh_gauges(&self, now: UnixTime) {
        if let Some(snapshot) = self.current().as_ref() {
            self.metrics.describe_snapshot(snapshot, now);
        }
        self.metrics.set_ready(self.readiness(now).is_ok());
        let (start, records) = self.changes.extent();
        self.metrics.set_change_history(start, records);
        if let Some(tier) = self.cache() {
            tier.refresh_gauges();
        }
        self.replication.refresh_gauges(now);
    }

    /// Looks for snapshots newer than the current one, newest first, and swaps in the
    /// first that verifies. Blocking (it maps and hashes files): run off the async threads.
    pub fn poll_directory(&self, now: UnixTime) -> PollOutcome {
        self.retry_persisting();
        let dir = &self.config().snapshots.dir;
        let current = self.current_sequence();
        let sequences = match snapshot::manifest_sequences(dir) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot list snapshot directory");
                return PollOutcome::Unchanged;
            }
        };
        let candidates: Vec<u64> = {
            let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
            let floor = self.highest_sequence();
            // Bounded by what the directory can still offer.
            refused.retain(|s, _| current.is_none_or(|c| *s > c) && *s >= floor);
            let checked = std::time::Instant::now();
            sequences
                .into_iter()
                .filter(|s| current.is_none_or(|c| *s > c) && *s >= floor)
                .filter(|s| match refused.get(s) {
                    None => true,
                    Some(Refused::Permanently) => false,
                    Some(Refused::Transiently { retry_at, .. }) => *retry_at <= checked,
                })
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
        let held = self.current();
        // Without sources the directory is a publisher's (or a replica's), not ours: what
        // is served must not change if its files do.
        let mapping = if self.config().snapshots.sources.is_empty() {
            snapshot::Mapping::PrivateCopy
        } else {
            snapshot::Mapping::InPlace
        };
        let snapshot =
            snapshot::load_snapshot_mapped(dir, sequence, &self.trust, now, held.as_ref(), mapping)?;
        drop(held);
        // The manifest's own sequence counts, not its file name: a renamed old manifest is a
        // rollback attempt.
        if snapshot.sequence() != sequence {
            return Err(VerifyError::NotNewer {
                offered: snapshot.sequence(),
                current: sequence,
            });
        }
        self.swap_in(snapshot, now, started)
    }

    /// Records a refused snapshot: a log line and a metric.
    pub fn refuse_offer(&self, source: &str, error: &VerifyError) {
        tracing::warn!(source, reason = error.label(), error = %error, "snapshot refused; still serving the current one");
        self.metrics.count_refusal(error.label());
    }

    fn refuse(&self, sequence: u64, error: &VerifyError) {
        self.refuse_offer(&format!("directory, sequence {sequence}"), error);
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        let entry = if error.is_transient() {
            let attempts = match refused.get(&sequence) {
                Some(Refused::Transiently { attempts, .. }) => attempts.saturating_add(1),
                _ => 1,
            };
            let config = self.config();
            let wait = ocsp_edge_core::backoff::exponential(
                config.snapshots.poll_interval,
                config.snapshots.max_backoff,
                attempts,
            );
            Refused::Transiently {
                attempts,
                retry_at: std::time::Instant::now() + wait,
            }
        } else {
            Refused::Permanently
        };
        refused.insert(sequence, entry);
    }
}

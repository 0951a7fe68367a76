//! What replication and the served state coordinate on: the install lock (one verified
//! download linked and swapped in at a time), the generation of the configured sources
//! (bumped by a reload that changes them, so replication restarts), when a source was
//! last checked successfully, and replication's metrics (`ocsp_edge_sync_*`,
//! `ocsp_edge_seconds_since_last_sync`). They live here rather than in replication (`sync`)
//! because this outlives a reload of the sources, which restarts replication.
//!
//! Owns only these signals. Must never hold a lock across a download: the install lock
//! is taken for the milliseconds of a link and a swap.

use ocsp_edge_core::time::UnixTime;
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::watch;

/// Replication's coordination with the served state (see the module docs).
#[derive(Debug)]
pub struct Coordination {
    /// Held while replication links a verified download into the cache and swaps it in
    /// (milliseconds, never during a download), so two sources that fetched the same
    /// sequence cannot both link it.
    installing: Mutex<()>,
    sources_generation: watch::Sender<u64>,
    /// Unix time of the last successful check of a replication source (0: never).
    last_sync: AtomicI64,
    metrics: SyncMetrics,
}

/// Replication's metrics, by source label (`SnapshotSource::label` in replication).
#[derive(Debug)]
struct SyncMetrics {
    attempts: IntCounterVec,
    failures: IntCounterVec,
    last_success: IntGaugeVec,
    seconds_since_sync: IntGauge,
}

impl SyncMetrics {
    fn register(registry: &Registry) -> Result<SyncMetrics, prometheus::Error> {
        let by_source = |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), &["source"]);
        let metrics = SyncMetrics {
            attempts: by_source(
                "ocsp_edge_sync_attempts_total",
                "Replication rounds started, by source.",
            )?,
            failures: by_source(
                "ocsp_edge_sync_failures_total",
                "Replication rounds that failed, by source.",
            )?,
            last_success: IntGaugeVec::new(
                Opts::new(
                    "ocsp_edge_sync_last_success_timestamp_seconds",
                    "When each replication source last answered (unix time; 0: not since start).",
                ),
                &["source"],
            )?,
            seconds_since_sync: IntGauge::new(
                "ocsp_edge_seconds_since_last_sync",
                "Seconds since a replication source last answered (-1: never, or no sources).",
            )?,
        };
        registry.register(Box::new(metrics.attempts.clone()))?;
        registry.register(Box::new(metrics.failures.clone()))?;
        registry.register(Box::new(metrics.last_success.clone()))?;
        registry.register(Box::new(metrics.seconds_since_sync.clone()))?;
        Ok(metrics)
    }
}

impl Coordination {
    /// Replication's metrics are registered into `registry`.
    pub fn new(registry: &Registry) -> Result<Coordination, prometheus::Error> {
        Ok(Coordination {
            installing: Mutex::new(()),
            sources_generation: watch::channel(0).0,
            last_sync: AtomicI64::new(0),
            metrics: SyncMetrics::register(registry)?,
        })
    }

    /// Held while replication links a verified snapshot into the cache and swaps it in.
    pub fn install_lock(&self) -> MutexGuard<'_, ()> {
        self.installing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells replication that the configured sources changed.
    pub fn sources_changed(&self) {
        self.sources_generation.send_modify(|generation| *generation += 1);
    }

    /// Bumped whenever reloaded sources differ, so replication restarts with them.
    pub fn subscribe_sources(&self) -> watch::Receiver<u64> {
        self.sources_generation.subscribe()
    }

    /// Replication with `source` starts: its failure and last-success series exist from
    /// now on, at 0, so that increase() sees the first event.
    pub fn source_started(&self, source: &str) {
        self.metrics.failures.with_label_values(&[source]);
        self.metrics.last_success.with_label_values(&[source]);
    }

    /// A round with `source` starts.
    pub fn round_started(&self, source: &str) {
        self.metrics.attempts.with_label_values(&[source]).inc();
    }

    /// A round with `source` failed.
    pub fn round_failed(&self, source: &str) {
        self.metrics.failures.with_label_values(&[source]).inc();
    }

    /// A source was checked successfully at `now` (any source: the age of the last sync
    /// is the responder's, see [`Coordination::seconds_since_sync`]).
    pub fn record_sync_success(&self, now: UnixTime) {
        self.last_sync.store(now.seconds(), Ordering::SeqCst);
    }

    /// A round with `source` succeeded at `now`.
    pub fn round_succeeded(&self, source: &str, now: UnixTime) {
        self.record_sync_success(now);
        self.metrics
            .last_success
            .with_label_values(&[source])
            .set(now.seconds());
    }

    /// Brings `ocsp_edge_seconds_since_last_sync` up to `now` (before each scrape).
    pub fn refresh_gauges(&self, now: UnixTime) {
        self.metrics.seconds_since_sync.set(self.seconds_since_sync(now));
    }

    /// Rounds started with `source` since start.
    #[cfg(test)]
    pub(crate) fn attempts(&self, source: &str) -> u64 {
        self.metrics.attempts.with_label_values(&[source]).get()
    }

    /// Rounds with `source` that failed since start.
    #[cfg(test)]
    pub(crate) fn failures(&self, source: &str) -> u64 {
        self.metrics.failures.with_label_values(&[source]).get()
    }

    /// Seconds since the last successful check of a source at `now`; -1 when never.
    pub fn seconds_since_sync(&self, now: UnixTime) -> i64 {
        match self.last_sync.load(Ordering::SeqCst) {
            0 => -1,
            last_sync => now.seconds() - last_sync,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_age_is_minus_one_until_a_source_answers_then_counts_from_it() {
        let coordination = Coordination::new(&Registry::new()).unwrap();
        let now = UnixTime(1_790_000_000);
        assert_eq!(coordination.seconds_since_sync(now), -1);
        coordination.record_sync_success(now);
        assert_eq!(coordination.seconds_since_sync(now.plus_seconds(7)), 7);
    }

    #[test]
    fn a_sources_change_wakes_replication() {
        let coordination = Coordination::new(&Registry::new()).unwrap();
        let mut sources = coordination.subscribe_sources();
        assert!(!sources.has_changed().unwrap());
        coordination.sources_changed();
        assert!(sources.has_changed().unwrap());
        assert_eq!(*sources.borrow_and_update(), 1);
    }
}

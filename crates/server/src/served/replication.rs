//! What replication and the served state coordinate on: the install lock (one verified
//! download linked and swapped in at a time), the generation of the configured sources
//! (bumped by a reload that changes them, so replication restarts), and when a source was
//! last checked successfully (for `ocsp_edge_seconds_since_last_sync`).
//!
//! Owns only these signals. Must never hold a lock across a download: the install lock
//! is taken for the milliseconds of a link and a swap.

use ocsp_edge_core::time::UnixTime;
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
}

impl Default for Coordination {
    fn default() -> Self {
        Coordination {
            installing: Mutex::new(()),
            sources_generation: watch::channel(0).0,
            last_sync: AtomicI64::new(0),
        }
    }
}

impl Coordination {
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

    /// A source was checked successfully at `now`.
    pub fn record_sync_success(&self, now: UnixTime) {
        self.last_sync.store(now.seconds(), Ordering::SeqCst);
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
        let coordination = Coordination::default();
        let now = UnixTime(1_790_000_000);
        assert_eq!(coordination.seconds_since_sync(now), -1);
        coordination.record_sync_success(now);
        assert_eq!(coordination.seconds_since_sync(now.plus_seconds(7)), 7);
    }

    #[test]
    fn a_sources_change_wakes_replication() {
        let coordination = Coordination::default();
        let mut sources = coordination.subscribe_sources();
        assert!(!sources.has_changed().unwrap());
        coordination.sources_changed();
        assert!(sources.has_changed().unwrap());
        assert_eq!(*sources.borrow_and_update(), 1);
    }
}

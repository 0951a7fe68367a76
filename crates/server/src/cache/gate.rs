//! The acknowledged hub sequence and the ordering that makes the cache safe.
//!
//! Two things change the cache concurrently: fills (a miss fetched from a hub, checked,
//! then inserted) and the change feed (invalidate the keys that changed from A to B, then
//! acknowledge B). Without ordering, this interleaving re-inserts a pre-revocation answer:
//!
//! 1. a fill gets `good` for serial X from the hub at sequence A, and checks A == acked;
//! 2. the feed invalidates X (not cached yet) and acknowledges B (X revoked at B);
//! 3. the fill inserts `good` for X, and the cache serves it after acknowledging B.
//!
//! So a fill holds the gate's read lock from its check through its insertion, and the feed
//! holds the write lock from its first invalidation through its acknowledgement. Every
//! insertion is then either wholly before an invalidation pass (and removed by it if its
//! certificate changed) or wholly after the acknowledgement (and its check compares with
//! the new sequence). The read side is only held for microseconds (the fetch happens
//! before it is taken), and the lock is fair, so a waiting feed is not starved by fills.
//!
//! Owns the acknowledged sequence; must never let it change outside [`Gate::advance`] and
//! [`Gate::forget`], nor let it move below one acknowledged before.

use super::entry::{admit, Admission};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

/// Held by a fill from its admission check until its insertion is complete.
pub type AdmissionGuard = OwnedRwLockReadGuard<Option<u64>>;

#[derive(Debug, Default)]
pub struct Gate {
    acknowledged: Arc<RwLock<Option<u64>>>,
    /// Lock-free copy for metrics and readiness (0: none yet).
    mirror: AtomicU64,
    /// The highest sequence ever acknowledged: nothing below it is acknowledged again,
    /// also after [`Gate::forget`] (a replayed, older state must not be taken for news).
    floor: AtomicU64,
}

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// The acknowledged sequence, without waiting (for metrics, logs and the feed's next
    /// `since`; the feed is the only writer, so it reads its own last write).
    pub fn acknowledged(&self) -> Option<u64> {
        match self.mirror.load(Ordering::SeqCst) {
            0 => None,
            sequence => Some(sequence),
        }
    }

    /// Applies the admission rule to a fill answered at `filled_at`. With
    /// [`Admission::Cache`] it returns the guard, which the caller must hold until the
    /// entry is inserted.
    pub async fn admit(&self, filled_at: Option<u64>) -> (Admission, Option<AdmissionGuard>) {
        let guard = self.acknowledged.clone().read_owned().await;
        match admit(filled_at, *guard) {
            Admission::Cache => (Admission::Cache, Some(guard)),
            other => (other, None),
        }
    }

    /// The highest sequence ever acknowledged (0: none).
    pub fn floor(&self) -> u64 {
        self.floor.load(Ordering::SeqCst)
    }

    /// Runs `invalidate`, then acknowledges `to`, with no fill inserting in between. A `to`
    /// below the floor is not acknowledged (the invalidation still runs: it is always
    /// safe); returns whether `to` was acknowledged.
    pub async fn advance<F: Future<Output = ()>>(&self, to: u64, invalidate: F) -> bool {
        let mut acknowledged = self.acknowledged.write().await;
        invalidate.await;
        if to < self.floor() {
            return false;
        }
        *acknowledged = Some(to);
        self.mirror.store(to, Ordering::SeqCst);
        self.floor.fetch_max(to, Ordering::SeqCst);
        true
    }

    /// Runs `invalidate`, then acknowledges nothing: the cache's safe path when the feed
    /// cannot be trusted. Nothing is cached until a proven sequence is acknowledged again
    /// (fills are then served uncached); the floor stays.
    pub async fn forget<F: Future<Output = ()>>(&self, invalidate: F) {
        let mut acknowledged = self.acknowledged.write().await;
        invalidate.await;
        *acknowledged = None;
        self.mirror.store(0, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    #[tokio::test]
    async fn fills_are_checked_against_the_sequence_in_force_when_they_insert() {
        let gate = Arc::new(Gate::new());
        assert_eq!(
            gate.admit(Some(10)).await.0,
            Admission::Uncached(crate::cache::entry::UncachedBecause::NotSynchronized)
        );
        gate.advance(10, async {}).await;
        assert_eq!(gate.acknowledged(), Some(10));

        // A fill admitted at 10 holds its guard while "inserting".
        let (admission, guard) = gate.admit(Some(10)).await;
        assert_eq!(admission, Admission::Cache);
        let guard = guard.expect("a guard for an admitted fill");

        // The feed wants to invalidate and acknowledge 11: it must wait for the insertion.
        let events = Arc::new(Mutex::new(Vec::new()));
        let feed = {
            let (gate, events) = (gate.clone(), events.clone());
            tokio::spawn(async move {
                let invalidated = events.clone();
                gate.advance(11, async move { invalidated.lock().unwrap().push("invalidate") })
                    .await;
                events.lock().unwrap().push("acknowledged");
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            events.lock().unwrap().is_empty(),
            "the feed ran during an insertion"
        );
        assert_eq!(gate.acknowledged(), Some(10));
        events.lock().unwrap().push("inserted");
        drop(guard);
        feed.await.unwrap();
        assert_eq!(
            *events.lock().unwrap(),
            ["inserted", "invalidate", "acknowledged"]
        );

        // After the acknowledgement, a fill from 10 is no longer admitted.
        assert_eq!(gate.admit(Some(10)).await.0, Admission::Retry);
        assert_eq!(gate.admit(Some(11)).await.0, Admission::Cache);
    }

    #[tokio::test]
    async fn the_acknowledged_sequence_never_moves_backwards() {
        let gate = Gate::new();
        assert!(gate.advance(10, async {}).await);
        assert!(!gate.advance(9, async {}).await);
        assert_eq!(gate.acknowledged(), Some(10));
        gate.forget(async {}).await;
        assert_eq!(gate.acknowledged(), None);
        assert_eq!(
            gate.admit(Some(10)).await.0,
            Admission::Uncached(crate::cache::entry::UncachedBecause::NotSynchronized)
        );
        assert!(!gate.advance(9, async {}).await, "the floor outlives forget");
        assert_eq!(gate.floor(), 10);
        assert!(gate.advance(10, async {}).await);
        assert_eq!(gate.acknowledged(), Some(10));
    }

    #[tokio::test]
    async fn a_fill_checked_during_an_advance_sees_the_new_sequence() {
        let gate = Arc::new(Gate::new());
        gate.advance(10, async {}).await;
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let feed = {
            let gate = gate.clone();
            tokio::spawn(async move {
                gate.advance(11, async move {
                    let _ = released.await;
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The feed holds the lock mid-invalidation: a fill from 10 waits, then is refused.
        let fill = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.admit(Some(10)).await.0 })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !fill.is_finished(),
            "a fill was checked during an invalidation pass"
        );
        let _ = release.send(());
        feed.await.unwrap();
        assert_eq!(fill.await.unwrap(), Admission::Retry);
    }
}

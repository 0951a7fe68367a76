//! The hub's change history behind `/changes` (the endpoint is `server::changes`; the wire
//! format and the history itself are in [`crate::cache::feed`]).
//!
//! Every swap hands (previous, new) snapshot to one worker thread, which computes the
//! step's status changes ([`crate::cache::feed::step_between`], a walk of both tables) off
//! the swap path and appends it to the bounded history in swap order, with the new
//! snapshot's signed manifest as evidence; a step whose list is not the one that manifest
//! signs (the hub skipped a publish) restarts the history instead. Also the per-client
//! count of held long-polls. Must never block a swap on the walk.

use crate::cache::feed::{self, Coverage, History, Limits, Step, StepOutcome};
use ocsp_edge_core::snapshot::Snapshot;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// One swap: the snapshot served before (none at the first load) and the new one.
type Swap = (Option<Arc<Snapshot>>, Arc<Snapshot>);

struct Shared {
    history: Mutex<History>,
    /// The history's head, for long-polling caches.
    head: watch::Sender<Option<u64>>,
}

/// The history and the worker that feeds it. The worker thread is started at the first
/// swap and ends when this is dropped (its channel closes).
pub struct ChangeLog {
    shared: Arc<Shared>,
    worker: Mutex<Option<mpsc::Sender<Swap>>>,
    long_polls: LongPolls,
}

impl Default for ChangeLog {
    fn default() -> Self {
        ChangeLog::new(Limits::default())
    }
}

impl ChangeLog {
    pub fn new(limits: Limits) -> ChangeLog {
        ChangeLog {
            shared: Arc::new(Shared {
                history: Mutex::new(History::new(limits)),
                head: watch::channel(None).0,
            }),
            worker: Mutex::new(None),
            long_polls: LongPolls::default(),
        }
    }

    /// Queues one swap. Called with the swap lock held, so swaps arrive in order.
    pub fn record(&self, previous: Option<Arc<Snapshot>>, new: Arc<Snapshot>) {
        let mut worker = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        if worker.is_none() {
            let (sender, receiver) = mpsc::channel::<Swap>();
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name("change-history".into())
                .spawn(move || {
                    for (previous, new) in receiver {
                        shared.apply(previous.as_deref(), &new);
                    }
                });
            match spawned {
                Ok(_) => *worker = Some(sender),
                Err(e) => {
                    // Without the worker, compute here: slower swaps, same history.
                    tracing::warn!(error = %e, "cannot start the change-history thread");
                    self.shared.apply(previous.as_deref(), &new);
                    return;
                }
            }
        }
        if let Some(sender) = worker.as_ref() {
            if let Err(mpsc::SendError((previous, new))) = sender.send((previous, new)) {
                self.shared.apply(previous.as_deref(), &new);
            }
        }
    }

    /// (oldest sequence a cache can resume from, records held), for metrics.
    pub fn extent(&self) -> (Option<u64>, usize) {
        let history = self.shared.history.lock().unwrap_or_else(|p| p.into_inner());
        (history.start(), history.records())
    }

    /// A long-poll of `/changes` by `client`, held until the returned guard drops; `None`
    /// when `client` already holds `limit` of them.
    pub fn claim_long_poll(&self, client: IpAddr, limit: usize) -> Option<LongPoll<'_>> {
        self.long_polls.claim(client, limit)
    }

    /// The history's head, which changes once a swap's step is in the history.
    pub fn subscribe_head(&self) -> watch::Receiver<Option<u64>> {
        self.shared.head.subscribe()
    }

    /// What the history holds after `since`.
    pub fn since(&self, since: u64) -> Coverage {
        self.shared
            .history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .since(since)
    }
}

impl Shared {
    fn apply(&self, previous: Option<&Snapshot>, new: &Snapshot) {
        let started = std::time::Instant::now();
        let issuers = feed::issuers_of(new);
        let manifest = feed::manifest_text(new);
        let outcome = previous.map(|older| (older.sequence(), feed::step_between(older, new)));
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Some((from, StepOutcome::Changes(changes))) => {
                let count = changes.len();
                history.push(
                    Step {
                        from,
                        to: new.sequence(),
                        changes,
                        manifest,
                    },
                    issuers,
                );
                tracing::debug!(
                    from,
                    to = new.sequence(),
                    changes = count,
                    ms = started.elapsed().as_millis() as u64,
                    "change history step"
                );
            }
            Some((from, StepOutcome::Incomparable)) => {
                tracing::info!(
                    from,
                    to = new.sequence(),
                    "issuers changed; change history restarts (caches drop their entries)"
                );
                history.restart(new.sequence(), issuers, Some(manifest));
            }
            Some((from, StepOutcome::Unproven)) => {
                // Expected when this hub skipped a publish (or the publisher predates
                // change digests); anything else means the diff disagrees with what the
                // publisher signed, and caches must not be told it.
                tracing::info!(
                    from,
                    to = new.sequence(),
                    signed_since = new.manifest().body.changes.as_ref().map(|c| c.since),
                    "the new manifest signs no change list from the previous snapshot; change history restarts (caches drop their entries)"
                );
                history.restart(new.sequence(), issuers, Some(manifest));
            }
            None => history.restart(new.sequence(), issuers, Some(manifest)),
        }
        let head = history.head();
        drop(history);
        self.head.send_replace(head);
    }
}

/// Long-polls of `/changes` currently held, per client address.
#[derive(Default)]
struct LongPolls(Mutex<HashMap<IpAddr, usize>>);

/// One held long-poll; released on drop (also when the client goes away mid-wait).
pub struct LongPoll<'a> {
    polls: &'a LongPolls,
    client: IpAddr,
}

impl LongPolls {
    fn claim(&self, client: IpAddr, limit: usize) -> Option<LongPoll<'_>> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = held.entry(client).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(LongPoll { polls: self, client })
    }
}

impl Drop for LongPoll<'_> {
    fn drop(&mut self) {
        let mut held = self.polls.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = held.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.client);
            }
        }
    }
}

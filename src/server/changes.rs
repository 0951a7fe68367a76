//! The hub side of the cache tier's change feed: `GET /changes?since=A[&wait=S]` on the
//! admin listener (wire format in [`crate::cache::feed`]).
//!
//! Every swap hands (previous, new) snapshot to one worker thread, which computes the
//! step's status changes ([`crate::cache::feed::step_between`], a walk of both tables) off
//! the swap path and appends it to the bounded history in swap order, with the new
//! snapshot's signed manifest as evidence; a step whose list is not the one that manifest
//! signs (the hub skipped a publish) restarts the history instead, so caches start over
//! rather than trust the hub's diff. `/changes` long-polls on the history's head, not on
//! the served sequence: a cache must never be told "nothing changed up to B" before B's
//! changes are known. The endpoint needs no authentication of its own (caches check every
//! step against the publisher's signatures), but it is bounded per client: a cap on
//! concurrent long-polls per address and on records per answer.

use super::http::plain;
use super::peers::query_number;
use super::state::State;
use crate::cache::feed::{self, Coverage, History, Limits, Step, StepOutcome};
use crate::snapshot::Snapshot;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
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

    fn since(&self, since: u64) -> Coverage {
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
struct LongPoll<'a> {
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

/// Answers `/changes?since=A[&wait=S][&offset=N]` from `client`. A client holding
/// `snapshots.changes_long_polls_per_client` waiting requests gets `429` for another
/// (answers without a wait are not counted: they end at once); an answer holds at most
/// `snapshots.changes_max_records` records.
pub async fn respond<B>(state: &Arc<State>, request: &Request<B>, client: IpAddr) -> Response<Full<Bytes>> {
    let query = request.uri().query();
    let Some(since) = query_number(query, "since") else {
        return plain(StatusCode::BAD_REQUEST, "since=<sequence> is required\n");
    };
    let config = state.config();
    let offset = query_number(query, "offset").unwrap_or(0);
    // The rest of a paged step is there already: no waiting for it.
    let wait = match offset {
        0 => Duration::from_secs(query_number(query, "wait").unwrap_or(0)).min(config.snapshots.long_poll),
        _ => Duration::ZERO,
    };
    let log = state.changes();
    let _held = match wait.is_zero() {
        true => None,
        false => match log
            .long_polls
            .claim(client, config.snapshots.changes_long_polls_per_client)
        {
            Some(held) => Some(held),
            None => return too_many_long_polls(),
        },
    };
    let mut head = log.shared.head.subscribe();
    let waited = tokio::time::timeout(wait, async {
        loop {
            head.borrow_and_update();
            match log.since(since) {
                Coverage::Current { .. } | Coverage::Empty => {}
                answer => return answer,
            }
            if head.changed().await.is_err() {
                return log.since(since);
            }
        }
    })
    .await;
    match waited.unwrap_or_else(|_| log.since(since)) {
        Coverage::Empty => plain(StatusCode::SERVICE_UNAVAILABLE, "no snapshot yet\n"),
        Coverage::Current { issuers } => json(
            StatusCode::OK,
            &feed::ChangeFeed {
                from: since,
                to: since,
                issuers: (*issuers).clone(),
                changes: Vec::new(),
                steps: Vec::new(),
            },
        ),
        Coverage::Gone {
            to,
            issuers,
            manifest,
        } => json(
            StatusCode::GONE,
            &feed::Gone {
                to,
                issuers: (*issuers).clone(),
                manifest: manifest.map(|m| m.to_string()),
            },
        ),
        Coverage::Changes {
            from, steps, issuers, ..
        } => {
            let Ok(offset) = usize::try_from(offset) else {
                return plain(StatusCode::BAD_REQUEST, "offset out of range\n");
            };
            if steps.first().is_some_and(|step| offset > step.changes.len()) {
                return plain(StatusCode::BAD_REQUEST, "offset beyond the step\n");
            }
            json(
                StatusCode::OK,
                &Coverage::page(
                    from,
                    &steps,
                    &issuers,
                    offset,
                    config.snapshots.changes_max_records,
                ),
            )
        }
    }
}

fn too_many_long_polls() -> Response<Full<Bytes>> {
    let mut response = plain(
        StatusCode::TOO_MANY_REQUESTS,
        "too many change-feed long-polls from this address\n",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response<Full<Bytes>> {
    let Ok(text) = serde_json::to_vec(body) else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode\n");
    };
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

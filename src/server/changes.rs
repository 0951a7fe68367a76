//! The hub side of the cache tier's change feed: `GET /changes?since=A[&wait=S]` on the
//! admin listener (wire format in [`crate::cache::feed`]).
//!
//! Every swap hands (previous, new) snapshot to one worker thread, which computes the
//! step's status changes ([`crate::cache::feed::step_between`], a walk of both tables) off
//! the swap path and appends it to the bounded history in swap order. `/changes`
//! long-polls on the history's head, not on the served sequence: a cache must never be
//! told "nothing changed up to B" before B's changes are known. Like `/snapshots/`, this
//! endpoint needs no authentication of its own: it only lists serials whose status
//! changed, and caches verify every response they serve.

use super::http::plain;
use super::peers::query_number;
use super::state::State;
use crate::cache::feed::{self, Coverage, History, Limits, Step, StepOutcome};
use crate::snapshot::Snapshot;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
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
                history.restart(new.sequence(), issuers);
            }
            None => history.restart(new.sequence(), issuers),
        }
        let head = history.head();
        drop(history);
        self.head.send_replace(head);
    }
}

/// Answers `/changes?since=A[&wait=S]`.
pub async fn respond<B>(state: &Arc<State>, request: &Request<B>) -> Response<Full<Bytes>> {
    let query = request.uri().query();
    let Some(since) = query_number(query, "since") else {
        return plain(StatusCode::BAD_REQUEST, "since=<sequence> is required\n");
    };
    let wait =
        Duration::from_secs(query_number(query, "wait").unwrap_or(0)).min(state.config().snapshots.long_poll);
    let log = state.changes();
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
            },
        ),
        Coverage::Gone { to, issuers } => json(
            StatusCode::GONE,
            &feed::Gone {
                to,
                issuers: (*issuers).clone(),
            },
        ),
        Coverage::Changes {
            from,
            to,
            steps,
            issuers,
        } => json(StatusCode::OK, &Coverage::feed(from, to, &steps, &issuers)),
    }
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

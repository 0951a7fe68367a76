//! The hub side of the cache tier's change feed: `GET /changes?since=A[&wait=S]` on the
//! admin listener (wire format in [`crate::cache::feed`]).
//!
//! The history it answers from is [`crate::served::changes::ChangeLog`], fed by every swap.
//! `/changes` long-polls on the history's head, not on
//! the served sequence: a cache must never be told "nothing changed up to B" before B's
//! changes are known. The endpoint needs no authentication of its own (caches check every
//! step against the publisher's signatures), but it is bounded per client: a cap on
//! concurrent long-polls per address and on records per answer.

use super::peers::query_number;
use super::reply::plain;
use crate::cache::feed::{self, Coverage};
use crate::served::State;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

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
        false => match log.claim_long_poll(client, config.snapshots.changes_long_polls_per_client) {
            Some(held) => Some(held),
            None => return too_many_long_polls(),
        },
    };
    let mut head = log.subscribe_head();
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

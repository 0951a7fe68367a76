//! Serving the current snapshot to peer responders, on the admin listener, in the same
//! layout a publisher's directory has behind a static web server:
//! `/snapshots/latest.manifest.json`, `/snapshots/<NNN>.snapshot` and
//! `/snapshots/<NNN>.manifest.json`, for the served snapshot and (when it is a delta) its
//! base.
//!
//! `latest.manifest.json?after=N&wait=S` is a long-poll: when the served sequence is not
//! above N, the request waits up to S seconds (at most `snapshots.long_poll`) for a newer
//! one. A hub therefore pushes a new snapshot to its edges within a round trip of having
//! it, at the cost of one idle connection per edge. Peers verify everything they receive,
//! so this endpoint needs no authentication of its own.

use super::documents::DocumentBytes;
use super::reply::{etag_matches, plain};
use crate::served::State;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use ocsp_edge_core::snapshot::LATEST_MANIFEST;
use std::sync::Arc;
use std::time::Duration;

pub async fn respond<B>(state: &Arc<State>, name: &str, request: &Request<B>) -> Response<Full<Bytes>> {
    if name == LATEST_MANIFEST {
        wait_for_newer(state, request.uri().query()).await;
        return latest_manifest(state, request);
    }
    let guard = state.current();
    // The served snapshot and, when it is a delta, its base: what a peer needs to build
    // the same state.
    let held = guard
        .as_ref()
        .into_iter()
        .flat_map(|current| std::iter::once(current).chain(current.base()));
    let mut response = None;
    for snapshot in held {
        let body = &snapshot.manifest().body;
        if name == ocsp_edge_core::snapshot::manifest_name(body.sequence) {
            let mut manifest = Response::new(Full::new(Bytes::from(snapshot.manifest().to_json())));
            manifest
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response = Some(manifest);
        } else if name == body.snapshot {
            response = Some(snapshot_file(snapshot));
        }
    }
    response.unwrap_or_else(|| plain(StatusCode::NOT_FOUND, "not a snapshot being served\n"))
}

fn snapshot_file(snapshot: &Arc<ocsp_edge_core::snapshot::Snapshot>) -> Response<Full<Bytes>> {
    let body = Bytes::from_owner(DocumentBytes {
        snapshot: snapshot.clone(),
        range: 0..snapshot.size(),
    });
    let mut response = Response::new(Full::new(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
}

/// The number `key=N` in a query string, if present and a number.
pub(super) fn query_number(query: Option<&str>, key: &str) -> Option<u64> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse::<u64>().ok())
}

/// Waits (bounded) until the served sequence exceeds `after=N`, if the query asks to.
async fn wait_for_newer(state: &State, query: Option<&str>) {
    let (Some(after), Some(wait)) = (query_number(query, "after"), query_number(query, "wait")) else {
        return;
    };
    let wait = Duration::from_secs(wait).min(state.config().snapshots.long_poll);
    let mut sequence = state.subscribe();
    let newer = async {
        loop {
            if *sequence.borrow_and_update() > after {
                return;
            }
            if sequence.changed().await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(wait, newer).await;
}

fn latest_manifest<B>(state: &State, request: &Request<B>) -> Response<Full<Bytes>> {
    let guard = state.current();
    let Some(snapshot) = guard.as_ref() else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "no snapshot yet\n");
    };
    let etag = format!("\"{}\"", snapshot.sequence());
    let unchanged = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| etag_matches(v.as_bytes(), etag.as_bytes()));
    let mut response = if unchanged {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        Response::new(Full::new(Bytes::from(snapshot.manifest().to_json())))
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

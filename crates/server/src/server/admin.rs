//! The admin listener: `/healthz` (the process answers), `/readyz` (a verified snapshot
//! that is not about to expire is loaded, and we are not draining), `/metrics`,
//! `/snapshots/` for peer responders (see [`super::peers`]) and `/changes` for cache-mode
//! responders (see [`super::changes`]).
//! Keep it off the public network: it reveals operational detail.

use super::reply::plain;
use super::Responder;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use ocsp_edge_core::time::UnixTime;
use std::convert::Infallible;
use std::sync::Arc;

pub async fn handle(
    responder: Arc<Responder>,
    request: Request<Incoming>,
    client: std::net::IpAddr,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let now = UnixTime::now();
    let state = &responder.state;
    if let Some(name) = request.uri().path().strip_prefix("/snapshots/") {
        return Ok(super::peers::respond(state, name, &request).await);
    }
    if request.uri().path() == "/changes" {
        return Ok(super::changes::respond(state, &request, client).await);
    }
    if let Some(tier) = state.cache() {
        // moka applies writes in batches: count what is really held before reporting.
        tier.settle().await;
    }
    Ok(match request.uri().path() {
        "/healthz" => plain(StatusCode::OK, "ok\n"),
        "/readyz" => match state.readiness(now) {
            Ok(()) => plain(StatusCode::OK, "ready\n"),
            Err(reason) => {
                let mut response = Response::new(Full::new(Bytes::from(format!("not ready: {reason}\n"))));
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                response
            }
        },
        "/metrics" => {
            let mut response = Response::new(Full::new(Bytes::from(responder.render_metrics(now))));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
    })
}

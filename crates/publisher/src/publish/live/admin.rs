//! The live publisher's admin listener and metrics: `/healthz` (the process answers),
//! `/readyz` (it holds the store's lease, its last publish did not fail, and the oldest
//! response it serves is not within an hour of its refresh deadline), `/metrics`
//! (Prometheus text, every name `ocsp_edge_publisher_*`).
//!
//! The publisher's own, small listener rather than the edge's: the publisher never
//! depends on the edge. Keep it off the public network. Never signs, never writes.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

/// How close to the oldest response's refresh deadline the publisher stops being ready.
pub const READY_MARGIN_SECONDS: i64 = 3600;

/// The kinds of error counted in `ocsp_edge_publisher_errors_total{kind}`.
pub const ERROR_KINDS: &[&str] = &[
    "config", "input", "refused", "io", "signing", "base", "hsm", "sequence", "fenced", "postgres", "upload",
    "lease", "watch", "reload",
];

/// Everything `/metrics` reports.
pub struct PublisherMetrics {
    registry: Registry,
    pub last_publish_timestamp: IntGauge,
    pub last_sequence: IntGauge,
    pub publish_duration: Histogram,
    pub signatures_per_second: Gauge,
    pub signatures_total: prometheus::IntCounter,
    pub publishes: IntCounterVec,
    pub input_lag: Gauge,
    pub errors: IntCounterVec,
    pub refresh_deadline: IntGauge,
    pub lease_held: IntGauge,
    pub last_publish_failed: IntGauge,
}

impl PublisherMetrics {
    pub fn new() -> PublisherMetrics {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        let metrics = PublisherMetrics {
            last_publish_timestamp: gauge(
                "ocsp_edge_publisher_last_publish_timestamp_seconds",
                "Unix time of the last successful publish",
            ),
            last_sequence: gauge(
                "ocsp_edge_publisher_last_sequence",
                "Sequence of the last snapshot this publisher published",
            ),
            publish_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "ocsp_edge_publisher_publish_duration_seconds",
                    "Duration of successful publishes (load, sign, write)",
                )
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]),
            )
            .expect("valid metric"),
            signatures_per_second: Gauge::new(
                "ocsp_edge_publisher_signatures_per_second",
                "Signatures per second of the last publish",
            )
            .expect("valid metric"),
            signatures_total: prometheus::IntCounter::new(
                "ocsp_edge_publisher_signatures_total",
                "Signatures made by successful publishes",
            )
            .expect("valid metric"),
            publishes: IntCounterVec::new(
                Opts::new("ocsp_edge_publisher_publishes_total", "Successful publishes by kind"),
                &["kind"],
            )
            .expect("valid metric"),
            input_lag: Gauge::new(
                "ocsp_edge_publisher_input_lag_seconds",
                "For the last publish: seconds from the oldest change it carries (input file mtime, or the source's commit time) to the snapshot being published",
            )
            .expect("valid metric"),
            errors: IntCounterVec::new(
                Opts::new("ocsp_edge_publisher_errors_total", "Failed publishes and other errors, by kind"),
                &["kind"],
            )
            .expect("valid metric"),
            refresh_deadline: gauge(
                "ocsp_edge_publisher_refresh_deadline_seconds",
                "Seconds until the refresh deadline (BR 4.9.10) of the oldest response in the store",
            ),
            lease_held: gauge(
                "ocsp_edge_publisher_lease_held",
                "1 while this publisher holds the store's lease (the active one), else 0",
            ),
            last_publish_failed: gauge(
                "ocsp_edge_publisher_last_publish_failed",
                "1 when the last publish attempt failed (the last good snapshot stays), else 0",
            ),
            registry,
        };
        for kind in ["full", "delta"] {
            metrics.publishes.with_label_values(&[kind]);
        }
        for kind in ERROR_KINDS {
            metrics.errors.with_label_values(&[kind]);
        }
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(metrics.last_publish_timestamp.clone()),
            Box::new(metrics.last_sequence.clone()),
            Box::new(metrics.publish_duration.clone()),
            Box::new(metrics.signatures_per_second.clone()),
            Box::new(metrics.signatures_total.clone()),
            Box::new(metrics.publishes.clone()),
            Box::new(metrics.input_lag.clone()),
            Box::new(metrics.errors.clone()),
            Box::new(metrics.refresh_deadline.clone()),
            Box::new(metrics.lease_held.clone()),
            Box::new(metrics.last_publish_failed.clone()),
        ];
        for collector in collectors {
            metrics
                .registry
                .register(collector)
                .expect("distinct metric names");
        }
        metrics
    }

    pub fn error(&self, kind: &str) {
        self.errors.with_label_values(&[kind]).inc();
    }

    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on invalid metric data, which we never create.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

impl Default for PublisherMetrics {
    fn default() -> Self {
        PublisherMetrics::new()
    }
}

/// What `/readyz` and the refresh gauge are computed from, kept by the service loop.
#[derive(Clone, Debug, Default)]
pub struct Health {
    pub lease: Option<String>,
    pub last_error: Option<String>,
    /// Unix seconds of the oldest response's refresh deadline, once known.
    pub refresh_deadline: Option<i64>,
}

/// Why `/readyz` answers 503; its `Display` is the body after "not ready: ".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// Another publisher holds the store's lease (or it was not yet tried).
    #[error("standby: {holder}")]
    Standby { holder: String },
    #[error("last publish failed: {error}")]
    LastPublishFailed { error: String },
    #[error("nothing published yet")]
    NothingPublished,
    #[error("the oldest response's refresh deadline is {seconds_left}s away")]
    RefreshDeadlineNear { seconds_left: i64 },
}

impl Health {
    /// `Ok` when ready; otherwise why not.
    pub fn readiness(&self, now: i64) -> Result<(), NotReady> {
        if let Some(holder) = &self.lease {
            return Err(NotReady::Standby {
                holder: holder.clone(),
            });
        }
        if let Some(error) = &self.last_error {
            return Err(NotReady::LastPublishFailed { error: error.clone() });
        }
        let deadline = self.refresh_deadline.ok_or(NotReady::NothingPublished)?;
        let seconds_left = deadline.saturating_sub(now);
        if seconds_left < READY_MARGIN_SECONDS {
            return Err(NotReady::RefreshDeadlineNear { seconds_left });
        }
        Ok(())
    }
}

/// Shared between the service loop and the listener.
pub struct AdminState {
    pub metrics: PublisherMetrics,
    /// The input watchers' series (see [`crate::publish::signal::InputMetrics`]).
    pub input_metrics: crate::publish::signal::InputMetrics,
    pub health: Mutex<Health>,
}

impl AdminState {
    pub fn new() -> Arc<AdminState> {
        let metrics = PublisherMetrics::new();
        let input_metrics =
            crate::publish::signal::InputMetrics::register(&metrics.registry).expect("distinct metric names");
        Arc::new(AdminState {
            metrics,
            input_metrics,
            health: Mutex::new(Health {
                lease: Some("not yet tried".into()),
                ..Health::default()
            }),
        })
    }

    pub fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refresh_gauges(&self, now: i64) {
        if let Some(deadline) = self.health().refresh_deadline {
            self.metrics.refresh_deadline.set(deadline.saturating_sub(now));
        }
    }
}

/// Serves the admin endpoints on `listener` until the task is dropped.
pub async fn serve(state: Arc<AdminState>, listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| respond(state.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn respond(
    state: Arc<AdminState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let now = ocsp_edge_core::time::UnixTime::now().seconds();
    Ok(match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => match state.health().readiness(now) {
            Ok(()) => text(StatusCode::OK, "ready\n".into()),
            Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")),
        },
        "/metrics" => {
            state.refresh_gauges(now);
            let mut response = Response::new(Full::new(Bytes::from(state.metrics.render())));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    })
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_as_the_active_publisher_with_a_good_last_publish_and_time_left() {
        let now = 1_790_000_000;
        let mut health = Health {
            lease: None,
            last_error: None,
            refresh_deadline: Some(now + 2 * READY_MARGIN_SECONDS),
        };
        assert_eq!(health.readiness(now), Ok(()));
        health.refresh_deadline = Some(now + READY_MARGIN_SECONDS - 1);
        assert_eq!(
            health.readiness(now),
            Err(NotReady::RefreshDeadlineNear {
                seconds_left: READY_MARGIN_SECONDS - 1
            })
        );
        health.refresh_deadline = Some(now + 2 * READY_MARGIN_SECONDS);
        health.last_error = Some("bad line".into());
        assert_eq!(
            health.readiness(now),
            Err(NotReady::LastPublishFailed {
                error: "bad line".into()
            })
        );
        health.last_error = None;
        health.lease = Some("held by b".into());
        assert_eq!(
            health.readiness(now),
            Err(NotReady::Standby {
                holder: "held by b".into()
            })
        );
        health.lease = None;
        health.refresh_deadline = None;
        assert_eq!(health.readiness(now), Err(NotReady::NothingPublished));
    }

    /// The bodies operators and tests/live_publisher.rs read after "not ready: ".
    #[test]
    fn each_reason_reads_as_the_readyz_body() {
        let cases = [
            (
                NotReady::Standby {
                    holder: "held by b".into(),
                },
                "standby: held by b",
            ),
            (
                NotReady::LastPublishFailed {
                    error: "bad line".into(),
                },
                "last publish failed: bad line",
            ),
            (NotReady::NothingPublished, "nothing published yet"),
            (
                NotReady::RefreshDeadlineNear { seconds_left: 42 },
                "the oldest response's refresh deadline is 42s away",
            ),
        ];
        for (reason, body) in cases {
            assert_eq!(reason.to_string(), body);
        }
    }

    /// What docs/metrics.md documents for the publisher is what `/metrics` exposes, no more
    /// and no less: a series that stops being registered (or one added without a line in
    /// the documentation) fails here, not on a dashboard or an alert.
    #[test]
    fn the_publisher_exposes_exactly_the_documented_series() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/metrics.md"),
        )
        .unwrap();
        let documented: std::collections::BTreeSet<&str> = doc
            .lines()
            .filter_map(|line| line.strip_prefix("| `")?.split('`').next())
            .filter(|name| name.starts_with("ocsp_edge_publisher_"))
            .collect();
        let admin = AdminState::new();
        // Labelled by issuer, these exist once a watcher reports.
        admin.input_metrics.set_connected("ec", true);
        admin.input_metrics.error("ec", "connect");
        let text = String::from_utf8(admin.metrics.render()).unwrap();
        let exposed: std::collections::BTreeSet<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE ")?.split(' ').next())
            .collect();
        assert!(exposed.len() >= 13, "{exposed:?}");
        assert_eq!(exposed, documented);
    }

    #[test]
    fn every_metric_is_named_for_the_publisher_and_rendered() {
        let text = String::from_utf8(PublisherMetrics::new().render()).unwrap();
        let names: std::collections::BTreeSet<_> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        assert!(names.len() >= 10, "{names:?}");
        assert!(
            names.iter().all(|n| n.starts_with("ocsp_edge_publisher_")),
            "{names:?}"
        );
        assert!(text.contains("ocsp_edge_publisher_errors_total{kind=\"refused\"} 0"));
    }
}

//! The HTTP adapter's metrics: requests by method and outcome, their latency, response
//! bytes, answers by issuer and status, open connections and CRL bytes served. Registered
//! into the responder's registry by [`super::build`]; written only by `server`.
//!
//! Uses the `prometheus` crate without default features (no protobuf): text exposition is
//! all Prometheus needs, and protobuf was the slowest part of a cold build. The counters
//! every request touches live in `request_metrics`, sharded per thread; the rest are
//! ordinary `prometheus` metrics. The served snapshot's, replication's and the cache
//! tier's metrics are their components' own (`crate::served::metrics`,
//! `crate::served::replication`, `crate::cache::metrics`).
//!
//! Must never lock, allocate or clone an `Arc` on the request path, nor change a series'
//! name, labels or help text (dashboards, the alert rules in `deploy/` and
//! docs/metrics.md depend on them).

mod request_metrics;

use ocsp_edge_core::ocsp::Refusal;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use request_metrics::RequestMetrics;

/// HTTP methods we label separately; everything else is `other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get = 0,
    Post = 1,
    Head = 2,
    Other = 3,
}

impl Method {
    pub(super) const ALL: [(Method, &'static str); 4] = [
        (Method::Get, "GET"),
        (Method::Post, "POST"),
        (Method::Head, "HEAD"),
        (Method::Other, "other"),
    ];

    pub fn of(method: &hyper::Method) -> Method {
        match *method {
            hyper::Method::GET => Method::Get,
            hyper::Method::POST => Method::Post,
            hyper::Method::HEAD => Method::Head,
            _ => Method::Other,
        }
    }
}

/// The outcome of one request, for the `outcome` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Good,
    Revoked,
    NotModified,
    Refused(Refusal),
    /// An HTTP-level error (wrong method, unknown path, unsatisfiable range).
    HttpError,
    /// A document (CRL, CCADB JSON) served, whole or in part.
    Document,
    /// A document past its nextUpdate: 503, never served as fresh.
    DocumentStale,
}

const FIXED_OUTCOMES: [&str; 6] = [
    "good",
    "revoked",
    "not_modified",
    "http_error",
    "document",
    "document_stale",
];

impl Outcome {
    /// How many `outcome` label values there are.
    pub(super) const COUNT: usize = FIXED_OUTCOMES.len() + Refusal::ALL.len();

    pub(super) fn index(self) -> usize {
        match self {
            Outcome::Good => 0,
            Outcome::Revoked => 1,
            Outcome::NotModified => 2,
            Outcome::HttpError => 3,
            Outcome::Document => 4,
            Outcome::DocumentStale => 5,
            Outcome::Refused(r) => {
                FIXED_OUTCOMES.len()
                    + Refusal::ALL
                        .iter()
                        .position(|x| x.label() == r.label())
                        .unwrap_or(0)
            }
        }
    }

    pub(super) fn labels() -> Vec<&'static str> {
        FIXED_OUTCOMES
            .iter()
            .copied()
            .chain(Refusal::ALL.iter().map(|r| r.label()))
            .collect()
    }
}

/// The HTTP adapter's metrics (see the module docs).
pub(super) struct HttpMetrics {
    requests: RequestMetrics,
    connections_open: IntGauge,
    crl_bytes_served: IntCounterVec,
}

impl HttpMetrics {
    /// Creates the HTTP adapter's metrics and registers them into `registry`.
    pub(super) fn register(registry: &Registry) -> Result<HttpMetrics, prometheus::Error> {
        let metrics = HttpMetrics {
            requests: RequestMetrics::new()?,
            connections_open: IntGauge::new(
                "ocsp_edge_connections_open",
                "Client connections currently open.",
            )?,
            crl_bytes_served: IntCounterVec::new(
                Opts::new(
                    "ocsp_edge_crl_bytes_served_total",
                    "Body bytes sent for each CRL path.",
                ),
                &["path"],
            )?,
        };
        registry.register(Box::new(metrics.requests.clone()))?;
        registry.register(Box::new(metrics.connections_open.clone()))?;
        registry.register(Box::new(metrics.crl_bytes_served.clone()))?;
        Ok(metrics)
    }

    /// Counts one request: its outcome, its latency and the body bytes it sent.
    pub(super) fn observe(&self, method: Method, outcome: Outcome, seconds: f64, body_bytes: u64) {
        self.requests.observe(method, outcome, seconds, body_bytes);
    }

    /// Counts a successful answer for `issuer`.
    pub(super) fn count_answer(&self, issuer: &str, revoked: bool) {
        self.requests.count_answer(issuer, revoked);
    }

    /// Counts `bytes` of body sent for the document at `path`.
    pub(super) fn count_document_bytes(&self, path: &str, bytes: u64) {
        self.crl_bytes_served.with_label_values(&[path]).inc_by(bytes);
    }

    /// The open-connections gauge, for a connection to hold while it is open.
    pub(super) fn connections_open(&self) -> &IntGauge {
        &self.connections_open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh registry holding only these metrics, and its text exposition.
    fn registered() -> (HttpMetrics, Registry) {
        let registry = Registry::new();
        (HttpMetrics::register(&registry).unwrap(), registry)
    }

    fn render(registry: &Registry) -> String {
        let mut out = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &registry.gather(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn answers_are_counted_by_issuer_and_status() {
        let (metrics, registry) = registered();
        let (other, other_registry) = registered();
        metrics.count_answer("ec", false);
        metrics.count_answer("ec", false);
        metrics.count_answer("rsa", true);
        other.count_answer("ec", true);
        let text = render(&registry);
        assert!(
            text.contains(r#"ocsp_edge_answers_total{issuer="ec",status="good"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"ocsp_edge_answers_total{issuer="rsa",status="revoked"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"ocsp_edge_answers_total{issuer="ec",status="revoked"} 0"#),
            "{text}"
        );
        let other_text = render(&other_registry);
        assert!(other_text.contains(r#"ocsp_edge_answers_total{issuer="ec",status="revoked"} 1"#));
    }

    #[test]
    fn every_outcome_has_its_own_counter() {
        let (metrics, registry) = registered();
        metrics.observe(Method::Get, Outcome::Good, 0.001, 0);
        metrics.observe(Method::Post, Outcome::Refused(Refusal::UnknownIssuer), 0.001, 0);
        metrics.observe(Method::Post, Outcome::Refused(Refusal::Malformed("x")), 0.001, 0);
        let text = render(&registry);
        assert!(
            text.contains(r#"ocsp_edge_requests_total{method="GET",outcome="good"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"ocsp_edge_requests_total{method="POST",outcome="unknown_issuer"} 1"#));
        assert!(text.contains(r#"ocsp_edge_requests_total{method="POST",outcome="malformed"} 1"#));
        assert!(text.contains(r#"ocsp_edge_request_duration_seconds_count{method="GET"} 1"#));
    }
}

//! Prometheus metrics for the responder.
//!
//! Uses the `prometheus` crate without default features (no protobuf): text exposition is
//! all Prometheus needs, and protobuf was the slowest part of a cold build. The counters
//! every request touches live in `request_metrics`, sharded per thread; the rest
//! (snapshot, replication, CRL and cache state) are ordinary `prometheus` metrics.

mod request_metrics;

use crate::cache::CacheMetrics;
use ocsp_edge_core::ocsp::Refusal;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
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

pub struct Metrics {
    registry: Registry,
    requests: RequestMetrics,
    pub connections_open: IntGauge,
    pub snapshot_sequence: IntGauge,
    pub snapshot_created: IntGauge,
    pub snapshot_entries: IntGauge,
    pub snapshot_age: IntGauge,
    pub seconds_until_next_update: IntGauge,
    pub snapshot_loads: IntCounter,
    pub snapshot_load_seconds: Histogram,
    pub snapshots_refused: IntCounterVec,
    pub ready: IntGauge,
    pub crl_number: IntGaugeVec,
    pub crl_this_update: IntGaugeVec,
    pub crl_seconds_until_next_update: IntGaugeVec,
    pub crl_bytes_served: IntCounterVec,
    pub sync_attempts: IntCounterVec,
    pub sync_failures: IntCounterVec,
    pub seconds_since_sync: IntGauge,
    pub refresh_deadline: IntGauge,
    pub refresh_at_risk: IntGauge,
    pub highest_sequence: IntGauge,
    /// 1 when `highest-sequence` could not be read at start (see `served::rollback`).
    pub rollback_state_unreadable: IntGauge,
    /// 1 while the highest sequence accepted is not on disk (a write failed).
    pub highest_sequence_unpersisted: IntGauge,
    pub highest_sequence_write_failures: IntCounter,
    pub sync_last_success: IntGaugeVec,
    pub change_history_start: IntGauge,
    pub change_history_records: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| IntGauge::new(name, help);
        let metrics = Metrics {
            connections_open: gauge("ocsp_edge_connections_open", "Client connections currently open.")?,
            snapshot_sequence: gauge("ocsp_edge_snapshot_sequence", "Sequence number of the snapshot being served.")?,
            snapshot_created: gauge(
                "ocsp_edge_snapshot_created_timestamp_seconds",
                "When the served snapshot was published (unix time).",
            )?,
            snapshot_entries: gauge("ocsp_edge_snapshot_entries", "Certificates in the served snapshot.")?,
            snapshot_age: gauge("ocsp_edge_snapshot_age_seconds", "Seconds since the served snapshot was published.")?,
            seconds_until_next_update: gauge(
                "ocsp_edge_seconds_until_earliest_next_update",
                "Seconds until the earliest nextUpdate in the served snapshot; at 0 responses stop being served.",
            )?,
            snapshot_loads: IntCounter::new("ocsp_edge_snapshot_loads_total", "Snapshots verified and swapped in.")?,
            snapshot_load_seconds: Histogram::with_opts(
                HistogramOpts::new("ocsp_edge_snapshot_load_seconds", "Time to map and verify a snapshot.")
                    .buckets(vec![0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0]),
            )?,
            snapshots_refused: IntCounterVec::new(
                Opts::new("ocsp_edge_snapshots_refused_total", "Snapshots refused, by reason."),
                &["reason"],
            )?,
            ready: gauge("ocsp_edge_ready", "1 when the responder reports ready.")?,
            crl_number: IntGaugeVec::new(
                Opts::new("ocsp_edge_crl_number", "cRLNumber of each served CRL, by URL path."),
                &["path"],
            )?,
            crl_this_update: IntGaugeVec::new(
                Opts::new("ocsp_edge_crl_this_update_timestamp_seconds", "thisUpdate of each served CRL (unix time)."),
                &["path"],
            )?,
            crl_seconds_until_next_update: IntGaugeVec::new(
                Opts::new(
                    "ocsp_edge_crl_seconds_until_next_update",
                    "Seconds until each served CRL's nextUpdate; at 0 it is no longer served.",
                ),
                &["path"],
            )?,
            sync_attempts: IntCounterVec::new(
                Opts::new("ocsp_edge_sync_attempts_total", "Replication rounds started, by source."),
                &["source"],
            )?,
            sync_failures: IntCounterVec::new(
                Opts::new("ocsp_edge_sync_failures_total", "Replication rounds that failed, by source."),
                &["source"],
            )?,
            seconds_since_sync: gauge(
                "ocsp_edge_seconds_since_last_sync",
                "Seconds since a replication source last answered (-1: never, or no sources).",
            )?,
            refresh_deadline: gauge(
                "ocsp_edge_refresh_deadline_seconds",
                "Seconds until the CA/Browser Forum refresh deadline of the served responses \
                 (4 days after thisUpdate, or half the validity if under 16h, and 8h before nextUpdate); \
                 negative once missed.",
            )?,
            refresh_at_risk: gauge(
                "ocsp_edge_refresh_deadline_at_risk",
                "1 when the served responses are less than an hour from (or past) their refresh deadline.",
            )?,
            sync_last_success: IntGaugeVec::new(
                Opts::new(
                    "ocsp_edge_sync_last_success_timestamp_seconds",
                    "When each replication source last answered (unix time; 0: not since start).",
                ),
                &["source"],
            )?,
            highest_sequence: gauge(
                "ocsp_edge_highest_sequence",
                "Highest snapshot sequence ever accepted; nothing older is served again.",
            )?,
            rollback_state_unreadable: gauge(
                "ocsp_edge_rollback_state_unreadable",
                "1 when the highest-sequence file could not be read at start: only snapshots not older \
                 than the newest one verified locally are served until an operator resets the file.",
            )?,
            highest_sequence_unpersisted: gauge(
                "ocsp_edge_highest_sequence_unpersisted",
                "1 while the highest sequence accepted could not be written to disk (retried every round).",
            )?,
            highest_sequence_write_failures: IntCounter::new(
                "ocsp_edge_highest_sequence_write_failures_total",
                "Failed writes of the highest-sequence file.",
            )?,
            change_history_start: gauge(
                "ocsp_edge_change_history_start_sequence",
                "Oldest sequence a cache can resume the change feed from (0: no history yet).",
            )?,
            change_history_records: gauge(
                "ocsp_edge_change_history_records",
                "Certificates whose status changes the change-feed history holds.",
            )?,
            crl_bytes_served: IntCounterVec::new(
                Opts::new("ocsp_edge_crl_bytes_served_total", "Body bytes sent for each CRL path."),
                &["path"],
            )?,
            registry,
            requests: RequestMetrics::new()?,
        };
        metrics.register()?;
        // Series that exist from the start, at 0, so that increase() sees the first event.
        for reason in ocsp_edge_core::snapshot::VerifyError::LABELS {
            metrics.snapshots_refused.with_label_values(&[reason]);
        }
        Ok(metrics)
    }

    fn register(&self) -> Result<(), prometheus::Error> {
        let r = &self.registry;
        r.register(Box::new(self.requests.clone()))?;
        r.register(Box::new(self.connections_open.clone()))?;
        r.register(Box::new(self.snapshot_sequence.clone()))?;
        r.register(Box::new(self.snapshot_created.clone()))?;
        r.register(Box::new(self.snapshot_entries.clone()))?;
        r.register(Box::new(self.snapshot_age.clone()))?;
        r.register(Box::new(self.seconds_until_next_update.clone()))?;
        r.register(Box::new(self.snapshot_loads.clone()))?;
        r.register(Box::new(self.snapshot_load_seconds.clone()))?;
        r.register(Box::new(self.snapshots_refused.clone()))?;
        r.register(Box::new(self.ready.clone()))?;
        r.register(Box::new(self.crl_number.clone()))?;
        r.register(Box::new(self.crl_this_update.clone()))?;
        r.register(Box::new(self.crl_seconds_until_next_update.clone()))?;
        r.register(Box::new(self.crl_bytes_served.clone()))?;
        r.register(Box::new(self.sync_attempts.clone()))?;
        r.register(Box::new(self.sync_failures.clone()))?;
        r.register(Box::new(self.seconds_since_sync.clone()))?;
        r.register(Box::new(self.refresh_deadline.clone()))?;
        r.register(Box::new(self.refresh_at_risk.clone()))?;
        r.register(Box::new(self.highest_sequence.clone()))?;
        r.register(Box::new(self.rollback_state_unreadable.clone()))?;
        r.register(Box::new(self.highest_sequence_unpersisted.clone()))?;
        r.register(Box::new(self.highest_sequence_write_failures.clone()))?;
        r.register(Box::new(self.sync_last_success.clone()))?;
        r.register(Box::new(self.change_history_start.clone()))?;
        r.register(Box::new(self.change_history_records.clone()))?;
        Ok(())
    }

    /// Creates and registers the cache tier's metrics (once, on a cache-mode responder).
    pub fn register_cache(&self) -> Result<CacheMetrics, prometheus::Error> {
        CacheMetrics::register(&self.registry)
    }

    /// Counts one request: its outcome, its latency and the body bytes it sent.
    pub fn observe(&self, method: Method, outcome: Outcome, seconds: f64, body_bytes: u64) {
        self.requests.observe(method, outcome, seconds, body_bytes);
    }

    /// Counts a successful answer for `issuer`.
    pub fn count_answer(&self, issuer: &str, revoked: bool) {
        self.requests.count_answer(issuer, revoked);
    }

    /// Prometheus text exposition of everything registered.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on invalid metric data, which we never create.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_counted_by_issuer_and_status() {
        let metrics = Metrics::new().unwrap();
        let other = Metrics::new().unwrap();
        metrics.count_answer("ec", false);
        metrics.count_answer("ec", false);
        metrics.count_answer("rsa", true);
        other.count_answer("ec", true);
        let text = String::from_utf8(metrics.render()).unwrap();
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
        let other_text = String::from_utf8(other.render()).unwrap();
        assert!(other_text.contains(r#"ocsp_edge_answers_total{issuer="ec",status="revoked"} 1"#));
    }

    #[test]
    fn every_outcome_has_its_own_counter() {
        let metrics = Metrics::new().unwrap();
        metrics.observe(Method::Get, Outcome::Good, 0.001, 0);
        metrics.observe(Method::Post, Outcome::Refused(Refusal::UnknownIssuer), 0.001, 0);
        metrics.observe(Method::Post, Outcome::Refused(Refusal::Malformed("x")), 0.001, 0);
        let text = String::from_utf8(metrics.render()).unwrap();
        assert!(
            text.contains(r#"ocsp_edge_requests_total{method="GET",outcome="good"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"ocsp_edge_requests_total{method="POST",outcome="unknown_issuer"} 1"#));
        assert!(text.contains(r#"ocsp_edge_requests_total{method="POST",outcome="malformed"} 1"#));
        assert!(text.contains(r#"ocsp_edge_request_duration_seconds_count{method="GET"} 1"#));
    }
}

//! The metrics every request touches — requests by method and outcome, their latency,
//! response bytes, answers by issuer and status — kept in per-thread shards and summed
//! when Prometheus scrapes.
//!
//! With the `prometheus` crate's own counters and histograms each of these is an atomic
//! that every core writes, so under load their cache lines move between cores on every
//! request: on two cores that cost ~0.3 µs of CPU per request, about a quarter of what
//! the server adds to a bare hyper server (measured by running with them switched off). Here each thread adds to its own shard, on its own cache lines; a scrape reads
//! them all. Nothing is buffered, so a scrape is exact whatever thread served what.
//!
//! What this module must never do: lock or allocate on the request path (the first
//! answer for an issuer on a thread registers it once), or change a series' name or
//! labels, which dashboards and the alert rules in `deploy/` depend on.

use super::{Method, Outcome};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Upper bounds (seconds) of `ocsp_edge_request_duration_seconds`.
pub(super) const LATENCY_BOUNDS: [f64; 12] = [
    0.000_005, 0.00001, 0.000_025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1, 1.0,
];

const METHODS: usize = Method::ALL.len();

/// What one thread counts. Aligned so that no two shards share a cache line (128 bytes:
/// adjacent-line prefetching pairs 64-byte lines on x86).
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    requests: [[AtomicU64; Outcome::COUNT]; METHODS],
    /// Per method: one count per bound, then the observations above the last (`+Inf`).
    latency_buckets: [[AtomicU64; LATENCY_BOUNDS.len() + 1]; METHODS],
    latency_nanos: [AtomicU64; METHODS],
    bytes_out: AtomicU64,
}

/// One issuer's answers, good and revoked, per shard.
struct IssuerAnswers {
    issuer: String,
    shards: Box<[AnswerShard]>,
}

#[repr(align(128))]
#[derive(Default)]
struct AnswerShard([AtomicU64; 2]);

/// A handle on one set of request metrics; clones share it (as the `prometheus` crate's
/// own metrics do), so one clone can be registered and another counted into.
#[derive(Clone)]
pub(super) struct RequestMetrics(Arc<Shared>);

struct Shared {
    /// Distinguishes instances (tests make several) in the per-thread handle caches.
    id: usize,
    shards: Box<[Shard]>,
    issuers: Mutex<Vec<Arc<IssuerAnswers>>>,
    descs: [Desc; 4],
}

impl RequestMetrics {
    pub(super) fn new() -> Result<RequestMetrics, prometheus::Error> {
        static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
        let desc = |name: &str, help: &str, labels: &[&str]| {
            let labels = labels.iter().map(|l| l.to_string()).collect();
            Desc::new(name.into(), help.into(), labels, HashMap::new())
        };
        Ok(RequestMetrics(Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Relaxed),
            shards: (0..shard_count()).map(|_| Shard::default()).collect(),
            issuers: Mutex::new(Vec::new()),
            descs: [
                desc(
                    REQUESTS,
                    "OCSP requests by HTTP method and outcome.",
                    &["method", "outcome"],
                )?,
                desc(
                    LATENCY,
                    "Time from request head received to response ready, by HTTP method.",
                    &["method"],
                )?,
                desc(BYTES_OUT, "Response body bytes sent.", &[])?,
                desc(
                    ANSWERS,
                    "Successful OCSP answers (200 or 304), by issuer and certificate status.",
                    &["issuer", "status"],
                )?,
            ],
        })))
    }

    /// Counts one request: its outcome, its latency and the body bytes it sent.
    pub(super) fn observe(&self, method: Method, outcome: Outcome, seconds: f64, body_bytes: u64) {
        let shard = &self.0.shards[this_thread() % self.0.shards.len()];
        shard.bytes_out.fetch_add(body_bytes, Relaxed);
        let method = method as usize;
        shard.requests[method][outcome.index()].fetch_add(1, Relaxed);
        let bucket = LATENCY_BOUNDS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BOUNDS.len());
        shard.latency_buckets[method][bucket].fetch_add(1, Relaxed);
        shard.latency_nanos[method].fetch_add((seconds * 1e9) as u64, Relaxed);
    }

    /// Counts a successful answer for `issuer`. Each thread keeps the handles it has
    /// used, so the hot path compares a few names instead of taking the lock.
    pub(super) fn count_answer(&self, issuer: &str, revoked: bool) {
        type Handles = Vec<(usize, Arc<IssuerAnswers>)>;
        thread_local! {
            static HANDLES: RefCell<Handles> = const { RefCell::new(Vec::new()) };
        }
        let shard = this_thread();
        HANDLES.with_borrow_mut(|handles| {
            let known = handles
                .iter()
                .position(|(id, answers)| *id == self.0.id && answers.issuer == issuer);
            let index = known.unwrap_or_else(|| {
                handles.push((self.0.id, self.issuer(issuer)));
                handles.len() - 1
            });
            // Borrowed, not cloned: an Arc clone per request would write its shared
            // reference count from every core, the very traffic the shards avoid.
            let answers = &handles[index].1;
            answers.shards[shard % answers.shards.len()].0[usize::from(revoked)].fetch_add(1, Relaxed);
        });
    }

    /// The shared counters of `issuer`, created at its first answer.
    fn issuer(&self, issuer: &str) -> Arc<IssuerAnswers> {
        let mut issuers = self.0.issuers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = issuers.iter().find(|a| a.issuer == issuer) {
            return known.clone();
        }
        let answers = Arc::new(IssuerAnswers {
            issuer: issuer.to_string(),
            shards: (0..self.0.shards.len()).map(|_| AnswerShard::default()).collect(),
        });
        issuers.push(answers.clone());
        answers
    }

    fn sum(&self, cell: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.0.shards.iter().map(|shard| cell(shard).load(Relaxed)).sum()
    }

    fn requests_family(&self) -> MetricFamily {
        let outcomes = Outcome::labels();
        let metrics = Method::ALL
            .iter()
            .flat_map(|&(method, method_label)| {
                outcomes.iter().enumerate().map(move |(index, outcome)| {
                    let count = self.sum(|s| &s.requests[method as usize][index]);
                    counter(&[("method", method_label), ("outcome", outcome)], count)
                })
            })
            .collect();
        family(REQUESTS, &self.0.descs[0], MetricType::COUNTER, metrics)
    }

    fn latency_family(&self) -> MetricFamily {
        let metrics = Method::ALL
            .iter()
            .map(|&(method, label)| {
                let method = method as usize;
                let mut cumulative = 0;
                let mut buckets = Vec::with_capacity(LATENCY_BOUNDS.len());
                for (index, bound) in LATENCY_BOUNDS.iter().enumerate() {
                    cumulative += self.sum(|s| &s.latency_buckets[method][index]);
                    let mut bucket = proto::Bucket::default();
                    bucket.set_upper_bound(*bound);
                    bucket.set_cumulative_count(cumulative);
                    buckets.push(bucket);
                }
                // The count includes the +Inf bucket, so count and buckets always agree.
                let count = cumulative + self.sum(|s| &s.latency_buckets[method][LATENCY_BOUNDS.len()]);
                let mut histogram = proto::Histogram::default();
                histogram.set_bucket(buckets);
                histogram.set_sample_count(count);
                histogram.set_sample_sum(self.sum(|s| &s.latency_nanos[method]) as f64 / 1e9);
                let mut metric = proto::Metric::from_label(labels(&[("method", label)]));
                metric.set_histogram(histogram);
                metric
            })
            .collect();
        family(LATENCY, &self.0.descs[1], MetricType::HISTOGRAM, metrics)
    }

    fn answers_family(&self) -> MetricFamily {
        let issuers = self.0.issuers.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let metrics = issuers
            .iter()
            .flat_map(|answers| {
                ["good", "revoked"]
                    .into_iter()
                    .enumerate()
                    .map(|(index, status)| {
                        let count = answers.shards.iter().map(|s| s.0[index].load(Relaxed)).sum();
                        counter(&[("issuer", &answers.issuer), ("status", status)], count)
                    })
            })
            .collect();
        family(ANSWERS, &self.0.descs[3], MetricType::COUNTER, metrics)
    }
}

const REQUESTS: &str = "ocsp_edge_requests_total";
const LATENCY: &str = "ocsp_edge_request_duration_seconds";
const BYTES_OUT: &str = "ocsp_edge_response_bytes_total";
const ANSWERS: &str = "ocsp_edge_answers_total";

impl Collector for RequestMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.0.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let bytes_out = counter(&[], self.sum(|s| &s.bytes_out));
        vec![
            self.requests_family(),
            self.latency_family(),
            family(BYTES_OUT, &self.0.descs[2], MetricType::COUNTER, vec![bytes_out]),
            self.answers_family(),
        ]
    }
}

/// Enough shards that each worker thread (one per core) usually has its own; threads
/// beyond that share, which costs speed, never counts.
fn shard_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2 * cores).clamp(2, 256)
}

/// This thread's number, given out in the order threads first count something.
fn this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NUMBER: usize = NEXT.fetch_add(1, Relaxed);
    }
    NUMBER.with(|number| *number)
}

fn labels(pairs: &[(&str, &str)]) -> Vec<proto::LabelPair> {
    pairs
        .iter()
        .map(|(name, value)| {
            let mut pair = proto::LabelPair::default();
            pair.set_name(name.to_string());
            pair.set_value(value.to_string());
            pair
        })
        .collect()
}

fn counter(pairs: &[(&str, &str)], value: u64) -> proto::Metric {
    let mut counter = proto::Counter::default();
    counter.set_value(value as f64);
    let mut metric = proto::Metric::from_label(labels(pairs));
    metric.set_counter(counter);
    metric
}

fn family(name: &str, desc: &Desc, kind: MetricType, metrics: Vec<proto::Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_string());
    family.set_help(desc.help.clone());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocsp_edge_core::ocsp::Refusal;

    fn render(metrics: &RequestMetrics) -> String {
        let registry = prometheus::Registry::new();
        registry.register(Box::new(metrics.clone())).unwrap();
        let mut out = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &registry.gather(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn counts_from_many_threads_add_up_exactly() {
        let metrics = RequestMetrics::new().unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let metrics = metrics.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        metrics.observe(Method::Get, Outcome::Good, 0.000_02, 700);
                        metrics.observe(Method::Post, Outcome::Refused(Refusal::Expired), 0.002, 0);
                        metrics.count_answer("ec", false);
                    }
                    metrics.count_answer("rsa", true);
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let text = render(&metrics);
        for line in [
            r#"ocsp_edge_requests_total{method="GET",outcome="good"} 8000"#,
            r#"ocsp_edge_requests_total{method="POST",outcome="expired"} 8000"#,
            r#"ocsp_edge_requests_total{method="POST",outcome="good"} 0"#,
            r#"ocsp_edge_request_duration_seconds_count{method="GET"} 8000"#,
            r#"ocsp_edge_response_bytes_total 5600000"#,
            r#"ocsp_edge_answers_total{issuer="ec",status="good"} 8000"#,
            r#"ocsp_edge_answers_total{issuer="ec",status="revoked"} 0"#,
            r#"ocsp_edge_answers_total{issuer="rsa",status="revoked"} 8"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn latency_lands_in_cumulative_buckets_with_its_sum() {
        let metrics = RequestMetrics::new().unwrap();
        metrics.observe(Method::Head, Outcome::Good, 0.000_003, 0);
        metrics.observe(Method::Head, Outcome::Good, 0.000_03, 0);
        metrics.observe(Method::Head, Outcome::Good, 2.5, 0);
        let text = render(&metrics);
        for line in [
            r#"ocsp_edge_request_duration_seconds_bucket{method="HEAD",le="0.000005"} 1"#,
            r#"ocsp_edge_request_duration_seconds_bucket{method="HEAD",le="0.000025"} 1"#,
            r#"ocsp_edge_request_duration_seconds_bucket{method="HEAD",le="0.00005"} 2"#,
            r#"ocsp_edge_request_duration_seconds_bucket{method="HEAD",le="1"} 2"#,
            r#"ocsp_edge_request_duration_seconds_bucket{method="HEAD",le="+Inf"} 3"#,
            r#"ocsp_edge_request_duration_seconds_count{method="HEAD"} 3"#,
            r#"ocsp_edge_request_duration_seconds_count{method="GET"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
        }
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(r#"ocsp_edge_request_duration_seconds_sum{method="HEAD"} "#))
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 2.500_033).abs() < 1e-6, "{sum}");
    }

    #[test]
    fn shards_never_share_a_cache_line() {
        assert!(std::mem::align_of::<Shard>() >= 128);
        assert!(std::mem::align_of::<AnswerShard>() >= 128);
        assert!(shard_count() >= 2);
    }
}

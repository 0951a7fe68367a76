//! The cache tier's metrics: what they are called and which series exist from the start.
//! Registered into the registry the responder passes in; written only by [`super::tier`].

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// The cache tier's metrics, registered only on a cache-mode responder (into the
/// responder's registry, see [`CacheMetrics::register`]).
pub struct CacheMetrics {
    pub(super) hits: IntCounter,
    pub(super) misses: IntCounter,
    pub(super) fills: IntCounterVec,
    pub(super) fill_failures: IntCounterVec,
    pub(super) invalidations: IntCounter,
    pub(super) invalidate_all: IntCounter,
    pub(super) entries: IntGauge,
    pub(super) acknowledged: IntGauge,
    pub(super) feed_failures: IntCounterVec,
    pub(super) feed_refused: IntCounterVec,
    pub(super) last_hub_contact: IntGauge,
}

/// Every `result` of `ocsp_edge_cache_fills_total`.
pub const CACHE_FILL_RESULTS: [&str; 5] = [
    "cached",
    "ahead_of_feed",
    "not_synchronized",
    "no_sequence",
    "hub_refused",
];

impl CacheMetrics {
    /// Creates the cache tier's metrics and registers them into `registry` (once, on a
    /// cache-mode responder).
    pub fn register(registry: &Registry) -> Result<CacheMetrics, prometheus::Error> {
        let counter = |name: &str, help: &str| IntCounter::new(name, help);
        let metrics = CacheMetrics {
            hits: counter("ocsp_edge_cache_hits_total", "OCSP requests answered from the cache.")?,
            misses: counter(
                "ocsp_edge_cache_misses_total",
                "OCSP requests for a CertID not in the cache (concurrent misses for one CertID share one fill).",
            )?,
            fills: IntCounterVec::new(
                Opts::new(
                    "ocsp_edge_cache_fills_total",
                    "Hub answers to fills, by result: cached, served uncached (ahead_of_feed, \
                     not_synchronized, no_sequence) or passed on as a refusal (hub_refused).",
                ),
                &["result"],
            )?,
            fill_failures: IntCounterVec::new(
                Opts::new(
                    "ocsp_edge_cache_fill_failures_total",
                    "Fill attempts that got nothing servable from a hub, by reason.",
                ),
                &["reason"],
            )?,
            invalidations: counter(
                "ocsp_edge_cache_invalidations_total",
                "Cache keys invalidated by the change feed (two per changed certificate).",
            )?,
            invalidate_all: counter(
                "ocsp_edge_cache_invalidate_all_total",
                "Times the whole cache was dropped because the feed could not describe the changes.",
            )?,
            entries: IntGauge::new("ocsp_edge_cache_entries", "Responses held in the cache.")?,
            acknowledged: IntGauge::new(
                "ocsp_edge_cache_acknowledged_sequence",
                "Hub sequence whose changes the cache has applied (0: none yet).",
            )?,
            feed_failures: IntCounterVec::new(
                Opts::new(
                    "ocsp_edge_cache_feed_failures_total",
                    "Change-feed requests that failed, by hub admin URL.",
                ),
                &["hub"],
            )?,
            feed_refused: IntCounterVec::new(
                Opts::new(
                    "ocsp_edge_cache_feed_refused_total",
                    "Change-feed answers refused because the publisher's signatures do not prove \
                     them, by reason; nothing of them is acknowledged.",
                ),
                &["reason"],
            )?,
            last_hub_contact: IntGauge::new(
                "ocsp_edge_cache_last_hub_contact_timestamp_seconds",
                "When a hub last answered a fill or the change feed (unix time; 0: never).",
            )?,
        };
        let r = registry;
        r.register(Box::new(metrics.hits.clone()))?;
        r.register(Box::new(metrics.misses.clone()))?;
        r.register(Box::new(metrics.fills.clone()))?;
        r.register(Box::new(metrics.fill_failures.clone()))?;
        r.register(Box::new(metrics.invalidations.clone()))?;
        r.register(Box::new(metrics.invalidate_all.clone()))?;
        r.register(Box::new(metrics.entries.clone()))?;
        r.register(Box::new(metrics.acknowledged.clone()))?;
        r.register(Box::new(metrics.feed_failures.clone()))?;
        r.register(Box::new(metrics.feed_refused.clone()))?;
        r.register(Box::new(metrics.last_hub_contact.clone()))?;
        // Series that exist from the start, at 0, so that increase() sees the first event
        // (the tier adds those labelled by its own fill failures and its hubs).
        for result in CACHE_FILL_RESULTS {
            metrics.fills.with_label_values(&[result]);
        }
        for reason in super::feed::FeedError::LABELS {
            metrics.feed_refused.with_label_values(&[reason]);
        }
        Ok(metrics)
    }
}

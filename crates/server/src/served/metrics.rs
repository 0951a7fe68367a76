//! The served state's metrics: the served snapshot and its CRLs, loads and refusals,
//! readiness, the refresh deadline and the change history. Registered into the registry
//! the wiring passes to [`super::State::new`]; written only by [`super::State`].
//!
//! Must never change a series' name, labels or help text (dashboards, the alert rules in
//! `deploy/` and docs/metrics.md depend on them), nor drop a series that exists at 0 from
//! the start. The anti-rollback floor's series are [`super::rollback`]'s, replication's
//! [`super::replication`]'s.

use ocsp_edge_core::snapshot::{Snapshot, VerifyError};
use ocsp_edge_core::time::UnixTime;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// The served state's metrics (see the module docs).
pub struct ServedMetrics {
    snapshot_sequence: IntGauge,
    snapshot_created: IntGauge,
    snapshot_entries: IntGauge,
    snapshot_age: IntGauge,
    seconds_until_next_update: IntGauge,
    snapshot_loads: IntCounter,
    snapshot_load_seconds: Histogram,
    snapshots_refused: IntCounterVec,
    ready: IntGauge,
    crl_number: IntGaugeVec,
    crl_this_update: IntGaugeVec,
    crl_seconds_until_next_update: IntGaugeVec,
    refresh_deadline: IntGauge,
    refresh_at_risk: IntGauge,
    change_history_start: IntGauge,
    change_history_records: IntGauge,
}

impl ServedMetrics {
    /// Creates the served state's metrics and registers them into `registry`.
    pub(super) fn register(registry: &Registry) -> Result<ServedMetrics, prometheus::Error> {
        let gauge = |name: &str, help: &str| IntGauge::new(name, help);
        let crl_gauge = |name: &str, help: &str| IntGaugeVec::new(Opts::new(name, help), &["path"]);
        let metrics = ServedMetrics {
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
            crl_number: crl_gauge("ocsp_edge_crl_number", "cRLNumber of each served CRL, by URL path.")?,
            crl_this_update: crl_gauge(
                "ocsp_edge_crl_this_update_timestamp_seconds",
                "thisUpdate of each served CRL (unix time).",
            )?,
            crl_seconds_until_next_update: crl_gauge(
                "ocsp_edge_crl_seconds_until_next_update",
                "Seconds until each served CRL's nextUpdate; at 0 it is no longer served.",
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
            change_history_start: gauge(
                "ocsp_edge_change_history_start_sequence",
                "Oldest sequence a cache can resume the change feed from (0: no history yet).",
            )?,
            change_history_records: gauge(
                "ocsp_edge_change_history_records",
                "Certificates whose status changes the change-feed history holds.",
            )?,
        };
        metrics.register_into(registry)?;
        // Series that exist from the start, at 0, so that increase() sees the first event.
        for reason in VerifyError::LABELS {
            metrics.snapshots_refused.with_label_values(&[reason]);
        }
        Ok(metrics)
    }

    fn register_into(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        let gauges = [
            &self.snapshot_sequence,
            &self.snapshot_created,
            &self.snapshot_entries,
            &self.snapshot_age,
            &self.seconds_until_next_update,
            &self.ready,
            &self.refresh_deadline,
            &self.refresh_at_risk,
            &self.change_history_start,
            &self.change_history_records,
        ];
        for gauge in gauges {
            registry.register(Box::new(gauge.clone()))?;
        }
        for crl_gauge in [
            &self.crl_number,
            &self.crl_this_update,
            &self.crl_seconds_until_next_update,
        ] {
            registry.register(Box::new(crl_gauge.clone()))?;
        }
        registry.register(Box::new(self.snapshot_loads.clone()))?;
        registry.register(Box::new(self.snapshot_load_seconds.clone()))?;
        registry.register(Box::new(self.snapshots_refused.clone()))?;
        Ok(())
    }

    /// Counts a refused snapshot (or offered manifest) under `reason`, one of
    /// [`VerifyError::LABELS`] or replication's own (`SyncError::refusal_label`).
    pub fn count_refusal(&self, reason: &str) {
        self.snapshots_refused.with_label_values(&[reason]).inc();
    }

    /// How many snapshots were refused under `reason` since start.
    pub fn refusals(&self, reason: &str) -> u64 {
        self.snapshots_refused.with_label_values(&[reason]).get()
    }

    /// How many snapshots were verified and swapped in since start.
    pub fn loads(&self) -> u64 {
        self.snapshot_loads.get()
    }

    /// Counts a swap-in that took `seconds` from the start of its load.
    pub(super) fn count_load(&self, seconds: f64) {
        self.snapshot_loads.inc();
        self.snapshot_load_seconds.observe(seconds);
    }

    /// Sets the gauges about the served `snapshot` and its CRLs at `now`.
    pub(super) fn describe_snapshot(&self, snapshot: &Snapshot, now: UnixTime) {
        self.snapshot_sequence.set(snapshot.sequence() as i64);
        self.snapshot_created.set(snapshot.created_at().seconds());
        self.snapshot_entries.set(snapshot.entry_count() as i64);
        self.snapshot_age
            .set(now.seconds() - snapshot.created_at().seconds());
        self.seconds_until_next_update
            .set((snapshot.earliest_next_update().seconds() - now.seconds()).max(0));
        // Rebuilt on every scrape so paths of a replaced snapshot disappear.
        self.crl_number.reset();
        self.crl_this_update.reset();
        self.crl_seconds_until_next_update.reset();
        for document in snapshot.documents() {
            let Some(number) = document.crl_number else {
                continue;
            };
            let path = [document.path.as_str()];
            self.crl_number.with_label_values(&path).set(number as i64);
            self.crl_this_update
                .with_label_values(&path)
                .set(document.this_update);
            self.crl_seconds_until_next_update
                .with_label_values(&path)
                .set((document.next_update - now.seconds()).max(0));
        }
        let deadline = ocsp_edge_core::responder::refresh_deadline(
            snapshot.created_at(),
            snapshot.earliest_next_update(),
        );
        self.refresh_deadline.set(deadline.seconds() - now.seconds());
        self.refresh_at_risk
            .set(i64::from(now.plus_seconds(3600) >= deadline));
    }

    pub(super) fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// `start`: the oldest sequence the change history can resume from (`None`: none yet).
    pub(super) fn set_change_history(&self, start: Option<u64>, records: usize) {
        self.change_history_start.set(start.unwrap_or(0) as i64);
        self.change_history_records.set(records as i64);
    }
}
